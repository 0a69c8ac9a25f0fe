# Configuration checks: every bad value of the module's directives fails
# `nginx -t` with an [emerg] naming the directive; a complete valid
# configuration passes.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $port = CT::free_port();

my $DB = q{customer_db "host=127.0.0.1 dbname=x user=x sslmode=disable";}
    . "\n    " . CT::jwt_conf();

# conf(http-level directives, location body): (exit code, output)
sub conf { CT::nginx_test_server(@_) }

# fails($name, $http, $location, $re): nginx -t fails with an [emerg]
# whose text matches $re.
sub fails {
    my ($name, $http, $location, $re) = @_;
    my ($rc, $out) = conf($http, $location);
    my ($emerg) = $out =~ /(\[emerg\].*)/;

    ok($rc != 0, "$name: nginx -t fails") or diag($out);
    like($emerg // '', $re, "$name: the [emerg] names the problem")
        or diag($out);
}

# --- valid configurations -------------------------------------------------

{
    my ($rc, $out) = conf(join("\n    ", $DB, 'customer_db_pool 1024;',
        'customer_db_timeout 1s;', 'customer_db_queue 0;'));
    is($rc, 0, 'valid config (limits at their bounds) passes nginx -t')
        or diag($out);
    like($out, qr/test is successful/, 'nginx -t says successful');

    ($rc, $out) = conf(join("\n    ", $DB, 'customer_db_pool 1;',
        'customer_db_timeout 250ms;', 'customer_db_queue 65536;'));
    is($rc, 0, 'valid config (other bounds) passes nginx -t') or diag($out);

    ($rc, $out) = conf($DB);
    is($rc, 0, 'customer_db alone (defaults for the rest) passes nginx -t')
        or diag($out);

    ($rc, $out) = conf($DB, 'return 200;');
    is($rc, 0, 'customer_db without customer_api passes nginx -t')
        or diag($out);

    ($rc, $out) = conf('', 'return 200;');
    is($rc, 0, 'neither directive: the loaded module is inert')
        or diag($out);
}

# --- customer_db_pool (1..1024) ---------------------------------------------

fails('customer_db_pool 0', "$DB customer_db_pool 0;", undef,
    qr/customer_db_pool/);
fails('customer_db_pool abc', "$DB customer_db_pool abc;", undef,
    qr/"customer_db_pool" directive invalid/);
fails('customer_db_pool 5000', "$DB customer_db_pool 5000;", undef,
    qr/customer_db_pool/);
fails('customer_db_pool without value', "$DB customer_db_pool;", undef,
    qr/invalid number of arguments in "customer_db_pool"/);

# --- customer_db_timeout (> 0) ----------------------------------------------

fails('customer_db_timeout 0', "$DB customer_db_timeout 0;", undef,
    qr/"customer_db_timeout" must be more than 0/);
fails('customer_db_timeout xyz', "$DB customer_db_timeout xyz;", undef,
    qr/"customer_db_timeout" directive invalid/);
fails('customer_db_timeout -1s', "$DB customer_db_timeout -1s;", undef,
    qr/"customer_db_timeout" directive invalid/);

# --- customer_db_queue (0..65536) -------------------------------------------

fails('customer_db_queue -1', "$DB customer_db_queue -1;", undef,
    qr/"customer_db_queue" directive invalid/);
fails('customer_db_queue 65537', "$DB customer_db_queue 65537;", undef,
    qr/customer_db_queue/);

# --- customer_db --------------------------------------------------------------

fails('customer_db twice',
    q{customer_db "dbname=a"; customer_db "dbname=b";}, undef,
    qr/"customer_db" directive is duplicate/);
fails('customer_db with an unknown option',
    q{customer_db "host=x bogus_option=1";}, undef,
    qr/invalid "customer_db" connection string.*bogus_option/);
fails('customer_db with a malformed string',
    q{customer_db "host='unterminated";}, undef,
    qr/invalid "customer_db" connection string/);
fails('customer_db with a host name that does not resolve',
    q{customer_db "host=no-such-host.invalid dbname=x";}, undef,
    qr/"customer_db" host "no-such-host\.invalid" cannot be resolved/);
fails('customer_db with a name among addresses that does not resolve',
    q{customer_db "host=127.0.0.1,no-such-host.invalid port=1,2 dbname=x";},
    undef, qr/host "no-such-host\.invalid" cannot be resolved/);
{
    # a name that resolves passes; with hostaddr nothing is resolved
    my $auth = CT::jwt_conf();
    my ($rc, $out) = conf(qq{customer_db "host=localhost dbname=x";\n$auth});
    is($rc, 0, 'customer_db host=localhost: resolved, nginx -t passes')
        or diag($out);
    ($rc, $out) = conf(qq{customer_db "host=no-such-host.invalid}
        . qq{ hostaddr=127.0.0.1 dbname=x";\n$auth});
    is($rc, 0, 'customer_db with hostaddr: the name is not resolved')
        or diag($out);
}
fails('customer_db empty', q{customer_db "";}, undef,
    qr/"customer_db" needs a libpq connection string/);
{
    my ($rc, $out) = CT::nginx_test_conf(<<"HTTP");
    server {
        listen 127.0.0.1:$port;
        customer_db "dbname=x";
        location / { return 200; }
    }
HTTP
    ok($rc != 0, 'customer_db in server{} fails nginx -t') or diag($out);
    like($out, qr/"customer_db" directive is not allowed here/,
        'customer_db in server{}: the [emerg] names it') or diag($out);
}

# --- customer_api -------------------------------------------------------------

fails('customer_api without customer_db', '', undef,
    qr/"customer_api" is used but "customer_db" is not set/);
fails('customer_api twice in one location', $DB,
    'customer_api; customer_api;',
    qr/"customer_api" directive is duplicate/);
fails('customer_api after proxy_pass', $DB,
    'proxy_pass http://127.0.0.1:1; customer_api;',
    qr/"customer_api" directive conflicts with another content handler/);
fails('proxy_pass after customer_api', $DB,
    'customer_api; proxy_pass http://127.0.0.1:1;',
    qr/customer_api|proxy_pass|content handler/);
fails('customer_api with an argument', $DB, 'customer_api on;',
    qr/invalid number of arguments in "customer_api"/);

done_testing();
