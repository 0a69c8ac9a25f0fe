# Failover to a real standby, without restarting nginx: a primary and a
# streaming standby made with pg_basebackup -R, synchronous replication,
# and customer_db naming both with target_session_attrs=read-write. Under
# a mixed load of creates and reads, the primary is stopped (immediate)
# and the standby promoted: requests recover within customer_db_timeout
# plus a second, the workers are the same processes, and every create
# answered 201 is on the new primary (none is lost, none doubled).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use POSIX ();
use Time::HiRes qw(time);

my $primary = CT::private_pg();
my $standby = CT::standby_pg($primary);

# synchronous: a commit is acknowledged once the standby has it
ok(CT::wait_for(sub { ($primary->sql(q{SELECT count(*) FROM
    pg_stat_replication WHERE state = 'streaming'}) // 0) == 1 },
    timeout => 20), 'the standby streams from the primary');
$primary->sql(q{ALTER SYSTEM SET synchronous_standby_names = '*'});
$primary->sql(q{ALTER SYSTEM SET synchronous_commit = 'on'});
$primary->sql(q{SELECT pg_reload_conf()});
ok(CT::wait_for(sub { ($primary->sql(q{SELECT sync_state FROM
    pg_stat_replication}) // '') eq 'sync' }, timeout => 20),
    'replication is synchronous');

my $TIMEOUT = 2;
my $ng = CT::nginx_start(workers => 2, pool => 4, timeout => "${TIMEOUT}s",
    conninfo => 'host=127.0.0.1,127.0.0.1 port=' . $primary->port . ','
        . $standby->port . ' dbname=customer user=customer'
        . ' target_session_attrs=read-write sslmode=disable'
        . ' gssencmode=disable',
    allow_log => qr/PostgreSQL|read-write|Connection refused|timed out/);
my @pids = sort $ng->worker_pids;

is($ng->req(GET => '/health', auth => 'none')->{status}, 200,
    'served by the primary');

# --- the load: one create and one read after another, each logged ---------

my $dir = CT::_fresh_dir('failover', 0777);
my $STOP = "$dir/stop";
my @load;
for my $k (1 .. 2) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open my $log, '>', "$dir/load.$k" or POSIX::_exit(1);
        $log->autoflush(1);
        my $i = 0;
        my $last;
        while (!-e $STOP) {
            my $u = "fo-$k-" . ++$i;
            my $t0 = time;
            my $r = $ng->req(POST => '/api/customers', json => { userId => $u,
                email => "$u\@example.com", fullName => 'Fail Over' });
            print $log join("\t", 'w', $t0, time, $r->{status}, $u), "\n";
            $last = $r->{json}{data}{customerId} if $r->{status} == 201;
            next unless $last;
            $t0 = time;
            $r = $ng->req(GET => "/api/customers/$last");
            my $own = $r->{status} == 200
                && $r->{json}{data}{customerId} eq $last ? 1 : 0;
            print $log join("\t", 'r', $t0, time, $r->{status}, $own), "\n";
        }
        close $log;
        POSIX::_exit(0);
    }
    push @load, $pid;
}

sub entries {
    map { [split /\t/] } map { split /\n/, CT::_slurp($_) }
        grep { -e } map { "$dir/load.$_" } 1 .. 2;
}

ok(CT::wait_for(sub { (grep { $_->[0] eq 'w' && $_->[3] == 201 } entries())
    >= 20 }, timeout => 20), 'creates go through before the failover');

$primary->stop('immediate');
my $failed_at = time;
$standby->promote;
my $promoted_at = time;
diag(sprintf 'promoted %.2f s after the primary stopped',
    $promoted_at - $failed_at);

# the load goes on until well past the recovery bound
my $bound = $promoted_at + $TIMEOUT + 1;
ok(CT::wait_for(sub { (grep { $_->[0] eq 'w' && $_->[1] > $bound
    && $_->[3] == 201 } entries()) >= 20 }, timeout => 30),
    'creates go through again after the promotion');
open my $f, '>', $STOP or die $!;
close $f;
waitpid($_, 0) for @load;

my @all = entries();
my ($first) = sort { $a <=> $b } map { $_->[2] }
    grep { $_->[0] eq 'w' && $_->[1] > $failed_at && $_->[3] == 201 } @all;
diag(sprintf '%d requests, %d answered 503; first create after the failure '
    . 'answered %.2f s after the promotion', scalar @all,
    scalar(grep { $_->[3] == 503 } @all), ($first // 0) - $promoted_at);
my @late = grep { $_->[1] > $bound } @all;
ok(@late >= 20, scalar(@late) . ' requests started past the bound');
my @late_bad = grep { $_->[3] !~ /^2/ } @late;
is(scalar @late_bad, 0, 'every request started later than customer_db_timeout'
    . ' + 1 s after the promotion is answered 2xx')
    or diag(explain [@late_bad[0 .. ($#late_bad < 4 ? $#late_bad : 4)]]);
my @hung = grep { $_->[2] - $_->[1] > $TIMEOUT + 1.5 } @all;
is(scalar @hung, 0, 'no request took longer than the timeout (plus slack)')
    or diag(explain [@hung[0 .. ($#hung < 4 ? $#hung : 4)]]);
my @others = grep { $_->[0] eq 'r' && $_->[3] == 200 && !$_->[4] } @all;
is(scalar @others, 0, 'every read answered its own record');
my @odd = grep { $_->[3] !~ /^(?:2\d\d|503)$/ } @all;
is(scalar @odd, 0, 'during the failover: 2xx or 503, nothing else')
    or diag(explain [@odd[0 .. ($#odd < 4 ? $#odd : 4)]]);

my @created = map { $_->[4] } grep { $_->[0] eq 'w' && $_->[3] == 201 } @all;
my %stored = map { $_ => 1 } split /\n/, $standby->sql(q{SELECT user_id
    FROM customers WHERE user_id LIKE 'fo-%'});
my @lost = grep { !$stored{$_} } @created;
is(scalar @lost, 0, scalar(@created) . ' creates answered 201, all on the '
    . 'new primary') or diag("lost: @lost[0 .. ($#lost < 9 ? $#lost : 9)]");
is($standby->sql(q{SELECT count(*) - count(DISTINCT user_id) FROM customers}),
    0, 'none stored twice');
is_deeply([sort $ng->worker_pids], \@pids, 'the same worker processes');
is($ng->req(GET => '/health', auth => 'none')->{status}, 200,
    'health: 200 on the new primary');

$ng->stop;
CT::done_testing();
