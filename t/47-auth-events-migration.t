# The migration that makes the Auth Service's status updates deliveries
# of the event outbox (sql/029_auth_events.sql), on a database that still
# has auth_outbox rows: the pending and the dead ones move with their
# state, a delivered one of the last 30 days is kept for the record, an
# older one goes, and auth_outbox goes. The pending rows are then
# delivered to the Auth Service (a recording peer) in their order, with
# the body and the Idempotency-Key they had before; the dead one is not.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;
use File::Temp ();

my $PEER_KEY = 'peer-key-migration-0123456789ab';

my $db = CT::db_create(empty => 1);
my $dir = File::Temp->newdir;
my $UNDER = '029_auth_events.sql';
ok(-e CT::root() . "/sql/$UNDER", 'the migration is there')
    or BAIL_OUT("no sql/$UNDER");

# the schema as it was before: every migration up to the one under test
my ($rc, $out) = CT::migrate($db, $dir, $UNDER, before => 1);
is($rc, 0, 'the migrations before it') or diag($out);

my $c1 = CT::insert_customer($db, 'moved');
my $c2 = CT::insert_customer($db, 'moved');
my $c3 = CT::insert_customer($db, 'moved');

# a row as the status change wrote it, then its state as given
sub outbox_row {
    my ($c, $active, $reason, $set) = @_;
    my $id = CT::sql($db, q{INSERT INTO auth_outbox (customer_id, user_id,
        is_active, reason) VALUES (:'p1', :'p2', :'p3', nullif(:'p4', ''))
        RETURNING id}, $c->{id}, $c->{user}, $active ? 'true' : 'false',
        $reason // '');
    CT::sql($db, "UPDATE auth_outbox SET $set WHERE id = :'p1'", $id)
        if $set;
    return $id;
}

# c1: two changes waiting, the first after two failed attempts
my $first = outbox_row($c1, 0, 'first', q{attempts = 2,
    last_error = 'auth service answered rc 0, status 500',
    next_attempt_at = now() - interval '1 second'});
my $second = outbox_row($c1, 1, undef);
# c2: set aside as dead; c3: delivered lately, and long ago
my $dead = outbox_row($c2, 0, 'dead', q{attempts = 10, last_error = 'gone',
    dead_at = now()});
my $recent = outbox_row($c3, 1, 'recent', q{attempts = 1,
    delivered_at = now() - interval '2 days'});
my $old = outbox_row($c3, 0, 'old', q{attempts = 1,
    created_at = now() - interval '41 days',
    delivered_at = now() - interval '40 days'});
my $before = CT::sql($db, q{SELECT count(*) FROM events});

($rc, $out) = CT::migrate($db, $dir, $UNDER);
is($rc, 0, 'the migration passes on a database with auth_outbox rows')
    or diag($out);
is(scalar CT::sql($db, q{SELECT to_regclass('auth_outbox') IS NULL}), 't',
    'auth_outbox is gone');
is(scalar CT::sql($db, q{SELECT count(*) FROM events}) - $before, 4,
    'four rows moved (the one delivered 40 days ago is not kept)');

# the moved row of auth_outbox's $id: type|destination|customer|subject|
# userId|isActive|reason|attempts|last_error|delivered|dead|suppressed|
# channels (t/f: booleans)
sub moved {
    my ($id) = @_;
    return scalar CT::sql($db, q{SELECT concat_ws('|', type, destination,
        customer_id, subject, data->>'userId', data->>'isActive',
        coalesce(data->>'reason', 'null'), attempts,
        coalesce(last_error, 'null'), delivered_at IS NOT NULL,
        dead_at IS NOT NULL, suppressed, cardinality(channels))
        FROM events WHERE delivery_key = 'customer-outbox-' || :'p1'}, $id);
}

is(moved($first), "customer.status_changed|auth|$c1->{id}|"
    . "customers/$c1->{id}|$c1->{user}|false|first|2|"
    . 'auth service answered rc 0, status 500|f|f|f|0',
    'the first pending row: its data and its attempts');
is(moved($second), "customer.status_changed|auth|$c1->{id}|"
    . "customers/$c1->{id}|$c1->{user}|true|null|0|null|f|f|f|0",
    'the second: a null reason stays null');
like(moved($dead), qr/\|10\|gone\|f\|t\|f\|0$/,
    'the dead one stays dead');
like(moved($recent), qr/\|recent\|1\|null\|t\|f\|f\|0$/,
    'the recent delivered one: delivered');
is(moved($old), '', 'the old delivered one: gone');
is(scalar CT::sql($db, q{SELECT string_agg(delivery_key, ',' ORDER BY id)
    FROM events WHERE destination = 'auth' AND customer_id = :'p1'},
    $c1->{id}), "customer-outbox-$first,customer-outbox-$second",
    "c1's rows keep their order");

# the migrations after it, as a deployment applies them, so that the
# module runs on the schema it expects
($rc, $out) = CT::migrate($db, $dir);
is($rc, 0, 'the migrations after it') or diag($out);

# delivered now by the outbox run, as they would have been before
my $auth = CT::peer_start(handler => sub { [200, {}, { success => \1 }] });
my $ng = CT::nginx_start(db => $db,
    peers => { auth => $auth, key => $PEER_KEY });

my $h = $ng->req(GET => '/health', auth => 'none');
is_deeply(($h->{json}{data} // {})->{outbox}, { pending => 2, dead => 1 },
    '/health: two pending, one dead');

for (1 .. 5) {
    my $r = $ng->req(POST => '/api/customers/internal/outbox',
        auth => 'service');
    is($r->{status}, 200, "outbox run $_: 200") or diag($r->{body});
    last if CT::sql($db, q{SELECT count(*) FROM events
        WHERE destination = 'auth' AND delivered_at IS NULL
        AND dead_at IS NULL}) == 0;
}

my @calls = $auth->requests;
is(scalar @calls, 2, 'the Auth Service got two calls');
is_deeply([map { "$_->{method} $_->{path}" } @calls],
    [("PATCH /api/auth/user/$c1->{user}/status") x 2],
    '... both PATCH /api/auth/user/{userId}/status');
is_deeply([map { $_->{json} } @calls], [
    { userId => $c1->{user}, customerId => $c1->{id},
      isActive => JSON::PP::false, reason => 'first' },
    { userId => $c1->{user}, customerId => $c1->{id},
      isActive => JSON::PP::true, reason => undef } ],
    '... with the bodies of before, in their order')
    or diag(explain([map { $_->{json} } @calls]));
is_deeply([map { $_->{headers}{'idempotency-key'} } @calls],
    ["customer-outbox-$first", "customer-outbox-$second"],
    '... each with the Idempotency-Key it had');
is(scalar CT::sql($db, q{SELECT string_agg(attempts::text, ',' ORDER BY id)
    FROM events WHERE destination = 'auth' AND customer_id = :'p1'
    AND delivered_at IS NOT NULL}, $c1->{id}), '3,1',
    'the attempts go on from where they were');

# /health's counts are up to about a second old
CT::wait_for(sub {
    $h = $ng->req(GET => '/health', auth => 'none');
    my $o = ($h->{json}{data} // {})->{outbox} // {};
    ($o->{pending} // -1) == 0 && ($o->{dead} // -1) == 1
}, timeout => 5);
is_deeply(($h->{json}{data} // {})->{outbox}, { pending => 0, dead => 1 },
    '/health: nothing pending, the dead one left for the operator');

# a status change after the migration: its two rows, one event
my $r = $ng->req(PATCH => "/api/customers/$c2->{id}/status",
    auth => CT::admin_token('migration-admin'),
    json => { status => 'Suspended', reason => 'after' });
is(($r->{json}{data} // {})->{authService}, 'notified',
    'a change after the migration: notified') or diag($r->{body});
is(scalar CT::sql($db, q{SELECT string_agg(destination, ','
    ORDER BY destination) FROM events WHERE event_id = (SELECT event_id
    FROM customer_status_history WHERE customer_id = :'p1')}, $c2->{id}),
    'auth,notifications', '... one event, a row for each destination');

done_testing();
