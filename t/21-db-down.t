# PostgreSQL going away: every endpoint answers 503 in the error envelope
# within customer_db_timeout, the worker survives, and the pool reconnects
# by itself once the server is back. A server that accepts TCP but never
# answers is cut off by customer_db_timeout.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use IO::Socket::INET;
use Time::HiRes qw(time);

sub unavailable {
    my ($r, $name, $max) = @_;
    is($r->{status}, 503, "$name: 503") or diag($r->{body});
    ok($r->{json} && !$r->{json}{success}, "$name: success is false");
    is($r->{json} && $r->{json}{message}, 'Database unavailable',
        "$name: message 'Database unavailable'");
    is($r->{json} && $r->{json}{errors} && $r->{json}{errors}[0]{field},
        'database', "$name: errors[0].field is 'database'");
    like($r->{headers}{'content-type'} // '', qr{^application/json},
        "$name: JSON");
    cmp_ok($r->{elapsed}, '<', $max, "$name: answered within $max s");
}

sub alive {
    my ($ng, $worker, $name) = @_;
    ok(kill(0, $worker), "$name: worker $worker is alive");
    is_deeply([$ng->worker_pids], [$worker],
        "$name: no other worker replaced it");
}

# --- 1. the server stops and comes back ---------------------------------

my $pg = CT::private_pg();
my $ng = CT::nginx_start(conninfo => $pg->conninfo, workers => 1,
    pool => 4, timeout => '2s');
my ($worker) = $ng->worker_pids;
ok($worker, "worker pid $worker");

my $r = $ng->req(GET => '/health');
is($r->{status}, 200, 'up: /health is 200') or diag($r->{body});
$r = $ng->req(POST => '/api/customers', json => { userId => 'down-1',
    email => 'down1@example.com', fullName => 'Before Outage',
    notes => 'written before the outage' });
is($r->{status}, 201, 'up: POST is 201') or diag($r->{body});
my $id = $r->{json}{data}{customerId};
$r = $ng->req(GET => "/api/customers/$id");
is($r->{status}, 200, 'up: GET is 200') or diag($r->{body});

$pg->stop('fast');

unavailable($ng->req(GET => '/health'), 'down: GET /health', 3);
unavailable($ng->req(GET => "/api/customers/$id"), 'down: GET customer', 3);
unavailable($ng->req(POST => '/api/customers', json => { userId => 'down-2',
    email => 'down2@example.com', fullName => 'During Outage' }),
    'down: POST', 3);
unavailable($ng->req(PUT => "/api/customers/$id",
    json => { fullName => 'Lost Update' }), 'down: PUT', 3);
unavailable($ng->req(DELETE => "/api/customers/$id"), 'down: DELETE', 3);
unavailable($ng->req(GET => '/api/customers?limit=5'), 'down: list', 3);

# many at once while down: all 503, none hangs
{
    my @socks = map {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
            PeerPort => $ng->port, Proto => 'tcp', Timeout => 5)
            or die "connect: $!";
        syswrite $s, "GET /health HTTP/1.0\r\nHost: x\r\n\r\n";
        $s;
    } 1 .. 10;
    my $t0 = time;
    my @st = map {
        my ($s, $buf) = ($_, '');
        my $sel = IO::Select->new($s);
        while ($sel->can_read(5) && sysread($s, $buf, 4096, length $buf)) {}
        $buf =~ m{^HTTP/1\.\d (\d+)} ? $1 : 0;
    } @socks;
    is_deeply(\@st, [(503) x 10], 'down: 10 concurrent /health all 503');
    cmp_ok(time - $t0, '<', 3, 'down: ... within 3 s');
}
alive($ng, $worker, 'down');

$pg->start;

my $t0 = time;
my $up = CT::wait_for(sub { $ng->req(GET => '/health')->{status} == 200 },
    timeout => 10, interval => 0.1);
ok($up, 'back up: /health is 200 again without restarting nginx');
cmp_ok(time - $t0, '<', 10, 'back up: recovered within 10 s');
$r = $ng->req(GET => "/api/customers/$id");
is($r->{status}, 200, 'back up: GET customer is 200') or diag($r->{body});
is($r->{json}{data}{notes}, 'written before the outage',
    'back up: data written before the outage is there');
is($r->{json}{data}{fullName}, 'Before Outage',
    'back up: the PUT during the outage changed nothing');
is($pg->sql(q{SELECT count(*) FROM customers WHERE user_id = 'down-2'}), 0,
    'back up: the POST during the outage wrote nothing');
$r = $ng->req(POST => '/api/customers', json => { userId => 'down-3',
    email => 'down3@example.com', fullName => 'After Outage' });
is($r->{status}, 201, 'back up: POST is 201') or diag($r->{body});
$r = $ng->req(GET => '/health');
cmp_ok($r->{json}{data}{pool}{connectFailures}, '>=', 1,
    'back up: /health counted the failed connects')
    or diag($r->{body});
alive($ng, $worker, 'back up');

# --- 2. pooled connections that PostgreSQL closed while idle -------------

# fill the pool with idle connections
{
    my @socks = map {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
            PeerPort => $ng->port, Proto => 'tcp', Timeout => 5) or die;
        syswrite $s, "GET /api/customers/$id HTTP/1.0\r\nHost: x\r\n"
            . "Authorization: Bearer " . CT::admin_token() . "\r\n\r\n";
        $s;
    } 1 .. 4;
    for my $s (@socks) {
        my $sel = IO::Select->new($s);
        1 while $sel->can_read(5) && sysread($s, my $buf, 4096);
    }
}

$pg->stop('fast');
$pg->start;
$r = $ng->req(GET => "/api/customers/$id");
is($r->{status}, 200, 'restart while idle: the first request is 200')
    or diag($r->{body});
for my $i (1 .. 5) {
    $r = $ng->req(GET => "/api/customers/$id");
    is($r->{status}, 200, "restart while idle: request $i is 200")
        or diag($r->{body});
}

# the server ends the sessions under an idle pool (not a restart): a
# write right after it must not meet a closed connection (its outcome
# would be unknown), however soon it comes; five rounds, since whether
# the worker has seen the close yet is a matter of timing
for my $round (1 .. 5) {
    # a read first, so that the pool has a session to lose; a session
    # ends a moment after pg_terminate_backend() asks it to: the write
    # goes once the ones asked are gone (their close on the wire)
    is($ng->req(GET => "/api/customers/$id")->{status}, 200,
        "round $round: the pool reads");
    my $pids = $pg->sql(q{SELECT string_agg(pid::text, ',')
        FROM pg_stat_activity WHERE application_name = 'nginx-customer'});
    my $killed = $pg->sql(q{SELECT count(pg_terminate_backend(pid))
        FROM unnest(string_to_array(:'p1', ',')::int[]) pid}, $pids // '');
    cmp_ok($killed, '>=', 1,
        "round $round: terminated $killed idle pooled session(s)");
    ok(CT::wait_for(sub { $pg->sql(q{SELECT count(*) FROM pg_stat_activity
        WHERE pid = ANY (string_to_array(:'p1', ',')::int[])}, $pids) == 0 },
        timeout => 10), "round $round: the sessions are gone");
    $r = $ng->req(PATCH => "/api/customers/$id",
        json => { notes => "after terminate $round" });
    is($r->{status}, 200,
        "round $round: terminated while idle: the next PATCH is 200")
        or diag($r->{body});
    is($pg->sql(q{SELECT notes FROM customers WHERE id = :'p1'}, $id),
        "after terminate $round",
        "round $round: terminated while idle: the PATCH was written");
}
$r = $ng->req(GET => '/health');
is($r->{status}, 200, 'terminated while idle: /health is 200')
    or diag($r->{body});
alive($ng, $worker, 'after restarts');

$ng->stop;

# --- 3. a server that accepts TCP and never answers -------------------------

my $hole = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
    Proto => 'tcp', Listen => 128, ReuseAddr => 1) or die "listen: $!";
my $hole_port = $hole->sockport;
my @accepted;

# the kernel completes the handshake from the backlog; accept what came in
# too, so both kinds of silent peer are covered
sub drain_hole {
    $hole->blocking(0);
    while (my $c = $hole->accept) {
        push @accepted, $c;
    }
}

my $bh = CT::nginx_start(workers => 1, pool => 2, timeout => '1s',
    conninfo => "host=127.0.0.1 port=$hole_port dbname=x user=x"
        . ' sslmode=disable gssencmode=disable');
my ($bh_worker) = $bh->worker_pids;

$r = $bh->req(GET => '/health');
unavailable($r, 'silent server: GET /health', 3);
cmp_ok($r->{elapsed}, '>', 0.5,
    'silent server: /health waited for customer_db_timeout (1 s)');
drain_hole();

# right after a failed connect the pool fails fast (backoff) or waits for
# the timeout again: either way 503 within the bound, never a hang
for my $i (1 .. 3) {
    unavailable($bh->req(GET => '/health'),
        "silent server: GET /health again ($i)", 3);
}
unavailable($bh->req(GET => '/api/customers/00000000-0000-4000-8000-00000000'
    . '0001'), 'silent server: GET customer', 3);
unavailable($bh->req(POST => '/api/customers', json => { userId => 'bh',
    email => 'bh@example.com', fullName => 'Black Hole' }),
    'silent server: POST', 3);

# once the backoff has passed, a request waits for the timeout again
my $waited = CT::wait_for(sub {
    my $x = $bh->req(GET => '/health');
    $x->{status} == 503 && $x->{elapsed} > 0.5 && $x->{elapsed} < 3;
}, timeout => 10, interval => 0.2);
ok($waited, 'silent server: after the backoff nginx tries (and times out)'
    . ' again');
drain_hole();
cmp_ok(scalar @accepted, '>=', 1, 'silent server: nginx did connect to it');
alive($bh, $bh_worker, 'silent server');

done_testing();
