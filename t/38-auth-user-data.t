# The Auth Service's user data, with a real HTTP stand-in for it: a create
# (admin or internal) first asks GET /api/auth/user/{userId} (unknown:
# 422; down, failing or slow: 502/504; nothing written either way;
# customer_auth_user_check off skips it); POST /api/customers/{id}/sync
# copies email, fullName and contactNumber from it, and PATCH
# /api/customers/internal/user/{userId} takes them pushed by it; POST
# /api/customers/internal/{id}/login keeps metadata.lastLoginDate and
# loginCount; metadata.lastActivityDate follows the Customer's own
# requests, written at most once per customer_activity_interval.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use File::Temp qw(tempdir);
use IO::Socket::INET;

my $db = CT::db_create();

# The stand-in's users: "gone-*" is unknown (404), "down-*" makes it fail
# (500), "slow-*" answer after 3 s, "bad-*" holds an email no record can
# hold; any other exists, as the file $STATE/<userId>.json says, or with
# its default data.
my $STATE = tempdir(CLEANUP => 1);
chmod 0755, $STATE;

my $auth = CT::peer_start(handler => sub {
    my ($req) = @_;
    my ($u) = $req->{path} =~ m{^/api/auth/user/([^/]+)\z}
        or return [404, {}, { success => JSON::PP::false }];
    return [404, {}, { success => JSON::PP::false, message => 'No user' }]
        if $u =~ /^gone-/;
    return [500, {}, 'oops'] if $u =~ /^down-/;
    sleep 3 if $u =~ /^slow-/;
    my %user = (userId => $u, email => "$u\@auth.example.com",
        fullName => "Auth \u$u", contactNumber => '+14155550100',
        role => 'Customer');
    $user{email} = 'not an email' if $u =~ /^bad-/;
    if (open my $fh, '<', "$STATE/$u.json") {
        local $/;
        %user = (%user, %{ JSON::PP->new->decode(<$fh>) });
        for (keys %user) {
            delete $user{$_} if ($user{$_} // '') eq 'ABSENT';
        }
    }
    return [200, {}, { success => JSON::PP::true, data => \%user }];
});

sub auth_user {
    my ($u, %data) = @_;
    open my $fh, '>', "$STATE/$u.json" or die $!;
    print $fh JSON::PP->new->encode(\%data);
    close $fh;
}

my ($http, $server) = CT::peer_conf(auth => $auth, key => 'peer-key-users',
    read_timeout => '1s', user_check => 1);
my $ng = CT::nginx_start(db => $db, workers => 2, http_extra => $http,
    server_extra => $server, allow_log => qr/upstream timed out|Auth Service/);

sub count { scalar CT::sql($db, 'SELECT count(*) FROM customers') }

sub body {
    my ($u, %o) = @_;
    return { userId => $u, email => "$u\@example.com",
        fullName => 'Users Test', %o };
}

sub calls {
    my ($u) = @_;
    return scalar grep { $_->{path} eq "/api/auth/user/$u" } $auth->requests;
}


# --- creating a customer asks the Auth Service first -------------------------

{
    my $u = CT::uniq('known');
    my $r = $ng->req(POST => '/api/customers', json => body($u));
    is($r->{status}, 201, 'create a known user: 201') or diag($r->{body});
    my ($call) = grep { $_->{path} eq "/api/auth/user/$u" } $auth->requests;
    ok($call, '... after GET /api/auth/user/{userId}');
    is($call && $call->{method}, 'GET', '... a GET');
    is($call && $call->{headers}{'x-service-api-key'}, 'peer-key-users',
        '... with the peer key');

    $u = CT::uniq('known-svc');
    $r = $ng->req(POST => '/api/customers/internal/create', auth => 'service',
        json => body($u));
    is($r->{status}, 201, 'internal create of a known user: 201');
    is(calls($u), 1, '... asked the Auth Service once');
}

for my $c (['gone', 422, 'Unknown user', ['userId']],
    ['down', 502, 'Unable to fetch user data', ['service']],
    ['slow', 504, 'Unable to fetch user data', ['service']])
{
    my ($kind, $status, $message, $fields) = @$c;
    for my $via ('', '/internal/create') {
        my $u = CT::uniq($kind);
        my $before = count();
        my $r = $ng->req(POST => "/api/customers$via",
            $via ? (auth => 'service') : (), json => body($u),
            headers => { 'Idempotency-Key' => "k-$u" });
        is_error($r, $status, $message, $fields,
            "create ($via) a $kind user");
        is(count(), $before, '... nothing written');
        is(CT::sql($db, q{SELECT count(*) FROM idempotency_keys
            WHERE key = :'p1'}, "k-$u"), 0, '... its key left free');
    }
}

{
    my $u = CT::uniq('invalid');
    my $r = $ng->req(POST => '/api/customers', json => body($u,
        fullName => 'J'));
    is_error($r, 400, 'Validation failed', ['fullName'],
        'an invalid create: 400');
    is(calls($u), 0, '... without asking the Auth Service');

    # the service down altogether
    $auth->stop;
    $u = CT::uniq('nopeer');
    my $before = count();
    $r = $ng->req(POST => '/api/customers', json => body($u));
    is_error($r, 502, 'Unable to fetch user data', ['service'],
        'create while the Auth Service is down');
    is(count(), $before, '... nothing written');
    $auth->start;
    $r = $ng->req(POST => '/api/customers', json => body($u));
    is($r->{status}, 201, '... and once it is back: 201');
}

# customer_auth_user_check off: created without asking
{
    my ($h2, $s2) = CT::peer_conf(auth => $auth, read_timeout => '1s');
    my $ng2 = CT::nginx_start(db => $db, http_extra => $h2,
        server_extra => $s2);
    my $u = CT::uniq('gone-unchecked');
    my $r = $ng2->req(POST => '/api/customers', json => body($u));
    is($r->{status}, 201, 'customer_auth_user_check off: an unknown user '
        . 'is created');
    is(calls($u), 0, '... without a call');
    $ng2->stop;
}


# --- sync ----------------------------------------------------------------

{
    my ($id, $u) = CT::make_customer($ng, 'sync',
        contactNumber => '+919800000000');
    auth_user($u, email => "new-$u\@example.org", fullName => 'Synced Name',
        contactNumber => '+14155550123');

    my $r = $ng->req(POST => "/api/customers/$id/sync",
        headers => { 'Idempotency-Key' => "sync-$u" });
    is($r->{status}, 200, 'sync: 200') or diag($r->{body});
    my $d = $r->{json}{data};
    is_deeply($d->{changed}, ['email', 'fullName', 'contactNumber'],
        '... changed email, fullName, contactNumber');
    is($d->{email}, "new-$u\@example.org", '... the email');
    is($d->{version}, 2, '... version 2');
    is($r->{headers}{etag}, '"2"', '... ETag "2"');
    is(CT::sql($db, q{SELECT email || '|' || full_name || '|'
        || contact_number || '|' || updated_by || '|' || version
        FROM customers WHERE id = :'p1'}, $id),
        "new-$u\@example.org|Synced Name|+14155550123|admin-user|2",
        '... stored, updatedBy the admin');

    $r = $ng->req(POST => "/api/customers/$id/sync",
        headers => { 'Idempotency-Key' => "sync-$u" });
    is($r->{headers}{'idempotent-replayed'}, 'true',
        'the same key again: replayed');

    $r = $ng->req(POST => "/api/customers/$id/sync");
    is($r->{status}, 200, 'sync with nothing new: 200');
    is_deeply($r->{json}{data}{changed}, [], '... changed []');
    is($r->{json}{data}{version}, 2, '... version still 2');

    # no contactNumber in the answer: kept; null: cleared
    auth_user($u, email => "new-$u\@example.org", fullName => 'Synced Name',
        contactNumber => 'ABSENT');
    $r = $ng->req(POST => "/api/customers/$id/sync");
    is($r->{json}{data}{contactNumber}, '+14155550123',
        'no contactNumber from the service: kept');
    auth_user($u, email => "new-$u\@example.org", fullName => 'Synced Name',
        contactNumber => undef);
    $r = $ng->req(POST => "/api/customers/$id/sync");
    is($r->{json}{data}{contactNumber}, undef, 'a null one: cleared');
    is_deeply($r->{json}{data}{changed}, ['contactNumber'],
        '... changed contactNumber');

    # a user the record cannot hold is the service's fault
    auth_user($u, email => 'nope', fullName => 'X', contactNumber => '12');
    my $before = CT::row_of($db, 'customers', $id);
    $r = $ng->req(POST => "/api/customers/$id/sync");
    is_error($r, 502, 'Invalid user data from the Auth Service',
        ['email', 'fullName', 'contactNumber'], 'sync of an invalid user');
    is(CT::row_of($db, 'customers', $id), $before, '... nothing written');
    unlink "$STATE/$u.json";

    $r = $ng->req(POST => "/api/customers/$id/sync", auth =>
        CT::customer_token($u));
    is($r->{status}, 403, 'sync as the Customer: 403');
}

for my $c (['gone', 422, 'Unknown user', ['userId']],
    ['down', 502, 'Unable to fetch user data', ['service']],
    ['slow', 504, 'Unable to fetch user data', ['service']])
{
    my ($kind, $status, $message, $fields) = @$c;
    my $u = CT::uniq($kind);
    my $id = CT::sql($db, q{INSERT INTO customers (user_id, email, full_name)
        VALUES (:'p1', 'x@example.com', 'Sync Fault') RETURNING id}, $u);
    my $before = CT::row_of($db, 'customers', $id);
    my $r = $ng->req(POST => "/api/customers/$id/sync");
    is_error($r, $status, $message, $fields, "sync of a $kind user");
    is(CT::row_of($db, 'customers', $id), $before, '... nothing written');
}

{
    my $before = scalar $auth->requests;
    my $r = $ng->req(POST => "/api/customers/$CT::MISSING/sync");
    is_error($r, 404, 'Customer not found', ['customerId'],
        'sync of a missing customer');
    $r = $ng->req(POST => '/api/customers/nope/sync');
    is_error($r, 400, 'Validation failed', ['customerId'],
        'sync of a non-UUID');
    is(scalar $auth->requests, $before, '... neither asked the service');
}


# --- the Auth Service pushes a change -----------------------------------------

{
    my ($id, $u) = CT::make_customer($ng, 'push',
        contactNumber => '+919800000009');
    my $r = $ng->req(PATCH => "/api/customers/internal/user/$u",
        auth => 'service', json => { email => "pushed-$u\@example.org" });
    is($r->{status}, 200, 'PATCH internal/user/{userId}: 200')
        or diag($r->{body});
    is_deeply($r->{json}{data}{changed}, ['email'], '... changed email');
    is($r->{json}{data}{fullName}, 'Push Test', '... fullName kept');
    is($r->{json}{data}{version}, 2, '... version 2');
    is(CT::sql($db, q{SELECT email || '|' || updated_by FROM customers
        WHERE id = :'p1'}, $id), "pushed-$u\@example.org|service",
        '... stored, updatedBy service');

    $r = $ng->req(PATCH => "/api/customers/internal/user/$u",
        auth => 'service', json => { contactNumber => undef,
            fullName => '  Pushed Name  ' });
    is_deeply($r->{json}{data}{changed}, ['fullName', 'contactNumber'],
        'a null phone and a name: both changed');
    is($r->{json}{data}{fullName}, 'Pushed Name', '... the name trimmed');

    my $before = CT::row_of($db, 'customers', $id);
    for my $c ([{}, ['body'], 'no field'],
        [{ email => 'nope' }, ['email'], 'a bad email'],
        [{ fullName => undef }, ['fullName'], 'a null name'],
        [{ userId => 'x' }, ['userId'], 'another field'])
    {
        $r = $ng->req(PATCH => "/api/customers/internal/user/$u",
            auth => 'service', json => $c->[0]);
        is_error($r, 400, 'Validation failed', $c->[1], "push: $c->[2]");
    }
    is(CT::row_of($db, 'customers', $id), $before, '... nothing written');

    is_error($ng->req(PATCH => '/api/customers/internal/user/nobody-here',
        auth => 'service', json => { fullName => 'Nobody' }), 404,
        'Customer not found', ['userId'], 'push for an unknown userId');
    is($ng->req(PATCH => "/api/customers/internal/user/$u",
        json => { fullName => 'Admin' })->{status}, 401,
        'push with an admin token: 401');
    $r = $ng->req(GET => "/api/customers/internal/user/$u", auth => 'service');
    is($r->{json}{data}{fullName}, 'Pushed Name',
        'GET of the same path still reads the record');

    # a client that goes away while its push waits on the row: the retry
    # with its key writes once
    my $s = CT::psql_session($db);
    $s->run('BEGIN');
    $s->run("SELECT 1 FROM customers WHERE id = '$id' FOR UPDATE");
    my $body = '{"fullName":"After Abort"}';
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $ng->port, Proto => 'tcp') or die "connect: $!";
    print $sock "PATCH /api/customers/internal/user/$u HTTP/1.1\r\n"
        . "Host: t\r\nX-Service-API-Key: $CT::SERVICE_KEYS[0]\r\n"
        . "Idempotency-Key: push-abort\r\nContent-Type: application/json\r\n"
        . 'Content-Length: ' . length($body) . "\r\n\r\n$body";
    ok(CT::wait_for(sub { CT::lock_waiters($db) >= 1 }),
        'a push waits on the row');
    close $sock;
    $s->run('COMMIT');
    $s->close;
    ok(CT::wait_for(sub {
            my $x = $ng->req(PATCH => "/api/customers/internal/user/$u",
                auth => 'service', body => $body,
                headers => { 'Idempotency-Key' => 'push-abort',
                    'Content-Type' => 'application/json' });
            $x->{status} == 200 || ($x->{status} == 409
                && $x->{json}{message} eq 'Request already applied') }),
        '... its retry with the key answers');
    is(CT::sql($db, q{SELECT full_name || '|' || version FROM customers
        WHERE id = :'p1'}, $id), 'After Abort|4', '... written once');
}


# --- login -----------------------------------------------------------------

{
    my ($id, $u) = CT::make_customer($ng, 'login');
    my $r = $ng->req(POST => "/api/customers/internal/$id/login",
        auth => 'service');
    is($r->{status}, 200, 'login: 200') or diag($r->{body});
    is_deeply([sort keys %{ $r->{json}{data} }],
        [qw(customerId metadata userId)], '... customerId, userId, metadata');
    is($r->{json}{data}{metadata}{loginCount}, 1, '... loginCount 1');
    like($r->{json}{data}{metadata}{lastLoginDate}, $TS, '... lastLoginDate');

    $r = $ng->req(POST => "/api/customers/internal/$id/login",
        auth => 'service', headers => { 'Idempotency-Key' => "l-$u" });
    is($r->{json}{data}{metadata}{loginCount}, 2, 'again: loginCount 2');
    $r = $ng->req(POST => "/api/customers/internal/$id/login",
        auth => 'service', headers => { 'Idempotency-Key' => "l-$u" });
    is($r->{headers}{'idempotent-replayed'}, 'true',
        '... its retry with the key: replayed');
    my $rec = $ng->req(GET => "/api/customers/$id")->{json}{data};
    is($rec->{metadata}{loginCount}, 2, '... counted once');
    is($rec->{version}, 1, 'logins leave the version alone');
    ok(exists $rec->{metadata}{lastActivityDate},
        '... and keep lastActivityDate in metadata');

    # a client that goes away while its login waits on the row: the retry
    # with its key counts it once
    my $s = CT::psql_session($db);
    $s->run('BEGIN');
    $s->run("SELECT 1 FROM customers WHERE id = '$id' FOR UPDATE");
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $ng->port, Proto => 'tcp') or die "connect: $!";
    print $sock "POST /api/customers/internal/$id/login HTTP/1.1\r\n"
        . "Host: t\r\nX-Service-API-Key: $CT::SERVICE_KEYS[0]\r\n"
        . "Idempotency-Key: l-abort\r\nContent-Length: 0\r\n\r\n";
    ok(CT::wait_for(sub { CT::lock_waiters($db) >= 1 }),
        'a login waits on the row');
    close $sock;
    $s->run('COMMIT');
    $s->close;
    ok(CT::wait_for(sub {
            my $x = $ng->req(POST => "/api/customers/internal/$id/login",
                auth => 'service',
                headers => { 'Idempotency-Key' => 'l-abort' });
            $x->{status} == 200 || ($x->{status} == 409
                && $x->{json}{message} eq 'Request already applied') }),
        'its retry with the key answers (replayed, or already applied)');
    is(CT::sql($db, q{SELECT metadata->>'loginCount' FROM customers
        WHERE id = :'p1'}, $id), 3, '... the login counted once');

    is_error($ng->req(POST => "/api/customers/internal/$CT::MISSING/login",
        auth => 'service'), 404, 'Customer not found', ['customerId'],
        'login of a missing customer');
    is($ng->req(POST => "/api/customers/internal/$id/login")->{status}, 401,
        'login with an admin token: 401');
}


# --- lastActivityDate --------------------------------------------------------

sub activity {
    return scalar CT::sql($db, q{SELECT coalesce(metadata->>'lastActivityDate',
        'null') || '|' || xmin || '|' || version || '|' || api_ts(updated_at)
        FROM customers WHERE id = :'p1'}, $_[0]);
}

{
    my ($id, $u) = CT::make_customer($ng, 'active');
    my $token = CT::customer_token($u);
    my ($date, $xmin, $version, $updated) = split /\|/, activity($id);
    is($date, 'null', 'a new customer: no lastActivityDate');

    $ng->req(GET => "/api/customers/$id");
    is((split /\|/, activity($id))[0], 'null',
        "an Administrator's read is not the customer's activity");

    my $r = $ng->req(GET => '/api/customers/me', auth => $token);
    like($r->{json}{data}{metadata}{lastActivityDate}, $TS,
        "the Customer's first request writes it (and sees it)");
    my @a = split /\|/, activity($id);
    is($a[0], $r->{json}{data}{metadata}{lastActivityDate}, '... stored');
    is("$a[2]|$a[3]", "$version|$updated",
        '... neither version nor updatedAt moved');
    is($r->{headers}{etag}, '"1"', '... the ETag either');

    for my $i (1 .. 5) {
        $ng->req(GET => '/api/customers/me', auth => $token);
        $ng->req(GET => "/api/customers/$id", auth => $token);
    }
    is(activity($id), join('|', @a),
        'ten reads within the interval: the row is not written again');

    CT::sql($db, q{UPDATE customers SET metadata = jsonb_set(metadata,
        '{lastActivityDate}', '"2020-01-01T00:00:00.000Z"')
        WHERE id = :'p1'}, $id);
    $ng->req(GET => '/api/customers/me/statistics', auth => $token);
    my $now = (split /\|/, activity($id))[0];
    ok($now gt '2026', 'older than the interval: written again') or diag($now);

    # a write of the activity that fails does not fail the request
    CT::sql($db, q{CREATE FUNCTION no_activity() RETURNS trigger
        LANGUAGE plpgsql AS $$ BEGIN
        IF NEW.metadata->>'lastActivityDate' IS DISTINCT FROM
           OLD.metadata->>'lastActivityDate' THEN
            RAISE EXCEPTION 'activity refused'; END IF;
        RETURN NEW; END $$});
    CT::sql($db, q{CREATE TRIGGER no_activity BEFORE UPDATE ON customers
        FOR EACH ROW EXECUTE FUNCTION no_activity()});
    CT::sql($db, q{ALTER TABLE customers DISABLE TRIGGER no_activity});
    CT::sql($db, q{UPDATE customers SET metadata = jsonb_set(metadata,
        '{lastActivityDate}', '"2020-01-01T00:00:00.000Z"')
        WHERE id = :'p1'}, $id);
    CT::sql($db, q{ALTER TABLE customers ENABLE TRIGGER no_activity});
    $r = $ng->req(GET => '/api/customers/me', auth => $token);
    is($r->{status}, 200, 'the activity write failing: the read still 200');
    is($r->{json}{data}{metadata}{lastActivityDate},
        '2020-01-01T00:00:00.000Z', '... with the date as it was');
    CT::sql($db, q{DROP TRIGGER no_activity ON customers});
    ok(CT::wait_for(sub { $ng->error_log =~ /lastActivityDate not written/ }),
        '... and a warning in the log');
}

# customer_activity_interval 0: never written; 1s: again after a second
{
    my $ng2 = CT::nginx_start(db => $db,
        server_extra => "        customer_activity_interval 0;\n");
    my ($id, $u) = CT::make_customer($ng2, 'noactivity');
    $ng2->req(GET => '/api/customers/me', auth => CT::customer_token($u));
    is((split /\|/, activity($id))[0], 'null',
        'customer_activity_interval 0: not written');
    $ng2->stop;

    my $ng3 = CT::nginx_start(db => $db,
        server_extra => "        customer_activity_interval 1s;\n");
    ($id, $u) = CT::make_customer($ng3, 'fastactivity');
    $ng3->req(GET => '/api/customers/me', auth => CT::customer_token($u));
    my $first = (split /\|/, activity($id))[0];
    like($first, $TS, 'customer_activity_interval 1s: written');
    ok(CT::wait_for(sub {
            $ng3->req(GET => '/api/customers/me',
                auth => CT::customer_token($u));
            (split /\|/, activity($id))[0] ne $first }, timeout => 5),
        '... and again once a second has passed');
    $ng3->stop;

    my $db_conf = qq{customer_db "host=127.0.0.1 dbname=x user=x}
        . qq{ sslmode=disable";\n    } . CT::jwt_conf();
    my $t = sub {
        my ($v) = @_;
        my $port = CT::free_port();
        return CT::nginx_test_conf("    $db_conf\n    $v\n"
            . "    server { listen 127.0.0.1:$port;"
            . " location / { customer_api; } }\n");
    };
    my ($rc, $out) = $t->('customer_activity_interval 5m;'
        . ' customer_auth_user_check off;');
    is($rc, 0, 'nginx -t takes customer_activity_interval 5m and '
        . 'customer_auth_user_check off') or diag($out);
    ($rc, $out) = $t->('customer_activity_interval soon;');
    isnt($rc, 0, 'nginx -t refuses customer_activity_interval soon');
    like($out, qr/\[emerg\].*customer_activity_interval/, '... naming it');
    ($rc, $out) = $t->('customer_auth_user_check maybe;');
    isnt($rc, 0, 'nginx -t refuses customer_auth_user_check maybe');
    like($out, qr/\[emerg\].*customer_auth_user_check/, '... naming it');
}

done_testing();
