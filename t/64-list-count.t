# The customer list's totalItems by "Prefer: count=exact|planned|estimated":
# each kind's totals against SQL (count(*), the planner's estimate from an
# EXPLAIN of the same WHERE with literal values, the threshold between
# them), Preference-Applied and totalItemsKind, the default, ignored
# preferences, and pages (offset and cursor) identical whatever the kind.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use JSON::PP ();
use POSIX ();

my $db = CT::db_create();

# 5,001 customers: 3,001 with "Qorvex" in the name (over the threshold of
# count=estimated), 40 "Zephyrine" (far under it), spread over statuses,
# types, tags, verification and creation times
CT::sql($db, q{INSERT INTO customers (user_id, email, full_name,
        total_order_value, total_orders, created_at, last_order_date, tags,
        is_verified, customer_type, customer_status)
    SELECT 'cnt-' || i, 'member' || i || '@example.org',
        CASE WHEN i % 5 < 3 THEN 'Qorvex '
                 || (ARRAY['Maria', 'Wei', 'Anna'])[1 + i % 3] || ' ' || i
             WHEN i % 125 = 3 THEN 'Zephyrine Holt ' || i
             ELSE 'Plain Person ' || i END,
        (i % 17) * 25.50, i % 11, now() - i * interval '1 hour',
        CASE WHEN i % 4 = 0 THEN NULL ELSE now() - (i % 9) * interval '1 day'
        END,
        CASE WHEN i % 3 = 0 THEN ARRAY['gold'] ELSE ARRAY['new'] END,
        i % 7 = 0,
        (ARRAY['Regular', 'Premium', 'VIP'])[1 + i % 3],
        (ARRAY['Active', 'Active', 'Inactive', 'Suspended'])[1 + i % 4]
    FROM generate_series(1, 5000) AS i});
# and one more, so that qorvex&type=Regular is exactly the threshold
CT::sql($db, q{INSERT INTO customers (user_id, email, full_name,
        customer_type, customer_status)
    VALUES ('cnt-extra', 'extra@example.org', 'Qorvex Extra', 'Regular',
        'Inactive')});

# statistics fixed for the whole file: the estimates the module reads and
# the ones computed here must come from the same ones
CT::sql($db, 'ALTER TABLE customers SET (autovacuum_enabled = off)');
CT::sql($db, 'ANALYZE customers');

my $ng = CT::nginx_start(db => $db);

my $THRESHOLD = 1000;
my $FROM = POSIX::strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time - 2000 * 3600));

sub count_sql {
    my ($where) = @_;
    return CT::sql($db, "SELECT count(*) FROM customers WHERE $where");
}

# the planner's estimate, computed here from a literal query
sub estimate_sql {
    my ($where) = @_;
    my $plan = JSON::PP->new->decode(scalar CT::sql($db,
        "EXPLAIN (FORMAT JSON) SELECT 1 FROM customers WHERE $where"));
    return $plan->[0]{Plan}{'Plan Rows'};
}

# the total a page must show: the kind's number, then (for the two
# estimates) never below the rows up to the page's end, and the end itself
# when a short page of offset paging shows it
sub expected_total {
    my (%o) = @_;
    my $t = $o{kind} eq 'exact' ? $o{exact}
        : $o{kind} eq 'planned' ? $o{estimate}
        : $o{exact} <= $THRESHOLD ? $o{exact}
        : ($o{estimate} > $THRESHOLD ? $o{estimate} : $THRESHOLD + 1);

    return $t if $o{kind} eq 'exact';

    my $offset = $o{cursor} ? 0 : ($o{page} - 1) * $o{limit};
    if (!$o{cursor} && $o{rows} < $o{limit}
        && ($o{rows} > 0 || $offset == 0))
    {
        return $offset + $o{rows};
    }
    if (!$o{cursor} && $o{rows} == 0) {
        return $t < $offset ? $t : $offset;
    }
    return $t > $offset + $o{rows} ? $t : $offset + $o{rows};
}

sub list {
    my ($query, $prefer) = @_;
    return $ng->req(GET => "/api/customers?$query",
        defined $prefer ? (headers => { Prefer => $prefer }) : ());
}

# query, the same WHERE with literal values (in the module's order)
my @cases = (
    ['searchTerm=qorvex', q{search_text LIKE '%qorvex%'}],
    ['searchTerm=QORVEX&status=Active',
        q{customer_status = 'Active' AND search_text LIKE '%qorvex%'}],
    ['searchTerm=qorvex&type=Regular',
        q{customer_type = 'Regular' AND search_text LIKE '%qorvex%'}],
    ['searchTerm=zephyrine', q{search_text LIKE '%zephyrine%'}],
    ['searchTerm=qorvex&status=Active&tag=gold',
        q{customer_status = 'Active' AND search_text LIKE '%qorvex%'
          AND tags @> ARRAY['gold']}],
    ["verified=true&createdFrom=$FROM",
        "is_verified = true AND created_at >= '$FROM'::timestamptz"],
    ['type=VIP&tag=gold',
        q{customer_type = 'VIP' AND tags @> ARRAY['gold']}],
);

my %truth;
for my $c (@cases) {
    my ($query, $where) = @$c;
    $truth{$query} = { exact => count_sql($where),
        estimate => estimate_sql($where) };
}

# the fixture spans the threshold: far under, at it, over it
is($truth{'searchTerm=qorvex'}{exact}, 3001, 'fixture: 3,001 match qorvex');
is($truth{'searchTerm=qorvex&type=Regular'}{exact}, $THRESHOLD,
    'fixture: one query matches exactly the threshold');
is($truth{'searchTerm=zephyrine'}{exact}, 40, 'fixture: 40 match zephyrine');
cmp_ok($truth{'searchTerm=qorvex'}{estimate}, '>', $THRESHOLD,
    'fixture: the planner estimates qorvex over the threshold')
    or diag(explain(\%truth));
isnt($truth{'searchTerm=qorvex'}{estimate}, 3001,
    'fixture: the estimate is not the exact count (the kinds differ)');

# --- each kind's totals on the first page ---------------------------------

for my $c (@cases) {
    my ($query) = @$c;
    my $t = $truth{$query};

    for my $kind (qw(exact planned estimated)) {
        my $r = list("$query&limit=20", "count=$kind");
        is($r->{status}, 200, "$query count=$kind: 200") or next;
        my $p = $r->{json}{data}{pagination};
        my $rows = @{ $r->{json}{data}{customers} };
        my $want = expected_total(%$t, kind => $kind, page => 1,
            limit => 20, rows => $rows);

        is($p->{totalItems}, $want, "$query count=$kind: totalItems "
            . "($t->{exact} exact, $t->{estimate} planned)");
        is($p->{totalItemsKind}, $kind,
            "$query count=$kind: totalItemsKind");
        is($r->{headers}{'preference-applied'}, "count=$kind",
            "$query count=$kind: Preference-Applied");
        like($r->{headers}{vary} // '', qr/\bPrefer\b/,
            "$query count=$kind: Vary: Prefer");
        is($p->{totalPages}, POSIX::ceil($want / 20),
            "$query count=$kind: totalPages from that total");
        is($p->{hasNextPage} ? 1 : 0, $want > 20 ? 1 : 0,
            "$query count=$kind: hasNextPage from that total");
    }

    # the default is exact, and says so without Preference-Applied
    my $r = list("$query&limit=20");
    is($r->{json}{data}{pagination}{totalItems}, $t->{exact},
        "$query, no Prefer: the exact count");
    is($r->{json}{data}{pagination}{totalItemsKind}, 'exact',
        "$query, no Prefer: totalItemsKind exact");
    ok(!exists $r->{headers}{'preference-applied'},
        "$query, no Prefer: no Preference-Applied");
}

# under the threshold count=estimated is exact; over it, the estimate
{
    my $r = list('searchTerm=zephyrine', 'count=estimated');
    is($r->{json}{data}{pagination}{totalItems}, 40,
        'estimated under the threshold: exact');
    $r = list('searchTerm=qorvex&type=Regular', 'count=estimated');
    is($r->{json}{data}{pagination}{totalItems}, $THRESHOLD,
        'estimated at the threshold: exact');
    $r = list('searchTerm=qorvex', 'count=estimated');
    is($r->{json}{data}{pagination}{totalItems},
        $truth{'searchTerm=qorvex'}{estimate},
        'estimated over the threshold: the planner\'s estimate');
}

# the function itself, with the same values as the literal EXPLAIN
is(CT::sql($db, q{SELECT customer_list_total(0, 'Active', NULL, 'QORVEX',
        'gold', NULL, NULL, NULL, NULL, NULL)}),
    $truth{'searchTerm=qorvex&status=Active&tag=gold'}{estimate},
    'customer_list_total(0, ...) is the EXPLAIN estimate of literal values '
    . '(EXECUTE ... USING gets a custom plan)');
is(CT::sql($db, q{SELECT customer_list_total(1000, NULL, NULL, '%', NULL,
        NULL, NULL, NULL, NULL, NULL)}), 0,
    'customer_list_total: LIKE wildcards in the term are literal');

# --- lists whose total comes from the counters stay exact ---------------

for my $case (['', 'TRUE'], ['status=Active', q{customer_status = 'Active'}],
    ['type=VIP', q{customer_type = 'VIP'}],
    ['status=Suspended&type=Premium',
        q{customer_status = 'Suspended' AND customer_type = 'Premium'}])
{
    my ($query, $where) = @$case;
    my $exact = count_sql($where);
    for my $kind (qw(planned estimated exact)) {
        my $r = list("$query&limit=20", "count=$kind");
        my $p = $r->{json}{data}{pagination};
        is($p->{totalItems}, $exact, "'$query' count=$kind: exact total");
        is($p->{totalItemsKind}, 'exact',
            "'$query' count=$kind: totalItemsKind exact");
        is($r->{headers}{'preference-applied'}, 'count=exact',
            "'$query' count=$kind: Preference-Applied: count=exact");
    }
    my $r = list("$query&limit=20");
    is($r->{json}{data}{pagination}{totalItemsKind}, 'exact',
        "'$query' no Prefer: exact");
    ok(!exists $r->{headers}{'preference-applied'},
        "'$query' no Prefer: no Preference-Applied");
}

# --- Prefer parsing: RFC 7240 ---------------------------------------------

{
    my $q = 'searchTerm=qorvex&limit=20';
    my $t = $truth{'searchTerm=qorvex'};

    for my $case (
        ['count=planned', 'planned'],
        ['COUNT=Planned', 'planned'],
        ['count="planned"', 'planned'],
        ['count = planned', 'planned'],
        ['count=planned; foo=bar', 'planned'],
        ['count=planned;foo="x, count=exact"', 'planned'],
        ['return=minimal, count=planned', 'planned'],
        ['respond-async, wait=10, count=estimated', 'estimated'],
        [['handling=lenient', 'count=planned'], 'planned'],
        ['count=planned, count=estimated', 'planned'],
        [['count=estimated', 'count=planned'], 'estimated'],
        [';;, ,=, count=planned', 'planned'],
        ['count=bogus', undef],
        ['count=bogus, count=planned', undef],
        ['count=', undef],
        ['count', undef],
        ['count=planned extra', undef],
        ['count="plan\\"ned"', undef],
        ['count="planned', undef],
        ['x="a, count=planned"', undef],
        ['return=minimal', undef],
        ['counter=planned', undef],
        ['x-count=planned', undef],
        ['', undef],
    ) {
        my ($prefer, $kind) = @$case;
        my $name = ref $prefer ? join(' / ', @$prefer) : "'$prefer'";
        my $r = list($q, $prefer);
        is($r->{status}, 200, "Prefer: $name: 200") or next;
        my $p = $r->{json}{data}{pagination};
        is($p->{totalItemsKind}, $kind // 'exact',
            "Prefer: $name: " . ($kind ? "count=$kind" : 'ignored'));
        is($p->{totalItems}, expected_total(%$t, kind => $kind // 'exact',
            page => 1, limit => 20, rows => 20),
            "Prefer: $name: its total");
        is($r->{headers}{'preference-applied'},
            $kind ? "count=$kind" : undef,
            "Prefer: $name: Preference-Applied");
    }
}

# --- the same pages whatever the kind --------------------------------------

# what must not depend on the count kind
sub page_shape {
    my ($d) = @_;
    my %p = %{ $d->{pagination} };
    delete @p{qw(totalItems totalPages hasNextPage totalItemsKind)};
    return { customers => $d->{customers}, pagination => \%p };
}

for my $c (@cases[0, 3, 4, 5]) {
    my ($query, $where) = @$c;
    my $t = $truth{$query};
    my (%offset, %cursor);

    for my $kind (qw(exact planned estimated)) {
        # offset paging up to the first short page
        for my $page (1 .. 100) {
            my $r = list("$query&sortBy=totalOrderValue&limit=70&page=$page",
                "count=$kind");
            last unless is($r->{status}, 200, "$query $kind page $page");
            my $d = $r->{json}{data};
            my $rows = @{ $d->{customers} };
            push @{ $offset{$kind} }, page_shape($d);
            is($d->{pagination}{totalItems}, expected_total(%$t,
                kind => $kind, page => $page, limit => 70, rows => $rows),
                "$query count=$kind page $page: totalItems") or last;
            last if $rows < 70;
        }

        # cursor paging
        my $cur;
        for my $n (1 .. 100) {
            my $r = list("$query&sortBy=lastOrderDate&sortOrder=asc&limit=70"
                . ($cur ? "&cursor=$cur" : ''), "count=$kind");
            last unless is($r->{status}, 200, "$query $kind cursor $n");
            my $d = $r->{json}{data};
            my $rows = @{ $d->{customers} };
            push @{ $cursor{$kind} }, page_shape($d);
            is($d->{pagination}{totalItems}, expected_total(%$t,
                kind => $kind, cursor => 1, page => 1, limit => 70,
                rows => $rows),
                "$query count=$kind cursor page $n: totalItems") or last;
            $cur = $d->{pagination}{nextCursor} or last;
        }
    }

    my @ids = map { map { $_->{customerId} } @{ $_->{customers} } }
        @{ $offset{exact} };
    is(scalar @ids, $t->{exact}, "$query: offset paging returns every match");
    is_deeply(\@ids, [ CT::sql($db, "SELECT id FROM customers WHERE $where
            ORDER BY total_order_value DESC, id DESC") ],
        "$query: offset paging in the list's order");
    my @cids = map { map { $_->{customerId} } @{ $_->{customers} } }
        @{ $cursor{exact} };
    is_deeply([ sort @cids ], [ sort @ids ],
        "$query: cursor paging returns every match once");

    for my $kind (qw(planned estimated)) {
        is_deeply($offset{$kind}, $offset{exact},
            "$query: count=$kind pages (page/limit) identical to exact");
        is_deeply($cursor{$kind}, $cursor{exact},
            "$query: count=$kind pages (cursor) identical to exact");
    }
}

# --- the function's WHERE is the list statement's -------------------------

{
    open my $fh, '<', CT::root() . '/src/ngx_http_customer_customers.c'
        or die "customers.c: $!";
    my $src = do { local $/; <$fh> };
    my ($decl) = $src =~ /static const char\s+filters\[\]\s*=(.*?);/s;
    my $c = join '', $decl =~ /"((?:[^"\\]|\\.)*)"/g;
    $c =~ s/\\(.)/$1/g;

    my $prosrc = CT::sql($db, q{SELECT prosrc FROM pg_proc
        WHERE proname = 'customer_list_total'});
    my ($f) = $prosrc =~ /\$q\$(.*?)\$q\$/s;

    ok(length $c > 200, 'the C list filters found');
    (my $cs = $c) =~ s/\s+//g;
    (my $fs = $f // '') =~ s/\s+//g;
    is($fs, $cs, 'customer_list_total() filters with the list statement\'s '
        . 'WHERE (sql/022 and customers.c agree)');
}

done_testing();
