# Status changes and the Auth Service outbox, with a fake Auth Service
# (CT::peer_start): PATCH /api/customers/{id}/status and POST .../deactivate
# change the status, keep a history row and an outbox row in one statement,
# and tell the Auth Service in the same request (exactly one call: path,
# body, service key); an unchanged status changes and calls nothing;
# validation, roles and an unknown id change nothing. With the Auth Service
# down, failing or too slow the change still commits and answers promptly
# ("pending"); the row waits with its backoff and POST
# /api/customers/internal/outbox (service key only) delivers it exactly
# once when it is due; /health counts what is pending.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(time);

my $PEER_KEY = 'peer-key-status-0123456789abcdef';
my $ADMIN_SUB = 'status-admin';
my $ADMIN = CT::admin_token($ADMIN_SUB);
my $OK = sub { [200, {}, { success => $T, message => 'ok' }] };

my $auth = CT::peer_start(handler => $OK);
my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db, peers => { auth => $auth,
    read_timeout => '1s', key => $PEER_KEY });
my ($worker) = $ng->worker_pids;


# --- helpers -------------------------------------------------------------

# A new customer (Active unless given): (id, user_id).
sub customer {
    my $c = CT::insert_customer($db, 'status',
        customer_status => $_[0] // 'Active');
    return @$c{qw(id user)};
}

sub json_rows {
    my ($sql, @bind) = @_;
    return JSON::PP->new->utf8->decode(
        scalar CT::sql($db, "SELECT coalesce(json_agg(r), '[]') FROM ($sql) r",
            @bind));
}

sub outbox_rows {
    my ($id) = @_;
    return json_rows(q{SELECT id, customer_id, data->>'userId' AS user_id,
        (data->>'isActive')::boolean AS is_active, data->>'reason' AS reason,
        attempts, last_error, delivered_at IS NOT NULL AS delivered,
        extract(epoch FROM next_attempt_at - created_at)::float8 AS backoff,
        extract(epoch FROM next_attempt_at - now())::float8 AS due_in
        FROM events WHERE destination = 'auth' AND customer_id = :'p1'
        ORDER BY id}, $id);
}

sub history_rows {
    my ($id) = @_;
    return json_rows(q{SELECT old_status, new_status, reason, changed_by,
        extract(epoch FROM now() - changed_at)::float8 AS age
        FROM customer_status_history WHERE customer_id = :'p1' ORDER BY id},
        $id);
}

sub customer_row {
    my ($id) = @_;
    return json_rows(q{SELECT customer_status, updated_by, version,
        api_ts(updated_at) AS updated_at FROM customers WHERE id = :'p1'},
        $id)->[0];
}

sub counts {
    return scalar CT::sql($db, q{SELECT (SELECT count(*) FROM
        customer_status_history) || '/' || (SELECT count(*) FROM events
        WHERE destination = 'auth')});
}

sub set_status {
    my ($id, $body, %o) = @_;
    return $ng->req(PATCH => "/api/customers/$id/status", json => $body,
        auth => $ADMIN, %o);
}

sub deactivate {
    my ($id, %o) = @_;
    return $ng->req(POST => "/api/customers/$id/deactivate", auth => $ADMIN,
        %o);
}

sub run_outbox {
    my (%o) = @_;
    return $ng->req(POST => '/api/customers/internal/outbox',
        auth => 'service', %o);
}

# /health's outbox.pending once it is $want: its counts are up to about
# a second old (what it was after 5 s otherwise)
sub pending {
    my ($want) = @_;
    my $n;
    CT::wait_for(sub {
        my $r = $ng->req(GET => '/health', auth => 'none');
        $n = ($r->{json}{data}{outbox} // {})->{pending};
        defined $n && $n == $want
    }, timeout => 5);
    return $n;
}

sub calls_for {
    my ($user) = @_;
    return grep { $_->{path} eq "/api/auth/user/$user/status" }
        $auth->requests;
}

# The 200 answer of a status change.
sub is_changed {
    my ($r, $id, $new, $old, $auth_state, $name) = @_;
    is($r->{status}, 200, "$name: 200") or diag($r->{body});
    my $d = ($r->{json} // {})->{data} // {};
    like($d->{updatedAt} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/,
        "$name: updatedAt is a timestamp");
    is_deeply($r->{json}, { success => $T,
        message => 'Customer status updated successfully',
        data => { customerId => $id, customerStatus => $new,
            previousStatus => $old, updatedAt => $d->{updatedAt},
            updatedBy => $ADMIN_SUB, authService => $auth_state } },
        "$name: body") or diag($r->{body});
}

# The one Auth Service call for $user: PATCH, path, body, headers.
sub is_auth_call {
    my ($user, $id, $active, $reason, $name) = @_;
    my @calls = calls_for($user);
    is(scalar @calls, 1, "$name: the Auth Service got exactly one call")
        or diag(explain([$auth->requests]));
    my $c = $calls[0] // { headers => {} };
    is($c->{method}, 'PATCH', "$name: PATCH");
    is($c->{query}, '', "$name: no query string");
    is_deeply($c->{json}, { userId => $user, customerId => $id,
        isActive => $active ? $T : $F, reason => $reason },
        "$name: body") or diag($c->{body});
    is($c->{headers}{'x-service-api-key'}, $PEER_KEY,
        "$name: X-Service-API-Key is customer_peer_key");
    like($c->{headers}{'content-type'} // '', qr{^application/json},
        "$name: Content-Type JSON");
    ok(!exists $c->{headers}{authorization},
        "$name: the admin's token is not passed on with a key");
    like($c->{headers}{'idempotency-key'} // '', qr/^customer-outbox-\d+$/,
        "$name: Idempotency-Key names the outbox row");
}

# The request bytes sent now, the answer read later (nginx serves both
# that and other requests meanwhile).
sub send_async {
    my ($method, $path, $json) = @_;
    my $body = JSON::PP->new->canonical->encode($json);
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $ng->port, Proto => 'tcp', Timeout => 5)
        or die "connect: $!";
    syswrite($s, "$method $path HTTP/1.1\r\nHost: localhost\r\n"
        . "Authorization: Bearer $ADMIN\r\nContent-Type: application/json\r\n"
        . 'Content-Length: ' . length($body) . "\r\n"
        . "Connection: close\r\n\r\n$body");
    return { sock => $s, t0 => time };
}

sub finish_async {
    my ($a) = @_;
    my $sel = IO::Select->new($a->{sock});
    my $buf = '';
    my $deadline = time + 10;
    while ((my $left = $deadline - time) > 0) {
        last unless $sel->can_read($left);
        last unless sysread($a->{sock}, $buf, 65536, length $buf);
    }
    close $a->{sock};
    my ($head, $body) = split /\r\n\r\n/, $buf, 2;
    my ($status) = ($head // '') =~ m{^HTTP/1\.1 (\d{3})};
    return { status => $status // 0, body => $body // '',
        json => eval { JSON::PP->new->utf8->decode($body // '') },
        elapsed => time - $a->{t0} };
}

# Polls the outbox route until it delivered something; the sums.
sub outbox_until_delivered {
    my ($want) = @_;
    my %sum = (claimed => 0, delivered => 0, failed => 0, calls => 0);
    CT::wait_for(sub {
        my $r = run_outbox();
        $sum{calls}++;
        $sum{bad} = $r->{body} if $r->{status} != 200;
        $sum{$_} += ($r->{json}{data}{$_} // 0)
            for qw(claimed delivered failed);
        return $sum{delivered} >= $want || $sum{bad};
    }, timeout => 10, interval => 0.1);
    return \%sum;
}


# --- a change with the Auth Service up -----------------------------------

is(pending(0), 0, 'health: nothing pending at first');

my ($id1, $user1) = customer();
my $before = customer_row($id1);
my $r = set_status($id1, { status => 'Suspended', reason => 'Fraud review' });
is_changed($r, $id1, 'Suspended', 'Active', 'notified', 'Active→Suspended');
is_auth_call($user1, $id1, 0, 'Fraud review', 'Active→Suspended');
is($auth->requests, 1, 'Active→Suspended: one call in all');

my $row = customer_row($id1);
is($row->{customer_status}, 'Suspended', 'the status is stored');
is($row->{updated_by}, $ADMIN_SUB, 'updated_by is the token sub');
is($row->{version}, $before->{version} + 1, 'version + 1');
is($row->{updated_at}, $r->{json}{data}{updatedAt},
    'updatedAt is the stored updated_at');
cmp_ok($row->{updated_at}, 'gt', $before->{updated_at},
    'updated_at moved forward');

my $h = history_rows($id1);
is(scalar @$h, 1, 'one history row');
is_deeply([ @{ $h->[0] // {} }{qw(old_status new_status reason changed_by)} ],
    ['Active', 'Suspended', 'Fraud review', $ADMIN_SUB], 'history row');
cmp_ok($h->[0]{age} // 99, '<', 5, 'history: changed_at is now');

my $ob = outbox_rows($id1);
is(scalar @$ob, 1, 'one outbox row');
is_deeply([ @{ $ob->[0] // {} }{qw(user_id is_active reason attempts
    last_error delivered)} ],
    [$user1, $F, 'Fraud review', 1, undef, $T],
    'outbox row: delivered on the first attempt');
is(pending(0), 0, 'health: nothing pending after a delivery');

$r = run_outbox();
is($r->{status}, 200, 'outbox route: 200') or diag($r->{body});
is_deeply($r->{json}{data}, { claimed => 0, delivered => 0, failed => 0,
    skipped => 0 },
    'outbox route: a delivered row is not claimed again');
is($auth->requests, 1, 'outbox route: the Auth Service was not called');


# --- unchanged: nothing happens ------------------------------------------

$auth->clear;
my $c0 = counts();
$r = set_status($id1, { status => 'Suspended', reason => 'again' });
is($r->{status}, 200, 'unchanged: 200') or diag($r->{body});
is_deeply($r->{json}, { success => $T,
    message => 'Customer status updated successfully',
    data => { customerId => $id1, customerStatus => 'Suspended',
        previousStatus => 'Suspended', updatedAt => $row->{updated_at},
        updatedBy => $ADMIN_SUB, authService => 'unchanged' } },
    'unchanged: body (the stored updatedAt)') or diag($r->{body});
is(counts(), $c0, 'unchanged: no history row, no outbox row');
is(customer_row($id1)->{version}, $row->{version},
    'unchanged: the version stays');
is($auth->requests, 0, 'unchanged: the Auth Service was not called');


# --- back to Active: isActive true, reason null -----------------------------

$r = set_status($id1, { status => 'Active' });
is_changed($r, $id1, 'Active', 'Suspended', 'notified', 'Suspended→Active');
is_auth_call($user1, $id1, 1, undef, 'Suspended→Active');
$h = history_rows($id1);
is_deeply([ map { [ @$_{qw(old_status new_status reason)} ] } @$h ],
    [['Active', 'Suspended', 'Fraud review'], ['Suspended', 'Active', undef]],
    'history: both changes, in order');
$ob = outbox_rows($id1);
is_deeply([ map { [ @$_{qw(is_active reason attempts delivered)} ] } @$ob ],
    [[$F, 'Fraud review', 1, $T], [$T, undef, 1, $T]],
    'outbox: isActive false then true, both delivered');
is(customer_row($id1)->{version}, $row->{version} + 1, 'version + 1 again');

$auth->clear;
$r = set_status($id1, { status => 'Inactive', reason => undef });
is_changed($r, $id1, 'Inactive', 'Active', 'notified',
    'Active→Inactive, reason null');
is_auth_call($user1, $id1, 0, undef, 'Active→Inactive, reason null');

$auth->clear;
my $long_ok = 'r' x 500;
$r = set_status($id1, { status => 'Active', reason => $long_ok });
is_changed($r, $id1, 'Active', 'Inactive', 'notified', 'reason of 500');
is_auth_call($user1, $id1, 1, $long_ok, 'reason of 500');


# --- deactivate ----------------------------------------------------------

$auth->clear;
my ($id2, $user2) = customer();
$r = deactivate($id2, json => { reason => 'Closed by request' });
is_changed($r, $id2, 'Inactive', 'Active', 'notified', 'deactivate');
is_auth_call($user2, $id2, 0, 'Closed by request', 'deactivate');
is_deeply([ map { [ @$_{qw(old_status new_status reason changed_by)} ] }
    @{ history_rows($id2) } ],
    [['Active', 'Inactive', 'Closed by request', $ADMIN_SUB]],
    'deactivate: history row');
is_deeply([ map { [ @$_{qw(is_active reason attempts delivered)} ] }
    @{ outbox_rows($id2) } ], [[$F, 'Closed by request', 1, $T]],
    'deactivate: outbox row delivered');

$auth->clear;
$c0 = counts();
$r = deactivate($id2);
is($r->{status}, 200, 'deactivate again: 200') or diag($r->{body});
is($r->{json}{data}{authService}, 'unchanged',
    'deactivate again: unchanged');
is($r->{json}{data}{previousStatus}, 'Inactive',
    'deactivate again: previousStatus Inactive');
is(counts(), $c0, 'deactivate again: no rows');
is($auth->requests, 0, 'deactivate again: no call');

# no body at all: no Content-Type, no Content-Length
$auth->clear;
my ($id3, $user3) = customer('Suspended');
my $raw = $ng->raw("POST /api/customers/$id3/deactivate HTTP/1.1\r\n"
    . "Host: localhost\r\nAuthorization: Bearer $ADMIN\r\n"
    . "Connection: close\r\n\r\n", timeout => 10);
my ($rhead, $rbody) = split /\r\n\r\n/, $raw, 2;
like($rhead // '', qr{^HTTP/1\.1 200 }, 'deactivate without a body: 200')
    or diag($raw);
$r = { status => 200, json => eval { JSON::PP->new->decode($rbody // '') },
    body => $rbody };
is_changed($r, $id3, 'Inactive', 'Suspended', 'notified',
    'deactivate without a body');
is_auth_call($user3, $id3, 0, undef, 'deactivate without a body');
is_deeply([ map { [ @$_{qw(old_status new_status reason)} ] }
    @{ history_rows($id3) } ], [['Suspended', 'Inactive', undef]],
    'deactivate without a body: history row, reason null');

# an empty body with Content-Length: 0
$auth->clear;
my ($id4, $user4) = customer();
$r = deactivate($id4, body => '', headers => { 'Content-Length' => 0 });
is_changed($r, $id4, 'Inactive', 'Active', 'notified',
    'deactivate, Content-Length: 0');
is(scalar calls_for($user4), 1, 'deactivate, Content-Length: 0: one call');


# --- validation, roles, unknown ids: nothing changes, nobody is called ----

$auth->clear;
$c0 = counts();
my ($idv) = customer();
my $rowv = customer_row($idv);

for my $case (
    [ 'no status', { reason => 'x' }, ['status'] ],
    [ 'empty body', {}, ['status'] ],
    [ 'unknown status', { status => 'Deleted' }, ['status'] ],
    [ 'lower-case status', { status => 'active' }, ['status'] ],
    [ 'status null', { status => undef }, ['status'] ],
    [ 'status a number', { status => 1 }, ['status'] ],
    [ 'reason of 501', { status => 'Inactive', reason => 'x' x 501 },
        ['reason'] ],
    [ 'reason a number', { status => 'Inactive', reason => 5 }, ['reason'] ],
    [ 'unknown field', { status => 'Inactive', force => $T }, ['force'] ],
    [ 'camelCase typo', { status => 'Inactive', Reason => 'x' },
        ['Reason'] ],
    [ 'two errors', { status => 'Gone', reason => 'x' x 501 },
        ['reason', 'status'] ],
) {
    my ($name, $body, $fields) = @$case;
    $r = set_status($idv, $body);
    is($r->{status}, 400, "PATCH $name: 400") or diag($r->{body});
    is($r->{json}{success}, $F, "PATCH $name: success false");
    is_deeply(field_set($r), $fields, "PATCH $name: fields")
        or diag($r->{body});
}

$r = set_status('not-a-uuid', { status => 'Bogus' });
is($r->{status}, 400, 'PATCH bad id and bad status: 400');
is_deeply(field_set($r), ['customerId', 'status'],
    'PATCH bad id and bad status: both listed') or diag($r->{body});
$r = set_status('not-a-uuid', { status => 'Inactive' });
is($r->{status}, 400, 'PATCH bad id: 400');
is_deeply(field_set($r), ['customerId'], 'PATCH bad id: customerId')
    or diag($r->{body});

$r = $ng->req(PATCH => "/api/customers/$idv/status", auth => $ADMIN,
    body => '{"status":', headers => { 'Content-Type' => 'application/json' });
is($r->{status}, 400, 'PATCH broken JSON: 400') or diag($r->{body});
$r = $ng->req(PATCH => "/api/customers/$idv/status", auth => $ADMIN,
    json => ['Inactive']);
is($r->{status}, 400, 'PATCH a JSON array: 400') or diag($r->{body});
$r = $ng->req(PATCH => "/api/customers/$idv/status", auth => $ADMIN,
    body => '', headers => { 'Content-Type' => 'application/json' });
is($r->{status}, 400, 'PATCH with an empty JSON body: 400') or diag($r->{body});
$r = $ng->req(PATCH => "/api/customers/$idv/status", auth => $ADMIN);
is($r->{status}, 415, 'PATCH without a body or Content-Type: 415')
    or diag($r->{body});

for my $case (
    [ 'reason of 501', { reason => 'x' x 501 }, ['reason'] ],
    [ 'unknown field', { status => 'Active' }, ['status'] ],
    [ 'reason a list', { reason => ['x'] }, ['reason'] ],
) {
    my ($name, $body, $fields) = @$case;
    $r = deactivate($idv, json => $body);
    is($r->{status}, 400, "deactivate $name: 400") or diag($r->{body});
    is_deeply(field_set($r), $fields, "deactivate $name: fields")
        or diag($r->{body});
}
$r = deactivate('12345', json => { reason => 'x' x 501 });
is($r->{status}, 400, 'deactivate bad id and long reason: 400');
is_deeply(field_set($r), ['customerId', 'reason'],
    'deactivate bad id and long reason: both listed') or diag($r->{body});

my $CUST = CT::customer_token('status-user-customer');
for my $case (
    [ 'Customer token', $CUST, 403 ],
    [ 'no token', 'none', 401 ],
    [ 'service key', 'service', 401 ],
) {
    my ($name, $who, $status) = @$case;
    $r = set_status($idv, { status => 'Suspended' }, auth => $who);
    is($r->{status}, $status, "PATCH by $name: $status") or diag($r->{body});
    $r = deactivate($idv, auth => $who, json => { reason => 'x' });
    is($r->{status}, $status, "deactivate by $name: $status")
        or diag($r->{body});
}
# a Customer on its own record is not an Administrator either
my ($idc) = CT::sql($db, q{INSERT INTO customers (user_id, email, full_name)
    VALUES ('status-user-customer', 'own@example.com', 'Own Record')
    RETURNING id});
$r = set_status($idc, { status => 'Inactive' }, auth => $CUST);
is($r->{status}, 403, 'PATCH by the Customer on its own record: 403');
$r = deactivate($idc, auth => $CUST);
is($r->{status}, 403, 'deactivate by the Customer on its own record: 403');
is(CT::sql($db, q{SELECT customer_status FROM customers WHERE id = :'p1'},
    $idc), 'Active', 'the own record stays Active');

for my $case (
    [ 'Administrator', $ADMIN, 401 ],
    [ 'Customer', $CUST, 401 ],
    [ 'nobody', 'none', 401 ],
    [ 'unknown key', 'service:test-service-key-unknown-000000', 401 ],
) {
    my ($name, $who, $status) = @$case;
    $r = run_outbox(auth => $who);
    is($r->{status}, $status, "outbox route by $name: $status")
        or diag($r->{body});
}
$r = run_outbox(auth => "service:$CT::SERVICE_KEYS[1]");
is($r->{status}, 200, 'outbox route by the rotated key: 200')
    or diag($r->{body});

$r = set_status($MISSING, { status => 'Inactive', reason => 'gone' });
is($r->{status}, 404, 'PATCH unknown id: 404') or diag($r->{body});
is($r->{json}{message}, 'Customer not found', 'PATCH unknown id: message');
is_deeply(field_set($r), ['customerId'], 'PATCH unknown id: customerId');
$r = deactivate($MISSING);
is($r->{status}, 404, 'deactivate unknown id: 404') or diag($r->{body});
is_deeply(field_set($r), ['customerId'], 'deactivate unknown id: customerId');

is(counts(), $c0, 'refused calls: no history row, no outbox row');
is_deeply(customer_row($idv), $rowv,
    'refused calls: the customer is as it was');
is($auth->requests, 0, 'refused calls: the Auth Service was not called');


# --- the Auth Service down: pending, then the outbox delivers it ----------

$auth->stop;
$auth->clear;
my ($id5, $user5) = customer();
$r = set_status($id5, { status => 'Suspended', reason => 'Chargeback' });
my $t_answer = time;
is_changed($r, $id5, 'Suspended', 'Active', 'pending', 'Auth down');
cmp_ok($r->{elapsed}, '<', 3, 'Auth down: answered promptly');
is(customer_row($id5)->{customer_status}, 'Suspended',
    'Auth down: the status is committed');
is(scalar @{ history_rows($id5) }, 1, 'Auth down: history row');
$ob = outbox_rows($id5);
is(scalar @$ob, 1, 'Auth down: one outbox row');
my $o = $ob->[0] // {};
is_deeply([ @$o{qw(user_id is_active reason attempts delivered)} ],
    [$user5, $F, 'Chargeback', 1, $F], 'Auth down: the row is pending');
ok(length($o->{last_error} // ''), 'Auth down: last_error is set')
    and note("last_error: $o->{last_error}");
cmp_ok($o->{backoff} // 0, '>=', 1, 'Auth down: next attempt in 1 s ...');
cmp_ok($o->{backoff} // 99, '<', 2, '... not later');
is(pending(1), 1, 'health: one pending');

$r = run_outbox();
is($r->{status}, 200, 'outbox route at once: 200') or diag($r->{body});
SKIP: {
    skip 'too slow to see the backoff', 1 if time - $t_answer > 0.8;
    is_deeply($r->{json}{data}, { claimed => 0, delivered => 0, failed => 0,
    skipped => 0 },
        'outbox route at once: the row is not due yet');
}

$auth->start;
my $sum = outbox_until_delivered(1);
ok(!$sum->{bad}, 'outbox route: 200 every time') or diag($sum->{bad});
is_deeply([ @$sum{qw(claimed delivered failed)} ], [1, 1, 0],
    'outbox route: one claimed, delivered, none failed')
    or diag(explain($sum));
$ob = outbox_rows($id5);
is_deeply([ map { [ @$_{qw(attempts last_error delivered)} ] } @$ob ],
    [[2, undef, $T]], 'the row is delivered on the second attempt');
is_auth_call($user5, $id5, 0, 'Chargeback', 'outbox delivery');
is(scalar $auth->requests, 1, 'outbox delivery: one call in all');
$r = run_outbox();
is_deeply($r->{json}{data}, { claimed => 0, delivered => 0, failed => 0,
    skipped => 0 },
    'outbox route again: claimed 0');
is(scalar $auth->requests, 1, 'outbox route again: no call');
is(pending(0), 0, 'health: nothing pending');


# --- the Auth Service failing (500): pending, backoff 1 s then 2 s --------

$auth->handler(sub { [500, {}, { success => $F, message => 'boom' }] });
$auth->clear;
my ($id6, $user6) = customer('Inactive');
$r = set_status($id6, { status => 'Active' });
is_changed($r, $id6, 'Active', 'Inactive', 'pending', 'Auth 500');
is(scalar calls_for($user6), 1, 'Auth 500: one call');
$o = outbox_rows($id6)->[0] // {};
is_deeply([ @$o{qw(is_active attempts delivered)} ], [$T, 1, $F],
    'Auth 500: the row is pending');
like($o->{last_error} // '', qr/500/, 'Auth 500: last_error names the 500');
is(pending(1), 1, 'health: one pending');

# the next attempt fails too: attempts 2, the next one 2 s later
my %fail;
CT::wait_for(sub {
    my $x = run_outbox();
    $fail{$_} += ($x->{json}{data}{$_} // 0) for qw(claimed failed delivered);
    return $fail{failed};
}, timeout => 10, interval => 0.1);
is_deeply([ @fail{qw(claimed failed delivered)} ], [1, 1, 0],
    'Auth 500, outbox route: one claimed, failed');
$o = outbox_rows($id6)->[0] // {};
is($o->{attempts}, 2, 'Auth 500, outbox route: attempts 2');
cmp_ok($o->{due_in} // 0, '>', 1, 'Auth 500: then 2 s of backoff ...');
cmp_ok($o->{due_in} // 99, '<=', 2.05, '... not more');
is(scalar calls_for($user6), 2, 'Auth 500: two calls so far');
my @keys6 = map { $_->{headers}{'idempotency-key'} } calls_for($user6);

$auth->handler($OK);
$auth->clear;
$sum = outbox_until_delivered(1);
is_deeply([ @$sum{qw(claimed delivered failed)} ], [1, 1, 0],
    'Auth back: the row is delivered') or diag(explain($sum));
is_auth_call($user6, $id6, 1, undef, 'Auth back');
push @keys6, map { $_->{headers}{'idempotency-key'} } calls_for($user6);
is_deeply(\@keys6, [('customer-outbox-' . outbox_rows($id6)->[0]{id}) x 3],
    'Auth back: the three attempts carry one Idempotency-Key, the row\'s');
is_deeply([ map { [ @$_{qw(attempts last_error delivered)} ] }
    @{ outbox_rows($id6) } ], [[3, undef, $T]], 'Auth back: attempts 3');
is(pending(0), 0, 'health: nothing pending');


# --- a slow Auth Service: the request still answers, pending --------------

$auth->handler(sub { sleep 3; [200, {}, { success => $T }] });
$auth->clear;
my ($id7, $user7) = customer();
my $async = send_async(PATCH => "/api/customers/$id7/status",
    { status => 'Suspended', reason => 'slow' });
ok(CT::wait_for(sub { scalar calls_for($user7) }, timeout => 5),
    'slow Auth: the call is under way');
# meanwhile the row is leased to that request: the outbox route leaves it
$r = run_outbox();
is_deeply($r->{json}{data}, { claimed => 0, delivered => 0, failed => 0,
    skipped => 0 },
    'slow Auth: the outbox route does not take a leased row')
    or diag($r->{body});
$o = outbox_rows($id7)->[0] // {};
cmp_ok($o->{due_in} // 0, '>', 50, 'slow Auth: leased for 60 s');
$r = finish_async($async);
is($r->{status}, 200, 'slow Auth: 200') or diag($r->{body});
is(($r->{json}{data} // {})->{authService}, 'pending',
    'slow Auth: pending') or diag($r->{body});
cmp_ok($r->{elapsed}, '<', 2.9, 'slow Auth: answered within the timeout');
$o = outbox_rows($id7)->[0] // {};
is_deeply([ @$o{qw(attempts delivered)} ], [1, $F], 'slow Auth: row pending');
ok(length($o->{last_error} // ''), 'slow Auth: last_error set');
cmp_ok($o->{due_in} // 99, '<=', 1, 'slow Auth: due within 1 s');
is(scalar calls_for($user7), 1, 'slow Auth: one call');
is(pending(1), 1, 'health: one pending');

$auth->handler($OK);
$auth->clear;
$sum = outbox_until_delivered(1);
is_deeply([ @$sum{qw(claimed delivered failed)} ], [1, 1, 0],
    'slow Auth back to normal: delivered') or diag(explain($sum));
is(scalar calls_for($user7), 1, 'slow Auth back to normal: one call');
is(pending(0), 0, 'health: nothing pending');


# --- several pending rows, delivered in one batch -------------------------

$auth->stop;
$auth->clear;
my @many = map { [ customer() ] } 1 .. 3;
for my $c (@many) {
    $r = set_status($c->[0], { status => 'Inactive' });
    is(($r->{json}{data} // {})->{authService}, 'pending',
        "Auth down: $c->[1] pending");
}
is(pending(3), 3, 'health: three pending');
$auth->start;
$sum = outbox_until_delivered(3);
is_deeply([ @$sum{qw(delivered failed)} ], [3, 0],
    'Auth up: all three delivered') or diag(explain($sum));
is_deeply([ map { scalar calls_for($_->[1]) } @many ], [1, 1, 1],
    'Auth up: one call each');
is(pending(0), 0, 'health: nothing pending');

is_deeply([$ng->worker_pids], [$worker], 'the worker lived throughout');


# --- user ids that need escaping, a reason that needs JSON escaping -----

# The Auth Service must see the userId as one path segment that decodes
# to exactly the userId (escaped once, not twice).
sub unescape {
    my ($s) = @_;
    $s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    utf8::decode($s);
    return $s;
}

# ('/' cannot be in a userId: validation and a CHECK refuse it, t/33)
my $escapes = 0;
for my $user ('auth0|abc123', 'user@example.com', 'first last',
    "pr\x{e9}nom", '100%')
{
    $auth->clear;
    my $n = ++$escapes;
    my $label = $user =~ s/([^\x20-\x7e])/sprintf '\\x{%x}', ord $1/ger;
    my $bytes = $user;
    utf8::encode($bytes);
    my $id = CT::sql($db, q{INSERT INTO customers (user_id, email, full_name)
        VALUES (:'p1', :'p2', 'Escape Test') RETURNING id}, $bytes,
        "escape$n\@example.com");
    $r = set_status($id, { status => 'Suspended' });
    is(($r->{json}{data} // {})->{authService}, 'notified',
        "userId '$label': notified") or diag($r->{body});
    my @calls = $auth->requests;
    is(scalar @calls, 1, "userId '$label': one call");
    my $path = ($calls[0] // {})->{path} // '';
    my ($seg) = $path =~ m{^/api/auth/user/([^/]+)/status\z};
    is(defined $seg ? unescape($seg) : undef, $user,
        "userId '$label': the path segment decodes to the userId")
        or diag("path: $path");
    is_deeply(($calls[0] // {})->{json}{userId}, $user,
        "userId '$label': the body's userId");
}

$auth->clear;
my ($id9, $user9) = customer();
my $odd = "Ein \x{201c}Grund\x{201d}: \"quoted\", back\\slash,\n"
    . "new line \x{1F600}";
$r = set_status($id9, { status => 'Inactive', reason => $odd });
is_changed($r, $id9, 'Inactive', 'Active', 'notified', 'an odd reason');
is_auth_call($user9, $id9, 0, $odd, 'an odd reason');
is(history_rows($id9)->[0]{reason}, $odd, 'an odd reason: in the history');


# --- two changes at once: one changes, the other finds it done ------------

$auth->clear;
my ($id10, $user10) = customer();
my @async = map { send_async(PATCH => "/api/customers/$id10/status",
    { status => 'Suspended', reason => "race $_" }) } 1 .. 2;
my @res = map { finish_async($_) } @async;
is_deeply([ map { $_->{status} } @res ], [200, 200],
    'two changes at once: both 200') or diag(map { $_->{body} } @res);
is_deeply([ sort map { ($_->{json}{data} // {})->{authService} // '' } @res ],
    ['notified', 'unchanged'],
    'two changes at once: one notified, one unchanged');
is(scalar @{ history_rows($id10) }, 1, 'two changes at once: one history row');
is(scalar @{ outbox_rows($id10) }, 1, 'two changes at once: one outbox row');
is(scalar calls_for($user10), 1, 'two changes at once: one call');
is(customer_row($id10)->{version}, 2, 'two changes at once: version 2');


# --- more due rows than one batch ------------------------------------------

$auth->clear;
CT::sql($db, q{INSERT INTO events (destination, type, customer_id, subject,
    data, channels, attempts, next_attempt_at)
    SELECT 'auth', 'customer.status_changed', c, 'customers/' || c,
    jsonb_build_object('customerId', c, 'userId', 'batch-user-' || i,
    'isActive', i % 2 = 0, 'reason', 'batch'), '{}', 1,
    now() - interval '1 second'
    FROM (SELECT i, gen_random_uuid() AS c FROM generate_series(1, 45) i) s});
is(pending(45), 45, 'health: 45 pending');
$sum = outbox_until_delivered(45);
is_deeply([ @$sum{qw(claimed delivered failed)} ], [45, 45, 0],
    '45 due rows: each claimed and delivered once') or diag(explain($sum));
cmp_ok($sum->{calls}, '>=', 3, '45 due rows: in batches');
my %per;
$per{ $_->{path} }++ for $auth->requests;
is(scalar keys %per, 45, '45 due rows: 45 users called');
is(scalar(grep { $_ != 1 } values %per), 0, '45 due rows: each once');
is(pending(0), 0, 'health: nothing pending');


# --- without customer_peer_key the caller's token goes on -----------------

$auth->clear;
my $ng2 = CT::nginx_start(db => $db, peers => { auth => $auth,
    read_timeout => '1s' });
my ($id8, $user8) = customer();
$r = $ng2->req(PATCH => "/api/customers/$id8/status", auth => $ADMIN,
    json => { status => 'Suspended' });
is($r->{status}, 200, 'no peer key: 200') or diag($r->{body});
is(($r->{json}{data} // {})->{authService}, 'notified',
    'no peer key: notified');
my ($call) = calls_for($user8);
is(($call // {})->{headers}{authorization}, "Bearer $ADMIN",
    "no peer key: the admin's token is passed on");
ok(!exists(($call // { headers => {} })->{headers}{'x-service-api-key'}),
    'no peer key: no X-Service-API-Key');

# --- a customer's changes reach the Auth Service in order -----------------
#
# With the service failing, Active -> Suspended stays pending (retried in
# 1 s); Suspended -> Active made meanwhile must not overtake it: it is not
# sent by its own request, and the outbox sends the older one first.

{
    $auth->clear;
    $auth->handler(sub { [500, {}, { success => $F }] });
    my ($ido, $usero) = customer();
    my $r1 = set_status($ido, { status => 'Suspended', reason => 'first' });
    is(($r1->{json}{data} // {})->{authService}, 'pending',
        'order: the first change is pending');

    $auth->handler($OK);
    my $r2 = set_status($ido, { status => 'Active', reason => 'second' });
    is(($r2->{json}{data} // {})->{authService}, 'pending',
        'order: the second waits behind the first, not sent by itself');
    is(scalar(calls_for($usero)), 1,
        'order: only the failed first attempt reached the service so far');

    outbox_until_delivered(2);
    my @calls = calls_for($usero);
    is_deeply([ map { $_->{json}{reason} } @calls ],
        [ 'first', 'first', 'second' ],
        'order: delivered first, then second (after the failed try)')
        or diag(explain([ map { $_->{json} } @calls ]));
    is_deeply([ map { $_->{json}{isActive} ? 1 : 0 } @calls[1, 2] ],
        [ 0, 1 ], 'order: the Auth Service ends with isActive true');
    is(CT::sql($db, q{SELECT count(*) FROM events WHERE destination = 'auth'
        AND customer_id = :'p1' AND delivered_at IS NULL}, $ido), 0,
        'order: both rows delivered');
}

# --- a change that waited for another's commit stays behind its event -----
#
# Another transaction holds the customer's row and commits an Auth Service
# event (as a change delivering its own event does) while this change
# waits for the row: once it has the row, it must see that event pending
# and leave its own behind it, not send it by itself. Its statement's
# snapshot is older than that commit.

{
    $auth->clear;
    my ($idw, $userw) = customer();
    my $s = CT::psql_session($db);
    $s->run('BEGIN');
    $s->run("SELECT 1 FROM customers WHERE id = '$idw' FOR UPDATE");
    $s->run("INSERT INTO events (type, customer_id, subject, data, channels,
        destination, next_attempt_at, lease)
        VALUES ('customer.status_changed', '$idw', 'customers/$idw',
        jsonb_build_object('customerId', '$idw', 'userId', '$userw',
        'isActive', false, 'reason', 'ahead'), '{}', 'auth',
        now() + interval '60 seconds', gen_random_uuid())");
    my $a = send_async(PATCH => "/api/customers/$idw/status",
        { status => 'Suspended', reason => 'behind' });
    ok(CT::wait_for(sub { CT::lock_waiters($db) >= 1 }),
        'waited: the change waits for the row');
    $s->run('COMMIT');
    $s->close;
    my $r = finish_async($a);
    is($r->{status}, 200, 'waited: 200') or diag($r->{body});
    is(($r->{json}{data} // {})->{authService}, 'pending',
        'waited: its event stays behind the pending one');
    is(scalar(calls_for($userw)), 0,
        'waited: nothing sent ahead of the earlier event');
    is(CT::sql($db, q{SELECT count(*) FROM events WHERE destination = 'auth'
        AND customer_id = :'p1' AND delivered_at IS NULL
        AND next_attempt_at <= now()}, $idw), 1,
        'waited: its row is due now, for the outbox run');
    CT::sql($db, q{DELETE FROM events WHERE customer_id = :'p1'}, $idw);
}

# --- PUT/PATCH of the record: a status change like any other ----------------

{
    my ($id, $user) = customer();
    $auth->clear;
    my $r = $ng->req(PATCH => "/api/customers/$id", auth => $ADMIN,
        json => { customerStatus => 'Suspended' });
    is($r->{status}, 200, 'PATCH customerStatus: 200') or diag($r->{body});
    is($r->{json}{data}{customerStatus}, 'Suspended', 'PATCH: the new status');
    my $h = history_rows($id);
    is(scalar @$h, 1, 'PATCH customerStatus: one history row');
    is_deeply([@{ $h->[0] // {} }{qw(old_status new_status changed_by)}],
        ['Active', 'Suspended', $ADMIN_SUB], 'the history row: old, new, who');
    my $o = outbox_rows($id);
    is(scalar @$o, 1, 'PATCH customerStatus: one outbox row');
    is($o->[0]{is_active}, $F, 'the outbox row: isActive false');
    is($o->[0]{user_id}, $user, 'the outbox row: the userId');

    my $sum = outbox_until_delivered(1);
    is($sum->{delivered}, 1, 'the outbox run delivers it') or diag(explain($sum));
    my @calls = calls_for($user);
    is(scalar @calls, 1, 'the Auth Service is told once');
    is(JSON::PP->new->utf8->decode($calls[0]{body} // '{}')->{isActive}, $F,
        'isActive false') if @calls;

    # the same status again, or other fields: nothing more
    $r = $ng->req(PATCH => "/api/customers/$id", auth => $ADMIN,
        json => { customerStatus => 'Suspended', fullName => 'Same Status' });
    is($r->{status}, 200, 'PATCH the same status: 200') or diag($r->{body});
    $r = $ng->req(PATCH => "/api/customers/$id", auth => $ADMIN,
        json => { fullName => 'Other Field' });
    is(scalar @{ history_rows($id) }, 1, 'unchanged status: no history row');
    is(scalar @{ outbox_rows($id) }, 1, 'unchanged status: no outbox row');

    # PUT back to Active
    $r = $ng->req(GET => "/api/customers/$id", auth => $ADMIN);
    my %rec = %{ $r->{json}{data} };
    my %put = map { $_ => $rec{$_} } qw(email fullName);
    $r = $ng->req(PUT => "/api/customers/$id", auth => $ADMIN,
        json => { %put, customerStatus => 'Active' });
    is($r->{status}, 200, 'PUT customerStatus Active: 200') or diag($r->{body});
    $h = history_rows($id);
    is(scalar @$h, 2, 'PUT: a second history row');
    is_deeply([@{ $h->[1] // {} }{qw(old_status new_status)}],
        ['Suspended', 'Active'], 'PUT: Suspended to Active');
    $o = outbox_rows($id);
    is(scalar @$o, 2, 'PUT: a second outbox row');
    is($o->[1]{is_active}, $T, 'PUT: isActive true');

    # the stored history, newest first
    $r = $ng->req(GET => "/api/customers/$id/status-history", auth => $ADMIN);
    is($r->{status}, 200, 'GET status-history: 200') or diag($r->{body});
    my $items = $r->{json}{data}{history} // [];
    is_deeply([map { "$_->{oldStatus}>$_->{newStatus}" } @$items],
        ['Suspended>Active', 'Active>Suspended'], 'newest first');
    is_deeply([sort keys %{ $items->[0] // {} }],
        [sort qw(historyId oldStatus newStatus reason changedBy changedAt)],
        'each item: historyId, oldStatus, newStatus, reason, changedBy, changedAt');
    is($items->[0]{changedBy}, $ADMIN_SUB, 'changedBy the admin');
    like($items->[0]{changedAt} // '', qr/^\d{4}-\d\d-\d\dT.*Z$/, 'changedAt');
    is($r->{json}{data}{pagination}{totalItems}, 2, 'totalItems 2');
    $r = $ng->req(GET => "/api/customers/$id/status-history?limit=1&page=2",
        auth => $ADMIN);
    is_deeply([map { $_->{newStatus} } @{ $r->{json}{data}{history} // [] }],
        ['Suspended'], 'page 2 of 1');
    my ($fresh) = customer();
    $r = $ng->req(GET => "/api/customers/$fresh/status-history", auth => $ADMIN);
    is_deeply($r->{json}{data}{history}, [], 'no change yet: an empty list');
    is($ng->req(GET => "/api/customers/$MISSING/status-history",
        auth => $ADMIN)->{status}, 404, 'unknown customer: 404');
    is($ng->req(GET => '/api/customers/nope/status-history',
        auth => $ADMIN)->{status}, 400, 'bad id: 400');
    is($ng->req(GET => "/api/customers/$id/status-history?limit=0",
        auth => $ADMIN)->{status}, 400, 'bad limit: 400');
    is($ng->req(GET => "/api/customers/$id/status-history",
        auth => CT::customer_token($user))->{status}, 403,
        'a Customer: 403');
}

done_testing();
