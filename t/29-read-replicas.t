# Read replicas: a primary and a streaming standby (pg_basebackup -R),
# customer_db_replica naming the standby. Both log every statement, so
# the test counts on each server what ran there: lists go to the replica,
# point reads stay on the primary; a caller that just wrote sees its write
# in a list at once (replay paused, so only the primary has it); a paused
# replay moves everyone's lists to the primary within max_lag plus the
# check; a stopped replica costs no error and takes reads again when it
# is back; nginx -t refuses a bad replica connection string.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use Time::HiRes qw(time sleep);

my $primary = CT::private_pg();
# before the base backup, so that the standby logs its statements too
$primary->sql(q{ALTER SYSTEM SET log_statement = 'all'});
$primary->sql(q{SELECT pg_reload_conf()});
my $standby = CT::standby_pg($primary);

ok(CT::wait_for(sub { ($primary->sql(q{SELECT count(*) FROM
    pg_stat_replication WHERE state = 'streaming'}) // 0) == 1 },
    timeout => 20), 'the standby streams from the primary');

my $replica = $standby->conninfo;
my $ng = CT::nginx_start(workers => 2, pool => 4,
    conninfo => $primary->conninfo,
    http_extra => qq{    customer_db_replica "$replica";\n}
        . "    customer_db_replica_max_lag 1s;\n",
    server_extra => "        location = /metrics { customer_metrics; }\n",
    allow_log => qr/PostgreSQL|Connection refused|replica/);

my $NAME = '127.0.0.1:' . $standby->port;

sub replica_state {
    my $r = $ng->req(GET => '/health', auth => 'none');
    return undef unless $r->{status} == 200 && $r->{json}{data}{replicas};
    return $r->{json}{data}{replicas}[0];
}

# every worker's view: /health answers from either, so ask a few times
sub all_usable {
    my ($want) = @_;
    for (1 .. 6) {
        my $s = replica_state() or return 0;
        return 0 if ($s->{usable} ? 1 : 0) != $want;
    }
    return 1;
}

ok(CT::wait_for(sub { all_usable(1) }, timeout => 10),
    'the replica is up and usable');
my $s = replica_state();
is($s->{name}, $NAME, 'health names the replica host:port');
ok($s->{up} && defined $s->{lagSeconds}, 'up, with a lag')
    or diag(explain $s);

# count, on one server, the statements run whose text matches $re
sub ran {
    my ($pg, $re) = @_;
    my $n = () = CT::_slurp($pg->dir . '/pg.log') =~ /$re/g;
    return $n;
}
my $LIST = qr/execute c\d+: SELECT[^\n]*search_text LIKE/;
my $GET = qr/execute c\d+: SELECT[^\n]* FROM customers WHERE id = \$1/
    . qr/ AND \(\$2::text IS NULL OR user_id = \$2::text\)\n/;

# --- a writer's records, replicated; then a reader who never wrote -------

my $writer = CT::admin_token('replica-writer');
my $reader = CT::admin_token('replica-reader');
my @ids;
for my $i (1 .. 3) {
    my $r = $ng->req(POST => '/api/customers', auth => $writer,
        json => { userId => "rr-$i", email => "rr-$i\@example.com",
            fullName => "Replica Reader $i" });
    is($r->{status}, 201, "create $i") or diag(explain $r->{json});
    push @ids, $r->{json}{data}{customerId};
}
ok(CT::wait_for(sub { ($standby->sql(q{SELECT count(*) FROM customers
    WHERE user_id LIKE 'rr-%'}) // 0) == 3 }, timeout => 10),
    'the standby has them');
ok(CT::wait_for(sub { all_usable(1) }, timeout => 10),
    'and is current again');

my ($p0, $s0) = (ran($primary, $LIST), ran($standby, $LIST));
my $ok = 0;
for (1 .. 10) {
    my $r = $ng->req(GET => '/api/customers?searchTerm=replica%20reader',
        auth => $reader);
    $ok++ if $r->{status} == 200 && $r->{json}{data}{pagination}{totalItems} == 3;
}
is($ok, 10, 'ten lists, each 200 with the three records');
is(ran($standby, $LIST) - $s0, 10, 'the lists ran on the replica');
is(ran($primary, $LIST) - $p0, 0, 'none on the primary');

($p0, $s0) = (ran($primary, $GET), ran($standby, $GET));
$ok = 0;
for my $id (@ids) {
    $ok++ if $ng->req(GET => "/api/customers/$id", auth => $reader)
        ->{status} == 200;
}
is($ok, 3, 'point reads: 200');
is(ran($primary, $GET) - $p0, 3, 'point reads ran on the primary');
is(ran($standby, $GET) - $s0, 0, 'none on the replica');

my $m = $ng->req(GET => '/metrics', auth => 'none')->{body};
like($m, qr/^customer_db_replica_up\{replica="\Q$NAME\E"\} 1$/m,
    'metrics: customer_db_replica_up');
like($m, qr/^customer_db_replica_lag_seconds\{replica="\Q$NAME\E"\} \d+\.\d{3}$/m,
    'metrics: customer_db_replica_lag_seconds');
my ($reads) = $m =~ /^customer_db_routed_reads_total\{target="\Q$NAME\E"\} (\d+)$/m;
ok(($reads // 0) >= 10, 'metrics: reads the replica answered')
    or diag($m);

# --- replay paused: read-your-writes, then the lag moves reads ----------

$standby->sql(q{SELECT pg_wal_replay_pause()});
my $r = $ng->req(POST => '/api/customers', auth => $writer,
    json => { userId => 'rr-new', email => 'rr-new@example.com',
        fullName => 'Replica Fresh' });
is($r->{status}, 201, 'a create while replay is paused');
my $wrote = time;
my $fresh = $r->{json}{data}{customerId};

$r = $ng->req(GET => '/api/customers?searchTerm=replica%20fresh',
    auth => $writer);
is($r->{json}{data}{pagination}{totalItems}, 1,
    'the writer sees its own create in a list at once');
is($standby->sql(q{SELECT count(*) FROM customers
    WHERE user_id = 'rr-new'}), 0, 'which the replica does not have');

my $seen;
CT::wait_for(sub {
    my $r = $ng->req(GET => '/api/customers?searchTerm=replica%20fresh',
        auth => $reader);
    return 0 unless $r->{status} == 200
        && $r->{json}{data}{pagination}{totalItems} == 1;
    $seen = time;
}, timeout => 10, interval => 0.05);
ok($seen, 'another caller sees it once the replica lags');
my $after = ($seen // time) - $wrote;
diag(sprintf 'seen by another caller %.2f s after the write', $after);
ok($after < 1 + 1.5 + 1, 'within max_lag + the check (+1 s slack)');
ok(CT::wait_for(sub { all_usable(0) }, timeout => 5),
    'health: the paused replica is not usable');

$standby->sql(q{SELECT pg_wal_replay_resume()});
ok(CT::wait_for(sub { all_usable(1) }, timeout => 10),
    'replay resumed: usable again');
sleep 3;    # the writer's window passes too
$s0 = ran($standby, $LIST);
$r = $ng->req(GET => '/api/customers?searchTerm=replica%20fresh',
    auth => $writer);
is($r->{json}{data}{pagination}{totalItems}, 1, 'the writer, later: 200');
is(ran($standby, $LIST) - $s0, 1, 'from the replica again');

# --- the replica stops: no errors, and back when it is --------------------

$standby->stop('fast');
my @bad;
my $t_end = time + 3;
my $n = 0;
while (time < $t_end) {
    my $r = $ng->req(GET => '/api/customers?searchTerm=replica',
        auth => $reader);
    $n++;
    push @bad, $r->{status} if $r->{status} != 200
        || $r->{json}{data}{pagination}{totalItems} != 4;
    sleep 0.05;
}
is(scalar @bad, 0, "replica stopped: $n lists, every one 200 and complete")
    or diag("@bad");
ok(CT::wait_for(sub { my $s = replica_state(); $s && !$s->{up} },
    timeout => 5), 'health: the replica is down');

$standby->start;
ok(CT::wait_for(sub { all_usable(1) }, timeout => 20),
    'the replica is back and usable');
$s0 = ran($standby, $LIST);
for (1 .. 4) {
    $ng->req(GET => '/api/customers?searchTerm=replica', auth => $reader);
}
is(ran($standby, $LIST) - $s0, 4, 'reads return to it');

$ng->stop;

# --- nginx -t ---------------------------------------------------------------

my $db = 'customer_db "host=127.0.0.1 dbname=customer";';
my ($rc, $out) = CT::nginx_test_conf(qq{    $db
    customer_db_replica "host=127.0.0.1 dbname=customer no_such_key=1";\n});
isnt($rc, 0, 'nginx -t refuses a bad replica connection string');
like($out, qr/invalid "customer_db_replica" connection string/,
    'and names the directive') or diag($out);

($rc, $out) = CT::nginx_test_conf(qq{    $db
    customer_db_replica "host=no-such-host.invalid dbname=customer";\n});
isnt($rc, 0, 'nginx -t refuses a replica host that does not resolve');
like($out, qr/"customer_db_replica" host "no-such-host\.invalid" cannot be resolved/,
    'and says so') or diag($out);

($rc, $out) = CT::nginx_test_conf(
    qq{    customer_db_replica "host=127.0.0.1 dbname=customer";\n});
isnt($rc, 0, 'a replica without customer_db is refused');
like($out, qr/"customer_db_replica" needs "customer_db"/, 'and says so')
    or diag($out);

($rc, $out) = CT::nginx_test_conf(qq{    $db
    customer_db_replica "host=127.0.0.1 dbname=customer";
    customer_db_replica "host=127.0.0.1 dbname=customer";\n});
isnt($rc, 0, 'the same replica twice is refused');
like($out, qr/"customer_db_replica" directive is duplicate/, 'as a duplicate')
    or diag($out);

($rc, $out) = CT::nginx_test_conf(qq{    $db
    customer_db_replica "host=127.0.0.1 dbname=customer";
    customer_db_replica_max_lag 0;\n});
isnt($rc, 0, 'customer_db_replica_max_lag 0 is refused');

($rc, $out) = CT::nginx_test_conf(qq{    $db
    customer_db_replica "host=localhost port=5433 dbname=customer";
    customer_db_replica_max_lag 500ms;\n});
is($rc, 0, 'a good one passes') or diag($out);

CT::done_testing();
