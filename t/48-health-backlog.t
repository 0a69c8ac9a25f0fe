# /health and /metrics with a large outbox backlog (150,000 pending
# events, as when no Notification Service runs): calls come as often as
# they like, and PostgreSQL counts the backlog at most once a second per
# worker, not once per call (its table statistics show how often the
# events were scanned). Each call still asks PostgreSQL: stopped, it is
# 503 at once, whatever counts the worker holds. The counts follow the
# backlog within about a second.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use IO::Select;
use JSON::PP ();
use POSIX qw(ceil);
use Time::HiRes qw(time);

my $N = 150_000;
my $WORKERS = 2;

my $pg = CT::private_pg();

# one scan of events per count's subquery, whatever parallel workers the
# server has free: a parallel scan counts once per participant
CT::sql($pg, "ALTER DATABASE customer SET max_parallel_workers_per_gather"
    . " = 0");

CT::sql($pg, <<"SQL");
INSERT INTO events (type, customer_id, subject, data, channels)
SELECT 'customer.created', gen_random_uuid(), 'customers', '{}', '{email}'
FROM generate_series(1, $N);
INSERT INTO events (type, customer_id, subject, data, channels, destination,
    dead_at)
SELECT 'customer.status_changed', gen_random_uuid(), 'customers', '{}',
    '{}', 'auth', CASE WHEN i = 1 THEN now() END
FROM generate_series(1, 3) AS i;
VACUUM ANALYZE events;
CREATE TABLE events_template (LIKE events);
SQL

my $server = "        location = /metrics { customer_metrics; }\n";

sub start {
    return CT::nginx_start(conninfo => $pg->conninfo, workers => $WORKERS,
        timeout => '5s', server_extra => $server);
}

sub health {
    my ($ng) = @_;
    my $r = $ng->req(GET => '/health', auth => 'none');
    return ($r->{status}, $r->{json} && $r->{json}{data}, $r);
}

sub metric {
    my ($ng, $name) = @_;
    my $r = $ng->req(GET => '/metrics', auth => 'none');
    return $r->{body} =~ /^\Q$name\E (\S+)$/m ? $1 : undef;
}

# the scans of events so far: seq_scan + idx_scan, once the nginx that
# made them has stopped (a backend flushes its statistics as it exits)
sub scans {
    CT::wait_for(sub {
        CT::sql($pg, "SELECT count(*) FROM pg_stat_activity"
            . " WHERE datname = current_database()"
            . " AND backend_type = 'client backend'"
            . " AND pid <> pg_backend_pid()") == 0
    }, timeout => 20) or BAIL_OUT('the stopped nginx left backends');
    return CT::sql($pg, "SELECT seq_scan + coalesce(idx_scan, 0)"
        . " FROM pg_stat_user_tables WHERE relname = 'events'");
}

# --- the counts are right ------------------------------------------------

my $ng = start();

my ($st, $d, $r) = health($ng);
is($st, 200, 'a large backlog: /health 200') or diag($r->{body});
is_deeply($d && $d->{events}, { pending => $N, dead => 0 },
    "events: $N pending");
is_deeply($d && $d->{outbox}, { pending => 2, dead => 1 },
    'outbox: two pending, one dead');
is(metric($ng, 'customer_events_pending'), $N,
    "customer_events_pending $N");
is(metric($ng, 'customer_outbox_dead'), 1, 'customer_outbox_dead 1');
is(metric($ng, 'customer_db_up'), 1, 'customer_db_up 1');

$ng->stop;

# --- many calls, few counts ----------------------------------------------

my $before = scans();
my $CALLS = 300;

$ng = start();

# at once, before the workers hold any count: each call waits for its
# worker's one count
my $t0 = time;
my @at_once = map { CT::async_req($ng, GET => '/health') } 1 .. 40;
my $waited = 0;
for my $a (@at_once) {
    my $buf = '';
    my $sel = IO::Select->new($a->{sock});
    while ($sel->can_read(10) && sysread($a->{sock}, $buf, 65536, length $buf))
    {}
    my ($head, $body) = split /\r\n\r\n/, $buf, 2;
    my $j = eval { JSON::PP::decode_json($body // '') } // {};
    $waited++ if ($head // '') =~ m{^HTTP/1\.\d 200}
        && ($j->{data}{events}{pending} // -1) == $N;
}
is($waited, 40, '40 calls at once on fresh workers: all answered with the'
    . ' backlog');

my $bad = 0;
for my $i (1 .. $CALLS) {
    if ($i % 3) {
        ($st, $d, $r) = health($ng);
        $bad++ unless $st == 200 && $d && $d->{events}{pending} == $N;

    } else {
        $bad++ unless (metric($ng, 'customer_events_pending') // -1) == $N;
    }
}
my $elapsed = time - $t0;

is($bad, 0, "then $CALLS calls one by one (/health and /metrics): every"
    . " one answered with the backlog");

$ng->stop;

my $delta = scans() - $before;

# a count scans events four times (two destinations, pending and dead);
# each worker counts at most once a second, and once when it starts
my $bound = 4 * $WORKERS * (ceil($elapsed) + 1);

cmp_ok($delta, '<=', $bound,
    sprintf('%d calls in %.1f s scanned events %d times: at most %d',
        $CALLS + 40, $elapsed, $delta, $bound));
cmp_ok($bound, '<', 4 * $CALLS / 2,
    'the calls came fast enough for that bound to say something');

# --- the counts follow the backlog ---------------------------------------

$ng = start();

($st, $d) = health($ng);
is($d && $d->{events}{pending}, $N, "before: $N pending");

CT::sql($pg, "INSERT INTO events (type, customer_id, subject, data,"
    . " channels) VALUES ('customer.created', gen_random_uuid(),"
    . " 'customers', '{}', '{email}')");
$t0 = time;

ok(CT::wait_for(sub {
    my (undef, $d) = health($ng);
    $d && $d->{events}{pending} == $N + 1
}, timeout => 5), 'a new event: /health counts it');
cmp_ok(time - $t0, '<', 3, 'within about a second (two workers)');
ok(CT::wait_for(sub {
    (metric($ng, 'customer_events_pending') // -1) == $N + 1
}, timeout => 5), 'and customer_events_pending');

CT::sql($pg, "UPDATE events SET dead_at = now() WHERE id = 1");
ok(CT::wait_for(sub {
    my (undef, $d) = health($ng);
    $d && $d->{events}{pending} == $N && $d->{events}{dead} == 1
}, timeout => 5), 'an event set aside: events.dead 1');

# --- a count that fails ----------------------------------------------------

# the events gone: the count fails, and /health does not answer with
# counts it no longer has (503, as when its one statement counted); the
# metrics leave the backlog out, the database still up
CT::sql($pg, "DROP TABLE events");
ok(CT::wait_for(sub { (health($ng))[0] == 503 }, timeout => 5),
    'the count fails: /health 503');
my $m;
ok(CT::wait_for(sub {
    $m = $ng->req(GET => '/metrics', auth => 'none')->{body};
    $m !~ /^customer_events_pending /m
}, timeout => 5), 'the count fails: no customer_events_pending');
like($m, qr/^customer_db_up 1$/m, '... customer_db_up 1');

# --- each call still asks the database -------------------------------------

# the workers hold counts less than a second old: a stopped database is
# still 503 at once
CT::sql($pg, "CREATE TABLE events (LIKE events_template)");
ok(CT::wait_for(sub { (health($ng))[0] == 200 }, timeout => 5),
    'the events back: /health 200');
($st, $d, $r) = health($ng);
is($st, 200, 'up: 200') or diag($r->{body});
$pg->stop('fast');
($st, $d, $r) = health($ng);
is($st, 503, 'PostgreSQL stopped: /health 503') or diag($r->{body});
is($r->{json} && $r->{json}{message}, 'Database unavailable',
    "'Database unavailable'");
is(metric($ng, 'customer_db_up'), 0, 'customer_db_up 0');

CT::done_testing();
