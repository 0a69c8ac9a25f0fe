# Edge cases found in review: a token whose exp overflows to infinity, and
# a request that carries the service key header twice.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db);

sub count { CT::sql($db, 'SELECT count(*) FROM customers') }

# exp = 1e400 is infinity to strtod: such a token must never be accepted
{
    my $token = CT::jwt_raw('{"alg":"HS256","typ":"JWT"}',
        '{"sub":"admin-user","role":"Administrator","exp":1e400}');
    my $before = count();
    my $r = $ng->req(POST => '/api/customers', auth => $token,
        json => { userId => 'inf-1', email => 'inf@example.com',
            fullName => 'Infinite Token' });
    is($r->{status}, 401, 'exp 1e400: 401');
    like($r->{headers}{'www-authenticate'} // '', qr/invalid_token/,
        'exp 1e400: WWW-Authenticate says invalid_token');
    is(count(), $before, 'exp 1e400: nothing written');
}

# a huge but finite exp is still a number in the future: accepted
{
    my $token = CT::jwt_raw('{"alg":"HS256","typ":"JWT"}',
        '{"sub":"admin-user","role":"Administrator","exp":99999999999}');
    my $r = $ng->req(GET => '/api/customers', auth => $token);
    is($r->{status}, 200, 'exp in the year 5138: accepted');
}

# two X-Service-API-Key headers: refused, whichever order and validity
my ($good, $other) = @CT::SERVICE_KEYS;
for my $case (
    [ 'valid then invalid', [ $good, 'x' x 32 ] ],
    [ 'invalid then valid', [ 'x' x 32, $good ] ],
    [ 'both valid', [ $good, $other ] ],
) {
    my ($name, $keys) = @$case;
    my $r = $ng->req(POST => '/api/customers/internal/create',
        headers => { 'X-Service-API-Key' => $keys },
        json => { userId => "dup-$name", email => 'dup@example.com',
            fullName => 'Duplicate Key' });
    is($r->{status}, 401, "two service keys ($name): 401");
    is(CT::sql($db, q{SELECT count(*) FROM customers WHERE user_id = :'p1'},
        "dup-$name"), 0, "two service keys ($name): nothing written");
}

# one valid key still works
{
    my $r = $ng->req(POST => '/api/customers/internal/create',
        auth => 'service', json => { userId => 'one-key',
            email => 'one@example.com', fullName => 'One Key' });
    is($r->{status}, 201, 'one service key: 201');
}

# a userId is one path segment (the Auth Service call, internal lookup)
for my $case (
    [ 'POST /api/customers', '/api/customers', undef ],
    [ 'internal create', '/api/customers/internal/create', 'service' ],
) {
    my ($name, $path, $auth) = @$case;
    my $before = count();
    my $r = $ng->req(POST => $path, defined $auth ? (auth => $auth) : (),
        json => { userId => 'tenant/42', email => 'slash@example.com',
            fullName => 'Slash User' });
    is($r->{status}, 400, "$name: a userId with '/' is 400");
    is_deeply([ map { $_->{field} } @{ $r->{json}{errors} // [] } ],
        ['userId'], "$name: the error names userId");
    is(count(), $before, "$name: nothing written");
}
ok(!eval { CT::sql($db, q{INSERT INTO customers (user_id, email, full_name)
        VALUES ('a/b', 'ab@example.com', 'A B')}); 1 },
    "the database refuses a userId with '/' too");

# a verified token is cached per worker: expiry must still end it
{
    my $ng0 = CT::nginx_start(db => $db,
        auth_conf => CT::jwt_conf() . "    customer_jwt_leeway 0s;\n");
    my $token = CT::jwt(sub => 'admin-user', role => 'Administrator',
        exp => time + 2);
    my $r = $ng0->req(GET => '/api/customers', auth => $token);
    is($r->{status}, 200, 'short-lived token: accepted while valid');
    $r = $ng0->req(GET => '/api/customers', auth => $token);
    is($r->{status}, 200, 'short-lived token: accepted again (cached)');
    ok(CT::wait_for(sub {
            $ng0->req(GET => '/api/customers', auth => $token)->{status}
                == 401 }, timeout => 6),
        'short-lived token: refused once expired, cache or not');
    like($ng0->error_log, qr/customer: 401: token expired/,
        'short-lived token: the log says expired');
}

done_testing();
