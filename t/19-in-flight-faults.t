# Faults with queries in flight: eight reads and a write wait on a table
# lock (so they are certainly sent and unanswered) when the pool's
# backends are terminated, and again when PostgreSQL stops (immediate).
# Every request is answered, with its own record or 503, none past
# customer_db_timeout; the write is applied at most once; the workers are
# the same processes; the pool serves again afterwards.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use POSIX ();
use Time::HiRes qw(time);

my $pg = CT::private_pg();
my $TIMEOUT = 3;
my $ng = CT::nginx_start(workers => 1, pool => 4, timeout => "${TIMEOUT}s",
    conninfo => $pg->conninfo,
    allow_log => qr/PostgreSQL|terminat|timed out|retrying/);
my @pids = $ng->worker_pids;

my @ids;
for my $i (1 .. 8) {
    my $u = "inflight-$$-$i";
    my $r = $ng->req(POST => '/api/customers', json => { userId => $u,
        email => "$u\@example.com", fullName => "In Flight $i" });
    die "create: $r->{body}" unless $r->{status} == 201;
    push @ids, $r->{json}{data}{customerId};
}

my $dir = CT::_fresh_dir('inflight', 0777);

# eight GETs of their own records and one increment, at once
sub fire {
    my ($round) = @_;
    my @kids;
    for my $k (0 .. 8) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            my $t0 = time;
            my $r = $k < 8
                ? $ng->req(GET => "/api/customers/$ids[$k]")
                : $ng->req(PATCH => "/api/customers/internal/$ids[0]"
                    . '/statistics', auth => 'service',
                    json => { increment => { totalOrders => 1 } });
            my $own = $k < 8 && $r->{status} == 200
                && $r->{json}{data}{customerId} eq $ids[$k] ? 1 : 0;
            open my $f, '>', "$dir/$round.$k" or POSIX::_exit(1);
            print $f join("\t", $r->{status}, time - $t0, $own);
            close $f;
            POSIX::_exit(0);
        }
        push @kids, $pid;
    }
    return @kids;
}

sub results {
    my ($round) = @_;
    return map { [$_, split /\t/, CT::_slurp("$dir/$round.$_")] } 0 .. 8;
}

sub check {
    my ($round, $name) = @_;
    my @res = results($round);
    for my $x (@res) {
        my ($k, $status, $took, $own) = @$x;
        my $what = $k < 8 ? "read $k" : 'the write';
        ok($status == 503 || ($status =~ /^2/ && ($k == 8 || $own)),
            "$name: $what answered $status"
            . ($k < 8 && $status == 200 ? ' with its own record' : ''));
        cmp_ok($took, '<', $TIMEOUT + 1.5, "$name: $what within the timeout");
    }
    return @res;
}

sub waiting {
    $pg->sql(q{SELECT count(*) FROM pg_stat_activity
        WHERE application_name = 'nginx-customer'
        AND wait_event_type = 'Lock'});
}

# locked(ROUND, NAME): a session holding customers locked, and round
# ROUND's requests fired and waiting on it: (session, children)
sub locked {
    my ($round, $name) = @_;
    my $s = $pg->psql_session;
    $s->run('BEGIN');
    $s->run('LOCK TABLE customers IN ACCESS EXCLUSIVE MODE');
    my @kids = fire($round);
    ok(CT::wait_for(sub { waiting() >= 2 }, timeout => 10),
        "$name: reads and the write wait on the lock");
    return ($s, @kids);
}

# --- 1. the pool's backends terminated -----------------------------------

{
    my ($s, @kids) = locked(1, 'terminate');
    my $n = $s->run(q{SELECT count(pg_terminate_backend(pid))
        FROM pg_stat_activity WHERE application_name = 'nginx-customer'});
    cmp_ok($n, '>=', 2, "terminate: $n backends of the pool terminated");
    $s->run('ROLLBACK');
    $s->close;
    waitpid($_, 0) for @kids;
    my @res = check(1, 'terminate');
    cmp_ok($pg->sql(q{SELECT total_orders FROM customers WHERE id = :'p1'},
        $ids[0]), '<=', 1, 'terminate: the increment applied at most once');
}

is($ng->req(GET => "/api/customers/$ids[1]")->{status}, 200,
    'terminate: the pool serves again');

# --- 2. PostgreSQL stops (immediate) -----------------------------------------

{
    my $before = $pg->sql(q{SELECT total_orders FROM customers
        WHERE id = :'p1'}, $ids[0]);
    my ($s, @kids) = locked(2, 'stop');
    $pg->stop('immediate');
    eval { $s->close };
    waitpid($_, 0) for @kids;
    my @res = check(2, 'stop');
    $pg->start;
    cmp_ok($pg->sql(q{SELECT total_orders FROM customers WHERE id = :'p1'},
        $ids[0]), '<=', $before + 1, 'stop: the increment at most once');
    ok(CT::wait_for(sub {
        $ng->req(GET => "/api/customers/$ids[2]")->{status} == 200 },
        timeout => 10), 'stop: the pool serves again once it is back');
}

is_deeply([$ng->worker_pids], \@pids, 'the same worker process');
is($ng->req(GET => '/health', auth => 'none')->{json}{data}{pool}{inFlight},
    0, 'nothing left in flight');

$ng->stop;
CT::done_testing();
