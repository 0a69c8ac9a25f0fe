# Search, list filters and cursor paging, type, verification,
# nationalId masking, analytics, and two writers with the same If-Match.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use JSON::PP ();
use POSIX ();

my $db = CT::db_create();

# a fixture of a few hundred customers with known names; the ones the
# searches look for are unique, the rest share common names
CT::sql($db, q{INSERT INTO customers (user_id, email, full_name,
        contact_number, total_order_value, total_orders, created_at,
        last_order_date, tags, is_verified, customer_type, customer_status)
    SELECT 'fx-' || i, 'member' || i || '@example.org',
        (ARRAY['Maria Garcia', 'Wei Chen', 'Anna Schmidt', 'Olga Ivanova',
               'Peter Jones'])[1 + i % 5] || ' ' || i,
        '+4420' || lpad(i::text, 8, '0'),
        (i % 17) * 25.50, i % 11, now() - i * interval '1 day',
        CASE WHEN i % 4 = 0 THEN NULL ELSE now() - (i % 9) * interval '1 day'
        END,
        CASE WHEN i % 3 = 0 THEN ARRAY['gold', 'early'] ELSE ARRAY['new'] END,
        i % 5 = 0,
        (ARRAY['Regular', 'Premium', 'VIP'])[1 + i % 3],
        (ARRAY['Active', 'Active', 'Inactive', 'Suspended'])[1 + i % 4]
    FROM generate_series(1, 300) AS i});

my %who = CT::insert_named($db,
    ['Jonathan Whitfield', 'jwhit@example.com', '+14155550101'],
    ["Jos\x{e9} \x{c1}lvarez Nu\x{f1}ez", 'jose.alvarez@example.es',
        '+34911234567'],
    ["Zo\x{eb} Kr\x{f6}ger", 'zoe.kroeger@example.de', '+4930123456'],
    ['Siobhan O\'Sullivan', 'siobhan@example.ie', '+35312345678'],
    ['Mohammed Al-Rashid', 'm.rashid@example.ae', '+971501234567']);

my $ng = CT::nginx_start(db => $db);

sub search {
    my ($q, %o) = @_;
    my $enc = CT::pct($q);
    return $ng->req(GET => "/api/customers/search?q=$enc"
        . ($o{limit} ? "&limit=$o{limit}" : ''), %o);
}

# --- search quality: the intended customer comes first ---------------------

for my $case (
    ['Jonathan Whitfield', 'jonathan'],
    ['Jonathan Whitfield', 'JONATHAN WHITFIELD'],
    ['Jonathan Whitfield', 'jonhatan'],                # typo
    ['Jonathan Whitfield', 'whitfeld'],                # typo
    ['Jonathan Whitfield', 'whitf'],                   # prefix
    ["Jos\x{e9} \x{c1}lvarez Nu\x{f1}ez", 'jose alvarez'],   # accents
    ["Jos\x{e9} \x{c1}lvarez Nu\x{f1}ez", "\x{c1}LVAREZ"],
    ["Jos\x{e9} \x{c1}lvarez Nu\x{f1}ez", 'nunez'],
    ["Zo\x{eb} Kr\x{f6}ger", 'zoe kroger'],
    ["Zo\x{eb} Kr\x{f6}ger", 'kroeger'],                # email part
    ['Siobhan O\'Sullivan', 'osullivan'],
    ['Siobhan O\'Sullivan', 'shiobhan'],               # typo
    ['Mohammed Al-Rashid', 'mohamed'],                 # spelling variant
    ['Mohammed Al-Rashid', '+9715012'],                # phone prefix
    ['Mohammed Al-Rashid', 'm.rashid@'],
) {
    my ($name, $q) = @$case;
    my $r = search($q, limit => 5);
    is($r->{status}, 200, "search '$q': 200") or diag($r->{body});
    my $first = ($r->{json}{data}{results} // [])->[0] // {};
    is($first->{customerId}, $who{$name}, "search '$q': finds the intended "
        . "customer first") or diag(explain($r->{json}{data}{results}));
}

{
    my $r = search('jonathan', limit => 3);
    my $d = $r->{json}{data};
    is_deeply([ sort keys %$d ], [qw(results searchTerm totalResults)],
        'search: data is {results, totalResults, searchTerm}');
    is($d->{searchTerm}, 'jonathan', 'search: the term echoed');
    is_deeply([ sort keys %{ $d->{results}[0] } ],
        [ sort qw(customerId email fullName contactNumber customerStatus
            customerType totalOrders) ], 'search: result fields (seed 4.3)');
    ok(@{ $d->{results} } <= 3, 'search: limit respected');
    is($d->{totalResults}, scalar @{ $d->{results} }, 'search: totalResults');

    $r = search('maria', limit => 50);
    is(scalar @{ $r->{json}{data}{results} }, 50, 'search: limit 50');

    for my $bad (['a', 'q'], ['', 'q']) {
        $r = search($bad->[0]);
        is($r->{status}, 400, "search q='$bad->[0]': 400");
    }
    is($ng->req(GET => '/api/customers/search?q=abc&limit=51')->{status},
        400, 'search: limit 51 is 400');
    is($ng->req(GET => '/api/customers/search')->{status}, 400,
        'search: no q is 400');
    is(search('jonathan', auth => CT::customer_token('x'))->{status}, 403,
        'search: a Customer gets 403');
    is(search(q{100%_\\})->{status}, 200,
        'search: LIKE wildcards in q are literal, no error');
}

# --- list filters, checked against SQL -------------------------------------

sub ids {
    my ($query) = @_;
    my (@all, $cursor);
    for (1 .. 100) {
        my $r = $ng->req(GET => "/api/customers?limit=37&$query"
            . ($cursor ? "&cursor=$cursor" : ''));
        is($r->{status}, 200, "list $query: 200") or return;
        push @all, map { $_->{customerId} } @{ $r->{json}{data}{customers} };
        $cursor = $r->{json}{data}{pagination}{nextCursor} or last;
    }
    return @all;
}

my $FROM = POSIX::strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time - 100 * 86400));
my $TO = POSIX::strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time - 20 * 86400));
my $LFROM = POSIX::strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time - 4 * 86400));

for my $case (
    ['tag=gold', q{'gold' = ANY(tags)}],
    ['verified=true', 'is_verified'],
    ['verified=false', 'NOT is_verified'],
    ['searchTerm=anna', q{search_text LIKE '%anna%'}],
    ['searchTerm=%C3%81LVAREZ', q{search_text LIKE '%alvarez%'}],
    ['status=Active&type=VIP&tag=early',
        q{customer_status = 'Active' AND customer_type = 'VIP'
          AND 'early' = ANY(tags)}],
    ["createdFrom=$FROM", "created_at >= '$FROM'"],
    ["createdFrom=$FROM&createdTo=$TO",
        "created_at >= '$FROM' AND created_at < '$TO'"],
    ["lastOrderFrom=$LFROM", "last_order_date >= '$LFROM'"],
) {
    my ($query, $where) = @$case;
    my @got = ids("$query&sortBy=createdAt&sortOrder=desc");
    my @want = split /,/, (CT::sql($db, "SELECT string_agg(id::text, ','
        ORDER BY created_at DESC, id DESC) FROM customers WHERE $where")
        // '');
    is_deeply(\@got, \@want, "list $query: the rows SQL finds, in order");
}

{
    my $r = $ng->req(GET => '/api/customers?verified=maybe&tag=&createdTo=x'
        . '&cursor=bogus');
    is($r->{status}, 400, 'list: bad filters are 400');
    is_deeply([ sort map { $_->{field} } @{ $r->{json}{errors} } ],
        [ sort qw(verified tag createdTo cursor) ], 'list: each named');

    # a cursor of one sort order is refused by another
    $r = $ng->req(GET => '/api/customers?limit=5&sortBy=fullName');
    my $c = $r->{json}{data}{pagination}{nextCursor};
    ok($c, 'list: a full page has a nextCursor');
    $r = $ng->req(GET => "/api/customers?limit=5&sortBy=createdAt&cursor=$c");
    is($r->{status}, 400, 'list: a cursor of another sort order is 400');
}

# --- cursor paging under concurrent inserts ------------------------------

{
    my @before = split /,/, CT::sql($db, q{SELECT string_agg(id::text, ','
        ORDER BY total_order_value DESC, id DESC) FROM customers});
    my (@seen, $cursor, $n);
    while (1) {
        my $r = $ng->req(GET => '/api/customers?limit=23'
            . '&sortBy=totalOrderValue&sortOrder=desc'
            . ($cursor ? "&cursor=$cursor" : ''));
        last unless $r->{status} == 200;
        push @seen, map { $_->{customerId} } @{ $r->{json}{data}{customers} };
        $n++;

        # between pages, new customers arrive on both sides of the cursor
        $ng->req(POST => '/api/customers', json => { userId => "late-$n-$_",
            email => "late$n$_\@example.com", fullName => "Late Comer $n",
            totalOrderValue => ($_ % 2 ? 9999 : 1) }) for 1 .. 3;

        $cursor = $r->{json}{data}{pagination}{nextCursor} or last;
    }
    my %count;
    $count{$_}++ for @seen;
    is_deeply([ grep { !$count{$_} } @before ], [],
        'cursor paging: every row that was there is returned');
    is_deeply([ grep { $count{$_} > 1 } keys %count ], [],
        'cursor paging: no row twice, although rows were inserted');
}

# --- type and verification -------------------------------------------------

my $id = $who{'Jonathan Whitfield'};
{
    my $r = $ng->req(GET => "/api/customers/$id");
    my $etag = $r->{headers}{etag};
    $r = $ng->req(PATCH => "/api/customers/$id/type", json => { type => 'VIP' },
        headers => { 'If-Match' => $etag });
    is($r->{status}, 200, 'type: 200') or diag($r->{body});
    is($r->{json}{data}{customerType}, 'VIP', 'type: VIP');
    is(CT::sql($db, q{SELECT customer_type FROM customers WHERE id = :'p1'},
        $id), 'VIP', 'type: stored');
    $r = $ng->req(PATCH => "/api/customers/$id/type", json => { type => 'Gold' });
    is($r->{status}, 400, 'type: Gold is 400');
    $r = $ng->req(PATCH => "/api/customers/$id/type",
        json => { type => 'Premium' }, headers => { 'If-Match' => $etag });
    is($r->{status}, 412, 'type: a stale If-Match is 412');
    $r = $ng->req(PATCH => "/api/customers/$id/type",
        json => { type => 'Premium', extra => 1 });
    is($r->{status}, 400, 'type: unknown field is 400');

    $r = $ng->req(POST => "/api/customers/$id/verify",
        auth => CT::admin_token('verifier-7'));
    is($r->{status}, 200, 'verify: 200') or diag($r->{body});
    is($r->{json}{data}{isVerified}, JSON::PP::true, 'verify: isVerified');
    is($r->{json}{data}{verifiedBy}, 'verifier-7', 'verify: who');
    like($r->{json}{data}{verifiedAt} // '',
        qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'verify: when');
    is(CT::sql($db, q{SELECT is_verified AND verified_by = 'verifier-7'
        AND verified_at > now() - interval '1 minute' FROM customers
        WHERE id = :'p1'}, $id), 't', 'verify: stored');
    is($ng->req(POST => '/api/customers/00000000-0000-0000-0000-000000000000'
        . '/verify')->{status}, 404, 'verify: unknown customer is 404');
    is($ng->req(POST => "/api/customers/$id/verify",
        auth => CT::customer_token('x'))->{status}, 403,
        'verify: a Customer gets 403');
}

# --- nationalId: masked for a Customer -------------------------------------

{
    CT::sql($db, q{UPDATE customers SET national_id = 'P123456789',
        user_id = 'masked-me' WHERE id = :'p1'}, $id);
    my $r = $ng->req(GET => '/api/customers/me',
        auth => CT::customer_token('masked-me'));
    is($r->{json}{data}{nationalId}, '******6789',
        'nationalId: a Customer sees it masked');
    $r = $ng->req(GET => "/api/customers/$id");
    is($r->{json}{data}{nationalId}, 'P123456789',
        'nationalId: an administrator sees it in full');
    $r = $ng->req(GET => '/api/customers/internal/user/masked-me',
        auth => 'service');
    is($r->{json}{data}{nationalId}, 'P123456789',
        'nationalId: a service sees it in full');
}

# --- two writers with the same version: one wins --------------------------

{
    my $r = $ng->req(GET => "/api/customers/$id");
    my $etag = $r->{headers}{etag};
    my @kids;
    for my $n (1, 2) {
        pipe(my $rd, my $wr) or die;
        my $pid = fork // die;
        if (!$pid) {
            close $rd;
            my $x = $ng->req(PATCH => "/api/customers/$id",
                json => { notes => "writer $n" },
                headers => { 'If-Match' => $etag });
            syswrite $wr, "$x->{status}\n";
            POSIX::_exit(0);
        }
        close $wr;
        push @kids, [$pid, $rd];
    }
    my @codes = sort map { my $fh = $_->[1]; my $c = <$fh>;
        waitpid $_->[0], 0; chomp $c; $c } @kids;
    is_deeply(\@codes, [200, 412], 'If-Match race: one 200, one 412');
    like(CT::sql($db, q{SELECT notes FROM customers WHERE id = :'p1'}, $id),
        qr/^writer [12]$/, "If-Match race: the row holds the winner's data");
}

# --- analytics, against independent SQL ------------------------------------

for my $path ('/api/customers/analytics', '/api/customers/analytics/summary',
    '/api/customers/stats')
{
    my $r = $ng->req(GET => $path);
    is($r->{status}, 200, "$path: 200") or next;
    my $d = $r->{json}{data};
    is($d->{totalCustomers}, CT::sql($db, 'SELECT count(*) FROM customers'),
        "$path: totalCustomers");
    for my $s (qw(Active Inactive Suspended)) {
        is($d->{byStatus}{$s}, CT::sql($db, q{SELECT count(*) FROM customers
            WHERE customer_status = :'p1'}, $s), "$path: byStatus $s");
    }
    for my $t (qw(Regular Premium VIP)) {
        is($d->{byType}{$t}, CT::sql($db, q{SELECT count(*) FROM customers
            WHERE customer_type = :'p1'}, $t), "$path: byType $t");
    }
    is($d->{verified}, CT::sql($db,
        'SELECT count(*) FROM customers WHERE is_verified'), "$path: verified");
    is(scalar @{ $d->{newCustomersByMonth} }, 12, "$path: 12 months");
    my $months = 0;
    $months += $_->{count} for @{ $d->{newCustomersByMonth} };
    is($months, CT::sql($db, q{SELECT count(*) FROM customers WHERE
        created_at >= date_trunc('month', now(), 'UTC')
        - interval '11 months'}), "$path: new customers per month add up");
    is($d->{orders}{totalOrderValue} + 0, CT::sql($db,
        'SELECT sum(total_order_value) FROM customers') + 0,
        "$path: order value total");
    is($d->{orders}{totalOrders}, CT::sql($db,
        'SELECT sum(total_orders) FROM customers'), "$path: orders total");
    is_deeply([ map { $_->{customerId} } @{ $d->{topCustomers} } ],
        [ split /,/, CT::sql($db, q{SELECT string_agg(id::text, ',' ORDER BY
            total_order_value DESC, id) FROM (SELECT id, total_order_value
            FROM customers ORDER BY total_order_value DESC, id LIMIT 10) t}) ],
        "$path: top customers by value");
}
is($ng->req(GET => '/api/customers/analytics',
    auth => CT::customer_token('x'))->{status}, 403,
    'analytics: a Customer gets 403');

# loyalty and credit figures, with a little of each
{
    my ($a, $b) = split /,/, CT::sql($db, q{SELECT string_agg(id::text, ','
        ORDER BY id) FROM (SELECT id FROM customers
        WHERE customer_status = 'Active' ORDER BY id LIMIT 2) x});
    for ([$a, 1200], [$b, 300]) {
        my ($id, $pts) = @$_;
        is($ng->req(POST => "/api/customers/$id/loyalty/earn",
            json => { points => $pts })->{status}, 201, "earn $pts");
    }
    is($ng->req(POST => "/api/customers/$b/loyalty/redeem",
        json => { points => 100 })->{status}, 201, 'redeem 100');
    for ([$a, 720], [$b, 760]) {
        is($ng->req(PUT => "/api/customers/$_->[0]/credit-status",
            json => { creditScore => $_->[1] })->{status}, 200,
            "credit $_->[1]");
    }
    my $d = $ng->req(GET => '/api/customers/analytics')->{json}{data};
    is($d->{loyalty}{pointsIssued}, 1500, 'analytics: points issued');
    is($d->{loyalty}{pointsRedeemed}, 100, 'analytics: points redeemed');
    my $total = CT::sql($db, 'SELECT count(*) FROM customers');
    is_deeply($d->{loyalty}{customersByTier}, { Bronze => $total - 1,
        Silver => 1, Gold => 0, Platinum => 0 },
        'analytics: customers per tier (by lifetime points)');
    is_deeply($d->{credit}{averageScoreByBand},
        { Good => 720, 'Very Good' => 760 },
        'analytics: average credit score per band');
}

done_testing();
