# conf/customer.conf.example passes `nginx -t` once its paths point at
# files made by CT::conf_example: the module ($CT_MODULE), an RS256 public
# key, a service keys file, a self-signed TLS certificate, and log, pid and
# temp paths in a fresh directory. Also: every path in it is one of those
# (so a new path added to the example gets a file there too), and it shows
# every directive of the module.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $NGINX = $ENV{CT_NGINX} // '/usr/sbin/nginx';

# The example's files made in a fresh directory, its paths pointed there.
my %ex = CT::conf_example();
my ($dir, $code, $test_conf) = @ex{qw(dir code conf)};

sub spew {
    my ($f, $data) = @_;
    open my $fh, '>:raw', $f or die "$f: $!";
    print $fh $data;
    close $fh or die "$f: $!";
    return $f;
}

# --- what the example shows ------------------------------------------------

for my $d (qw(customer_db customer_db_pool customer_db_pipeline
    customer_db_timeout customer_db_queue customer_jwt customer_jwt_issuer
    customer_jwt_audience customer_jwt_leeway customer_service_keys
    customer_peer_key customer_outbox_trigger customer_outbox_interval
    customer_auth_service customer_order_service customer_complaint_service
    customer_api limit_req_zone limit_req log_format error_page
    subrequest_output_buffer_size proxy_next_upstream keepalive
    ssl_certificate ssl_certificate_key))
{
    like($code, qr/^\s*\Q$d\E[\s;]/m, "the example uses $d");
}
like($code, qr/^\s*customer_jwt\s+RS256\s/m, 'the example verifies RS256');
like($code, qr/^\s*listen\s+443\s+ssl;/m, 'the example listens with TLS');
like($code, qr/^\s*location \/api\/ \{/m, 'the example has location /api/');
like($code, qr/^\s*location = \/health \{/m, 'the example has /health');
like($code, qr/^\s*location = \/_customer_error \{\s*internal;/m,
    'the example has the internal location /_customer_error');
like($code, qr{customer_db "[^"]*\bhostaddr=}, 'customer_db uses hostaddr');
for my $var (qw(time_iso8601 request_id request_method uri status
    request_time upstream_response_time upstream_status body_bytes_sent
    remote_addr))
{
    like($code, qr/log_format customer_json escape=json[^;]*\$\Q$var\E\b/s,
        "the JSON log_format has \$$var");
}

# --- its paths, pointed here ------------------------------------------------

my $module_line =
    'load_module /usr/lib/nginx/modules/ngx_http_customer_module.so;';
is(scalar(() = $code =~ /^\Q$module_line\E$/mg), 1,
    'the module is loaded from /usr/lib/nginx/modules/');

# Every absolute path left must be one that exists on any nginx host.
my $abs = qr{(?<![\w.:/])(/(?:etc|var|run|usr|srv|opt|home|tmp)/[^\s;"]*)};
my @left = grep { $_ ne '/etc/nginx/mime.types' && index($_, $dir) != 0
        && $_ ne $ENV{CT_MODULE} }
    $test_conf =~ /$abs/g;
is_deeply(\@left, [], 'every path in the example is mapped by this test')
    or diag("unmapped: @left");

spew("$dir/nginx.conf", $test_conf);
my ($rc, $out) = CT::_capture(
    [$NGINX, '-t', '-p', "$dir/", '-c', "$dir/nginx.conf"], merge => 1);
is($rc, 0, 'nginx -t passes on the example') or diag($out);
like($out, qr/test is successful/, 'nginx -t says successful');
unlike($out, qr/\[(?:emerg|alert|crit)\]/, 'no [emerg], [alert] or [crit]')
    or diag($out);

# The check has teeth: without the module its directives are unknown.
(my $no_module = $test_conf) =~ s/^load_module [^\n]*\n//m;
spew("$dir/no-module.conf", $no_module);
($rc, $out) = CT::_capture(
    [$NGINX, '-t', '-p', "$dir/", '-c', "$dir/no-module.conf"], merge => 1);
isnt($rc, 0, 'without load_module nginx -t fails');
like($out, qr/unknown directive "customer_/,
    '... on the first customer_ directive');

done_testing();
