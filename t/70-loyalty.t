# Loyalty points: the account and its tier, earn and redeem in
# one statement each (the balance never goes negative, even under
# concurrent redeems), Idempotency-Key replays, roles, and the ledger's
# paged list with its filters.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use File::Temp qw(tempdir);
use POSIX ();

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db, workers => 2, pool => 8, queue => 512);

my @RESULT_KEYS = sort qw(transactionId customerId kind points balance
    lifetimePoints tier createdAt);


# --- helpers -------------------------------------------------------------

sub make_customer { CT::make_customer($ng, 'loyalty') }

sub change {
    my ($id, $kind, $body, %o) = @_;
    my $p = $o{internal} ? "/api/customers/internal/$id/loyalty/$kind"
                         : "/api/customers/$id/loyalty/$kind";
    return $ng->req(POST => $p, json => $body,
        $o{key} ? (headers => { 'Idempotency-Key' => $o{key} }) : (),
        $o{internal} ? (auth => 'service') : (),
        defined $o{auth} ? (auth => $o{auth}) : ());
}

sub account {
    my ($id, %o) = @_;
    return $ng->req(GET => "/api/customers/$id/loyalty", %o);
}

sub counts {
    my ($id) = @_;
    return scalar CT::sql($db, q{SELECT (SELECT count(*) FROM
        loyalty_transactions WHERE customer_id = :'p1') || ' ' ||
        coalesce((SELECT balance || ' ' || lifetime_points FROM
        loyalty_accounts WHERE customer_id = :'p1'), 'none')}, $id);
}

# N requests at once (forked); each CODE returns the response; the
# answers ({status, body}) in order
sub parallel {
    my (@subs) = @_;
    my $dir = tempdir(CLEANUP => 1);
    my @pids;
    for my $i (0 .. $#subs) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            my $r = eval { $subs[$i]->() } // { status => 0, body => "$@" };
            open my $fh, '>', "$dir/$i" or POSIX::_exit(1);
            print $fh "$r->{status}\n"
                . ($r->{headers}{'idempotent-replayed'} // '') . "\n"
                . $r->{body};
            close $fh;
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    waitpid($_, 0) for @pids;
    my @out;
    for my $i (0 .. $#subs) {
        open my $fh, '<', "$dir/$i" or die "no answer $i";
        local $/;
        my ($status, $replayed, $body) = split /\n/, <$fh>, 3;
        push @out, { status => $status, body => $body, headers =>
            length $replayed ? { 'idempotent-replayed' => $replayed } : {} };
    }
    return @out;
}


my ($ID, $SUB) = make_customer();
my ($OTHER, $OTHER_SUB) = make_customer();


# --- the empty account ---------------------------------------------------

{
    my $r = account($ID);
    is($r->{status}, 200, 'GET loyalty: 200') or diag($r->{body});
    is_deeply($r->{json}{data}, { customerId => $ID, balance => 0,
        lifetimePoints => 0, tier => 'Bronze', nextTier => 'Silver',
        pointsToNextTier => 1000 }, 'GET loyalty: zeros without an account');
    is(account($MISSING)->{status}, 404, 'GET loyalty: unknown id 404');
    is(account('nope')->{status}, 400, 'GET loyalty: bad id 400');
}


# --- earn, redeem, tiers ---------------------------------------------------

{
    my $r = change($ID, 'earn', { points => 600, reason => 'Order',
        reference => 'ORD-1' });
    my $d = CT::is_success($r, 201, 'Points earned successfully',
        \@RESULT_KEYS, 'earn');
    like($d->{transactionId} // '', $UUID, 'earn: transactionId');
    is($d->{customerId}, $ID, 'earn: customerId');
    is($d->{kind}, 'earn', 'earn: kind');
    is($d->{points}, 600, 'earn: points');
    is($d->{balance}, 600, 'earn: balance');
    is($d->{lifetimePoints}, 600, 'earn: lifetimePoints');
    is($d->{tier}, 'Bronze', 'earn: tier');
    like($d->{createdAt} // '', $TS, 'earn: createdAt');

    $r = change($ID, 'earn', { points => 500 });
    is($r->{json}{data}{tier}, 'Silver', 'earn: 1100 lifetime is Silver');

    $r = change($ID, 'redeem', { points => 300, reason => 'Coupon' });
    is($r->{status}, 201, 'redeem: 201') or diag($r->{body});
    is($r->{json}{message}, 'Points redeemed successfully',
        'redeem: message');
    is($r->{json}{data}{balance}, 800, 'redeem: balance 800');
    is($r->{json}{data}{lifetimePoints}, 1100,
        'redeem: lifetime points unchanged');
    is($r->{json}{data}{tier}, 'Silver', 'redeem: tier stays');

    $r = account($ID);
    is_deeply($r->{json}{data}, { customerId => $ID, balance => 800,
        lifetimePoints => 1100, tier => 'Silver', nextTier => 'Gold',
        pointsToNextTier => 3900 }, 'GET loyalty: after earn and redeem');

    change($ID, 'earn', { points => 3900 });
    is(account($ID)->{json}{data}{tier}, 'Gold', 'tier: 5000 is Gold');
    change($ID, 'earn', { points => 15000 });
    $r = account($ID);
    is($r->{json}{data}{tier}, 'Platinum', 'tier: 20000 is Platinum');
    ok(exists $r->{json}{data}{nextTier}
        && !defined $r->{json}{data}{nextTier}, 'Platinum: nextTier null');
    ok(!defined $r->{json}{data}{pointsToNextTier},
        'Platinum: pointsToNextTier null');

    my $row = CT::sql($db, q{SELECT kind || ' ' || points || ' ' ||
        balance_after || ' ' || created_by || ' ' || coalesce(reference, '')
        FROM loyalty_transactions WHERE customer_id = :'p1'
        ORDER BY created_at LIMIT 1}, $ID);
    is($row, 'earn 600 600 admin-user ORD-1', 'ledger: the first row');
}


# --- 422s write nothing ------------------------------------------------------

{
    my ($id) = make_customer();
    change($id, 'earn', { points => 10 });
    my $before = counts($id);
    my $r = change($id, 'redeem', { points => 11 });
    is($r->{status}, 422, 'redeem more than the balance: 422')
        or diag($r->{body});
    is($r->{json}{message}, 'Insufficient points', '... message');
    is(counts($id), $before, '... nothing written');

    my ($empty) = make_customer();
    $r = change($empty, 'redeem', { points => 1 });
    is($r->{status}, 422, 'redeem without an account: 422');
    is(counts($empty), '0 none', '... nothing written');

    for my $status (qw(Inactive Suspended)) {
        CT::sql($db, q{UPDATE customers SET customer_status = :'p2'
            WHERE id = :'p1'}, $id, $status);
        for my $kind (qw(earn redeem)) {
            $r = change($id, $kind, { points => 1 });
            is($r->{status}, 422, "$kind when $status: 422");
            is($r->{json}{message}, 'Customer is not active',
                "$kind when $status: message");
            is(counts($id), $before, "$kind when $status: nothing written");
        }
    }
    CT::sql($db, q{UPDATE customers SET customer_status = 'Active'
        WHERE id = :'p1'}, $id);

    is(change($MISSING, 'earn', { points => 1 })->{status}, 404,
        'earn: unknown customer 404');
}


# --- validation ------------------------------------------------------------

{
    my ($id) = make_customer();
    my @bad = (
        [ {}, ['points'], 'points missing' ],
        CT::bad_values(points => [0, '0'], [-5, 'negative'],
            [1000001, 'too large'], [1.5, 'fraction'], ['5', 'a string'],
            [undef, 'null']),
        [ { points => 5, reason => 'x' x 501 }, ['reason'], 'reason long' ],
        [ { points => 5, reason => 5 }, ['reason'], 'reason a number' ],
        [ { points => 5, reference => 'x' x 101 }, ['reference'],
          'reference long' ],
        [ { points => 5, extra => 1 }, ['extra'], 'unknown field' ],
    );
    for my $kind (qw(earn redeem)) {
        for my $c (@bad) {
            my ($body, $fields, $name) = @$c;
            my $r = change($id, $kind, $body);
            is($r->{status}, 400, "$kind $name: 400") or diag($r->{body});
            is_deeply([ map { $_->{field} } @{ $r->{json}{errors} // [] } ],
                $fields, "$kind $name: names @$fields") or diag($r->{body});
        }
    }
    my $r = change('nope', 'earn', { points => 5 });
    is($r->{status}, 400, 'earn: bad id 400');
    for my $key ('', 'x' x 101) {
        $r = $ng->req(POST => "/api/customers/$id/loyalty/earn",
            json => { points => 5 },
            headers => { 'Idempotency-Key' => $key });
        is($r->{status}, 400, 'bad Idempotency-Key (' . length($key)
            . ' chars): 400');
    }
    my $raw = $ng->raw("POST /api/customers/$id/loyalty/earn HTTP/1.0\r\n"
        . 'Authorization: Bearer ' . CT::admin_token() . "\r\n"
        . "Content-Type: application/json\r\nContent-Length: 12\r\n"
        . "Idempotency-Key: caf\xc3\xa9\r\n\r\n{\"points\":5}");
    like($raw, qr{^HTTP/1\.\d 400 }, 'non-ASCII Idempotency-Key: 400');
    $r = change($id, 'earn', { points => 5 }, key => 'k' x 100);
    is($r->{status}, 201, 'Idempotency-Key of 100 characters: 201');
    $r = $ng->req(POST => "/api/customers/$id/loyalty/earn",
        body => 'not json',
        headers => { 'Content-Type' => 'application/json' });
    is($r->{status}, 400, 'earn: malformed JSON 400');
    is(counts($id), '1 5 5', 'validation: nothing else written');
}


# --- roles -----------------------------------------------------------------

{
    my $own = CT::customer_token($SUB);
    my $r = account($ID, auth => $own);
    is($r->{status}, 200, 'Customer GET own loyalty: 200');
    is(account($OTHER, auth => $own)->{status}, 404,
        "Customer GET another's loyalty: 404");
    is($ng->req(GET => "/api/customers/$ID/loyalty/transactions",
        auth => $own)->{status}, 200, 'Customer GET own transactions: 200');
    is($ng->req(GET => "/api/customers/$OTHER/loyalty/transactions",
        auth => $own)->{status}, 404, "Customer GET another's ledger: 404");
    for my $kind (qw(earn redeem)) {
        is(change($ID, $kind, { points => 1 }, auth => $own)->{status}, 403,
            "Customer POST $kind: 403");
        is(change($ID, $kind, { points => 1 }, auth => 'service')->{status},
            401, "service key on the admin $kind route: 401");
        is(change($ID, $kind, { points => 1 }, internal => 1,
            auth => 'none')->{status}, 401,
            "internal $kind without a key: 401");
    }
    is(account($ID, auth => 'service')->{status}, 401,
        'service key on GET loyalty: 401');

    my ($id) = make_customer();
    $r = change($id, 'earn', { points => 50 }, internal => 1);
    is($r->{status}, 201, 'service key: internal earn 201')
        or diag($r->{body});
    $r = change($id, 'redeem', { points => 20 }, internal => 1);
    is($r->{status}, 201, 'service key: internal redeem 201');
    is($r->{json}{data}{balance}, 30, '... balance 30');
    is(CT::sql($db, q{SELECT string_agg(DISTINCT created_by, ',') FROM
        loyalty_transactions WHERE customer_id = :'p1'}, $id), 'service',
        'internal: created_by service');
    $r = $ng->req(POST => "/api/customers/internal/$id/loyalty/earn",
        json => { points => 1 });
    is($r->{status}, 401, 'internal earn with a bearer token: 401');
}


# --- concurrency: 200 redeems of 10 against 1000 ------------------------------

{
    my ($id) = make_customer();
    change($id, 'earn', { points => 1000 });
    my @r = parallel(map { sub { change($id, 'redeem', { points => 10 }) } }
        1 .. 200);
    my $ok = grep { $_->{status} == 201 } @r;
    my $no = grep { $_->{status} == 422 } @r;
    is($ok, 100, '200 concurrent redeems: exactly 100 succeed');
    is($no, 100, '200 concurrent redeems: the rest 422');
    is(counts($id), '101 0 1000', 'balance 0, 101 ledger rows');
    is(CT::sql($db, q{SELECT sum(CASE kind WHEN 'earn' THEN points
        ELSE -points END) FROM loyalty_transactions
        WHERE customer_id = :'p1'}, $id), 0, 'the ledger sums to 0');
    is(CT::sql($db, q{SELECT count(*) FROM loyalty_transactions
        WHERE customer_id = :'p1' AND balance_after < 0}, $id), 0,
        'never negative');
    my @after = sort { $a <=> $b } map {
        JSON::PP->new->decode($_->{body})->{data}{balance} }
        grep { $_->{status} == 201 } @r;
    is_deeply(\@after, [ map { $_ * 10 } 0 .. 99 ],
        'each success saw a distinct balance');
}


# --- concurrency: mixed earns and redeems ---------

{
    my ($id) = make_customer();
    change($id, 'earn', { points => 100 });
    my @r = parallel(map {
        my $i = $_;
        $i % 2 ? sub { change($id, 'earn', { points => 7 }) }
               : sub { change($id, 'redeem', { points => 13 }) }
    } 1 .. 100);
    my $earned = grep { $_->{status} == 201 }
        @r[grep { $_ % 2 == 0 } 0 .. 99];
    my $redeemed = grep { $_->{status} == 201 } @r[grep { $_ % 2 } 0 .. 99];
    is($earned, 50, 'mixed: every earn succeeds');
    ok(!grep({ $_->{status} != 201 && $_->{status} != 422 } @r),
        'mixed: only 201 and 422');
    my $want = 100 + 50 * 7 - 13 * $redeemed;
    my ($bal) = split / /, (split / /, counts($id), 2)[1];
    is($bal, $want, "mixed: balance is 100 + 350 - 13 x $redeemed");
    is(CT::sql($db, q{SELECT sum(CASE kind WHEN 'earn' THEN points
        ELSE -points END) FROM loyalty_transactions
        WHERE customer_id = :'p1'}, $id), $want, 'mixed: the ledger sums');
    is(CT::sql($db, q{SELECT count(*) FROM loyalty_transactions
        WHERE customer_id = :'p1' AND balance_after < 0}, $id), 0,
        'mixed: never negative');
}


# --- Idempotency-Key --------------------------------------------------------

{
    my ($id) = make_customer();
    change($id, 'earn', { points => 100 });
    my @r = parallel(map { sub { change($id, 'redeem',
        { points => 60, reason => 'r' }, key => 'same-key') } } 1 .. 20);
    is(CT::sql($db, q{SELECT count(*) FROM loyalty_transactions
        WHERE customer_id = :'p1' AND kind = 'redeem'}, $id), 1,
        '20 concurrent with one key: one ledger row');
    is(scalar(grep { $_->{status} == 201 } @r), 20, '... all 201');
    is(scalar(keys %{ { map { ($_->{body} => 1) } @r } }), 1,
        '... all 20 answers identical');
    is(scalar(grep { ($_->{headers}{'idempotent-replayed'} // '') eq 'true' }
        @r), 19, '... 19 of them marked Idempotent-Replayed: true');
    is(counts($id), '2 40 100', '... balance 40');

    # a replay, member order and spacing aside
    my $r = $ng->req(POST => "/api/customers/$id/loyalty/redeem",
        body => '{ "reason": "r",  "points": 60 }',
        headers => { 'Content-Type' => 'application/json',
                     'Idempotency-Key' => 'same-key' });
    is($r->{status}, 201, 'replay: 201');
    is($r->{body}, $r[0]{body}, 'replay: the first answer');
    is($r->{headers}{'idempotent-replayed'}, 'true',
        'replay: Idempotent-Replayed: true');
    is(counts($id), '2 40 100', 'replay: nothing written');

    $r = change($id, 'redeem', { points => 61, reason => 'r' },
        key => 'same-key');
    is($r->{status}, 409, 'same key, other body: 409');
    ok(!exists $r->{headers}{'idempotent-replayed'},
        'same key, other body: not marked replayed');
    is($r->{json}{message},
        'Idempotency key reused with a different request', '... message');
    $r = change($id, 'earn', { points => 60, reason => 'r' },
        key => 'same-key');
    is($r->{status}, 409, 'same key, other kind: 409');
    is(counts($id), '2 40 100', '409: nothing written');

    # the key belongs to the customer
    $r = change($OTHER, 'earn', { points => 60, reason => 'r' },
        key => 'same-key');
    is($r->{status}, 201, 'same key on another customer: its own');

    # a 422 under a key is its answer too
    $r = change($id, 'redeem', { points => 1000 }, key => 'big');
    is($r->{status}, 422, 'key: 422');
    change($id, 'earn', { points => 2000 });
    my $again = change($id, 'redeem', { points => 1000 }, key => 'big');
    is($again->{status}, 422, 'key: the 422 replayed');
    is($again->{headers}{'idempotent-replayed'}, 'true',
        'key: the 422 marked Idempotent-Replayed');
    ok(!exists $r->{headers}{'idempotent-replayed'},
        'key: the first 422 is not marked');
    is($again->{body}, $r->{body}, 'key: the same 422 body');
}


# --- keys expire after 24 hours -------------------------------------------
# the outbox run (every worker's customer_outbox_trigger calls it) deletes
# keys older than 24 hours; a younger one still replays

{
    my ($id) = make_customer();
    my $old = change($id, 'earn', { points => 7 }, key => 'old-key');
    my $young = change($id, 'earn', { points => 9 }, key => 'young-key');
    is($old->{status}, 201, 'expiry: first earn');
    is($young->{status}, 201, 'expiry: second earn');
    CT::sql($db, q{UPDATE loyalty_idempotency SET created_at = now()
        - interval '25 hours' WHERE customer_id = :'p1'
        AND key = 'old-key'}, $id);
    CT::sql($db, q{UPDATE loyalty_idempotency SET created_at = now()
        - interval '23 hours' WHERE customer_id = :'p1'
        AND key = 'young-key'}, $id);

    my $r = $ng->req(POST => '/api/customers/internal/outbox',
        auth => 'service');
    is($r->{status}, 200, 'expiry: outbox run 200') or diag($r->{body});
    is(scalar CT::sql($db, q{SELECT string_agg(key, ',' ORDER BY key)
        FROM loyalty_idempotency WHERE customer_id = :'p1'}, $id),
        'young-key', 'expiry: the 25 h old key is gone, the 23 h one kept');

    $r = change($id, 'earn', { points => 9 }, key => 'young-key');
    is($r->{body}, $young->{body}, 'expiry: the young key still replays');
    is(counts($id), '2 16 16', 'expiry: the replay wrote nothing');

    $r = change($id, 'earn', { points => 7 }, key => 'old-key');
    is($r->{status}, 201, 'expiry: the expired key is a new request');
    isnt($r->{json}{data}{transactionId},
        $old->{json}{data}{transactionId}, 'expiry: a new transaction');
    is(counts($id), '3 23 23', 'expiry: it was written');
}

# --- an expired key is a new request even before anything deletes it -----
# (where no customer_outbox_trigger runs): the statement itself replaces
# a key older than 24 hours; 20 requests at once with one expired key
# write one ledger row and give 20 identical answers

{
    my ($id) = make_customer();
    my $first = change($id, 'earn', { points => 5 }, key => 'aged');
    is($first->{status}, 201, 'aged key: first earn');
    CT::sql($db, q{UPDATE loyalty_idempotency SET created_at = now()
        - interval '25 hours' WHERE customer_id = :'p1'}, $id);

    my @r = parallel(map { sub { change($id, 'earn', { points => 6 },
        key => 'aged') } } 1 .. 20);
    is(scalar(grep { $_->{status} == 201 } @r), 20,
        'aged key, 20 at once: all 201') or diag($r[0]{body});
    is(scalar(keys %{ { map { ($_->{body} => 1) } @r } }), 1,
        'aged key, 20 at once: all 20 answers identical');
    isnt($r[0]{json}{data}{transactionId},
        $first->{json}{data}{transactionId},
        'aged key: a new transaction, not the old answer');
    is(counts($id), '2 11 11', 'aged key: exactly one more ledger row');
    is(scalar CT::sql($db, q{SELECT count(*) FROM loyalty_idempotency
        WHERE customer_id = :'p1' AND key = 'aged'
        AND created_at > now() - interval '1 minute'}, $id), 1,
        'aged key: the key row replaced, fresh again');

    my $again = change($id, 'earn', { points => 6 }, key => 'aged');
    is($again->{body}, $r[0]{body}, 'aged key: now it replays the new answer');
    is(counts($id), '2 11 11', 'aged key: the replay wrote nothing');

    # 23 hours: still the stored answer
    CT::sql($db, q{UPDATE loyalty_idempotency SET created_at = now()
        - interval '23 hours' WHERE customer_id = :'p1'}, $id);
    $again = change($id, 'earn', { points => 6 }, key => 'aged');
    is($again->{body}, $r[0]{body}, 'a 23 hour old key still replays');
    is(counts($id), '2 11 11', 'a 23 hour old key: nothing written');
}

# --- the ledger list ----------------------------------------------------------

{
    my ($id, $sub) = make_customer();
    change($id, 'earn', { points => $_ }) for 1 .. 5;
    change($id, 'redeem', { points => 1 }) for 1 .. 2;
    # api_ts() truncates to milliseconds: "to" one later includes it
    my ($mid, $upto) = split / /, CT::sql($db, q{SELECT api_ts(created_at)
        || ' ' || api_ts(created_at + interval '1 millisecond') FROM
        loyalty_transactions WHERE customer_id = :'p1' AND points = 3
        AND kind = 'earn'}, $id);

    my $r = $ng->req(GET => "/api/customers/$id/loyalty/transactions");
    is($r->{status}, 200, 'transactions: 200') or diag($r->{body});
    my $t = $r->{json}{data}{transactions} // [];
    is(scalar @$t, 7, 'transactions: all 7');
    is_deeply([ map { "$_->{kind}$_->{points}" } @$t ],
        [qw(redeem1 redeem1 earn5 earn4 earn3 earn2 earn1)],
        'transactions: newest first');
    is_deeply([sort keys %{ $t->[0] }], [sort qw(transactionId customerId
        kind points balanceAfter reason reference createdBy createdAt)],
        'transactions: the fields');
    is($t->[0]{balanceAfter}, 13, 'transactions: balanceAfter');
    is_deeply($r->{json}{data}{pagination}, { currentPage => 1,
        totalPages => 1, totalItems => 7, itemsPerPage => 20,
        hasNextPage => JSON::PP::false, hasPreviousPage => JSON::PP::false },
        'transactions: pagination');

    $r = $ng->req(GET => "/api/customers/$id/loyalty/transactions"
        . '?limit=3&page=2');
    is_deeply([ map { "$_->{kind}$_->{points}" }
        @{ $r->{json}{data}{transactions} } ], [qw(earn4 earn3 earn2)],
        'page 2 of 3');
    is($r->{json}{data}{pagination}{totalPages}, 3, '... totalPages 3');
    is($r->{json}{data}{pagination}{hasNextPage}, JSON::PP::true,
        '... hasNextPage');

    $r = $ng->req(GET => "/api/customers/$id/loyalty/transactions"
        . '?kind=redeem');
    is($r->{json}{data}{pagination}{totalItems}, 2, 'kind=redeem: 2');

    (my $q = $mid) =~ s/\+/%2B/g;
    (my $q2 = $upto) =~ s/\+/%2B/g;
    $r = $ng->req(GET => "/api/customers/$id/loyalty/transactions"
        . "?kind=earn&from=$q");
    is_deeply([ map { $_->{points} } @{ $r->{json}{data}{transactions} } ],
        [5, 4, 3], 'from: at or after');
    $r = $ng->req(GET => "/api/customers/$id/loyalty/transactions?to=$q2");
    is_deeply([ map { $_->{points} } @{ $r->{json}{data}{transactions} } ],
        [3, 2, 1], 'to: at or before');

    $r = $ng->req(GET => "/api/customers/$id/loyalty/transactions?page=9");
    is_deeply($r->{json}{data}{transactions}, [], 'beyond the last: empty');

    for my $bad ('limit=101', 'limit=0', 'page=0', 'kind=gift',
        'from=yesterday', 'to=2026-13-01T00:00:00Z')
    {
        $r = $ng->req(GET => "/api/customers/$id/loyalty/transactions?$bad");
        is($r->{status}, 400, "transactions ?$bad: 400");
    }
    is($ng->req(GET => "/api/customers/$MISSING/loyalty/transactions")
        ->{status}, 404, 'transactions: unknown customer 404');
}


# --- an earn does not wait for the customer's row ---
# A transaction holding the customer's row (a profile write or a status
# change in progress) does not hold up points for that customer: the
# earn locks its account, not the customer.

{
    my ($id) = make_customer();
    is(change($id, 'earn', { points => 5 })->{status}, 201,
        'row held: first earn (opens the account)');
    my $s = CT::lock_row($db, $id);
    my $r = change($id, 'earn', { points => 7 }, key => 'held');
    is($r->{status}, 201, 'row held: the earn answers 201 at once')
        or diag($r->{body});
    is($r->{json}{data}{balance}, 12, 'row held: the balance counts it');
    is(CT::lock_waiters($db), 0, 'row held: nothing waits on a lock');
    $s->run('ROLLBACK');
    $s->close;
    is(counts($id), '2 12 12', 'row held: two ledger rows, the account');
}


# --- a deleted customer takes its loyalty rows along ---

{
    my ($id) = make_customer();
    change($id, 'earn', { points => 5 }, key => 'gone');
    CT::sql($db, q{DELETE FROM customers WHERE id = :'p1'}, $id);
    is(CT::sql($db, q{SELECT (SELECT count(*) FROM loyalty_transactions
        WHERE customer_id = :'p1') + (SELECT count(*) FROM loyalty_accounts
        WHERE customer_id = :'p1') + (SELECT count(*) FROM
        loyalty_idempotency WHERE customer_id = :'p1')}, $id), 0,
        'delete cascades');
}


# --- the tier's event: raised by the earn that crosses a threshold ---
# Once per crossing, with the tiers before and after; an earn within its
# tier and a redeem raise nothing. A replayed earn raises nothing again.

{
    my ($id) = make_customer();
    my $tier_events = sub {
        my ($c) = @_;
        return [CT::sql($db, q{SELECT data->>'previousTier' || ' '
            || (data->>'tier') || ' ' || (data->>'lifetimePoints')
            FROM events WHERE customer_id = :'p1'
            AND type = 'loyalty.tier_changed'
            AND destination = 'notifications' ORDER BY id}, $c // $id)];
    };
    is(change($id, 'earn', { points => 900 })->{status}, 201,
        'tier: a new account within Bronze');
    is_deeply($tier_events->(), [], 'tier: no event within the tier');
    my $r = change($id, 'earn', { points => 300 }, key => 'tier-up');
    is($r->{json}{data}{tier}, 'Silver', 'tier: 1,200 points answer Silver');
    is_deeply($tier_events->(), ['Bronze Silver 1200'],
        'tier: one event, Bronze to Silver')
        or diag(explain($tier_events->()));
    is(change($id, 'earn', { points => 300 }, key => 'tier-up')->{status},
        201, 'tier: the same key replays');
    is(change($id, 'redeem', { points => 1000 })->{status}, 201,
        'tier: a redeem');
    is_deeply($tier_events->(), ['Bronze Silver 1200'],
        'tier: neither the replay nor the redeem raised one');
    is(change($id, 'earn', { points => 20000 })->{json}{data}{tier},
        'Platinum', 'tier: 21,200 lifetime points answer Platinum');
    is_deeply($tier_events->(), ['Bronze Silver 1200',
        'Silver Platinum 21200'], 'tier: a jump over Gold is one event');
    my ($new) = make_customer();
    change($new, 'earn', { points => 1000 });
    is_deeply($tier_events->($new), ['Bronze Silver 1000'],
        'tier: a first earn reaching a threshold exactly crosses it');
}


# --- the database refuses what the module never sends ---
# The ledger's and the account's rules hold for any writer, not only
# for the requests the module validated.

{
    my ($id) = make_customer();
    is(change($id, 'earn', { points => 5 })->{status}, 201,
        'rules: an account');
    for my $t (
        [ 'points 0', q{INSERT INTO loyalty_transactions (customer_id,
            kind, points, balance_after) VALUES (:'p1', 'earn', 0, 5)} ],
        [ 'points over 1,000,000', q{INSERT INTO loyalty_transactions
            (customer_id, kind, points, balance_after)
            VALUES (:'p1', 'earn', 1000001, 5)} ],
        [ 'an unknown kind', q{INSERT INTO loyalty_transactions
            (customer_id, kind, points, balance_after)
            VALUES (:'p1', 'gift', 1, 5)} ],
        [ 'a negative balance after', q{INSERT INTO loyalty_transactions
            (customer_id, kind, points, balance_after)
            VALUES (:'p1', 'earn', 1, -1)} ],
        [ 'a reason over 500', q{INSERT INTO loyalty_transactions
            (customer_id, kind, points, balance_after, reason)
            VALUES (:'p1', 'earn', 1, 5, repeat('x', 501))} ],
        [ 'a reference over 100', q{INSERT INTO loyalty_transactions
            (customer_id, kind, points, balance_after, reference)
            VALUES (:'p1', 'earn', 1, 5, repeat('x', 101))} ],
        [ 'a negative balance', q{UPDATE loyalty_accounts
            SET balance = -1 WHERE customer_id = :'p1'} ],
        [ 'negative lifetime points', q{UPDATE loyalty_accounts
            SET lifetime_points = -1 WHERE customer_id = :'p1'} ],
    ) {
        my ($what, $q) = @$t;
        ok(!eval { CT::sql($db, $q, $id); 1 }
            && $@ =~ /violates check constraint/,
            "rules: $what is refused") or diag($@);
    }
    is(counts($id), '1 5 5', 'rules: nothing was written');
}

done_testing();
