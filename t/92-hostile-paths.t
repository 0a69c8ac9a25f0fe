# Hostile path segments on every route of the module's route tables (read
# from src/*.c): "%00", a raw NUL, invalid UTF-8 ("%C3%C3", "%C0%AF"),
# an encoded '/' ("%2F"), "." and ".." (plain and "%2E%2E") and a
# 5000-character id, in each "{}" of each route, with the credentials the
# route takes. Every answer is a 4xx in the JSON error envelope
# (Content-Type application/json), never a 5xx, never nginx's HTML page,
# and the database is the same afterwards (a checksum of every table).
# Also: a dot segment never reaches the resource above it (DELETE
# /api/customers/{id}/notes/.. is not DELETE /api/customers/{id}), nginx's
# own refusals (414, 400 for a bad header, 505, 501) are in the envelope,
# the error location cannot be asked for directly, and conf/nginx.conf,
# docker/nginx.conf, conf/customer.conf.example and the README give the
# same error_page recipe (the one every test nginx runs with).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $ROOT = CT::root();
my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db);

my $T = JSON::PP::true;
my $F = JSON::PP::false;


# --- the routes, read from the route tables in src/*.c --------------------

# ({method, pattern, access}, ...): every entry of every
# ngx_http_customer_route_t array, with NGX_HTTP_CUSTOMER_X aliases
# resolved; OWN_KEY is a flag, not a method.
sub module_routes {
    my (%alias, @routes);

    for my $file (sort glob "$ROOT/src/*.c") {
        open my $fh, '<', $file or die "$file: $!";
        my $src = do { local $/; <$fh> };
        $src =~ s{/\*.*?\*/}{ }gs;

        while ($src =~ /^#define\s+(NGX_HTTP_CUSTOMER_\w+)\s+(NGX_HTTP_CUSTOMER_\w+)\s*$/mg) {
            $alias{$1} = $2;
        }
        while ($src =~ /ngx_http_customer_route_t\s+\w+\s*\[\]\s*=\s*\{(.*?)^\};/msg) {
            my $body = $1;
            while ($body =~ /\{\s*([A-Z0-9_|\s]+?)\s*,\s*"([^"]*)"\s*,\s*\w+\s*,\s*(\w+)\s*,/g) {
                my ($methods, $pattern, $access) = ($1, $2, $3);
                for my $m (split /\s*\|\s*/, $methods) {
                    next if $m eq 'NGX_HTTP_CUSTOMER_OWN_KEY';
                    push @routes, { method => $m =~ s/^NGX_HTTP_//r,
                        pattern => $pattern, access => $access };
                }
            }
        }
    }
    for my $r (@routes) {
        $r->{access} = $alias{ $r->{access} } while exists $alias{ $r->{access} };
        $r->{access} =~ s/^NGX_HTTP_CUSTOMER_//;
    }
    return @routes;
}

my @routes = module_routes();
cmp_ok(scalar @routes, '>=', 60, 'route tables parsed: ' . @routes . ' routes');
my %families = map { ((split m{/}, $_->{pattern})[2] // 'health' => 1) }
    @routes;
ok($families{$_}, "the route family $_ is among them")
    for qw(customers vehicles documents);
for my $seg (qw(me internal notes preferences financial-profile
    credit-status loyalty vehicles service-records documents dashboard
    status orders complaints))
{
    ok((grep { $_->{pattern} =~ m{/\Q$seg\E(?:/|$)} } @routes),
        "a route with the segment $seg");
}


# --- what the database holds, to compare -----------------------------------

my $USER = "hostile-$$";
my $CID = CT::sql($db, q{INSERT INTO customers (user_id, email, full_name)
    VALUES (:'p1', :'p2', 'Hostile Paths') RETURNING id}, $USER,
    "$USER\@example.com");
my $r = $ng->req(POST => "/api/customers/$CID/notes",
    json => { content => 'a note' });
is($r->{status}, 201, 'a note to protect') or diag($r->{body});
$r = $ng->req(POST => "/api/customers/$CID/vehicles", json => {
    make => 'Honda', model => 'Accord', year => 2003,
    vin => '1HGCM82633A004352' });
is($r->{status}, 201, 'a vehicle to protect') or diag($r->{body});
my $VID = ($r->{json}{data} // {})->{vehicleId} // $CID;

my @TABLES = CT::sql($db, q{SELECT quote_ident(table_name) FROM
    information_schema.tables WHERE table_schema = 'public'
    AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations'
    ORDER BY table_name});

sub checksum {
    return scalar CT::sql($db, 'SELECT ' . join ' || ', map {
        "(SELECT '$_:' || md5(coalesce(string_agg(x::text, ',' ORDER BY"
        . " x::text), '')) FROM $_ x)" } @TABLES);
}


# --- every route, every hostile segment ----------------------------------

my %CREDS = (
    ADMIN => {}, SELF => {}, PUBLIC => { auth => 'none' },
    SERVICE => { auth => 'service' },
);

my @HOSTILE = ('%00', '%C3%C3', '%C0%AF', '%ED%A0%80', '%2F', 'a%2Fb',
    '..', '.', '%2E%2E', '.%2e', 'a' x 5000);

sub envelope_4xx {
    my ($r, $name) = @_;
    my $ok = $r->{status} >= 400 && $r->{status} < 500
        && ($r->{headers}{'content-type'} // '') =~ m{^application/json\b}
        && $r->{json} && ref $r->{json} eq 'HASH'
        && $r->{json}{success} eq $F && ref $r->{json}{errors} eq 'ARRAY'
        && @{ $r->{json}{errors} } && defined $r->{json}{errors}[0]{field};
    ok($ok, "$name: $r->{status}, the JSON error envelope")
        or diag(substr($r->{body}, 0, 300));
}

my $before = checksum();

for my $rt (@routes) {
    my @slots = $rt->{pattern} =~ /\{\}/g;
    # a route without "{}" gets the hostile segment appended
    my @paths;
    for my $h (@HOSTILE) {
        if (!@slots) {
            next if $rt->{pattern} eq '/health';
            push @paths, "$rt->{pattern}/$h";
            next;
        }
        my $id = $rt->{pattern} =~ m{^/api/vehicles} ? $VID : $CID;
        for my $i (0 .. $#slots) {
            my $n = 0;
            (my $p = $rt->{pattern}) =~ s/\{\}/$n++ == $i ? $h : $id/ge;
            push @paths, $p;
        }
    }
    for my $p (@paths) {
        my %o = %{ $CREDS{ $rt->{access} } // {} };
        $o{json} = {} if $rt->{method} =~ /^(?:POST|PUT|PATCH)$/;
        $o{headers} = { 'Content-Type' => 'text/plain' }
            if $p =~ m{/documents$} && $rt->{method} eq 'POST';
        $o{body} = 'x', delete $o{json} if $o{headers};
        my $r = $ng->req($rt->{method}, $p, %o);
        envelope_4xx($r, "$rt->{method} " . substr($p, 0, 70));
    }

    # a NUL byte as such in the request line
    my $p = $rt->{pattern} =~ s/\{\}/a\0b/r;
    $p = "$p/a\0b" unless @slots;
    my $raw = $ng->raw("$rt->{method} $p HTTP/1.1\r\nHost: x\r\n"
        . "Connection: close\r\n\r\n");
    like($raw, qr{\AHTTP/1\.1[ ]4\d\d[ ].*\r\nContent-Type:[ ]application/json\r\n
        .*\r\n\r\n\{"success":false,.*"errors":\[\{"field":}sx,
        "$rt->{method} $rt->{pattern} with a raw NUL: 4xx in the envelope")
        or diag(substr($raw, 0, 300));
}

is(checksum(), $before, 'nothing was written by any hostile request');


# --- a Customer's routes, with its own token -------------------------------

{
    my $tok = CT::customer_token($USER);
    for my $p ("/api/customers/me/%00", "/api/customers/%2F/notes",
        "/api/customers/$CID/notes/..", "/api/customers/%C3%C3/dashboard",
        "/api/customers/$CID/loyalty/%2E%2E")
    {
        envelope_4xx($ng->req(GET => $p, auth => $tok), "Customer GET $p");
    }
    is(checksum(), $before, 'Customer: nothing written');
}


# --- a dot segment is not the resource above it ------------------------------

{
    for my $p ("/api/customers/$CID/notes/..", "/api/customers/$CID/x/%2E%2E",
        "/api/customers/$CID/notes/%2e%2E/", "/api/customers/$CID/.",
        "/api/vehicles/$VID/service-records/..")
    {
        my $r = $ng->req(DELETE => $p);
        is($r->{status}, 400, "DELETE $p: 400") or diag($r->{body});
        is_deeply([map { $_->{field} } @{ ($r->{json} // {})->{errors} // [] }],
            ['path'], "DELETE $p: the error names the path");
    }
    is(scalar CT::sql($db, q{SELECT count(*) FROM customers WHERE id = :'p1'},
        $CID), 1, 'the customer is still there');
    my $r = $ng->req(GET => '/api/customers/%2F');
    is($r->{status}, 400, 'GET /api/customers/%2F is no list: 400');
    is(checksum(), $before, 'dot segments: nothing written');
}


# --- nginx's own refusals, in the envelope --------------------------------

{
    my $r = $ng->req(GET => '/api/customers/' . ('a' x 10000));
    is($r->{status}, 414, 'a 10000-character id: 414');
    envelope_4xx($r, '414');

    $r = $ng->req(GET => '/api/customers/%00');
    is($r->{status}, 400, '%00: 400');
    is(($r->{json}{errors} // [{}])->[0]{field}, 'request',
        '%00: the error names the request');

    for my $c (["GET /api/customers HTTP/2.0\r\nHost: x\r\n\r\n",
            'HTTP/2.0 on the request line'],
        ["POST /api/customers HTTP/1.1\r\nHost: x\r\n"
            . "Transfer-Encoding: gzip\r\n\r\n", 'Transfer-Encoding: gzip'],
        ["GET /api/customers HTTP/1.1\r\nHost: x\r\nBad\0Name: 1\r\n\r\n",
            'a NUL in a header name'],
        ["GET /api/customers HTTP/1.1\r\nHost: x\r\nX-Big: "
            . ('b' x 9000) . "\r\n\r\n", 'a header over the buffers'],
        ["GET /api/customers/%C3 HTTP/1.1\r\nHost: x\r\n\r\n",
            'a truncated UTF-8 sequence'])
    {
        (my $req = $c->[0]) =~ s/\r\n\r\n\z/\r\nConnection: close\r\n\r\n/;
        my $raw = $ng->raw($req);
        like($raw, qr{\AHTTP/1\.1[ ]400[ ].*\r\nContent-Type:[ ]application/json\r\n
            .*\r\n\r\n\{"success":false,}sx, "$c->[1]: 400 in the envelope")
            or diag(substr($raw, 0, 300));
    }

    $r = $ng->req(GET => '/_customer_error');
    is($r->{status}, 404, 'the error location itself: 404');
    envelope_4xx($r, 'the error location itself');
    is(checksum(), $before, "nginx's refusals: nothing written");
}


# --- one recipe everywhere ---------------------------------------------------

{
    my $norm = sub { join ' ', split ' ', $_[0] };
    my %want = CT::error_recipe();
    like($want{error_page}, qr{\s/_customer_error;\z},
        'conf/nginx.conf: error_page to a URI, not a named location');
    like($want{location}, qr/\binternal;/, 'the error location is internal');
    for my $file (qw(docker/nginx.conf conf/customer.conf.example README.md)) {
        my %got = CT::error_recipe("$ROOT/$file");
        is($norm->($got{error_page}), $norm->($want{error_page}),
            "$file: the same error_page as conf/nginx.conf");
        is($norm->($got{location}), $norm->($want{location}),
            "$file: the same error location as conf/nginx.conf");
    }
    for my $file (qw(conf/nginx.conf docker/nginx.conf
        conf/customer.conf.example README.md))
    {
        open my $fh, '<', "$ROOT/$file" or die "$file: $!";
        my $text = do { local $/; <$fh> };
        unlike($text, qr/^\s*(?:error_page[^;#]*|location\s+)\@customer_error/m,
            "$file: no named error location left");
    }
}

done_testing();
