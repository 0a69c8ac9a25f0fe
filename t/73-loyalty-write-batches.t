# Loyalty writes that wait for a connection go out together: up to
# customer_db_pipeline earns and redeems on one connection under one
# Sync, one transaction and one commit for the lot. What a client sees
# must not change: each earn is answered with its own result and written
# exactly once; a member that fails takes nobody else with it; a deadlock
# victim is run again; a batch whose connection is lost before its
# commit is answered "Outcome unknown" as a whole (none of it committed,
# none of it sent again), as is one whose member times out; a commit that
# fails is the failing member's alone; a key's replay inside the batch is
# a replay, and so is one whose first use committed in another
# connection's batch; reads and other writes waiting among the earns are
# served as ever; a client that goes away does not disturb the rest.
#
# Every batch is formed the same way: the worker's only connection (each
# of two, in the last part) is held by an earn (the gate) that waits in
# PostgreSQL on an advisory lock this test holds; the earns sent
# meanwhile wait in the pool; once nginx has read them all the lock is
# released, the gate is answered and the waiting earns go out. A trigger
# on the ledger does what a test asks of a row through its reason:
# 'pause-N' waits for advisory lock N, 'fail-me' raises an error, 'once'
# is a deadlock victim the first time, 'fail-at-commit' fails its
# transaction's commit and 'wait-at-commit' waits there for advisory
# lock 2 (a deferred trigger).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use Time::HiRes qw(time);

my $db = CT::db_create();
my $GATE;    # the gate's customer (see batch)

CT::sql($db, q{
    CREATE SEQUENCE t73_once;
    CREATE FUNCTION t73_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.reason LIKE 'pause-%' THEN
            PERFORM pg_advisory_xact_lock_shared(
                substr(NEW.reason, 7)::bigint);
        ELSIF NEW.reason = 'fail-me' THEN
            RAISE EXCEPTION 'the test refuses this row';
        ELSIF NEW.reason = 'once' THEN
            IF nextval('t73_once') = 1 THEN
                RAISE EXCEPTION 'a deadlock, the first time'
                    USING ERRCODE = '40P01';
            END IF;
        END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER t73_ledger BEFORE INSERT ON loyalty_transactions
        FOR EACH ROW EXECUTE FUNCTION t73_ledger();
    CREATE FUNCTION t73_commit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.reason = 'fail-at-commit' THEN
            RAISE EXCEPTION 'the test refuses this commit';
        ELSIF NEW.reason = 'wait-at-commit' THEN
            PERFORM pg_advisory_xact_lock_shared(2);
        END IF;
        RETURN NULL;
    END $$;
    CREATE CONSTRAINT TRIGGER t73_commit AFTER INSERT
        ON loyalty_transactions DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION t73_commit();
});

sub start {
    return CT::nginx_start(db => $db, workers => 1, pool => 1,
        queue => 256, timeout => '10s', @_);
}


# --- helpers -------------------------------------------------------------

# a write sent in the background: an Administrator's earn, or what path
# says (CT::async_req); by hand with headers (an Idempotency-Key) or on
# the internal routes (with the service key)
sub earn {
    my ($ng, $id, $body, %h) = @_;
    my $path = delete $h{path} // "/api/customers/$id/loyalty/earn";
    return CT::async_req($ng, POST => $path, $body)
        unless %h || $path =~ m{/internal/};

    my $json = JSON::PP->new->utf8->canonical->encode($body);
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $ng->port, Proto => 'tcp', Timeout => 5)
        or die "connect: $!\n";
    $h{$path =~ m{/internal/} ? 'X-Service-API-Key' : 'Authorization'} =
        $path =~ m{/internal/} ? $CT::SERVICE_KEYS[0]
            : 'Bearer ' . CT::admin_token();
    my $req = "POST $path HTTP/1.0\r\nHost: localhost\r\n"
        . "Content-Type: application/json\r\n"
        . 'Content-Length: ' . length($json) . "\r\n"
        . join('', map { "$_: $h{$_}\r\n" } sort keys %h) . "\r\n$json";
    syswrite($s, $req) == length $req or die "write: $!\n";
    return { sock => $s, t0 => time, buf => '', what => "POST $path" };
}

# a redeem, or the internal route's earn or redeem, in the background
sub change {
    my ($ng, $id, $how, $body) = @_;
    my ($internal, $kind) = $how =~ /^(internal )?(earn|redeem)\z/
        or die "change: $how\n";
    return earn($ng, $id, $body, path => '/api/customers/'
        . ($internal ? 'internal/' : '') . "$id/loyalty/$kind");
}

# every answer (HTTP/1.0: each ends when nginx closes), parsed in place:
# status, headers (lower-case names), body, json; a socket closed by the
# test (gone) is skipped
sub answers {
    my @reqs = grep { !$_->{gone} } @_;
    my %open = map { (0 + $_->{sock}) => $_ } @reqs;
    my $sel = IO::Select->new(map { $_->{sock} } @reqs);
    my $deadline = time + 30;

    while ($sel->count && (my $left = $deadline - time) > 0) {
        for my $s ($sel->can_read($left)) {
            my $a = $open{0 + $s};
            next if sysread($s, $a->{buf}, 65536, length $a->{buf});
            $sel->remove($s);
            close $s;
        }
    }
    for my $a (@reqs) {
        close $a->{sock};
        my ($head, $body) = split /\r\n\r\n/, $a->{buf}, 2;
        ($a->{status}) = ($head // '') =~ m{^HTTP/1\.\d (\d{3})};
        $a->{status} //= 0;
        $a->{headers} = { map { /^([^:]+):\s*(.*)$/ ? (lc $1 => $2) : () }
            split /\r\n/, $head // '' };
        $a->{body} = $body // '';
        $a->{json} = length $a->{body}
            ? eval { JSON::PP->new->utf8->decode($a->{body}) } : undef;
    }
    return @_;
}

# requests nginx has not read yet (CT::unread)
sub unread {
    my ($ng, @reqs) = @_;
    return CT::unread($ng, map { $_->{sock} } @reqs);
}

sub waiting_on_locks { CT::lock_waiters($db) }

# A batch: the gate (an earn of customer $gate waiting for advisory lock
# 1) holds the worker's only connection while $send->() sends earns;
# once nginx has read them all (and $before->() ran, if given) the lock
# is released. The gate's answer, then the earns sent.
sub batch {
    my ($ng, $name, $gate, $send, $before) = @_;
    my $s = CT::psql_session($db);
    $s->run('SELECT pg_advisory_lock(1)');
    my $g = earn($ng, $gate, { points => 1, reason => 'pause-1' });
    ok(CT::wait_for(sub { waiting_on_locks() == 1 }),
        "$name: the gate holds the connection");
    my @reqs = $send->();
    ok(CT::wait_for(sub { unread($ng, @reqs) == 0 }),
        "$name: nginx has read the " . @reqs . ' requests');
    $before->(@reqs) if $before;
    $s->run('SELECT pg_advisory_unlock(1)');
    $s->close;
    return ($g, @reqs);
}

# A batch held in PostgreSQL: advisory lock 2 taken (the member whose
# reason says pause-2 or wait-at-commit waits for it), the batch formed,
# the gate answered and the batch waiting on the lock; $waits names that
# last check. The session holding the lock, the gate, the earns.
sub held_batch {
    my ($ng, $name, $waits, $send) = @_;
    my $hold = CT::psql_session($db);
    $hold->run('SELECT pg_advisory_lock(2)');
    my ($g, @r) = batch($ng, $name, $GATE, $send);
    ok(CT::wait_for(sub { CT::async_answered($g) }),
        "$name: the gate answered");
    ok(CT::wait_for(sub { waiting_on_locks() == 1 }), "$name: $waits");
    return ($hold, $g, @r);
}

# the held batch's backend terminated
sub terminate_held {
    my ($name) = @_;
    is(scalar CT::sql($db, q{SELECT count(pg_terminate_backend(pid))
        FROM pg_stat_activity WHERE datname = current_database()
        AND application_name = 'nginx-customer'
        AND wait_event_type = 'Lock'}), 1, "$name: its backend terminated");
}

# how many ledger rows a customer has, its balance (or 'none')
sub ledger {
    my ($id) = @_;
    return scalar CT::sql($db, q{SELECT (SELECT count(*) FROM
        loyalty_transactions WHERE customer_id = :'p1') || ' ' ||
        coalesce((SELECT balance::text FROM loyalty_accounts
        WHERE customer_id = :'p1'), 'none')}, $id);
}

# distinct transactions (xmin) among the ledger rows of these customers,
# and the rows
sub xmins {
    my (@ids) = @_;
    my $in = join ',', map { "'$_'" } @ids;
    return split / /, scalar CT::sql($db, qq{SELECT
        count(DISTINCT xmin::text) || ' ' || count(*)
        FROM loyalty_transactions WHERE customer_id IN ($in)});
}

sub customers {
    my ($ng, $tag, $n) = @_;
    return map { (CT::make_customer($ng, $tag))[0] } 1 .. $n;
}

sub is_created {
    my ($r, $name) = @_;
    is($r->{status}, 201, "$name: 201") or diag($r->{body});
}

# earn i of @$r (customer $ids->[i], base + i points) for each i of @which:
# answered 201 with its one ledger row (written), or, its client gone,
# written at most once
sub written {
    my ($name, $r, $ids, $base, @which) = @_;
    for my $i (@which) {
        is_created($r->[$i], "$name: earn $i");
        is(ledger($ids->[$i]), '1 ' . ($base + $i), "$name: earn $i row");
    }
}

sub at_most_once {
    my ($name, $ids, $base, @which) = @_;
    for my $i (@which) {
        like(ledger($ids->[$i]), qr/^(0 none|1 ${\ ($base + $i)})\z/,
            "$name: earn $i written at most once");
    }
}


my $ng = start();
($GATE) = customers($ng, 'gate', 1);


# --- 1. the earns that waited commit together ------------------------------

{
    my @ids = customers($ng, 'together', 30);
    my ($g, @r) = batch($ng, 'together', $GATE, sub {
        map { earn($ng, $ids[$_ - 1], { points => $_,
            reason => "together $_" }) } 1 .. 30 });
    answers($g, @r);
    is_created($g, 'together: the gate');
    is(scalar(grep { $_->{status} == 201 } @r), 30,
        'together: all 30 answered 201')
        or diag(explain([ map { "$_->{status} $_->{body}" } @r ]));
    is(scalar(grep { my $d = $r[$_ - 1]{json}{data} // {};
            ($d->{customerId} // '') eq $ids[$_ - 1]
            && ($d->{balance} // 0) == $_ } 1 .. 30), 30,
        'together: each answered its own customer and balance');
    is(scalar(grep { ledger($ids[$_ - 1]) eq "1 $_" } 1 .. 30), 30,
        'together: one ledger row per earn, each account its points');
    my ($tx, $rows) = xmins(@ids);
    is($rows, 30, 'together: 30 ledger rows');
    cmp_ok($tx, '<', $rows,
        "together: written by fewer transactions than rows ($tx)");
    cmp_ok($tx, '>=', 30 / 8,
        'together: no batch larger than customer_db_pipeline (8)');
}


# --- 1b. redeems, and the service's routes, batch alike -----------------------
# Each customer has 100 points; its batch redeems 30, earns 5 and redeems
# 10 through the internal routes, and asks for a redeem of 200, which is
# refused (422) inside the batch without disturbing the rest.

{
    my @ids = customers($ng, 'mixed', 4);
    for my $id (@ids) {
        my ($r) = answers(earn($ng, $id, { points => 100 }));
        is_created($r, 'mixed: 100 points first');
    }
    my @plan = (['redeem', 30, 201], ['internal earn', 5, 201],
        ['redeem', 200, 422], ['internal redeem', 10, 201]);
    my ($g, @r) = batch($ng, 'mixed', $GATE, sub {
        map { my $id = $_;
            map { change($ng, $id, $_->[0], { points => $_->[1] }) } @plan
        } @ids });
    answers($g, @r);
    is_created($g, 'mixed: the gate');
    is_deeply([ map { $_->{status} } @r ],
        [ map { map { $_->[2] } @plan } @ids ],
        'mixed: 201, 201, 422, 201 for each customer')
        or diag(explain([ map { "$_->{status} $_->{body}" } @r ]));
    is(scalar(grep { ($_->{json}{message} // '') eq 'Insufficient points' }
        @r[grep { $_ % 4 == 2 } 0 .. $#r]), 4,
        'mixed: the 422s say Insufficient points');
    is_deeply([ map { $_->{json}{data}{balance} } @r[0 .. 3] ],
        [70, 75, undef, 65], 'mixed: the balances answered, in order');
    is(scalar(grep { ledger($_) eq '4 65' } @ids), 4,
        'mixed: each customer 4 ledger rows, balance 65');
    is(scalar CT::sql($db, q{SELECT count(*) FROM loyalty_transactions
        WHERE created_by = 'service'}), 8,
        'mixed: 8 rows written by the service');
    my $in = join ',', map { "'$_'" } @ids;
    my ($tx, $rows) = split / /, scalar CT::sql($db, qq{SELECT
        count(DISTINCT xmin::text) || ' ' || count(*)
        FROM loyalty_transactions WHERE customer_id IN ($in)
        AND created_at > (SELECT max(created_at) FROM loyalty_transactions
        WHERE customer_id = '$GATE')});
    is($rows, 12, 'mixed: 12 rows from the batch');
    cmp_ok($tx, '<', $rows,
        "mixed: written by fewer transactions than rows ($tx)");
}


# --- 2. a member that fails takes nobody else with it ------------------------

{
    # ten customers, two earns each; the first also gets an earn the
    # trigger refuses, in the middle of the batch
    my @ids = customers($ng, 'fails', 10);
    my (@want, $failing);
    my ($g, @r) = batch($ng, 'one fails', $GATE, sub {
        my @sent;
        for my $i (0 .. 19) {
            my $id = $ids[$i % 10];
            my $points = $i < 10 ? 100 * ($i + 1) : $i + 1;
            push @sent, earn($ng, $id, { points => $points,
                reason => "fails $i" });
            $sent[-1]{points} = $points;
            $sent[-1]{id} = $id;
            if ($i == 9) {
                $failing = earn($ng, $ids[0], { points => 5000,
                    reason => 'fail-me' });
                push @sent, $failing;
            }
        }
        return @sent;
    });
    answers($g, @r);
    is_created($g, 'one fails: the gate');
    ok($failing->{status} >= 500 && $failing->{status} < 600,
        "one fails: the refused earn is a 5xx ($failing->{status})")
        or diag($failing->{body});
    is_error($failing, $failing->{status}, undef, undef,
        'one fails: the refused earn');
    my @others = grep { $_ != $failing } @r;
    is(scalar(grep { $_->{status} == 201 } @others), 20,
        'one fails: the 20 others 201')
        or diag(explain([ map { "$_->{status} $_->{body}" } @others ]));
    for my $k (0 .. 9) {
        my $want = 100 * ($k + 1) + $k + 11;
        is(ledger($ids[$k]), "2 $want",
            "one fails: customer $k has its two rows, balance $want");
    }
    is(scalar CT::sql($db, q{SELECT count(*) FROM loyalty_transactions
        WHERE reason = 'fail-me'}), 0, 'one fails: no row of the refused');
}


# --- 3. a deadlock victim is run again --------------------------------------

{
    my @ids = customers($ng, 'victim', 6);
    my ($g, @r) = batch($ng, 'victim', $GATE, sub {
        map { earn($ng, $ids[$_], { points => 10 + $_,
            reason => $_ == 2 ? 'once' : "victim $_" }) } 0 .. 5 });
    answers($g, @r);
    is_created($g, 'victim: the gate');
    is_created($r[2], 'victim: the deadlock victim');
    is($r[2]{json}{data}{balance}, 12, 'victim: its balance');
    is(scalar(grep { $_->{status} == 201 } @r), 6, 'victim: all six 201')
        or diag(explain([ map { "$_->{status} $_->{body}" } @r ]));
    is(scalar(grep { ledger($ids[$_]) eq '1 ' . (10 + $_) } 0 .. 5), 6,
        'victim: one ledger row each, each account its points');
    is(scalar CT::sql($db, q{SELECT last_value FROM t73_once}), 2,
        'victim: the trigger saw the victim twice (it was sent again)');
}

# a victim that ran alone was rolled back all the same: it is sent again
{
    my ($id) = customers($ng, 'lone-victim', 1);
    CT::sql($db, q{SELECT setval('t73_once', 1, false)});
    my $r = $ng->req(POST => "/api/customers/$id/loyalty/earn",
        json => { points => 7, reason => 'once' });
    is_created($r, 'lone victim');
    is(ledger($id), '1 7', 'lone victim: one ledger row, its points');
    is(scalar CT::sql($db, q{SELECT last_value FROM t73_once}), 2,
        'lone victim: it ran twice');
}

# --- 3b. the members sent again run in the order they were sent -------------

# Two redeems of the same 100 points in a batch that a third member
# fails: both are rolled back and sent again, the first sent first, so
# the first is the one that gets the points and the second is refused.
{
    my ($id, $other) = customers($ng, 'order', 2);
    is_created($ng->req(POST => "/api/customers/$id/loyalty/earn",
        json => { points => 100, reason => 'stock' }), 'order: 100 points');
    my ($g, @r) = batch($ng, 'order', $GATE, sub {
        (change($ng, $id, 'redeem', { points => 100, reason => 'first' }),
         earn($ng, $other, { points => 5, reason => 'fail-me' }),
         change($ng, $id, 'redeem', { points => 100, reason => 'second' }))
    });
    answers($g, @r);
    is_created($r[0], 'order: the first redeem');
    is($r[1]{status}, 500, 'order: the member that fails')
        or diag($r[1]{body});
    is($r[2]{status}, 422, 'order: the second redeem is the one refused')
        or diag($r[2]{body});
    is(scalar CT::sql($db, q{SELECT string_agg(reason, ',' ORDER BY
        created_at) FROM loyalty_transactions WHERE customer_id = :'p1'},
        $id), 'stock,first', 'order: the ledger has the first redeem');
}


# --- 4. the connection is lost with a batch in flight -------------------------
# The last member waits (lock 2) after the others have run: their results
# are in PostgreSQL's output buffer, and the backend's termination
# message flushes them to the module right before the connection ends.
# Nothing was committed, so nothing may be answered 201; it may have
# been, as far as the module can know, so nothing is sent again.

{
    my @ids = customers($ng, 'lost', 5);
    my ($hold, $g, @r) = held_batch($ng, 'lost',
        'the batch waits in PostgreSQL',
        sub {
            map { earn($ng, $ids[$_], { points => 20 + $_,
                reason => $_ == 4 ? 'pause-2' : "lost $_" }) } 0 .. 4 });
    terminate_held('lost');
    $hold->run('SELECT pg_advisory_unlock(2)');
    $hold->close;
    answers($g, @r);
    is_created($g, 'lost: the gate');
    for my $i (0 .. 4) {
        is_error($r[$i], 503, 'Outcome unknown', ['database'],
            "lost: member $i");
    }
    is(scalar(grep { ledger($_) eq '0 none' } @ids), 5,
        'lost: no ledger row, no account of any member');

    my @next = answers(map { earn($ng, $ids[$_], { points => 30 + $_ }) }
        0 .. 4);
    is(scalar(grep { $_->{status} == 201 } @next), 5,
        'lost: the next earns 201')
        or diag(explain([ map { "$_->{status} $_->{body}" } @next ]));
    is(scalar(grep { ledger($ids[$_]) eq '1 ' . (30 + $_) } 0 .. 4), 5,
        'lost: each written once, nothing of the lost batch');
}


{
    # the same, the batch's commit under way: every member's result has
    # come, the commit waits (lock 2) when the backend is terminated
    my @ids = customers($ng, 'lost-commit', 4);
    my ($hold, $g, @r) = held_batch($ng, 'lost at commit',
        'the commit waits',
        sub {
            map { earn($ng, $ids[$_], { points => 40 + $_,
                reason => $_ == 1 ? 'wait-at-commit' : "lost at commit $_" })
            } 0 .. 3 });
    terminate_held('lost at commit');
    $hold->run('SELECT pg_advisory_unlock(2)');
    $hold->close;
    answers($g, @r);
    is_created($g, 'lost at commit: the gate');
    for my $i (0 .. 3) {
        is_error($r[$i], 503, 'Outcome unknown', ['database'],
            "lost at commit: member $i");
    }
    is(scalar(grep { ledger($_) eq '0 none' } @ids), 4,
        'lost at commit: nothing of the batch written');
}


# --- 5. an Idempotency-Key twice in one batch ---------------------------------

{
    my @ids = customers($ng, 'keyed', 3);
    my ($g, @r) = batch($ng, 'keyed', $GATE, sub {
        (earn($ng, $ids[1], { points => 3 }),
         earn($ng, $ids[0], { points => 40, reason => 'keyed' },
             'Idempotency-Key' => 'batch-key'),
         earn($ng, $ids[2], { points => 4 }),
         earn($ng, $ids[0], { points => 40, reason => 'keyed' },
             'Idempotency-Key' => 'batch-key')) });
    answers($g, @r);
    is_created($g, 'keyed: the gate');
    is(scalar(grep { $_->{status} == 201 } @r), 4, 'keyed: all four 201')
        or diag(explain([ map { "$_->{status} $_->{body}" } @r ]));
    my ($a, $b) = @r[1, 3];
    like($a->{json}{data}{transactionId} // '', $UUID,
        'keyed: a transactionId');
    is($b->{json}{data}{transactionId}, $a->{json}{data}{transactionId},
        'keyed: both answers the same transaction');
    is($b->{body}, $a->{body}, 'keyed: the same answer');
    is(join(',', sort map { $_->{headers}{'idempotent-replayed'} // '-' }
        $a, $b), '-,true', 'keyed: one of them marked Idempotent-Replayed');
    is(ledger($ids[0]), '1 40', 'keyed: one ledger row, the points once');
    is(ledger($ids[1]) . ', ' . ledger($ids[2]), '1 3, 1 4',
        'keyed: the others written');
}


# --- 6. clients that go away ------------------------------------------------
# nginx reads nothing more from a request it has read whole, so it does
# not notice such a client leave before it writes the answer (the access
# log says 201, not 499): the earn still goes out with its batch. What
# counts is that the others are answered and written as ever, and the
# one gone at most once.

sub gone {
    my ($r) = @_;
    close $r->{sock};
    $r->{gone} = 1;
}

{
    # while their earns wait in the pool for the connection
    my @ids = customers($ng, 'queued-gone', 8);
    my ($g, @r) = batch($ng, 'gone queued', $GATE, sub {
        map { earn($ng, $ids[$_], { points => 50 + $_ }) } 0 .. 7 },
        sub { gone($_[$_]) for 2, 5 });
    answers($g, @r);
    is_created($g, 'gone queued: the gate');
    written('gone queued', \@r, \@ids, 50, 0, 1, 3, 4, 6, 7);
    at_most_once('gone queued', \@ids, 50, 2, 5);
}

{
    # while their batch runs in PostgreSQL (its first member waits)
    my @ids = customers($ng, 'sent-gone', 6);
    my ($hold, $g, @r) = held_batch($ng, 'gone sent',
        'the batch waits in PostgreSQL',
        sub {
            map { earn($ng, $ids[$_], { points => 60 + $_,
                reason => $_ == 0 ? 'pause-2' : "sent $_" }) } 0 .. 5 });
    gone($r[$_]) for 1, 4;
    $hold->run('SELECT pg_advisory_unlock(2)');
    $hold->close;
    answers($g, @r);
    written('gone sent', \@r, \@ids, 60, 0, 2, 3, 5);
    at_most_once('gone sent', \@ids, 60, 1, 4);
}

{
    # one goes away while its batch runs, another fails the batch: the
    # rest are sent again
    my @ids = customers($ng, 'gone-fails', 5);
    my ($hold, $g, @r) = held_batch($ng, 'gone and fails',
        'the batch waits in PostgreSQL',
        sub {
            map { earn($ng, $ids[$_], { points => 70 + $_,
                reason => $_ == 0 ? 'pause-2'
                    : $_ == 3 ? 'fail-me' : "gf $_" })
            } 0 .. 4 });
    gone($r[1]);
    $hold->run('SELECT pg_advisory_unlock(2)');
    $hold->close;
    answers($g, @r);
    is($r[3]{status}, 500, 'gone and fails: the refused earn 500')
        or diag($r[3]{body});
    written('gone and fails', \@r, \@ids, 70, 0, 2, 4);
    is(ledger($ids[3]), '0 none', 'gone and fails: nothing of the refused');
    at_most_once('gone and fails', \@ids, 70, 1);
}

# --- 7. the commit itself fails ---------------------------------------------
# A deferred trigger refuses one member at commit, after every member's
# result has come: nothing of the batch committed, so nobody may be
# answered 201 from it; the members are sent again alone, and only the
# refused one fails.

{
    my @ids = customers($ng, 'commit', 5);
    my ($g, @r) = batch($ng, 'commit fails', $GATE, sub {
        map { earn($ng, $ids[$_], { points => 80 + $_,
            reason => $_ == 2 ? 'fail-at-commit' : "commit $_" }) } 0 .. 4 });
    answers($g, @r);
    is_created($g, 'commit fails: the gate');
    is($r[2]{status}, 500, 'commit fails: the refused earn 500')
        or diag($r[2]{body});
    is_error($r[2], 500, 'Internal server error', ['server'],
        'commit fails: the refused earn');
    for my $i (0, 1, 3, 4) {
        is_created($r[$i], "commit fails: earn $i");
        is(ledger($ids[$i]), '1 ' . (80 + $i), "commit fails: earn $i row");
    }
    is(ledger($ids[2]), '0 none', 'commit fails: nothing of the refused');

    # and alone, without a batch
    my ($r) = answers(earn($ng, $ids[2], { points => 1,
        reason => 'fail-at-commit' }));
    is($r->{status}, 500, 'commit fails alone: 500') or diag($r->{body});
    is(ledger($ids[2]), '0 none', 'commit fails alone: nothing written');
}


# --- 8. reads and other writes waiting among the earns ------------------------
# They keep their own way (reads in batches of reads, a note alone); the
# earns around them still commit together.

{
    my @ids = customers($ng, 'among', 6);
    my ($g, @r) = batch($ng, 'among', $GATE, sub {
        map { (earn($ng, $ids[$_], { points => 90 + $_ }),
               $_ % 2
                 ? CT::async_req($ng, GET => "/api/customers/$ids[$_]")
                 : CT::async_req($ng, POST => "/api/customers/$ids[$_]/notes",
                       { content => "among $_" })) } 0 .. 5 });
    answers($g, @r);
    is_created($g, 'among: the gate');
    for my $i (0 .. 5) {
        my ($e, $o) = @r[2 * $i, 2 * $i + 1];
        is_created($e, "among: earn $i");
        is($e->{json}{data}{balance}, 90 + $i, "among: earn $i balance");
        is($o->{status}, $i % 2 ? 200 : 201,
            "among: the " . ($i % 2 ? 'read' : 'note') . " after earn $i")
            or diag($o->{body});
        is(ledger($ids[$i]), '1 ' . (90 + $i), "among: earn $i row");
    }
    is(scalar CT::sql($db, q{SELECT count(*) FROM customer_notes
        WHERE content LIKE 'among %'}), 3, 'among: the three notes');
    my ($tx, $rows) = xmins(@ids);
    cmp_ok($tx, '<', $rows,
        "among: the earns written by fewer transactions ($tx)");
}


# --- 8b. an earn far behind the first is not looked for -----------------------
# Filling a batch looks at the next 64 waiting requests, not the whole
# queue: with 70 reads between two earns, each earn commits alone, and
# every read and earn is answered as ever.

{
    my @ids = customers($ng, 'far', 2);
    my ($g, @r) = batch($ng, 'far', $GATE, sub {
        (earn($ng, $ids[0], { points => 11 }),
         (map { CT::async_req($ng, GET => "/api/customers/$ids[0]/loyalty") }
            1 .. 70),
         earn($ng, $ids[1], { points => 12 })) });
    answers($g, @r);
    is_created($g, 'far: the gate');
    written('far', [ @r[0, -1] ], \@ids, 11, 0, 1);
    is(scalar(grep { $_->{status} == 200 } @r[1 .. 70]), 70,
        'far: the 70 reads between them answered 200');
    my ($tx, $rows) = xmins(@ids);
    is("$tx $rows", '2 2', 'far: the two earns in two transactions');
}


# --- afterwards: the pool is idle, and serves ---------------------------------

{
    my $pool;
    ok(CT::wait_for(sub {
        $pool = $ng->req(GET => '/health')->{json}{data}{pool};
        $pool && $pool->{inFlight} == 0 && $pool->{waiting} == 0 }),
        'afterwards: nothing in flight or waiting')
        or diag(explain($pool));
    my ($id) = customers($ng, 'after', 1);
    my ($r) = answers(earn($ng, $id, { points => 7 }));
    is_created($r, 'afterwards: an earn');
}
$ng->stop;


# --- 9. a member times out while its batch waits in PostgreSQL ---------------
# customer_db_timeout runs out for the batch's members while its last one
# waits (lock 2): the connection is dropped and its backend terminated,
# so that the batch cannot commit later; every member is "Outcome
# unknown", and nothing of it is written even once the lock is free.

{
    my $short = start(timeout => '3s',
        allow_log => qr/PostgreSQL query timed out|terminated PostgreSQL/);
    my @ids = customers($short, 'timeout', 4);
    my $hold = CT::psql_session($db);
    $hold->run('SELECT pg_advisory_lock(2)');
    my ($g, @r) = batch($short, 'timeout', $GATE, sub {
        map { earn($short, $ids[$_], { points => 100 + $_,
            reason => $_ == 3 ? 'pause-2' : "timeout $_" }) } 0 .. 3 });
    answers($g, @r);
    is_created($g, 'timeout: the gate');
    for my $i (0 .. 3) {
        is_error($r[$i], 503, 'Outcome unknown', ['database'],
            "timeout: member $i");
    }
    ok(CT::wait_for(sub { waiting_on_locks() == 0 }),
        'timeout: the batch\'s backend was terminated');
    $hold->run('SELECT pg_advisory_unlock(2)');
    $hold->close;
    is(scalar(grep { ledger($_) eq '0 none' } @ids), 4,
        'timeout: nothing of the batch written');
    my @next = answers(map { earn($short, $ids[$_], { points => 1 }) }
        0 .. 3);
    is(scalar(grep { $_->{status} == 201 } @next), 4,
        'timeout: the next earns 201');
    is(scalar(grep { ledger($_) eq '1 1' } @ids), 4,
        'timeout: each written once');
    $short->stop;
}


# --- 10. one key in two batches on two connections --------------------------
# Two connections, batches of 3, each held by a gate of its own (locks 1
# and 3). The first batch writes the key and then waits (lock 2) before
# its commit; only then is the second connection let go, and its batch's
# use of the key waits on the first's rows; once the first commits it
# finds the key taken: its transaction fails. Its other members are sent
# again, and the keyed earn is run again and replays the first's answer.

{
    my $two = start(pool => 2,
        http_extra => "    customer_db_pipeline 3;\n");
    my ($gate2) = customers($two, 'gate', 1);
    my @ids = customers($two, 'two', 4);
    my $key = 'two-batches';
    my $s = CT::psql_session($db);
    $s->run("SELECT pg_advisory_lock($_)") for 1, 2, 3;
    my @gates = (earn($two, $GATE, { points => 1, reason => 'pause-1' }),
        earn($two, $gate2, { points => 1, reason => 'pause-3' }));
    ok(CT::wait_for(sub { waiting_on_locks() == 2 }),
        'two batches: the gates hold both connections');
    # one at a time, so that they wait in this order
    my @plan = ([0, 'keyed', $key], [1, 'two 1'], [2, 'pause-2'],
        [0, 'keyed', $key], [3, 'two 3'], [1, 'two 1b']);
    my @r;
    for my $p (@plan) {
        my ($i, $reason, $k) = @$p;
        push @r, earn($two, $ids[$i], { points => 5, reason => $reason },
            $k ? ('Idempotency-Key' => $k) : ());
        ok(CT::wait_for(sub { unread($two, $r[-1]) == 0 }),
            "two batches: earn " . $#r . ' read');
    }
    $s->run('SELECT pg_advisory_unlock(1)');
    ok(CT::wait_for(sub { CT::async_answered($gates[0])
            && waiting_on_locks() == 2 }),
        'two batches: the first batch waits on lock 2');
    $s->run('SELECT pg_advisory_unlock(3)');
    ok(CT::wait_for(sub { CT::async_answered($gates[1])
            && waiting_on_locks() == 2 }),
        'two batches: the second waits on the first\'s rows');
    $s->run('SELECT pg_advisory_unlock(2)');
    $s->close;
    answers(@gates, @r);
    is_created($_, 'two batches: a gate') for @gates;
    is(scalar(grep { $_->{status} == 201 } @r), 6, 'two batches: all 201')
        or diag(explain([ map { "$_->{status} $_->{body}" } @r ]));
    is($r[3]{json}{data}{transactionId}, $r[0]{json}{data}{transactionId},
        'two batches: the key answers one transaction');
    is($r[3]{headers}{'idempotent-replayed'}, 'true',
        'two batches: the second use replayed');
    is(ledger($ids[0]), '1 5', 'two batches: the key written once');
    is(ledger($ids[1]), '2 10', 'two batches: both earns of customer 1');
    is(ledger($ids[2]) . ', ' . ledger($ids[3]), '1 5, 1 5',
        'two batches: the others written once');
    $two->stop;
}


# --- customer_db_pipeline 1: every earn its own transaction -------------------

{
    my $one = start(http_extra => "    customer_db_pipeline 1;\n");
    my @ids = customers($one, 'single', 10);
    my ($g, @r) = batch($one, 'pipeline 1', $GATE, sub {
        map { earn($one, $ids[$_ - 1], { points => $_ }) } 1 .. 10 });
    answers($g, @r);
    is(scalar(grep { $_->{status} == 201 } @r), 10,
        'pipeline 1: all 10 answered 201');
    my ($tx, $rows) = xmins(@ids);
    is("$tx $rows", '10 10', 'pipeline 1: each row its own transaction');
}

done_testing();
