# The pool and its wait queue: many concurrent requests share a small pool
# (customer_db_pool) and wait their turn; beyond customer_db_queue waiting
# requests, new ones get 503 "Service busy" at once.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use Time::HiRes qw(time);

# --- requests in the background: raw HTTP/1.0, one socket each -------------

sub parse {
    my ($a) = @_;
    my ($head, $body) = split /\r\n\r\n/, $a->{buf}, 2;
    my ($status) = ($head // '') =~ m{^HTTP/1\.\d (\d{3})};
    $a->{status} = $status // 0;
    $a->{body} = $body // '';
    $a->{json} = length $a->{body}
        ? eval { JSON::PP->new->utf8->decode($a->{body}) } : undef;
    return $a;
}

# wait for all the answers at once (HTTP/1.0: each ends when nginx closes)
sub async_all {
    my ($timeout, @reqs) = @_;
    my %open = map { (0 + $_->{sock}) => $_ } @reqs;
    my $sel = IO::Select->new(map { $_->{sock} } @reqs);
    my $deadline = time + $timeout;

    while ($sel->count && (my $left = $deadline - time) > 0) {
        for my $s ($sel->can_read($left)) {
            my $a = $open{0 + $s};
            next if sysread($s, $a->{buf}, 65536, length $a->{buf});
            $a->{elapsed} = time - $a->{t0};
            $sel->remove($s);
            close $s;
        }
    }
    for my $a (@reqs) {
        if (!defined $a->{elapsed}) {
            $a->{elapsed} = time - $a->{t0};
            close $a->{sock};
        }
        parse($a);
    }
    return @reqs;
}

sub create {
    my ($ng, $user, $name) = @_;
    my $r = $ng->req(POST => '/api/customers', json => { userId => $user,
        email => "$user\@example.com", fullName => $name });
    is($r->{status}, 201, "POST $user is 201") or diag($r->{body});
    return $r->{json}{data}{customerId};
}

sub busy {
    my ($r, $name) = @_;
    is($r->{status}, 503, "$name: 503") or diag($r->{body});
    is($r->{json} && $r->{json}{message}, 'Service busy',
        "$name: message 'Service busy'");
    is($r->{json} && $r->{json}{errors} && $r->{json}{errors}[0]{field},
        'database', "$name: errors[0].field is 'database'");
    ok($r->{json} && !$r->{json}{success}, "$name: success is false");
    cmp_ok($r->{elapsed}, '<', 1, "$name: answered within 1 s");
}

my $db = CT::db_create();

# --- 1. 40 concurrent requests, pool 2, queue 100 ---------------------------

{
    my $ng = CT::nginx_start(db => $db, workers => 1, pool => 2,
        queue => 100, timeout => '10s');
    my @ids = map { create($ng, "seed-$_", "Seed Customer $_") } 1 .. 5;

    my @reqs;
    for my $i (1 .. 40) {
        push @reqs, $i % 2
            ? CT::async_req($ng, GET => '/api/customers/' . $ids[$i % 5])
            : CT::async_req($ng, POST => '/api/customers', {
                userId => "burst-$i", email => "burst$i\@example.com",
                fullName => "Burst Customer $i" });
    }
    my $t0 = time;
    async_all(30, @reqs);
    my @bad = grep {
        $_->{status} != ($_->{method} eq 'POST' ? 201 : 200)
    } @reqs;
    ok(!@bad, '40 concurrent requests (20 GET, 20 POST) all succeed')
        or diag(map { "$_->{method} $_->{path}: $_->{status} $_->{body}\n" }
            @bad);
    cmp_ok(time - $t0, '<', 10, '... within 10 s');

    my @wrong = grep {
        my $d = $_->{json} && $_->{json}{data};
        $_->{method} eq 'POST'
            ? !$d || $d->{userId} ne $_->{json_in}{userId}
            : !$d || $_->{path} !~ m{/\Q$d->{customerId}\E$};
    } @reqs;
    ok(!@wrong, 'every answer is about its own request')
        or diag(map { "$_->{method} $_->{path}: $_->{body}\n" } @wrong);

    is(CT::sql($db, q{SELECT count(*) FROM customers
        WHERE user_id LIKE 'burst-%'}), 20, 'the 20 POSTed rows exist');
    my @posted = sort map { $_->{json}{data}{customerId} // '' }
        grep { $_->{method} eq 'POST' } @reqs;
    my @rows = CT::sql($db, q{SELECT id FROM customers
        WHERE user_id LIKE 'burst-%'});
    is_deeply([sort @rows], \@posted,
        '... with the ids the API returned');

    my $r = $ng->req(GET => '/health');
    is($r->{status}, 200, '/health after the burst') or diag($r->{body});
    my $pool = $r->{json}{data}{pool};
    is($pool->{size}, 2, 'pool size is 2');
    cmp_ok($pool->{live}, '<=', 2, 'at most 2 connections live');
    cmp_ok($pool->{live}, '>=', 1, 'at least 1 connection live');
    is($pool->{waiting}, 0, 'nothing waits any more');
    cmp_ok($pool->{connects}, '<=', 2, 'no more than 2 connects ever');
    is(CT::sql($db, q{SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database()
        AND application_name = 'nginx-customer'}), $pool->{live},
        'PostgreSQL sees as many sessions as the pool says are live');

    # queue 100 with both connections stuck: requests wait, not refused
    my $s = CT::lock_row($db, $ids[0]);
    my @stuck = map { CT::async_req($ng, PATCH => "/api/customers/$ids[0]",
        { notes => "stuck $_" }) } 1 .. 2;
    ok(CT::wait_for(sub { CT::lock_waiters($db) >= 2 }),
        'both connections wait on a row lock');
    my @queued = map { CT::async_req($ng, GET => "/api/customers/$ids[1]") }
        1 .. 30;
    # a request that needs no database is answered meanwhile, and by then
    # the worker has taken the 30 in
    my $r404 = $ng->req(GET => '/api/nothing-here');
    is($r404->{status}, 404, 'a 404 route answers while 32 requests wait');
    cmp_ok($r404->{elapsed}, '<', 1, '... within 1 s');
    ok(!(grep { CT::async_answered($_) } @queued),
        '30 requests wait in the queue (none refused)');
    $s->run('ROLLBACK');
    async_all(15, @stuck, @queued);
    is_deeply([map { $_->{status} } @stuck, @queued], [(200) x 32],
        'after the lock is released the stuck and queued requests are 200')
        or diag(join ' ', map { $_->{status} } @stuck, @queued);
    $s->close;
    $ng->stop;
}

# --- 2. pool 1, queue 0: no waiting at all --------------------------------

# pool_of_one(QUEUE, USER, USER): an nginx with one connection and that
# queue, and the ids of the two seed customers
sub pool_of_one {
    my ($queue, @users) = @_;
    return (CT::nginx_start(db => $db, workers => 1, pool => 1,
        queue => $queue, timeout => '10s'),
        CT::sql($db, q{SELECT id FROM customers
            WHERE user_id IN (:'p1', :'p2') ORDER BY user_id}, @users));
}

{
    my ($ng, $a, $b) = pool_of_one(0, 'seed-1', 'seed-2');

    my $r = $ng->req(GET => "/api/customers/$b");
    is($r->{status}, 200, 'queue 0: a request on a cold pool is 200')
        or diag($r->{body});
    $r = $ng->req(GET => '/health');
    is($r->{status}, 200, 'queue 0: /health is 200') or diag($r->{body});
    for my $i (1 .. 3) {
        $r = $ng->req(GET => "/api/customers/$b");
        is($r->{status}, 200, "queue 0: sequential request $i is 200")
            or diag($r->{body});
    }

    my $s = CT::lock_row($db, $a);
    my $put = CT::async_req($ng, PUT => "/api/customers/$a",
        { fullName => 'Queue Zero' });
    ok(CT::wait_for(sub { CT::lock_waiters($db) >= 1 }),
        'queue 0: the PUT holds the only connection, waiting on a lock');

    busy($ng->req(GET => "/api/customers/$b"), 'queue 0: GET while busy');
    busy($ng->req(POST => '/api/customers', json => { userId => 'q0',
        email => 'q0@example.com', fullName => 'Queue Zero Post' }),
        'queue 0: POST while busy');
    $r = $ng->req(GET => '/health');
    is($r->{status}, 503, 'queue 0: /health while busy is 503');
    cmp_ok($r->{elapsed}, '<', 1, 'queue 0: ... within 1 s');
    ok(!CT::async_answered($put), 'queue 0: the PUT still waits');
    is(CT::sql($db, q{SELECT count(*) FROM customers
        WHERE user_id = 'q0'}), 0, 'queue 0: the refused POST wrote nothing');

    $s->run('ROLLBACK');
    ($r) = async_all(15, $put);
    is($r->{status}, 200, 'queue 0: the PUT completes with 200')
        or diag($r->{body});
    is(CT::sql($db, q{SELECT full_name FROM customers WHERE id = :'p1'}, $a),
        'Queue Zero', 'queue 0: the PUT was written');
    $r = $ng->req(GET => "/api/customers/$b");
    is($r->{status}, 200, 'queue 0: after the release GET is 200 again')
        or diag($r->{body});
    $r = $ng->req(POST => '/api/customers', json => { userId => 'q0',
        email => 'q0@example.com', fullName => 'Queue Zero Post' });
    is($r->{status}, 201, 'queue 0: after the release POST is 201')
        or diag($r->{body});
    $s->close;
    $ng->stop;
}

# --- 3. pool 1, queue 2: two wait, the third is refused ---------------------

{
    my ($ng, $a, $b) = pool_of_one(2, 'seed-3', 'seed-4');

    my $r = $ng->req(GET => '/health');
    is($r->{status}, 200, 'queue 2: /health is 200') or diag($r->{body});

    my $s = CT::lock_row($db, $a);
    my $put = CT::async_req($ng, PATCH => "/api/customers/$a",
        { notes => 'queue two' });
    ok(CT::wait_for(sub { CT::lock_waiters($db) >= 1 }),
        'queue 2: the PATCH holds the only connection');
    my @waiting = map { CT::async_req($ng, GET => "/api/customers/$b") } 1 .. 2;

    # the third must be refused; poll until both are counted as waiting
    my $third;
    ok(CT::wait_for(sub {
        $third = $ng->req(GET => "/api/customers/$b");
        $third->{status} == 503;
    }), 'queue 2: a third waiting request is refused');
    busy($third, 'queue 2: third request');
    busy($ng->req(POST => '/api/customers', json => { userId => 'q2',
        email => 'q2@example.com', fullName => 'Queue Two Post' }),
        'queue 2: a POST beyond the queue');
    busy($ng->req(GET => '/health'), 'queue 2: /health beyond the queue');
    ok(!(grep { CT::async_answered($_) } $put, @waiting),
        'queue 2: the two queued requests still wait');

    $s->run('ROLLBACK');
    async_all(15, $put, @waiting);
    is_deeply([map { $_->{status} } $put, @waiting], [200, 200, 200],
        'queue 2: the PATCH and both queued GETs complete with 200')
        or diag(map { "$_->{status} $_->{body}\n" } $put, @waiting);
    $r = $ng->req(GET => '/health');
    is($r->{json}{data}{pool}{waiting}, 0, 'queue 2: nothing waits after');
    $s->close;
}

done_testing();
