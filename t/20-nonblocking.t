# The worker never blocks on PostgreSQL: with one worker, a request whose
# statement waits on a row or table lock in the server does not delay other
# requests; it completes once the lock is released.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use Time::HiRes qw(time);

# --- a request in the background: raw HTTP/1.0 on its own socket ---------

# read the whole answer (HTTP/1.0: until the server closes)
sub async_finish {
    my ($a, $timeout) = @_;
    my $sel = IO::Select->new($a->{sock});
    my $deadline = time + ($timeout // 15);

    while ((my $left = $deadline - time) > 0) {
        last unless $sel->can_read($left);
        last unless sysread($a->{sock}, $a->{buf}, 65536, length $a->{buf});
    }
    my $elapsed = time - $a->{t0};
    close $a->{sock};
    my ($head, $body) = split /\r\n\r\n/, $a->{buf}, 2;
    my ($status) = ($head // '') =~ m{^HTTP/1\.\d (\d{3})};
    my $json = defined $body && length $body
        ? eval { JSON::PP->new->utf8->decode($body) } : undef;
    return { status => $status // 0, body => $body // '', json => $json,
        elapsed => $elapsed };
}

sub create {
    my ($ng, $user, $name) = @_;
    my $r = $ng->req(POST => '/api/customers', json => { userId => $user,
        email => "$user\@example.com", fullName => $name });
    is($r->{status}, 201, "POST /api/customers ($user) is 201")
        or diag($r->{body});
    return $r->{json}{data}{customerId};
}

sub quick_ok {
    my ($ng, $path, $name) = @_;
    my $r = $ng->req(GET => $path);
    is($r->{status}, 200, "$name: GET $path is 200") or diag($r->{body});
    ok($r->{json} && $r->{json}{success}, "$name: GET $path says success");
    cmp_ok($r->{elapsed}, '<', 1, "$name: GET $path answers within 1 s");
    return $r;
}

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db, workers => 1, pool => 4,
    timeout => '10s');
my ($worker) = $ng->worker_pids;

my $a = create($ng, 'nb-a', 'Alice Locked');
my $b = create($ng, 'nb-b', 'Bob Free');

# --- 1. a row lock: PUT to A waits in the server ---------------------------

{
    my $s = CT::lock_row($db, $a);

    my $put = CT::async_req($ng, PUT => "/api/customers/$a",
        { fullName => 'Alice Changed', notes => 'after the lock' });
    ok(CT::wait_for(sub { CT::lock_waiters($db) >= 1 }),
        'row lock: the PUT waits on the lock in PostgreSQL');

    quick_ok($ng, '/health', 'row lock');
    my $r = quick_ok($ng, "/api/customers/$b", 'row lock');
    is($r->{json}{data}{fullName}, 'Bob Free',
        'row lock: B is read while A is locked');
    $r = quick_ok($ng, '/api/customers?limit=10', 'row lock');
    ok(!CT::async_answered($put), 'row lock: the PUT has not completed yet');
    is(CT::lock_waiters($db), 1, 'row lock: the PUT is still waiting');

    my $t0 = time;
    $s->run('COMMIT');
    $r = async_finish($put);
    is($r->{status}, 200, 'row lock: the PUT completes with 200 after COMMIT')
        or diag($r->{body});
    is($r->{json}{data}{fullName}, 'Alice Changed',
        'row lock: the PUT answer shows the change');
    is($r->{json}{data}{version}, 2, 'row lock: version went up by one');
    cmp_ok(time - $t0, '<', 2, 'row lock: the PUT completes promptly');
    is(CT::sql($db, 'SELECT full_name || \'|\' || notes FROM customers'
        . ' WHERE id = :\'p1\'', $a), 'Alice Changed|after the lock',
        'row lock: the row shows the change');
    $s->close;
}

# --- 2. same with PATCH, and the lock holder rolls back --------------------

{
    my $s = CT::psql_session($db);
    $s->run('BEGIN');
    $s->run("UPDATE customers SET notes = 'by psql' WHERE id = '$a'");

    my $patch = CT::async_req($ng, PATCH => "/api/customers/$a",
        { preferences => { newsletter => JSON::PP::true } });
    ok(CT::wait_for(sub { CT::lock_waiters($db) >= 1 }),
        'rolled back lock: the PATCH waits on the lock');
    quick_ok($ng, '/health', 'rolled back lock');
    quick_ok($ng, "/api/customers/$b", 'rolled back lock');
    ok(!CT::async_answered($patch),
        'rolled back lock: the PATCH has not completed yet');

    $s->run('ROLLBACK');
    my $r = async_finish($patch);
    is($r->{status}, 200, 'rolled back lock: the PATCH completes with 200')
        or diag($r->{body});
    is(CT::sql($db, q{SELECT notes || '|' || (preferences->>'newsletter')
        FROM customers WHERE id = :'p1'}, $a), 'after the lock|true',
        'rolled back lock: the row has the PATCH, not the rolled back edit');
    $s->close;
}

# --- 3. the whole table locked: /health does not touch customers ----------

{
    my $s = CT::psql_session($db);
    $s->run('BEGIN');
    $s->run('LOCK TABLE customers IN ACCESS EXCLUSIVE MODE');

    # reads may share a connection (pipelining); the PATCH, a write, has
    # one of its own: at least two statements wait in the server
    my $get = CT::async_req($ng, GET => "/api/customers/$b");
    my $list = CT::async_req($ng, GET => '/api/customers?limit=5');
    my $patch = CT::async_req($ng, PATCH => "/api/customers/$b",
        { notes => 'after the table lock' });
    ok(CT::wait_for(sub { CT::lock_waiters($db) >= 2 }),
        'table lock: reads and a write wait on the table lock');
    quick_ok($ng, '/health', 'table lock');
    quick_ok($ng, '/health', 'table lock (again)');
    my $r = $ng->req(GET => '/api/nothing-here');
    is($r->{status}, 404, 'table lock: a 404 route answers');
    cmp_ok($r->{elapsed}, '<', 1, 'table lock: ... within 1 s');
    ok(!CT::async_answered($get) && !CT::async_answered($list)
        && !CT::async_answered($patch),
        'table lock: the GET, the list and the PATCH have not completed yet');

    $s->run('ROLLBACK');
    $r = async_finish($get);
    is($r->{status}, 200, 'table lock: the GET completes with 200')
        or diag($r->{body});
    is($r->{json}{data}{customerId}, $b, 'table lock: ... with B');
    $r = async_finish($list);
    is($r->{status}, 200, 'table lock: the list completes with 200')
        or diag($r->{body});
    $r = async_finish($patch);
    is($r->{status}, 200, 'table lock: the PATCH completes with 200')
        or diag($r->{body});
    is(CT::sql($db, q{SELECT notes FROM customers WHERE id = :'p1'}, $b),
        'after the table lock', 'table lock: the PATCH was written');
    $s->close;
}

# --- 4. every pooled connection stuck: the worker still answers -----------

{
    my $s = CT::lock_row($db, $a);

    # writes each take a connection of their own
    my @stuck = map { CT::async_req($ng, PATCH => "/api/customers/$a",
        { notes => "stuck $_" }) } 1 .. 4;
    ok(CT::wait_for(sub { CT::lock_waiters($db) >= 4 }),
        'pool exhausted: 4 PATCHes hold all 4 connections, waiting on a lock');

    # a fifth database request queues for a connection ...
    my $health = CT::async_req($ng, GET => '/health');
    # ... and requests that need no database are still served at once
    my $r = $ng->req(GET => '/api/nothing-here');
    is($r->{status}, 404, 'pool exhausted: a 404 route answers');
    cmp_ok($r->{elapsed}, '<', 1, 'pool exhausted: ... within 1 s');
    $r = $ng->req(DELETE => '/api/customers/not-a-uuid');
    ok($r->{status} >= 400 && $r->{status} < 500,
        'pool exhausted: a request failing validation answers')
        or diag($r->{status}, $r->{body});
    cmp_ok($r->{elapsed}, '<', 1, 'pool exhausted: ... within 1 s');
    ok(!CT::async_answered($health),
        'pool exhausted: the queued /health waits for a connection');

    $s->run('ROLLBACK');
    $r = async_finish($health);
    is($r->{status}, 200, 'pool exhausted: the queued /health then is 200')
        or diag($r->{body});
    my @st = map { async_finish($_)->{status} } @stuck;
    is_deeply(\@st, [200, 200, 200, 200],
        'pool exhausted: the 4 stuck PATCHes complete with 200');
    $r = $ng->req(GET => '/health');
    is($r->{json}{data}{pool}{live}, 4, 'pool exhausted: 4 connections live')
        or diag($r->{body});
    is($r->{json}{data}{pool}{connectFailures}, 0, 'no connect failures');
    $s->close;
}

is_deeply([$ng->worker_pids], [$worker], 'the same worker served it all');

done_testing();
