# GET /api/customers over 60 customers seeded in SQL: pagination math,
# status/type filters, every sortBy in both directions against the same
# ORDER BY in PostgreSQL (nulls last), pages past the end, bad parameters,
# and totals that follow writes made through the API.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $db = CT::db_create();

# 60 customers; every sort key is unique (except the 12 NULL last order
# dates), so the expected order is fully determined. No Suspended VIPs.
CT::sql($db, <<'SQL');
INSERT INTO customers (user_id, email, full_name, contact_number,
    customer_status, customer_type, is_verified, total_orders,
    total_order_value, total_complaints, open_complaints, last_order_date,
    customer_since, created_at, updated_at)
SELECT 'list-' || lpad(g::text, 2, '0'),
       'list' || g || '@example.com',
       (ARRAY['Asha', 'bala', 'Chitra', 'Dev', 'esha', 'Farah'])[g % 6 + 1]
           || ' ' || lpad(((g * 37) % 61)::text, 2, '0'),
       CASE WHEN g % 4 = 0 THEN NULL ELSE '+9198765432' || lpad(g::text, 2, '0') END,
       (ARRAY['Active', 'Inactive', 'Suspended'])[g % 3 + 1],
       CASE WHEN g % 3 = 2
            THEN (ARRAY['Regular', 'Premium'])[(g / 3) % 2 + 1]
            ELSE (ARRAY['Regular', 'Premium', 'VIP'])[(g / 3) % 3 + 1] END,
       g % 2 = 0,
       (g * 37) % 61,
       ((g * 53) % 97) * 101.25 + (g % 10) * 0.01,
       g % 5, g % 2,
       CASE WHEN g % 5 = 0 THEN NULL
            ELSE timestamptz '2025-06-01 00:00:00Z'
                 + ((g * 41) % 61) * interval '1 hour' END,
       timestamptz '2019-01-01 00:00:00Z' + g * interval '1 day',
       timestamptz '2025-01-01 00:00:00Z'
           + ((g * 29) % 61) * interval '1 day' + g * interval '1 ms',
       timestamptz '2025-01-01 00:00:00Z'
FROM generate_series(1, 60) g
SQL

my $ng = CT::nginx_start(db => $db);


my @SUMMARY_KEYS = sort qw(customerId userId email fullName contactNumber
    customerStatus customerType isVerified totalOrders totalOrderValue
    totalComplaints openComplaints lastOrderDate customerSince createdAt);

my %COLUMN = (createdAt => 'created_at', totalOrders => 'total_orders',
    totalOrderValue => 'total_order_value',
    lastOrderDate => 'last_order_date', fullName => 'full_name');


# --- helpers ---------------------------------------------------------------

sub list {
    my ($query) = @_;
    return $ng->req(GET => '/api/customers' . (defined $query ? "?$query" : ''));
}

sub ids_of { [ map { $_->{customerId} } @{ $_[0]{json}{data}{customers} // [] } ] }

sub sql_ids {
    my ($where, $order, @bind) = @_;
    return [ CT::sql($db, "SELECT id FROM customers $where ORDER BY $order",
        @bind) ];
}

# the offset-paging members; nextCursor (keyset paging, t/62) is checked
# for presence here and for what it does there; totalItemsKind is exact
# without a Prefer header (the other kinds: t/64)
sub pagination {
    my %p = %{ $_[0]{json}{data}{pagination} // {} };
    Test::More::ok(exists $p{nextCursor}, 'pagination has nextCursor');
    Test::More::is($p{totalItemsKind}, 'exact',
        'pagination: totalItemsKind exact');
    delete @p{qw(nextCursor totalItemsKind)};
    return \%p;
}

sub is_page {
    my ($r, $p, $name) = @_;
    is($r->{status}, 200, "$name: 200") or diag($r->{body});
    is_deeply(pagination($r), $p, "$name: pagination");
}

# all pages of one query, following hasNextPage
sub walk {
    my ($query, $limit) = @_;
    my (@ids, $pages);
    for my $page (1 .. 200) {
        my $r = list("$query&limit=$limit&page=$page");
        return undef unless $r->{status} == 200;
        push @ids, @{ ids_of($r) };
        $pages = $page;
        last unless pagination($r)->{hasNextPage};
    }
    return (\@ids, $pages);
}


# --- the first page, defaults ------------------------------------------------

my $r = list();
is($r->{status}, 200, 'GET /api/customers: 200') or diag($r->{body});
is($r->{json}{success}, $T, 'list: success');
is($r->{json}{message}, 'Customers retrieved successfully', 'list: message');
like($r->{headers}{'content-type'} // '', qr{^application/json}, 'list: JSON');
ok(length($r->{headers}{'x-request-id'} // ''), 'list: X-Request-Id');
is_deeply([sort keys %{ $r->{json}{data} // {} }], [qw(customers pagination)],
    'list: data has customers and pagination');
is_deeply(pagination($r), { currentPage => 1, totalPages => 3,
    totalItems => 60, itemsPerPage => 20, hasNextPage => $T,
    hasPreviousPage => $F }, 'list defaults: page 1 of 3, 20 per page');
is_deeply(ids_of($r), sql_ids('', 'created_at DESC LIMIT 20'),
    'list defaults: newest createdAt first');

my $one = $r->{json}{data}{customers}[0] // {};
is_deeply([sort keys %$one], \@SUMMARY_KEYS, 'summary record fields');
my $row = JSON::PP->new->decode(scalar CT::sql($db, <<'SQL', $one->{customerId}));
SELECT json_build_object('customerId', id, 'userId', user_id, 'email', email,
    'fullName', full_name, 'contactNumber', contact_number,
    'customerStatus', customer_status, 'customerType', customer_type,
    'isVerified', is_verified, 'totalOrders', total_orders,
    'totalOrderValue', total_order_value,
    'totalComplaints', total_complaints, 'openComplaints', open_complaints,
    'lastOrderDate', api_ts(last_order_date),
    'customerSince', api_ts(customer_since), 'createdAt', api_ts(created_at))
FROM customers WHERE id = :'p1'
SQL
is_deeply($one, $row, 'summary record matches its row');

# every summary in the table, as the API writes it
my ($all) = walk('sortBy=fullName&sortOrder=asc', 100);
is(scalar @{ $all // [] }, 60, 'limit=100 returns all 60');
$r = list('limit=100');
my $bad_money = grep { !/^"totalOrderValue":\d+\.\d\d$/ }
    $r->{body} =~ /("totalOrderValue":[^,}]*)/g;
is($bad_money, 0, 'every totalOrderValue has two decimals in the body');
is(scalar(() = $r->{body} =~ /"totalOrderValue"/g), 60,
    'sixty totalOrderValue members');
my @c = @{ $r->{json}{data}{customers} // [] };
is(scalar(grep { ($_->{createdAt} // '') =~ $TS } @c), 60,
    'createdAt is RFC 3339 UTC with ms');
is(scalar(grep { !defined $_->{lastOrderDate} } @c), 12,
    'twelve customers without a last order');
is(scalar(grep { !defined $_->{contactNumber} } @c), 15,
    'fifteen customers without a contact number');


# --- pagination math ---------------------------------------------------------

for my $case (
    [1, 7, 7, 9], [2, 7, 7, 9], [8, 7, 7, 9], [9, 7, 4, 9],
    [1, 60, 60, 1], [1, 59, 59, 2], [2, 59, 1, 2], [1, 100, 60, 1],
    [3, 20, 20, 3], [1, 1, 1, 60], [60, 1, 1, 60], [6, 11, 5, 6])
{
    my ($page, $limit, $items, $pages) = @$case;
    my $name = "page=$page&limit=$limit";
    $r = list("page=$page&limit=$limit");
    is_page($r, { currentPage => $page, totalPages => $pages,
        totalItems => 60, itemsPerPage => $limit,
        hasNextPage => $page < $pages ? $T : $F,
        hasPreviousPage => $page > 1 ? $T : $F }, $name);
    is_deeply(ids_of($r), sql_ids('', 'created_at DESC LIMIT :p1 OFFSET :p2',
        $limit, ($page - 1) * $limit), "$name: $items customers, in order");
    is(scalar @{ ids_of($r) }, $items, "$name: $items customers");
}

# pages past the end: empty, with the right totals
for my $case ([4, 20, 3], [10, 7, 9], [61, 1, 60], [2, 100, 1],
    [1000000, 100, 1])
{
    my ($page, $limit, $pages) = @$case;
    $r = list("page=$page&limit=$limit");
    is_page($r, { currentPage => $page, totalPages => $pages,
        totalItems => 60, itemsPerPage => $limit, hasNextPage => $F,
        hasPreviousPage => $T }, "past the end page=$page&limit=$limit");
    is_deeply($r->{json}{data}{customers}, [],
        "past the end page=$page&limit=$limit: no customers");
}


# --- sorting -----------------------------------------------------------------

for my $sort (sort keys %COLUMN) {
    my $col = $COLUMN{$sort};
    for my $dir (qw(asc desc)) {
        my $name = "sortBy=$sort&sortOrder=$dir";
        $r = list("$name&limit=100");
        is($r->{status}, 200, "$name: 200") or diag($r->{body});
        my $got = ids_of($r);
        if ($sort eq 'lastOrderDate') {
            my $dated = sql_ids('WHERE last_order_date IS NOT NULL',
                "last_order_date \U$dir");
            is_deeply([@$got[0 .. $#$dated]], $dated,
                "$name: dated customers in order");
            is_deeply([sort @$got[@$dated .. $#$got]],
                sql_ids('WHERE last_order_date IS NULL', 'id'),
                "$name: customers without a last order come last");
            is(scalar @$got, 60, "$name: all 60");
        } else {
            is_deeply($got, sql_ids('', "$col \U$dir"),
                "$name: the order of ORDER BY $col \U$dir");
        }

        # paging through gives the same sequence, each customer once
        my ($walked, $pages) = walk($name, 7);
        is_deeply($walked, $got, "$name: 7 per page, same order");
        is($pages, 9, "$name: 9 pages of 7");
    }
}

# the sort key is the one asked for: the values are monotonic
$r = list('sortBy=totalOrderValue&sortOrder=desc&limit=100');
my @v = map { $_->{totalOrderValue} } @{ $r->{json}{data}{customers} // [] };
is(scalar(grep { $v[$_] < $v[$_ + 1] } 0 .. $#v - 1), 0,
    'totalOrderValue desc: values never go up');
$r = list('sortBy=totalOrders&sortOrder=asc&limit=100');
@v = map { $_->{totalOrders} } @{ $r->{json}{data}{customers} // [] };
is(scalar(grep { $v[$_] > $v[$_ + 1] } 0 .. $#v - 1), 0,
    'totalOrders asc: values never go down');
is_deeply([@v[0, -1]], [1, 60], 'totalOrders asc: from 1 to 60');

# default direction is desc; default key is createdAt
is_deeply(ids_of(list('sortBy=fullName&limit=100')),
    sql_ids('', 'full_name DESC'), 'sortBy=fullName alone sorts desc');
is_deeply(ids_of(list('sortOrder=asc&limit=100')),
    sql_ids('', 'created_at ASC'), 'sortOrder=asc alone sorts by createdAt');
is_deeply(ids_of(list('sortBy=createdAt&sortOrder=desc&limit=100')),
    ids_of(list('limit=100')), 'explicit defaults equal the defaults');


# --- filters ---------------------------------------------------------------------

for my $status (qw(Active Inactive Suspended), undef) {
    for my $type (qw(Regular Premium VIP), undef) {
        next unless defined $status || defined $type;
        my @q = ((defined $status ? "status=$status" : ()),
            (defined $type ? "type=$type" : ()));
        my $q = join '&', @q;
        my $where = 'WHERE true'
            . (defined $status ? " AND customer_status = :'p1'" : '')
            . (defined $type ? " AND customer_type = :'p2'" : '');
        my @bind = ($status // '', $type // '');
        my $want = sql_ids($where, 'total_order_value DESC', @bind);
        my $total = @$want;

        $r = list("$q&sortBy=totalOrderValue&limit=100");
        is($r->{status}, 200, "$q: 200") or diag($r->{body});
        is(pagination($r)->{totalItems}, $total, "$q: totalItems $total");
        is_deeply(ids_of($r), $want, "$q: the matching customers, in order");
        my @c = @{ $r->{json}{data}{customers} // [] };
        is(scalar(grep {
                (!defined $status || $_->{customerStatus} eq $status)
                && (!defined $type || $_->{customerType} eq $type) } @c),
            $total, "$q: every customer matches");

        # the totals of a small page
        $r = list("$q&sortBy=totalOrderValue&limit=3&page=2");
        my $pages = int(($total + 2) / 3);
        is_deeply(pagination($r), { currentPage => 2, totalPages => $pages,
            totalItems => $total, itemsPerPage => 3,
            hasNextPage => 2 < $pages ? $T : $F, hasPreviousPage => $T },
            "$q&limit=3&page=2: pagination");
        is_deeply(ids_of($r), [@$want[3 .. ($total > 6 ? 5 : $total - 1)]],
            "$q&limit=3&page=2: customers 4 to 6");
    }
}

$r = list('status=Suspended&type=VIP');
is($r->{status}, 200, 'a filter matching nobody: 200');
is_deeply($r->{json}{data}{customers}, [], 'a filter matching nobody: empty');
is(pagination($r)->{totalItems}, 0, 'a filter matching nobody: 0 items');
is(pagination($r)->{hasNextPage}, $F, 'a filter matching nobody: no next');
is(pagination($r)->{hasPreviousPage}, $F,
    'a filter matching nobody: no previous');

$r = list('status=Active&sortBy=lastOrderDate&sortOrder=asc&limit=100');
my $got = ids_of($r);
my $dated = sql_ids(q{WHERE customer_status = 'Active'
    AND last_order_date IS NOT NULL}, 'last_order_date ASC');
is_deeply([@$got[0 .. $#$dated]], $dated,
    'status=Active by lastOrderDate asc: dated first, in order');
is(scalar @$got, CT::sql($db,
    q{SELECT count(*) FROM customers WHERE customer_status = 'Active'}),
    'status=Active by lastOrderDate: all of them');


# --- totals follow writes through the API ------------------------------------------

my $count = sub {
    my ($q) = @_;
    return pagination(list($q))->{totalItems};
};
my $vip_before = $count->('type=VIP');
my $act_before = $count->('status=Active');

$r = $ng->req(POST => '/api/customers', json => { userId => 'list-new',
    email => 'new@example.com', fullName => 'New Customer',
    customerType => 'VIP' });
is($r->{status}, 201, 'POST a VIP') or diag($r->{body});
my $nid = $r->{json}{data}{customerId};
is($count->(''), 61, 'after POST: 61 in all');
is($count->('type=VIP'), $vip_before + 1, 'after POST: one more VIP');
is($count->('status=Active&type=VIP'), CT::sql($db, q{SELECT count(*)
    FROM customers WHERE customer_status = 'Active' AND customer_type = 'VIP'}),
    'after POST: Active VIPs');

$r = $ng->req(PATCH => "/api/customers/$nid",
    json => { customerStatus => 'Suspended' });
is($r->{status}, 200, 'PATCH the new VIP to Suspended');
is($count->('status=Suspended&type=VIP'), 1, 'now one Suspended VIP');
is_deeply(ids_of(list('status=Suspended&type=VIP')), [$nid],
    'and it is listed');
is($count->('status=Active'), $act_before, 'Active count back as before');

$r = $ng->req(DELETE => "/api/customers/$nid");
is($r->{status}, 200, 'DELETE the new customer') or diag($r->{body});
is($count->(''), 60, 'after DELETE: 60 again');
is($count->('status=Suspended&type=VIP'), 0, 'no Suspended VIP left');
is($count->('type=VIP'), $vip_before, 'VIP count as before');

# changes made in SQL are seen too
CT::sql($db, q{UPDATE customers SET customer_type = 'VIP'
    WHERE user_id IN ('list-01', 'list-02')});
is($count->('type=VIP'), CT::sql($db,
    q{SELECT count(*) FROM customers WHERE customer_type = 'VIP'}),
    'an UPDATE in SQL: VIP totals follow');
CT::sql($db, q{DELETE FROM customers WHERE user_id = 'list-03'});
is($count->(''), 59, 'a DELETE in SQL: 59');
$r = list('limit=20&page=3');
is_deeply(pagination($r), { currentPage => 3, totalPages => 3,
    totalItems => 59, itemsPerPage => 20, hasNextPage => $F,
    hasPreviousPage => $T }, '59 customers: page 3 of 3');
is(scalar @{ ids_of($r) }, 19, '59 customers: 19 on the last page');


# --- bad parameters ------------------------------------------------------------------

for my $case (
    ['page=0', ['page']], ['page=-1', ['page']], ['page=abc', ['page']],
    ['page=1.5', ['page']], ['page=2x', ['page']],
    ['limit=0', ['limit']], ['limit=101', ['limit']],
    ['limit=-5', ['limit']], ['limit=ten', ['limit']],
    ['status=active', ['status']], ['status=Deleted', ['status']],
    ['type=Gold', ['type']], ['type=vip', ['type']],
    ['sortBy=email', ['sortBy']], ['sortBy=created_at', ['sortBy']],
    ['sortBy=', ['sortBy']],
    ['sortOrder=up', ['sortOrder']], ['sortOrder=ascending', ['sortOrder']],
    ['page=0&limit=101&status=x&type=y&sortBy=z&sortOrder=w',
        [qw(page limit status type sortBy sortOrder)]],
    ['page=2&limit=500', ['limit']],
    ['status=Active&type=Platinum&sortBy=fullName', ['type']])
{
    my ($q, $fields) = @$case;
    $r = list($q);
    is($r->{status}, 400, "?$q: 400") or diag($r->{body});
    ok($r->{json} && !$r->{json}{success}, "?$q: error envelope");
    is($r->{json} && $r->{json}{message}, 'Validation failed', "?$q: message");
    is_deeply(field_set($r), [sort @$fields], "?$q: errors name @$fields")
        or diag($r->{body});
}

# HEAD of the list
$r = $ng->req(HEAD => '/api/customers?limit=5');
is($r->{status}, 200, 'HEAD list: 200');
is($r->{body}, '', 'HEAD list: no body');

done_testing();
