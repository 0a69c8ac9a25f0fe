# Gateway header mode: `customer_auth header X-User-Id;` in a location
# trusts that header, set by a gateway that authenticated the caller, as
# a Customer's sub (the Profile Service behind Kong). Off by default; the
# location must guard itself (allow/deny or internal) or nginx -t fails;
# Customer rules apply as with a token (own records only, admin routes
# 403, a Suspended account refused); internal routes still need a service
# key; a bad or repeated header is 401.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db, server_extra => <<'CONF');
        # the gateway's way in: only it may reach this location
        location /gw/ {
            allow 127.0.0.1;
            deny all;
            customer_auth header X-User-Id;
            rewrite ^/gw(/.*)$ $1 break;
            customer_api;
        }

        # the same, reachable by nobody: the guard is what protects it
        location /closed/ {
            deny all;
            customer_auth header X-User-Id;
            rewrite ^/closed(/.*)$ $1 break;
            customer_api;
        }
CONF

sub gw {
    my ($method, $path, %o) = @_;
    my $user = delete $o{user};
    return $ng->req($method => "/gw$path", auth => 'none', %o,
        headers => { defined $user ? ('X-User-Id' => $user) : (),
            %{ $o{headers} // {} } });
}

my ($ID, $U) = CT::make_customer($ng, 'gateway', via => 'internal',
    contactNumber => '+14155550100');
my ($OTHER, $OTHER_U) = CT::make_customer($ng, 'gateway-other');


# --- the header is the Customer ---------------------------------------------

{
    my $r = gw(GET => '/api/customers/me', user => $U);
    is($r->{status}, 200, 'GET /me with X-User-Id: 200') or diag($r->{body});
    is($r->{json}{data}{customerId}, $ID, '... the record of that user');
    is($r->{json}{data}{userId}, $U, '... its userId');

    $r = gw(GET => '/api/customers/me', user => $OTHER_U);
    is($r->{json}{data}{customerId}, $OTHER, 'another X-User-Id: its own '
        . 'record');

    $r = gw(PATCH => '/api/customers/me', user => $U,
        json => { contactNumber => '+14155550199' });
    is($r->{status}, 200, 'PATCH /me with X-User-Id: 200') or diag($r->{body});
    is(CT::sql($db, q{SELECT contact_number || ' ' || updated_by
        FROM customers WHERE id = :'p1'}, $ID), "+14155550199 $U",
        '... written, updated_by the gateway\'s user');

    # Customer rules
    is_error(gw(GET => '/api/customers', user => $U), 403, 'Access denied',
        ['authorization'], 'an admin route');
    is(gw(GET => "/api/customers/$OTHER/loyalty", user => $U)->{status}, 404,
        "another customer's loyalty: 404");
    is(gw(GET => "/api/customers/$ID/loyalty", user => $U)->{status}, 200,
        'its own loyalty by id: 200');
    is(gw(GET => '/api/customers/me', user => 'nobody-has-this')->{status},
        404, 'a user without a record: 404');
}


# --- the header is the only credential there ----------------------------------

{
    is_error(gw(GET => '/api/customers/me'), 401, 'Unauthorized',
        ['authorization'], 'no X-User-Id');
    is_error(gw(GET => '/api/customers/me', headers => {
        Authorization => 'Bearer ' . CT::admin_token() }), 401, undef,
        ['authorization'], 'an admin token without X-User-Id (tokens are not '
        . 'read there)');
    is(gw(GET => '/api/customers', user => $U, headers => {
        Authorization => 'Bearer ' . CT::admin_token() })->{status}, 403,
        'X-User-Id and an admin token on an admin route: 403, a Customer');

    for my $bad (['', 'empty'], ['a' x 129, '129 bytes'],
        ["$U extra", 'a space inside'])
    {
        is(gw(GET => '/api/customers/me', user => $bad->[0])->{status}, 401,
            "X-User-Id $bad->[1]: 401");
    }
    is(gw(GET => '/api/customers/me', user => 'a' x 128)->{status}, 404,
        'X-User-Id of 128 bytes: accepted (no such record, 404)');

    my $raw = $ng->raw("GET /gw/api/customers/me HTTP/1.0\r\nHost: x\r\n"
        . "X-User-Id: $U\x01\r\n\r\n");
    like($raw, qr{^HTTP/1\.1 401 }, 'X-User-Id with a control character: '
        . '401');
    $raw = $ng->raw("GET /gw/api/customers/me HTTP/1.0\r\nHost: x\r\n"
        . "X-User-Id: $U\r\nX-User-Id: $OTHER_U\r\n\r\n");
    like($raw, qr{^HTTP/1\.1 401 }, 'two X-User-Id headers: 401');
    $raw = $ng->raw("GET /gw/api/customers/me HTTP/1.0\r\nHost: x\r\n"
        . "x-user-id: $U\r\n\r\n");
    like($raw, qr{^HTTP/1\.1 200 }, 'the header name in lower case: 200');

    # internal routes keep their service key
    my $u = CT::uniq('gw');
    my $body = { userId => $u, email => "$u\@example.com",
        fullName => 'Gateway Internal' };
    is(gw(POST => '/api/customers/internal/create', user => $U,
        json => $body)->{status}, 401,
        'an internal route with X-User-Id only: 401');
    is(gw(POST => '/api/customers/internal/create', user => $U,
        json => $body, headers => { 'X-Service-API-Key' =>
        $CT::SERVICE_KEYS[0] })->{status}, 201,
        '... with the service key: 201');
}


# --- elsewhere the header means nothing ------------------------------------------

{
    my $r = $ng->req(GET => '/api/customers/me', auth => 'none',
        headers => { 'X-User-Id' => $U });
    is($r->{status}, 401, 'X-User-Id on a location without the mode: 401');

    $r = $ng->req(GET => '/closed/api/customers/me', auth => 'none',
        headers => { 'X-User-Id' => $U });
    is($r->{status}, 403, 'a location whose guard denies the client: 403');
    unlike($r->{body}, qr/\Q$ID\E/, '... and no record');
}


# --- a Suspended account is refused as with a token ------------------------------

{
    my $r = $ng->req(PATCH => "/api/customers/$ID/status",
        json => { status => 'Suspended', reason => 'gateway test' });
    is($r->{status}, 200, 'the account is Suspended') or diag($r->{body});
    is_error(gw(GET => '/api/customers/me', user => $U), 403, 'Access denied',
        ['authorization'], 'a Suspended account through the gateway');
}


# --- nginx -t -----------------------------------------------------------------------

my $PORT = CT::free_port();

sub conf {
    my ($server, $loc) = @_;
    return CT::nginx_test_conf(qq{    customer_db "host=127.0.0.1 dbname=x";
    ${\ CT::jwt_conf()}
    server {
        listen 127.0.0.1:$PORT;
        $server
        location /api/ { $loc }
    }
});
}

sub refused {
    my ($name, $server, $loc, $re) = @_;
    my ($rc, $out) = conf($server, $loc);
    ok($rc != 0, "$name: nginx -t fails") or diag($out);
    like($out, $re, "$name: the [emerg] says why") or diag($out);
}

sub passes {
    my ($name, $server, $loc) = @_;
    my ($rc, $out) = conf($server, $loc);
    is($rc, 0, "$name: nginx -t passes") or diag($out);
}

my $UNGUARDED = qr/\[emerg\].*"customer_auth header X-User-Id" in location "\/api\/" trusts whoever can reach it/;

refused('header mode without a guard', '',
    'customer_auth header X-User-Id; customer_api;', $UNGUARDED);
refused('header mode with allow/deny only in server{}',
    'allow 10.0.0.0/8; deny all;',
    'customer_auth header X-User-Id; customer_api;', $UNGUARDED);
refused('header mode in server{}', 'customer_auth header X-User-Id;',
    'allow 127.0.0.1; deny all; customer_api;',
    qr/"customer_auth header" is allowed only in a location/);
refused('a nested location without its own guard', '',
    'allow 127.0.0.1; deny all; customer_auth header X-User-Id; '
    . 'location /api/x/ { customer_api; }',
    qr/"customer_auth header X-User-Id" in location "\/api\/x\/" trusts/);
refused('header without a name', '', 'customer_auth header; customer_api;',
    qr/invalid value "header" in "customer_auth": on, off or header <name>/);
refused('a second word after on', '', 'customer_auth on X-User-Id; '
    . 'customer_api;', qr/invalid value "on X-User-Id" in "customer_auth"/);
refused('a name with a colon', '',
    'allow 127.0.0.1; customer_auth header X-User-Id:; customer_api;',
    qr/"customer_auth header" needs a header name, not "X-User-Id:"/);
refused('customer_auth twice', '',
    'customer_auth on; customer_auth header X-User-Id; customer_api;',
    qr/"customer_auth" directive is duplicate/);
refused('a value other than on/off', '', 'customer_auth yes; customer_api;',
    qr/invalid value "yes" in "customer_auth"/);

passes('header mode with allow/deny in the location', '',
    'allow 10.0.0.0/8; deny all; customer_auth header X-User-Id; '
    . 'customer_api;');
passes('header mode with deny only', '',
    'deny 192.0.2.1; customer_auth header X-User-Id; customer_api;');
passes('header mode in an internal location', '',
    'internal; customer_auth header X-User-Id; customer_api;');
passes('header mode after customer_api', '',
    'customer_api; customer_auth header X-Gateway-User; allow unix:;');
passes('customer_auth on and off still', '',
    'customer_auth off; customer_api; location /api/x/ { customer_auth on; '
    . 'customer_api; }');

done_testing();
