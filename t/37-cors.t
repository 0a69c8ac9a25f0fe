# CORS: customer_cors_origins and customer_cors_credentials, with real
# preflights (OPTIONS + Origin + Access-Control-Request-Method) and the
# actual requests that follow. A listed origin gets the route's methods,
# the request headers the API reads, Access-Control-Max-Age and, on every
# answer (errors too), Access-Control-Allow-Origin and the exposed ETag,
# X-Request-Id and Location; an origin not listed gets no CORS header.
# OPTIONS on an unknown path is the 404 envelope. Bad values fail nginx -t.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $APP = 'http://localhost:3000';
my $MOBILE = 'http://localhost:19006';
my $EVIL = 'http://evil.example';

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db, http_extra =>
    "    customer_cors_origins $APP $MOBILE;\n"
    . "    customer_cors_credentials on;\n"
    . "    customer_cors_max_age 10m;\n");

my @CORS = qw(access-control-allow-origin access-control-allow-credentials
    access-control-allow-methods access-control-allow-headers
    access-control-max-age access-control-expose-headers);

sub preflight {
    my ($path, $origin, $method, $headers) = @_;
    return $ng->req(OPTIONS => $path, auth => 'none', headers => {
        defined $origin ? (Origin => $origin) : (),
        defined $method ? ('Access-Control-Request-Method' => $method) : (),
        defined $headers
            ? ('Access-Control-Request-Headers' => $headers) : () });
}

sub cors_of {
    my ($r) = @_;
    return { map { exists $r->{headers}{$_} ? ($_ => $r->{headers}{$_}) : () }
        @CORS };
}

my ($ID) = CT::make_customer($ng, 'cors');


# --- preflights from a listed origin ------------------------------------------

{
    my $r = preflight("/api/customers/$ID", $APP, 'PATCH',
        'authorization, content-type, if-match, idempotency-key');
    is($r->{status}, 204, 'preflight PATCH /api/customers/{id}: 204')
        or diag($r->{body});
    is($r->{body}, '', '... no body');
    is_deeply(cors_of($r), {
        'access-control-allow-origin' => $APP,
        'access-control-allow-credentials' => 'true',
        'access-control-allow-methods'
            => 'GET, HEAD, PUT, PATCH, DELETE, OPTIONS',
        'access-control-allow-headers' => 'Authorization, Content-Type, '
            . 'If-Match, Idempotency-Key, X-Request-Id, Prefer',
        'access-control-max-age' => '600',
        'access-control-expose-headers' => 'ETag, X-Request-Id, Location',
    }, '... the origin, credentials, the route\'s methods, the headers the '
        . 'API reads, max-age 10m') or diag(explain($r->{headers}));
    is($r->{headers}{vary}, 'Origin', '... Vary: Origin');
    is($r->{headers}{allow}, 'GET, HEAD, PUT, PATCH, DELETE, OPTIONS',
        '... Allow');
    like($r->{headers}{'x-request-id'} // '', qr/^\S+$/, '... X-Request-Id');

    $r = preflight('/api/customers', $MOBILE, 'POST',
        'authorization, content-type');
    is($r->{status}, 204, 'preflight POST /api/customers from the second '
        . 'origin: 204');
    is($r->{headers}{'access-control-allow-origin'}, $MOBILE,
        '... that origin');
    is($r->{headers}{'access-control-allow-methods'},
        'GET, HEAD, POST, OPTIONS', '... the list\'s methods');

    $r = preflight("/api/customers/internal/$ID/loyalty/earn", $APP, 'POST');
    is($r->{headers}{'access-control-allow-methods'}, 'POST, OPTIONS',
        'preflight of a POST-only route: POST, OPTIONS');

    # a method the route does not take: answered, the browser then blocks
    $r = preflight("/api/customers/$ID/loyalty", $APP, 'DELETE');
    is($r->{status}, 204, 'preflight asking DELETE of a GET route: 204');
    unlike($r->{headers}{'access-control-allow-methods'} // '', qr/DELETE/,
        '... DELETE is not among the methods');

    # no authentication is asked of a preflight
    $r = preflight('/api/customers', $APP, 'GET');
    is($r->{status}, 204, 'preflight of an admin route without a token: '
        . '204');
    ok(!$r->{headers}{'www-authenticate'}, '... no WWW-Authenticate');

    $r = preflight('/health', $APP, 'GET');
    is($r->{status}, 204, 'preflight /health: 204');

    # origins are compared without regard to case, as hosts are
    $r = preflight('/api/customers', 'HTTP://LOCALHOST:3000', 'GET');
    is($r->{headers}{'access-control-allow-origin'}, 'HTTP://LOCALHOST:3000',
        'an origin in another case is the same origin');
}


# --- origins not listed, and OPTIONS that is no preflight -----------------------

{
    for my $o ([$EVIL, 'another host'], ['http://localhost:3001',
        'another port'], ['https://localhost:3000', 'another scheme'],
        ['http://localhost:3000/', 'a trailing slash'], ['null', 'null'])
    {
        my $r = preflight("/api/customers/$ID", $o->[0], 'PATCH',
            'authorization');
        is($r->{status}, 204, "preflight from $o->[1]: 204");
        is_deeply(cors_of($r), {}, "... no CORS header at all")
            or diag(explain($r->{headers}));
        is($r->{headers}{vary}, 'Origin', '... Vary: Origin still');
    }

    my $r = preflight("/api/customers/$ID", undef, undef);
    is($r->{status}, 204, 'OPTIONS without Origin: 204');
    is($r->{headers}{allow}, 'GET, HEAD, PUT, PATCH, DELETE, OPTIONS',
        '... Allow lists the methods');
    is_deeply(cors_of($r), {}, '... no CORS header');

    $r = preflight("/api/customers/$ID", $APP, undef);
    is($r->{status}, 204, 'OPTIONS from a listed origin without '
        . 'Access-Control-Request-Method: 204');
    ok(!$r->{headers}{'access-control-allow-methods'}
        && !$r->{headers}{'access-control-max-age'},
        '... not a preflight: no methods, no max-age');

    # two Origin headers: neither is trusted
    my $raw = $ng->raw("OPTIONS /api/customers HTTP/1.0\r\nHost: x\r\n"
        . "Origin: $APP\r\nOrigin: $EVIL\r\n"
        . "Access-Control-Request-Method: GET\r\n\r\n");
    like($raw, qr{^HTTP/1\.1 204 }, 'two Origin headers: 204');
    unlike($raw, qr/^Access-Control-/mi, '... and no CORS header');
}


# --- OPTIONS on an unknown path --------------------------------------------------

{
    my $r = preflight('/api/no-such-thing', $APP, 'GET');
    is_error($r, 404, 'Not found', ['path'], 'OPTIONS on an unknown path');
    is($r->{headers}{'access-control-allow-origin'}, $APP,
        '... the 404 is readable by the listed origin');
    ok(!$r->{headers}{'access-control-allow-methods'},
        '... but it is no preflight answer');
    $r = preflight('/api/no-such-thing', $EVIL, 'GET');
    is($r->{status}, 404, 'OPTIONS on an unknown path, origin not listed: '
        . '404');
    is_deeply(cors_of($r), {}, '... no CORS header');
}


# --- actual requests ---------------------------------------------------------------

{
    my $r = $ng->req(GET => "/api/customers/$ID",
        headers => { Origin => $APP });
    is($r->{status}, 200, 'GET from the listed origin: 200');
    is_deeply(cors_of($r), {
        'access-control-allow-origin' => $APP,
        'access-control-allow-credentials' => 'true',
        'access-control-expose-headers' => 'ETag, X-Request-Id, Location',
    }, '... the origin, credentials and the exposed headers')
        or diag(explain($r->{headers}));
    is($r->{headers}{vary}, 'Origin', '... Vary: Origin');
    ok($r->{headers}{etag}, '... the ETag it exposes');

    $r = $ng->req(PATCH => "/api/customers/$ID",
        headers => { Origin => $MOBILE, 'If-Match' => $r->{headers}{etag} },
        json => { notes => 'from the browser' });
    is($r->{status}, 200, 'PATCH with If-Match from the second origin: 200')
        or diag($r->{body});
    is($r->{headers}{'access-control-allow-origin'}, $MOBILE, '... allowed');

    my $u = CT::uniq('cors');
    $r = $ng->req(POST => '/api/customers', headers => { Origin => $APP,
        'Idempotency-Key' => "k-$u" }, json => { userId => $u,
        email => "$u\@example.com", fullName => 'Cors Create' });
    is($r->{status}, 201, 'POST from the listed origin: 201')
        or diag($r->{body});
    is($r->{headers}{'access-control-allow-origin'}, $APP, '... allowed');

    # errors carry the headers too, or the page could not read them
    my @errors = (
        [401, $ng->req(GET => "/api/customers/$ID", auth => 'none',
            headers => { Origin => $APP }), 'no token'],
        [403, $ng->req(GET => '/api/customers', headers => { Origin => $APP },
            auth => CT::customer_token('someone')), 'a Customer on an admin '
            . 'route'],
        [404, $ng->req(GET => "/api/customers/$MISSING",
            headers => { Origin => $APP }), 'no such customer'],
        [405, $ng->req(POST => "/api/customers/$ID",
            headers => { Origin => $APP }, json => {}), 'wrong method'],
        [400, $ng->req(PATCH => "/api/customers/$ID",
            headers => { Origin => $APP }, json => { email => 'x' }),
            'validation'],
        [412, $ng->req(PATCH => "/api/customers/$ID", headers =>
            { Origin => $APP, 'If-Match' => '"999"' }, json => { notes => 'x' }),
            'stale If-Match'],
        # nginx's own 413, answered through error_page
        [413, $ng->req(POST => '/api/customers', headers => { Origin => $APP },
            body => 'x' x 70000), 'a body over client_max_body_size'],
    );
    for my $e (@errors) {
        my ($status, $r, $name) = @$e;
        is($r->{status}, $status, "$name: $status");
        is($r->{headers}{'access-control-allow-origin'}, $APP,
            "... Access-Control-Allow-Origin");
        is($r->{headers}{'access-control-expose-headers'},
            'ETag, X-Request-Id, Location', '... exposed headers');
        is($r->{headers}{vary}, 'Origin', '... Vary: Origin once');
    }

    $r = $ng->req(GET => "/api/customers/$ID", headers => { Origin => $EVIL });
    is($r->{status}, 200, 'GET from an origin not listed: answered (the '
        . 'browser is the one that blocks)');
    is_deeply(cors_of($r), {}, '... without any CORS header');
    is($r->{headers}{vary}, 'Origin', '... Vary: Origin');

    $r = $ng->req(GET => "/api/customers/$ID");
    is_deeply(cors_of($r), {}, 'GET without Origin: no CORS header');
    is($r->{headers}{vary}, 'Origin', '... Vary: Origin, for caches');
}


# --- without the directives nothing changes but OPTIONS ---------------------------

my $plain = CT::nginx_start(db => $db);
{
    my $r = $plain->req(GET => "/api/customers/$ID",
        headers => { Origin => $APP });
    is($r->{status}, 200, 'no customer_cors_origins: GET 200');
    is_deeply(cors_of($r), {}, '... no CORS header');
    ok(!$r->{headers}{vary}, '... no Vary');
    $r = $plain->req(OPTIONS => "/api/customers/$ID", auth => 'none',
        headers => { Origin => $APP, 'Access-Control-Request-Method' => 'GET' });
    is($r->{status}, 204, '... OPTIONS: 204 with Allow');
    is_deeply(cors_of($r), {}, '... and no CORS header');
}


# --- "*" and customer_cors_credentials off -----------------------------------------

my $any = CT::nginx_start(db => $db, server_extra => <<'CONF');
        location /open/ {
            customer_cors_origins *;
            rewrite ^/open(/.*)$ $1 break;
            customer_api;
        }
CONF
{
    my $r = $any->req(OPTIONS => '/open/health', auth => 'none',
        headers => { Origin => $EVIL,
            'Access-Control-Request-Method' => 'GET' });
    is($r->{status}, 204, 'customer_cors_origins *: preflight 204');
    is($r->{headers}{'access-control-allow-origin'}, '*', '... origin *');
    ok(!exists $r->{headers}{'access-control-allow-credentials'},
        '... no credentials (off by default)');
    $r = $any->req(GET => '/open/health', headers => { Origin => $EVIL });
    is($r->{headers}{'access-control-allow-origin'}, '*',
        '... and on the answer');
    $r = $any->req(GET => '/health', headers => { Origin => $EVIL });
    is_deeply(cors_of($r), {}, 'another location without the directive: '
        . 'no CORS header');
}


# --- nginx -t ------------------------------------------------------------------------

my $PORT = CT::free_port();

sub conf {
    my ($loc) = @_;
    return CT::nginx_test_conf(qq{    customer_db "host=127.0.0.1 dbname=x";
    ${\ CT::jwt_conf()}
    server { listen 127.0.0.1:$PORT; location / { customer_api; $loc } }
});
}

for my $bad (['https://app.example.com/', 'a trailing slash'],
    ['https://app.example.com/path', 'a path'], ['app.example.com',
    'no scheme'], ['null', 'null'], ['https://', 'no host'],
    ['https://u@app.example.com', 'user info'])
{
    my ($rc, $out) = conf("customer_cors_origins https://ok.example $bad->[0];");
    ok($rc != 0, "customer_cors_origins with $bad->[1]: nginx -t fails");
    like($out, qr/\[emerg\].*"customer_cors_origins": "\Q$bad->[0]\E" is not an origin/,
        '... naming the value') or diag($out);
}
{
    my ($rc, $out) = conf('customer_cors_origins *; '
        . 'customer_cors_credentials on;');
    ok($rc != 0, '"*" with credentials: nginx -t fails');
    like($out, qr/"customer_cors_origins \*" cannot go with "customer_cors_credentials on"/,
        '... saying why') or diag($out);

    ($rc, $out) = conf('customer_cors_origins https://a.example '
        . 'capacitor://localhost http://[::1]:8080 http://127.0.0.1:3000; '
        . 'customer_cors_credentials on; customer_cors_max_age 2h;');
    is($rc, 0, 'origins with ports, an app scheme and IPv6: nginx -t passes')
        or diag($out);

    ($rc, $out) = conf('customer_cors_origins https://a.example; '
        . 'customer_cors_origins https://b.example;');
    like($out, qr/"customer_cors_origins" directive is duplicate/,
        'customer_cors_origins twice: duplicate');
}

done_testing();
