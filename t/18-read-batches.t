# Reads share round trips: while a connection's batch of reads is out,
# the reads that arrive join the next batch, held in the worker until the
# one ahead has been answered. Many clients at once through one or two
# connections with a small pipeline: every answer is its own record (or
# its own 404), writes among the reads are applied exactly once, and the
# pool is back to idle with nothing waiting afterwards.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use POSIX ();

my $db = CT::db_create();
my $MISSING = '00000000-0000-4000-8000-000000000000';

# CLIENTS processes at once, each ROUNDS requests: GETs of the records in
# turn (every seventh one the missing id) and, with write => 1, every
# fifth request an increment of the first record's totalOrders
sub storm {
    my ($ng, $ids, %o) = @_;
    my $dir = CT::_fresh_dir('storm', 0777);
    my @kids;
    for my $c (1 .. $o{clients}) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            open my $f, '>', "$dir/$c" or POSIX::_exit(1);
            for my $n (1 .. $o{rounds}) {
                if ($o{write} && $n % 5 == 0) {
                    my $r = $ng->req(PATCH => "/api/customers/internal/"
                        . "$ids->[0]/statistics", auth => 'service',
                        json => { increment => { totalOrders => 1 } });
                    print $f join("\t", 'write', $r->{status}, 1), "\n";
                    next;
                }
                my $id = ($c + $n) % 7 == 0
                    ? $MISSING : $ids->[($c + $n) % @$ids];
                my $r = $ng->req(GET => "/api/customers/$id");
                my $own = $id eq $MISSING
                    ? $r->{status} == 404
                        && $r->{json}{errors}[0]{field} eq 'customerId'
                    : $r->{status} == 200
                        && $r->{json}{data}{customerId} eq $id;
                print $f join("\t", $id eq $MISSING ? 'missing' : 'read',
                    $r->{status}, $own ? 1 : 0), "\n";
            }
            close $f;
            POSIX::_exit(0);
        }
        push @kids, $pid;
    }
    waitpid($_, 0) for @kids;
    my %n;
    for my $c (1 .. $o{clients}) {
        for my $line (split /\n/, CT::_slurp("$dir/$c")) {
            my ($what, $status, $own) = split /\t/, $line;
            $n{"$what $status " . ($own ? 'own' : 'WRONG')}++;
            $n{total}++;
        }
    }
    return \%n;
}

sub idle_after {
    my ($ng, $name) = @_;
    my $pool;
    ok(CT::wait_for(sub {
        $pool = $ng->req(GET => '/health')->{json}{data}{pool};
        $pool && $pool->{inFlight} == 0 && $pool->{waiting} == 0;
    }), "$name: nothing in flight or waiting afterwards")
        or diag(explain($pool));
}

# --- 1. one connection, batches of 3: reads only ---------------------------

{
    my $ng = CT::nginx_start(db => $db, pool => 1, queue => 1024,
        http_extra => "    customer_db_pipeline 3;\n",
        server_extra => "location = /metrics { customer_metrics; }\n");
    my @ids = map {
        my $r = $ng->req(POST => '/api/customers', json => {
            userId => "batch-$_", email => "batch$_\@example.com",
            fullName => "Batch Customer $_" });
        is($r->{status}, 201, "create batch-$_") or diag($r->{body});
        $r->{json}{data}{customerId};
    } 1 .. 5;

    my $n = storm($ng, \@ids, clients => 12, rounds => 40);
    is($n->{total}, 480, 'one connection: 480 answers');
    is(($n->{'read 200 own'} // 0) + ($n->{'missing 404 own'} // 0), 480,
        'one connection: every read answered with its own record or 404')
        or diag(explain($n));
    cmp_ok($n->{'missing 404 own'} // 0, '>', 0,
        'one connection: ... missing ids among them');
    my $pool = $ng->req(GET => '/health')->{json}{data}{pool};
    is($pool->{connects}, 1, 'one connection: all through one connection');
    idle_after($ng, 'one connection');

    # GETs by id that arrived together were answered by one statement
    # for all their ids, each with its own row
    my %m = metrics($ng);
    cmp_ok($m{customer_db_read_groups_total} // 0, '>', 0,
        'one connection: GETs by id were read in groups');
    cmp_ok($m{customer_db_grouped_reads_total} // 0, '>',
        $m{customer_db_read_groups_total} // 0,
        '... of several reads each');
    $ng->stop;
}

# the worker's counters from /metrics, by name
sub metrics {
    my ($ng) = @_;
    my $m = $ng->req(GET => '/metrics', auth => 'none');
    return map { /^(\w+)\{worker="0"\} (\d+)$/ ? ($1 => $2) : () }
        split /\n/, $m->{body};
}

# --- 3. grouped reads keep each caller's view -------------------------------

# A Customer's GET is grouped only with GETs of the same caller: among
# an Administrator's reads of the same record, a Customer who does not
# own it still gets 404, its owner 200; the same id twice in a group is
# answered twice; a missing id among them is 404.
{
    my $ng = CT::nginx_start(db => $db, pool => 1, queue => 1024,
        http_extra => "    customer_db_pipeline 2;\n",
        server_extra => "location = /metrics { customer_metrics; }\n");
    my $owner = "group-owner-$$";
    my $c = $ng->req(POST => '/api/customers', json => { userId => $owner,
        email => "$owner\@example.com", fullName => 'Group Owner' });
    is($c->{status}, 201, 'grouped: a customer') or diag($c->{body});
    my $id = $c->{json}{data}{customerId};

    my %who = (admin => undef, owner => CT::customer_token($owner),
        other => CT::customer_token("group-other-$$"));
    my $dir = CT::_fresh_dir('groups', 0777);
    my @kids;
    for my $k (1 .. 9) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            my $as = (qw(admin owner other))[$k % 3];
            open my $f, '>', "$dir/$k" or POSIX::_exit(1);
            for my $n (1 .. 30) {
                my $get = $n % 10 == 0 ? $MISSING : $id;
                my $r = $ng->req(GET => "/api/customers/$get",
                    defined $who{$as} ? (auth => $who{$as}) : ());
                my $want = $get eq $MISSING || $as eq 'other' ? 404 : 200;
                my $own = $r->{status} == $want
                    && ($want == 404
                        || $r->{json}{data}{customerId} eq $id);
                print $f "$as $want " . ($own ? 'own' : 'WRONG') . "\n";
            }
            close $f;
            POSIX::_exit(0);
        }
        push @kids, $pid;
    }
    waitpid($_, 0) for @kids;
    my %n;
    $n{$_}++ for map { split /\n/, CT::_slurp("$dir/$_") } 1 .. 9;
    is_deeply(\%n, { 'admin 200 own' => 81, 'admin 404 own' => 9,
        'owner 200 own' => 81, 'owner 404 own' => 9,
        'other 404 own' => 90 },
        'grouped: every caller saw what it may see, and only that')
        or diag(explain(\%n));
    my %m = metrics($ng);
    cmp_ok($m{customer_db_grouped_reads_total} // 0, '>',
        $m{customer_db_read_groups_total} // 0,
        'grouped: ... while reads were grouped');
    idle_after($ng, 'grouped');
    $ng->stop;
}

# --- 2. two connections, batches of 2: reads with writes among them -------

{
    my $ng = CT::nginx_start(db => $db, pool => 2, queue => 1024,
        http_extra => "    customer_db_pipeline 2;\n");
    my @ids = CT::sql($db, q{SELECT id FROM customers
        WHERE user_id LIKE 'batch-%' ORDER BY user_id});
    my $before = CT::sql($db, q{SELECT total_orders FROM customers
        WHERE id = :'p1'}, $ids[0]);

    my $n = storm($ng, \@ids, clients => 10, rounds => 30, write => 1);
    is($n->{total}, 300, 'reads and writes: 300 answers');
    is($n->{'write 200 own'}, 60, 'reads and writes: 60 increments 200')
        or diag(explain($n));
    is(($n->{'read 200 own'} // 0) + ($n->{'missing 404 own'} // 0), 240,
        'reads and writes: every read answered with its own record or 404')
        or diag(explain($n));
    is(CT::sql($db, q{SELECT total_orders FROM customers WHERE id = :'p1'},
        $ids[0]), $before + 60,
        'reads and writes: each increment applied exactly once');
    idle_after($ng, 'reads and writes');
}

# --- 4. one group, and its connection lost while it waits -----------------

# Eight keep-alive connections, each with a request answered (so nginx
# has accepted them all); the worker is stopped, each sends a GET of its
# own record, and the worker goes on: it reads the eight in one turn of
# its loop, and they are one statement. That statement waits on a table
# lock when the pool's backend is terminated: the server's error says it
# ends the session, which for a read is a lost connection, so it is sent
# once more on a new connection, and each GET still gets its own record.
{
    my $ng = CT::nginx_start(db => $db, pool => 1, queue => 1024,
        server_extra => "location = /metrics { customer_metrics; }\n",
        allow_log => qr/PostgreSQL|retrying/);
    my @ids = CT::sql($db, q{SELECT id FROM customers
        WHERE user_id LIKE 'batch-%' ORDER BY user_id});
    push @ids, @ids[0 .. 2];
    my ($worker) = $ng->worker_pids;
    my $token = CT::admin_token();
    my ($get, @conns) = gets($ng, map { [$_, $token] } @ids);
    for my $k (0 .. $#ids) {
        $get->($k);
        is(answer($conns[$k])->{status}, 200, "group: warm-up $k");
    }
    my %before = metrics($ng);

    my $s = held_gets($ng, $worker, 'group', $get, @conns);
    my $n = $s->run(q{SELECT count(pg_terminate_backend(pid))
        FROM pg_stat_activity WHERE application_name = 'nginx-customer'
        AND datname = current_database() AND wait_event_type = 'Lock'});
    is($n, 1, 'group: its backend terminated');
    ok(CT::wait_for(sub { CT::lock_waiters($db) == 1 }),
        'group: ... and the statement sent again waits on the lock');
    $s->run('ROLLBACK');
    $s->close;

    my $own = grep {
        my $r = answer($conns[$_]);
        $r->{status} == 200 && $r->{json}{data}{customerId} eq $ids[$_];
    } 0 .. $#ids;
    is($own, scalar @ids, 'group: every GET answered with its own record');
    my %after = metrics($ng);
    is($after{customer_db_read_groups_total}
        - ($before{customer_db_read_groups_total} // 0), 1,
        'group: the eight were one statement');
    is($after{customer_db_grouped_reads_total}
        - ($before{customer_db_grouped_reads_total} // 0), scalar @ids,
        '... for all of them');
    like($ng->error_log,
        qr/retrying the query on another connection: .*terminating/,
        'group: it was sent again');
    $ng->stop;
}

# --- 5. a group is formed from the next 32 gathered reads -----------------

# Customers' GETs are alike only with the same caller's. 34 GETs by id
# reach the pool in one turn: each Customer's account check comes first,
# and the 34 checks are answered together (one batch, held on a table
# lock, its answers all in nginx's socket before the worker goes on).
# One caller's two GETs side by side are one group; with the 32 other
# callers' GETs between them, each runs alone, so that forming the groups
# of a turn never compares every read with every other. Should the worker
# see the first check run 200 ms before it is stopped again (a loaded
# machine), it moves the others to be sent again, and their answers come
# back over more than one turn: such a try is made again.
for my $case (['side by side', 1, 2], ['32 apart', 0, 0]) {
    my ($name, $groups, $grouped) = @$case;
    # no customer has these subs: each GET is the caller's own 404
    my $x = CT::customer_token("apart-x-$$");
    my @others = map { CT::customer_token("apart-$_-$$") } 1 .. 32;
    my @tokens = $groups ? ($x, $x, @others) : ($x, @others, $x);

    for my $try (1 .. 3) {
        my $ng = CT::nginx_start(db => $db, pool => 1, queue => 1024,
            http_extra => "    customer_db_pipeline 64;\n",
            server_extra => "location = /metrics { customer_metrics; }\n");
        my ($worker) = $ng->worker_pids;
        my ($get, @conns) = gets($ng, map { [$MISSING, $_] } @tokens);
        my $warm = grep { $get->($_); answer($conns[$_])->{status} == 404 }
            0 .. $#conns;
        is($warm, scalar @conns, "$name: warm-up, each a 404");
        my %before = metrics($ng);

        my $s = held_gets($ng, $worker, $name, $get, @conns);
        CT::stop_worker($worker);
        $s->run('ROLLBACK');
        $s->close;
        ok(CT::wait_for(sub { CT::sql($db, q{SELECT count(*)
            FROM pg_stat_activity WHERE datname = current_database()
            AND application_name = 'nginx-customer' AND state <> 'idle'})
            == 0 }), "$name: the checks answered, the worker still stopped");
        kill 'CONT', $worker;

        my $n = grep { answer($conns[$_])->{status} == 404 } 0 .. $#conns;
        my %after = metrics($ng);
        my $moved = $ng->error_log =~ /a query runs long/;
        $ng->stop;
        if ($moved && $try < 3) {
            note("$name: the checks were moved (try $try): again");
            next;
        }
        is($n, scalar @conns, "$name: every GET answered, each its own 404");
        is($after{customer_db_read_groups_total}
            - ($before{customer_db_read_groups_total} // 0), $groups,
            "$name: $groups group(s)");
        is($after{customer_db_grouped_reads_total}
            - ($before{customer_db_grouped_reads_total} // 0), $grouped,
            "$name: $grouped read(s) in it");
        last;
    }
}

# a keep-alive connection to nginx for each [id, token] given, and a sub
# that sends on the k-th its GET of /api/customers/<id> with <token>
sub gets {
    my ($ng, @reqs) = @_;
    my @conns = map {
        IO::Socket::INET->new(PeerAddr => '127.0.0.1',
            PeerPort => $ng->port, Proto => 'tcp', Timeout => 10)
            or die "connect: $!\n";
    } @reqs;
    my $get = sub {
        my ($k) = @_;
        my ($id, $token) = @{ $reqs[$k] };
        my $req = "GET /api/customers/$id HTTP/1.1\r\nHost: localhost\r\n"
            . "Authorization: Bearer $token\r\n\r\n";
        syswrite($conns[$k], $req) == length $req or die "write: $!\n";
    };
    return ($get, @conns);
}

# every GET sent while the worker is stopped and the customers are
# locked; once it has read them all in one turn, one statement (of them,
# or of the account checks before them) waits on the lock. The session
# that holds it.
sub held_gets {
    my ($ng, $worker, $name, $get, @conns) = @_;
    my $s = CT::psql_session($db);
    $s->run('BEGIN');
    $s->run('LOCK TABLE customers IN ACCESS EXCLUSIVE MODE');
    CT::stop_worker($worker);
    $get->($_) for 0 .. $#conns;
    ok(CT::wait_for(sub { CT::unread($ng, @conns) == @conns }),
        "$name: the " . @conns . " GETs wait in nginx's sockets");
    kill 'CONT', $worker;
    ok(CT::wait_for(sub { CT::lock_waiters($db) == 1 }, interval => 0.005),
        "$name: one statement waits on the lock");
    return $s;
}

# one HTTP/1.1 answer on a keep-alive connection: {status, json}
sub answer {
    my ($c) = @_;
    my $buf = '';
    my $sel = IO::Select->new($c);
    while ($buf !~ /\r\n\r\n/ && $sel->can_read(10)) {
        sysread($c, $buf, 65536, length $buf) or last;
    }
    my ($head, $body) = split /\r\n\r\n/, $buf, 2;
    my ($len) = ($head // '') =~ /^Content-Length:\s*(\d+)/mi;
    $body //= '';
    while (defined $len && length $body < $len && $sel->can_read(10)) {
        sysread($c, $body, 65536, length $body) or last;
    }
    my ($status) = ($head // '') =~ m{^HTTP/1\.1 (\d{3})};
    return { status => $status // 0,
        json => eval { JSON::PP->new->utf8->decode($body) } };
}

done_testing();
