# Prometheus metrics (customer_metrics; a shared memory zone, so two
# workers' requests are counted once) and $customer_route in access logs.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $db = CT::db_create();
my $down = CT::free_port();
my $http = <<"HTTP";
    log_format customer_json escape=json
        '{"requestId":"\$request_id","route":"\$customer_route",'
        '"status":"\$status","requestTime":"\$request_time"}';
    upstream customer_orders_up { server 127.0.0.1:$down; }
HTTP
my $server = <<'SERVER';
        access_log customer.log customer_json;
        customer_order_service /_svc/orders;
        location /_svc/orders/ {
            internal;
            proxy_pass http://customer_orders_up/;
            proxy_connect_timeout 1s;
        }
        location = /metrics { customer_metrics; }
SERVER
my $ng = CT::nginx_start(db => $db, workers => 2, http_extra => $http,
    server_extra => $server);

sub metrics {
    my $r = $ng->req(GET => '/metrics', auth => 'none');
    is($r->{status}, 200, 'metrics: 200');
    like($r->{headers}{'content-type'} // '', qr{^text/plain},
        'metrics: text/plain');
    my %m;
    for (split /\n/, $r->{body}) {
        next if /^#/ || !/\S/;
        my ($k, $v) = /^(\S+)\s+(\S+)$/ or next;
        $m{$k} = $v;
    }
    return (\%m, $r->{body});
}

# the first scrape: the counters start at zero (they once lay over the
# zone's slab pool header, and showed its pointers as counts)
{
    my ($m0) = metrics();
    my @absurd = grep { $m0->{$_} =~ /^\d+$/ && $m0->{$_} > 1_000_000 }
        keys %$m0;
    is("@absurd", '', 'first scrape: no counter holds a pointer');
    is(scalar(grep { /^customer_http_requests_total\{route="\/health",method="(?:POST|PUT|DELETE)"/ }
        keys %$m0), 0, 'first scrape: no counts for requests never made');
}

my $c = $ng->req(POST => '/api/customers', json => { userId => 'm-1',
    email => 'm1@example.com', fullName => 'Metric One' });
is($c->{status}, 201, 'a customer');
my $id = $c->{json}{data}{customerId};

my $N = 40;
is($ng->req(GET => "/api/customers/$id")->{status}, 200, "GET $_")
    for 1 .. $N;
is($ng->req(GET => '/api/customers/not-a-uuid')->{status}, 400, 'a 400');
is($ng->req(GET => '/api/nothing-here')->{status}, 404, 'a 404');
is($ng->req(GET => "/api/customers/$id/orders")->{status}, 502,
    'the Order Service is down: 502');

my ($m, $body) = metrics();
my $get = 'route="/api/customers/{}",method="GET"';

is($m->{"customer_http_requests_total{$get,status=\"2xx\"}"}, $N,
    "every GET counted once, whichever of the two workers answered");
is($m->{"customer_http_requests_total{$get,status=\"4xx\"}"}, 1,
    'the 400 counted under its route');
is($m->{'customer_http_requests_total{route="/api/customers",'
    . 'method="POST",status="2xx"}'}, 1, 'the POST counted');
is($m->{'customer_http_requests_total{route="none",method="GET",'
    . 'status="4xx"}'}, 1, 'the unmatched path counted as route none');
is($m->{"customer_http_request_duration_seconds_count{$get}"}, $N + 1,
    'the histogram counts the same requests');
is($m->{"customer_http_request_duration_seconds_bucket{$get,le=\"+Inf\"}"},
    $N + 1, 'the +Inf bucket holds them all');

my @le = $body =~ /^customer_http_request_duration_seconds_bucket\{\Q$get\E,le="[^"]+"\} (\d+)$/mg;
is(scalar @le, 13, 'thirteen buckets');
is_deeply([ sort { $a <=> $b } @le ], \@le, 'buckets are cumulative');

is($m->{'customer_peer_failures_total{service="orders"}'}, 1,
    'the failed Order Service call counted');
is($m->{'customer_outbox_pending'}, 0, 'outbox backlog: 0');
is($m->{'customer_db_up'}, 1, 'the database answered the scrape');
ok((grep { /^customer_db_connections\{worker="\d+",state="idle"\}$/ }
    keys %$m), 'pool gauges per worker');
unlike($body, qr/route="\/metrics"/, 'scrapes are not counted as API calls');

# $customer_route for log_format
my $log = CT::wait_for(sub {
        my $t = eval { CT::_slurp($ng->dir . '/customer.log') } // '';
        $t =~ /not-a-uuid|\{\}/ ? $t : undef }, timeout => 5);
ok($log, 'the JSON access log was written');
my @lines = grep { length } split /\n/, $log // '';
my @routes = map { /"route":"([^"]*)"/ ? $1 : '?' } @lines;
ok((grep { $_ eq '/api/customers/{}' } @routes),
    'the log names the route template');
ok((grep { $_ eq '' } @routes), 'an unmatched request logs an empty route');
like($lines[0] // '', qr/"requestId":"[0-9a-f]{32}"/,
    'the log carries the request id');

# nginx -t: customer_metrics next to another content handler
my ($rc, $out) = CT::nginx_test_conf(qq{
    customer_db "host=127.0.0.1 dbname=x user=x";
    } . CT::jwt_conf() . qq{
    server {
        listen 127.0.0.1:@{[CT::free_port()]};
        location = /metrics { proxy_pass http://127.0.0.1:1; customer_metrics; }
    }
});
ok($rc != 0, 'customer_metrics with proxy_pass fails nginx -t');
like($out, qr/customer_metrics.*conflicts/, 'and says why');

done_testing();
