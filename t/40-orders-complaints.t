# A customer's order and complaint history (seed 002 4.8), with fake Order
# and Complaint services (CT::peer_start) behind the internal locations:
# the seed example passes through exactly; what the service is sent
# (method, path, query, service key or the caller's token, X-Request-Id);
# paging; the answer shapes a service may give; a service 404 is an empty
# page; a service that is down, hangs up, fails, answers nonsense or is too
# slow is a prompt 502/504 and never a crash; validation, roles and an
# unknown customer are answered without calling the service; a deployment
# without customer_order_service says so.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use Time::HiRes qw(time sleep);

my $PEER_KEY = 'peer-key-0123456789abcdef';

# seed 002 4.8, as the Order Service would send it (3500.00 as written)
my $SEED_ORDERS = <<'JSON';
{"success":true,"data":{"orders":[
 {"orderId":"ORD-2026-001234","orderDate":"2026-01-20T14:30:00.000Z",
  "status":"Delivered","totalAmount":3500.00,"itemCount":3},
 {"orderId":"ORD-2026-001100","orderDate":"2026-01-10T09:15:00.000Z",
  "status":"Delivered","totalAmount":1200.00,"itemCount":1}],
 "pagination":{"currentPage":1,"totalPages":2,"totalItems":15}}}
JSON

my $COMPLAINTS = [
    { complaintId => 'CMP-2026-000042', subject => 'Late delivery',
      status => 'Open', createdAt => '2026-01-21T10:00:00.000Z',
      tags => ['delivery'], resolution => undef, priority => 2 },
];

my %SVC = (
    orders => { name => 'Order Service', what => 'order data',
        path => '/api/orders',
        message => 'Customer order history retrieved successfully' },
    complaints => { name => 'Complaint Service', what => 'complaint data',
        path => '/api/complaints',
        message => 'Customer complaint history retrieved successfully' },
);

my %peer = (
    orders => CT::peer_start(handler => sub { [200, {}, $SEED_ORDERS] }),
    complaints => CT::peer_start(handler => sub {
        [200, {}, { success => $T, data => { complaints => $COMPLAINTS,
            pagination => { currentPage => 1, totalPages => 1,
                totalItems => 1 } } }] }),
);

my $db = CT::db_create();
my ($http, $server) = CT::peer_conf(orders => $peer{orders},
    complaints => $peer{complaints}, read_timeout => '1s', key => $PEER_KEY);
my $ng = CT::nginx_start(db => $db, http_extra => $http,
    server_extra => $server);
my ($worker) = $ng->worker_pids;

my $ID = CT::sql($db, q{INSERT INTO customers (user_id, email, full_name)
    VALUES ('history-user', 'history@example.com', 'History Test')
    RETURNING id});
my $ADMIN = CT::admin_token('history-admin');


# --- helpers -------------------------------------------------------------

sub history {
    my ($kind, $id, $query, %o) = @_;
    return $ng->req(GET => "/api/customers/$id/$kind$query", %o);
}

# One GET on one connection (HTTP::Tiny retries a GET once when the
# connection closes without an answer, which would hide that and call the
# service twice): {status, headers, body, json, elapsed}, status 0 when
# nginx sent no answer.
sub raw_get {
    my ($path) = @_;
    my $t0 = time;
    my $bytes = $ng->raw("GET $path HTTP/1.1\r\nHost: localhost\r\n"
        . "Authorization: Bearer $ADMIN\r\nConnection: close\r\n\r\n",
        timeout => 10);
    my %r = (status => 0, headers => {}, body => '', json => undef,
        elapsed => time - $t0);
    my ($head, $body) = split /\r\n\r\n/, $bytes, 2;
    return \%r unless defined $body && $head =~ m{^HTTP/1\.1 (\d{3})};
    $r{status} = $1;
    for (split /\r\n/, $head) {
        $r{headers}{lc $1} = $2 if /^([^:]+):\s*(.*)$/;
    }
    if (($r{headers}{'transfer-encoding'} // '') eq 'chunked') {
        my $plain = '';
        while ($body =~ s/\A([0-9a-fA-F]+)\r\n//) {
            my $n = hex $1;
            last unless $n;
            $plain .= substr($body, 0, $n, '');
            $body =~ s/\A\r\n//;
        }
        $body = $plain;
    }
    $r{body} = $body;
    $r{json} = eval { JSON::PP->new->utf8->decode($body) };
    return \%r;
}

sub clear_peers { $_->clear for values %peer }

# The one call the service got (a failed test if not exactly one).
sub one_call {
    my ($kind, $name) = @_;
    my @calls = $peer{$kind}->requests;
    is(scalar @calls, 1, "$name: the $SVC{$kind}{name} got one call")
        or diag(explain(\@calls));
    return $calls[0] // { headers => {}, args => {} };
}

sub no_calls {
    my ($name) = @_;
    my @calls = map { $_->requests } values %peer;
    is(scalar @calls, 0, "$name: no service was called")
        or diag(explain(\@calls));
}

sub same_worker {
    my ($name) = @_;
    is_deeply([$ng->worker_pids], [$worker], "$name: the worker lives on");
}

# A 200 history page: the envelope, customerId, items, pagination.
sub is_page {
    my ($r, $kind, $items, $pagination, $name) = @_;
    is($r->{status}, 200, "$name: 200") or diag($r->{body});
    like($r->{headers}{'content-type'} // '', qr{^application/json},
        "$name: JSON");
    is_deeply($r->{json}, { success => $T, message => $SVC{$kind}{message},
        data => { customerId => $ID, $kind => $items,
            pagination => $pagination } }, "$name: body")
        or diag($r->{body});
}

# 502/504 in the error envelope, answered promptly.
sub is_peer_error {
    my ($r, $kind, $status, $name) = @_;
    my $svc = $SVC{$kind};
    my $detail = $status == 504 ? 'did not answer in time'
        : 'is currently unavailable';
    is($r->{status}, $status, "$name: $status")
        or diag($r->{status} ? $r->{body}
            : 'nginx closed the connection without an answer');
    is_deeply($r->{json}, { success => $F,
        message => "Unable to fetch $svc->{what}",
        errors => [ { field => 'service',
            message => "$svc->{name} $detail. Please try again later." } ] },
        "$name: error body") or diag($r->{body});
    ok(length($r->{headers}{'x-request-id'} // ''), "$name: X-Request-Id");
    cmp_ok($r->{elapsed}, '<', 3, "$name: answered promptly");
}


# --- seed 002 4.8: the example passes through exactly --------------------

my $r = history(orders => $ID, '?page=1&limit=10', auth => $ADMIN,
    headers => { 'X-Request-Id' => 'history-req-1' });
is_page($r, 'orders',
    JSON::PP->new->decode($SEED_ORDERS)->{data}{orders},
    { currentPage => 1, totalPages => 2, totalItems => 15,
      itemsPerPage => 10 }, 'seed 4.8 orders');
like($r->{body}, qr/"totalAmount":3500\.00,"itemCount":3\}/,
    'seed 4.8: the items are copied as written (3500.00)');
is($r->{headers}{'x-request-id'}, 'history-req-1',
    'seed 4.8: X-Request-Id echoed');

my $call = one_call(orders => 'seed 4.8');
is($call->{method}, 'GET', 'call: GET');
is($call->{path}, '/api/orders', 'call: path /api/orders');
is($call->{query}, "customerId=$ID&page=1&limit=10", 'call: query');
is_deeply($call->{args}, { customerId => $ID, page => 1, limit => 10 },
    'call: customerId, page and limit');
is($call->{headers}{accept}, 'application/json', 'call: Accept');
is($call->{headers}{'x-service-api-key'}, $PEER_KEY,
    'call: X-Service-API-Key is customer_peer_key');
ok(!exists $call->{headers}{authorization},
    "call: the caller's token is not passed on when there is a key");
is($call->{headers}{'x-request-id'}, 'history-req-1',
    "call: the client's X-Request-Id is passed on");
is($call->{body}, '', 'call: no body');
is(scalar $peer{complaints}->requests, 0,
    'the Complaint Service was not called for orders');

clear_peers();
$r = history(complaints => $ID, '', auth => $ADMIN);
is_page($r, 'complaints', $COMPLAINTS,
    { currentPage => 1, totalPages => 1, totalItems => 1,
      itemsPerPage => 10 }, 'complaints');
$call = one_call(complaints => 'complaints');
is($call->{path}, '/api/complaints', 'complaints call: path');
is($call->{query}, "customerId=$ID&page=1&limit=10",
    'complaints call: default page 1, limit 10');
is($call->{headers}{'x-service-api-key'}, $PEER_KEY,
    'complaints call: X-Service-API-Key');
ok(length($r->{headers}{'x-request-id'} // ''),
    'complaints: a generated X-Request-Id');
is($call->{headers}{'x-request-id'} // $r->{headers}{'x-request-id'},
    $r->{headers}{'x-request-id'},
    'complaints call: without a client X-Request-Id, any sent is the same');
is(scalar $peer{orders}->requests, 0,
    'the Order Service was not called for complaints');


# --- paging ---------------------------------------------------------------

for my $kind (qw(orders complaints)) {
    my $p = $peer{$kind};
    $p->handler(sub {
        my ($req) = @_;
        my %a = %{ $req->{args} };
        [200, {}, { success => $T, data => {
            $kind => [ map { { n => $_ } } 1 .. 2 ],
            pagination => { currentPage => $a{page} + 0,
                totalPages => 4, totalItems => 77 } } }];
    });

    for my $case (['?page=3&limit=25', 3, 25], ['?limit=100', 1, 100],
        ['?page=1000000&limit=1', 1000000, 1], ['?page=2', 2, 10])
    {
        my ($q, $page, $limit) = @$case;
        clear_peers();
        $r = history($kind => $ID, $q);
        is_page($r, $kind, [ { n => 1 }, { n => 2 } ],
            { currentPage => $page, totalPages => 4, totalItems => 77,
              itemsPerPage => $limit }, "$kind$q");
        is(one_call($kind => "$kind$q")->{query},
            "customerId=$ID&page=$page&limit=$limit",
            "$kind$q: page and limit passed on");
    }
}


# --- the shapes a service may answer in ----------------------------------

my @ITEMS = ({ id => 'A-1', total => 10.50 }, { id => 'A-2', x => [1, 2] },
    { id => 'A-3', nested => { ok => $T, none => undef } });

for my $kind (qw(orders complaints)) {
    my @shapes = (
        [ 'bare object with pagination',
          { $kind => \@ITEMS, pagination => { currentPage => 2,
              totalPages => 9, totalItems => 81 } },
          \@ITEMS, 2, 9, 81 ],
        [ 'bare array', \@ITEMS, \@ITEMS, 2, 1, 3 ],
        [ '{"data": [...]}', { data => \@ITEMS }, \@ITEMS, 2, 1, 3 ],
        [ 'no pagination', { success => $T, data => { $kind => \@ITEMS } },
          \@ITEMS, 2, 1, 3 ],
        [ 'pagination not in whole numbers',
          { data => { $kind => \@ITEMS, pagination => { currentPage => '5',
              totalPages => 1.5, totalItems => -4 } } },
          \@ITEMS, 2, 1, 3 ],
        [ 'empty list', { data => { $kind => [] } }, [], 2, 0, 0 ],
        [ 'empty bare array', [], [], 2, 0, 0 ],
    );
    for my $s (@shapes) {
        my ($what, $answer, $items, $cur, $pages, $total) = @$s;
        $peer{$kind}->handler(sub { [200, {}, $answer] });
        $r = history($kind => $ID, '?page=2&limit=7');
        is_page($r, $kind, $items, { currentPage => $cur,
            totalPages => $pages, totalItems => $total, itemsPerPage => 7 },
            "$kind, $what");
    }

    # the service does not know the customer: an empty page
    for my $body ('{"success":false,"message":"Customer not found"}',
        'not json at all')
    {
        $peer{$kind}->handler(sub { [404, {}, $body] });
        clear_peers();
        $r = history($kind => $ID, '?page=3&limit=5');
        is_page($r, $kind, [], { currentPage => 3, totalPages => 0,
            totalItems => 0, itemsPerPage => 5 },
            "$kind, service 404 ($body)");
        one_call($kind => "$kind, service 404");
    }
}


# --- a failing service: 502/504 promptly, and no crash -------------------

my @FAILURES = (
    [ 'hangs up without answering', 502, sub { return } ],
    [ 'refuses (503)', 502,
      sub { [503, {}, '{"success":false,"message":"busy"}'] } ],
    [ 'fails (500)', 502,
      sub { [500, {}, '{"success":false,"message":"boom"}'] } ],
    [ 'answers garbage', 502, sub { [200, {}, 'garbage'] } ],
    [ 'answers nothing', 502, sub { [200, {}, ''] } ],
    [ 'answers truncated JSON', 502,
      sub { [200, {}, '{"data":{"orders":[{"a":1}'] } ] ,
    [ 'answers invalid UTF-8', 502,
      sub { [200, {}, qq{{"data":[{"a":"\xff\xfe"}]}}] } ],
    [ 'answers JSON without the list', 502,
      sub { [200, {}, { success => $T, data => {} }] } ],
    [ 'answers a list that is not an array', 502,
      sub { [200, {}, { success => $T, data => { orders => 'none',
          complaints => { a => 1 } } }] } ],
    [ 'answers a JSON string', 502, sub { [200, {}, '"orders"'] } ],
    [ 'answers a 301', 502,
      sub { [301, { Location => 'http://127.0.0.1:1/' }, ''] } ],
    [ 'answers more than subrequest_output_buffer_size', 502,
      sub { [200, {}, { data => [ ('x' x 1000) x 100 ] }] } ],
    [ 'is slower than proxy_read_timeout', 504,
      sub { sleep 3; [200, {}, '[]'] } ],
);

for my $kind (qw(orders complaints)) {
    my $p = $peer{$kind};

    for my $f (@FAILURES) {
        my ($what, $status, $handler) = @$f;
        my $name = "$SVC{$kind}{name} $what";
        $p->handler($handler);
        clear_peers();
        $r = raw_get("/api/customers/$ID/$kind?page=1&limit=10");
        is_peer_error($r, $kind, $status, $name);
        one_call($kind => $name);
        same_worker($name);
    }

    # down: nothing listens on its port
    $p->stop;
    clear_peers();
    $r = history($kind => $ID, '');
    is_peer_error($r, $kind, 502, "$SVC{$kind}{name} down");
    same_worker("$SVC{$kind}{name} down");
    $p->start;

    # and back: answers again
    $p->handler(sub { [200, {}, [ { back => $T } ]] });
    $r = history($kind => $ID, '?limit=3');
    is_page($r, $kind, [ { back => $T } ], { currentPage => 1,
        totalPages => 1, totalItems => 1, itemsPerPage => 3 },
        "$SVC{$kind}{name} back up");
}

# While a call waits for a slow service, the worker serves others.
$peer{orders}->handler(sub { sleep 2; [200, {}, '[]'] });
{
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        $ng->req(GET => "/api/customers/$ID/orders");
        POSIX::_exit(0);
    }
    CT::wait_for(sub { scalar $peer{orders}->requests }, timeout => 5);
    my $t0 = time;
    my $h = $ng->req(GET => '/health');
    is($h->{status}, 200, 'during a slow call: /health answers');
    cmp_ok(time - $t0, '<', 0.5, 'during a slow call: at once');
    waitpid($pid, 0);
    same_worker('during a slow call');
}
$peer{orders}->handler(sub { [200, {}, $SEED_ORDERS] });


# --- refused before any call ---------------------------------------------

for my $kind (qw(orders complaints)) {
    clear_peers();

    $r = history($kind => $ID, '', auth => CT::customer_token('history-user'));
    is($r->{status}, 403, "$kind: a Customer token is 403")
        or diag($r->{body});
    ok($r->{json} && !$r->{json}{success}, "$kind 403: success false");

    $r = history($kind => $ID, '', auth => 'none');
    is($r->{status}, 401, "$kind: no token is 401") or diag($r->{body});

    $r = history($kind => $ID, '', auth => 'service');
    is($r->{status}, 401, "$kind: a service key is 401") or diag($r->{body});

    $r = history($kind => $MISSING, '');
    is($r->{status}, 404, "$kind: unknown customer is 404")
        or diag($r->{body});
    is($r->{json} && $r->{json}{message}, 'Customer not found',
        "$kind 404: message");
    is_deeply(fields_of($r), ['customerId'], "$kind 404: field customerId");

    for my $case (
        ['not-a-uuid', '', ['customerId']],
        [uc $MISSING =~ s/-//gr, '', ['customerId']],
        [$ID, '?page=0', ['page']],
        [$ID, '?page=-1', ['page']],
        [$ID, '?page=abc', ['page']],
        [$ID, '?page=1000001', ['page']],
        [$ID, '?page=', ['page']],
        [$ID, '?limit=0', ['limit']],
        [$ID, '?limit=101', ['limit']],
        [$ID, '?limit=1.5', ['limit']],
        [$ID, '?limit=10x', ['limit']],
        [$ID, '?page=0&limit=500', ['page', 'limit']],
        ['xyz', '?page=x&limit=0', ['customerId', 'page', 'limit']],
    ) {
        my ($id, $q, $fields) = @$case;
        my $name = "$kind /$id$q";
        $r = history($kind => $id, $q);
        is($r->{status}, 400, "$name: 400") or diag($r->{body});
        is($r->{json} && $r->{json}{message}, 'Validation failed',
            "$name: Validation failed");
        is_deeply(fields_of($r), $fields, "$name: fields @$fields")
            or diag($r->{body});
    }
    no_calls("$kind refusals");
}
same_worker('refusals');


# --- a deployment without customer_order_service, and without a key ------

my ($http2, $server2) = CT::peer_conf(complaints => $peer{complaints});
my $ng2 = CT::nginx_start(db => $db, http_extra => $http2,
    server_extra => $server2);

clear_peers();
$r = $ng2->req(GET => "/api/customers/$ID/orders", auth => $ADMIN);
is($r->{status}, 502, 'no customer_order_service: 502') or diag($r->{body});
is_deeply($r->{json}, { success => $F, message => 'Service not configured',
    errors => [ { field => 'service',
        message => 'This deployment has no route to the service' } ] },
    'no customer_order_service: body') or diag($r->{body});
like($ng2->error_log, qr/\[error\].*no location is configured for this service/,
    'no customer_order_service: logged');
$r = $ng2->req(GET => "/api/customers/$MISSING/orders", auth => $ADMIN);
is($r->{status}, 404, 'no customer_order_service: unknown customer is 404');
no_calls('no customer_order_service');

$peer{complaints}->handler(sub { [200, {}, { data => [] }] });
$r = $ng2->req(GET => "/api/customers/$ID/complaints", auth => $ADMIN,
    headers => { 'X-Request-Id' => 'no-key-1' });
is($r->{status}, 200, 'no customer_peer_key: 200') or diag($r->{body});
$call = one_call(complaints => 'no customer_peer_key');
is($call->{headers}{authorization}, "Bearer $ADMIN",
    "no customer_peer_key: the caller's Authorization is passed on");
ok(!exists $call->{headers}{'x-service-api-key'},
    'no customer_peer_key: no X-Service-API-Key');
is($call->{headers}{'x-request-id'}, 'no-key-1',
    'no customer_peer_key: X-Request-Id');

done_testing();
