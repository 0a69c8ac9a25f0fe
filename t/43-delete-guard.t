# DELETE /api/customers/{id} refuses a customer with active orders (asked
# of the Order Service: GET /api/orders?customerId=..&status=active&page=1
# &limit=100, max(list length, totalItems)) or open complaints (our own
# column), with a message that counts both (singular/plural); an Order
# Service 404 is no orders; when the Order Service is down, fails, answers
# nonsense (502) or is too slow (504) nothing is deleted; otherwise the
# row goes with its status history (outbox rows stay). Without
# customer_order_service only the complaints count.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $T = JSON::PP::true;
my $F = JSON::PP::false;
my $MISSING = '00000000-0000-4000-8000-000000000000';
my $PEER_KEY = 'peer-key-delete-0123456789abcdef';
my $ADMIN = CT::admin_token('delete-admin');
my $MESSAGE = 'Cannot delete customer with active orders or complaints';

# orders($n, $total): an Order Service page with $n orders
sub orders {
    my ($n, $total) = @_;
    return [200, {}, { success => $T, data => {
        orders => [ map { { orderId => "ORD-$_", status => 'Processing',
            totalAmount => 10, itemCount => 1 } } 1 .. $n ],
        pagination => { currentPage => 1, totalPages => 1,
            totalItems => $total // $n } } }];
}

my $orders = CT::peer_start(handler => sub { orders(0) });
my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db, peers => { orders => $orders,
    read_timeout => '1s', key => $PEER_KEY });
my ($worker) = $ng->worker_pids;


# --- helpers -------------------------------------------------------------

# A customer with $open open complaints, two status history rows and an
# outbox row.
sub customer {
    my ($open) = @_;
    my $c = CT::insert_customer($db, 'delete',
        total_complaints => $open // 0, open_complaints => $open // 0);
    my $id = $c->{id};
    CT::sql($db, q{INSERT INTO customer_status_history (customer_id,
        old_status, new_status, reason, changed_by) VALUES
        (:'p1', 'Active', 'Suspended', 'one', 'x'),
        (:'p1', 'Suspended', 'Active', 'two', 'x')}, $id);
    CT::sql($db, q{INSERT INTO events (destination, type, customer_id,
        subject, data, channels, delivered_at) VALUES ('auth',
        'customer.status_changed', :'p1', 'customers/' || :'p1',
        jsonb_build_object('customerId', :'p1', 'userId', :'p2',
        'isActive', true), '{}', now())}, $id, $c->{user});
    return $id;
}

sub count_of {
    my ($table, $col, $id) = @_;
    return scalar CT::sql($db,
        "SELECT count(*) FROM $table WHERE $col = :'p1'", $id);
}

sub snapshot {
    my ($id) = @_;
    return scalar CT::sql($db, q{SELECT row_to_json(c)::text FROM customers c
        WHERE id = :'p1'}, $id);
}

sub del {
    my ($id, %o) = @_;
    return $ng->req(DELETE => "/api/customers/$id", auth => $ADMIN, %o);
}

# The row (and its history) stays as it was.
sub stays {
    my ($id, $snap, $name) = @_;
    is(snapshot($id), $snap, "$name: the customer stays as it was");
    is(count_of('customer_status_history', 'customer_id', $id), 2,
        "$name: its history stays");
}

sub is_refused {
    my ($r, $detail, $name) = @_;
    is($r->{status}, 400, "$name: 400") or diag($r->{body});
    is_deeply($r->{json}, { success => $F, message => $MESSAGE,
        errors => [ { field => 'customer',
            message => "Customer has $detail. Please resolve these first." } ]
        }, "$name: body") or diag($r->{body});
}

sub is_deleted {
    my ($r, $id, $name) = @_;
    is($r->{status}, 200, "$name: 200") or diag($r->{body});
    is($r->{json}{message}, 'Customer deleted successfully',
        "$name: message");
    is(($r->{json}{data} // {})->{customerId}, $id, "$name: customerId");
    like(($r->{json}{data} // {})->{deletedAt} // '',
        qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, "$name: deletedAt");
    is(count_of('customers', 'id', $id), 0, "$name: the row is gone");
    is(count_of('customer_status_history', 'customer_id', $id), 0,
        "$name: its status history is gone");
    is(scalar CT::sql($db, q{SELECT count(*) FROM events
        WHERE destination = 'auth' AND customer_id = :'p1'}, $id), 1,
        "$name: its outbox row stays");
}

# The one Order Service call: GET /api/orders, active ones, first 100.
sub is_orders_call {
    my ($id, $name) = @_;
    my @calls = $orders->requests;
    is(scalar @calls, 1, "$name: the Order Service got one call")
        or diag(explain(\@calls));
    my $c = $calls[0] // { headers => {} };
    is($c->{method}, 'GET', "$name: GET");
    is($c->{path}, '/api/orders', "$name: /api/orders");
    is($c->{query}, "customerId=$id&status=active&page=1&limit=100",
        "$name: the query");
    is_deeply($c->{args}, { customerId => $id, status => 'active',
        page => 1, limit => 100 }, "$name: customerId, status=active");
    is($c->{headers}{'x-service-api-key'}, $PEER_KEY,
        "$name: X-Service-API-Key");
    is($c->{body}, '', "$name: no body");
}

sub is_peer_error {
    my ($r, $status, $name) = @_;
    my $detail = $status == 504 ? 'did not answer in time'
        : 'is currently unavailable';
    is($r->{status}, $status, "$name: $status") or diag($r->{body});
    is_deeply($r->{json}, { success => $F,
        message => 'Unable to fetch order data',
        errors => [ { field => 'service',
            message => "Order Service $detail. Please try again later." } ] },
        "$name: error body") or diag($r->{body});
    cmp_ok($r->{elapsed}, '<', 3, "$name: answered promptly");
}

sub with_orders {
    my ($handler) = @_;
    $orders->handler($handler);
    $orders->clear;
}


# --- active orders, open complaints, both --------------------------------

for my $case (
    [ '3 active orders', sub { orders(3) }, 0,
        '3 active orders and 0 open complaints' ],
    [ '1 active order', sub { orders(1) }, 0,
        '1 active order and 0 open complaints' ],
    [ 'totalItems beyond the page', sub { orders(2, 250) }, 0,
        '250 active orders and 0 open complaints' ],
    [ 'a list longer than totalItems', sub { orders(4, 1) }, 0,
        '4 active orders and 0 open complaints' ],
    [ 'totalItems only', sub { orders(0, 7) }, 0,
        '7 active orders and 0 open complaints' ],
    [ '1 open complaint', sub { orders(0) }, 1,
        '0 active orders and 1 open complaint' ],
    [ '2 open complaints', sub { orders(0) }, 2,
        '0 active orders and 2 open complaints' ],
    [ 'orders and a complaint', sub { orders(3) }, 1,
        '3 active orders and 1 open complaint' ],
    [ 'an order and complaints', sub { orders(1) }, 5,
        '1 active order and 5 open complaints' ],
    [ 'a bare array of orders', sub { [200, {}, [ { orderId => 'A' },
        { orderId => 'B' } ]] }, 0, '2 active orders and 0 open complaints' ],
) {
    my ($name, $handler, $open, $detail) = @$case;
    with_orders($handler);
    my $id = customer($open);
    my $snap = snapshot($id);
    my $r = del($id);
    is_refused($r, $detail, $name);
    is_orders_call($id, $name);
    stays($id, $snap, $name);
}


# --- neither: deleted ----------------------------------------------------

with_orders(sub { orders(0) });
my $id = customer(0);
my $r = del($id);
is_deleted($r, $id, 'no orders, no complaints');
is_orders_call($id, 'no orders, no complaints');
$r = $ng->req(GET => "/api/customers/$id", auth => $ADMIN);
is($r->{status}, 404, 'deleted: GET is 404');
$r = del($id);
is($r->{status}, 404, 'deleted: DELETE again is 404');

with_orders(sub { [404, {}, { success => $F, message => 'Not found' }] });
$id = customer(0);
is_deleted(del($id), $id, 'Order Service 404');
is_orders_call($id, 'Order Service 404');

with_orders(sub { [404, { 'Content-Type' => 'text/html' }, '<h1>no</h1>'] });
$id = customer(0);
is_deleted(del($id), $id, 'Order Service 404 in HTML');

# a 404 from the Order Service does not hide open complaints
$id = customer(1);
my $snap = snapshot($id);
is_refused(del($id), '0 active orders and 1 open complaint',
    'Order Service 404, 1 open complaint');
stays($id, $snap, 'Order Service 404, 1 open complaint');


# --- the Order Service fails: nothing is deleted ---------------------------

for my $case (
    [ 'Order Service 500', sub { [500, {}, { success => $F }] }, 502 ],
    [ 'Order Service 503', sub { [503, {}, 'busy'] }, 502 ],
    [ 'Order Service garbage', sub { [200, {}, 'this is not JSON {'] }, 502 ],
    [ 'Order Service HTML', sub {
        [200, { 'Content-Type' => 'text/html' }, '<html></html>'] }, 502 ],
    [ 'Order Service without orders', sub {
        [200, {}, { success => $T, data => { items => [] } }] }, 502 ],
    [ 'Order Service orders not a list', sub {
        [200, {}, { success => $T, data => { orders => 3 } }] }, 502 ],
    [ 'Order Service hangs up', sub { return }, 502 ],
    [ 'Order Service slow', sub { sleep 3; orders(0) }, 504 ],
) {
    my ($name, $handler, $status) = @$case;
    with_orders($handler);
    my $id = customer(0);
    my $snap = snapshot($id);
    my $r = del($id);
    is_peer_error($r, $status, $name);
    is_orders_call($id, $name);
    stays($id, $snap, $name);
}

$orders->stop;
$id = customer(0);
$snap = snapshot($id);
$r = del($id);
is_peer_error($r, 502, 'Order Service down');
stays($id, $snap, 'Order Service down');
$orders->start;

# back to normal: the same customer can now go
with_orders(sub { orders(0) });
is_deleted(del($id), $id, 'Order Service back');


# --- refused before any call: bad id, unknown id, roles ---------------------

with_orders(sub { orders(0) });
$r = del('not-a-uuid');
is($r->{status}, 400, 'bad id: 400') or diag($r->{body});
is_deeply([ map { $_->{field} } @{ $r->{json}{errors} // [] } ],
    ['customerId'], 'bad id: customerId');
$r = del($MISSING);
is($r->{status}, 404, 'unknown id: 404') or diag($r->{body});
$id = customer(0);
$snap = snapshot($id);
$r = del($id, auth => CT::customer_token('delete-user-x'));
is($r->{status}, 403, 'Customer token: 403') or diag($r->{body});
$r = del($id, auth => 'none');
is($r->{status}, 401, 'no token: 401') or diag($r->{body});
is(scalar $orders->requests, 0,
    'bad id, unknown id, wrong caller: the Order Service was not called');
stays($id, $snap, 'wrong caller');

is_deeply([$ng->worker_pids], [$worker], 'the worker lived throughout');


# --- without customer_order_service: only the complaints count -------------

with_orders(sub { orders(3) });
my $ng2 = CT::nginx_start(db => $db);
$id = customer(1);
$snap = snapshot($id);
$r = $ng2->req(DELETE => "/api/customers/$id", auth => $ADMIN);
is_refused($r, '0 active orders and 1 open complaint',
    'no Order Service, 1 open complaint');
stays($id, $snap, 'no Order Service, 1 open complaint');
$id = customer(3);
is_refused($ng2->req(DELETE => "/api/customers/$id", auth => $ADMIN),
    '0 active orders and 3 open complaints',
    'no Order Service, 3 open complaints');
$id = customer(0);
is_deleted($ng2->req(DELETE => "/api/customers/$id", auth => $ADMIN), $id,
    'no Order Service, no complaints');
is(scalar $orders->requests, 0, 'no Order Service: nothing was called');

done_testing();
