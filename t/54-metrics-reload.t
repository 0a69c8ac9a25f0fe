# The metrics zone belongs to the configuration that runs: a reload that
# fails (here a log_format naming an unknown variable) leaves the old
# configuration running, and a worker the master starts afterwards (the
# old one was killed) still counts into the same zone and answers the
# scrape. customer_metrics in an nginx without customer_db answers the
# counters with customer_db_up 0 instead of crashing.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $MISSING = '00000000-0000-4000-8000-000000000000';
my $ROUTE = 'customer_http_requests_total{route="/api/customers/{}",'
    . 'method="GET",status="4xx"}';

sub scrape {
    my ($ng) = @_;
    my $r = $ng->req(GET => '/metrics', auth => 'none');
    my %m;
    for (split /\n/, $r->{body}) {
        next if /^#/;
        my ($k, $v) = /^(\S+)\s+(\S+)$/ or next;
        $m{$k} = $v;
    }
    return ($r, \%m);
}

{
    my $db = CT::db_create();
    my $ng = CT::nginx_start(db => $db, workers => 1,
        server_extra => "        location = /metrics { customer_metrics; }\n",
        allow_log => qr/unknown "no_such_variable" variable|exited on signal 9/);

    is($ng->req(GET => "/api/customers/$MISSING")->{status}, 404, "a 404 $_")
        for 1 .. 3;
    my ($r, $m) = scrape($ng);
    is($r->{status}, 200, 'scrape: 200');
    is($m->{$ROUTE}, 3, 'three requests counted');

    # a reload that fails
    my $conf = "$ng->{dir}/nginx.conf";
    open my $in, '<', $conf or die "$conf: $!";
    my $text = do { local $/; <$in> };
    close $in;
    (my $bad = $text) =~ s/^http \{\n/http {\n    log_format broken '\$no_such_variable';\n/m
        or die 'no http block';
    open my $out, '>', $conf or die "$conf: $!";
    print $out $bad;
    close $out;

    my ($worker) = $ng->worker_pids;
    kill 'HUP', $ng->pid;
    ok(CT::wait_for(sub {
            $ng->error_log =~ /unknown "no_such_variable" variable/ },
        timeout => 10), 'the reload failed (unknown variable)');

    # the old configuration keeps running; a worker dies and is replaced
    kill 'KILL', $worker;
    my $new = CT::wait_for(sub {
        my @w = grep { $_ != $worker } $ng->worker_pids;
        @w ? $w[0] : undef }, timeout => 10);
    ok($new, "the master started a new worker ($new)");

    is($ng->req(GET => "/api/customers/$MISSING")->{status}, 404,
        "after the failed reload: a 404 $_") for 1 .. 2;
    ($r, $m) = scrape($ng);
    is($r->{status}, 200, 'the new worker answers the scrape');
    is($m->{$ROUTE}, 5, 'and counts into the same zone: 3 + 2');
    is($m->{customer_db_up}, 1, 'the database is up');

    # put the configuration back, so that the stop is clean
    open $out, '>', $conf or die "$conf: $!";
    print $out $text;
    close $out;
    $ng->stop;
}

# customer_metrics without customer_db
{
    my $dir = CT::_fresh_dir('nodb', 0777);
    my $ng = bless { dir => $dir, workers => 1, creator => $$,
        port => CT::free_port() }, 'CT::Nginx';
    my $http = <<"HTTP";
    server {
        listen 127.0.0.1:$ng->{port};
        location = /metrics { customer_metrics; }
        location / { return 204; }
    }
HTTP
    open my $fh, '>', "$dir/nginx.conf" or die "$dir: $!";
    print $fh CT::_nginx_conf(workers => 1, main_extra => '', dir => $dir,
        http => $http);
    close $fh;
    ok($ng->_spawn, 'nginx with customer_metrics and no customer_db starts')
        or diag(CT::_slurp("$dir/stderr.log"));

    for my $i (1 .. 2) {
        my ($r, $m) = scrape($ng);
        is($r->{status}, 200, "scrape $i without a database: 200")
            or diag($r->{body});
        like($r->{headers}{'content-type'} // '', qr{^text/plain},
            "scrape $i: text/plain");
        is($m->{customer_db_up}, 0, "scrape $i: customer_db_up 0");
        like($r->{body}, qr/^customer_peer_failures_total\{service="auth"\} 0$/m,
            "scrape $i: the counters are there");
    }
    is(scalar @{ [ $ng->worker_pids ] }, 1, 'the worker is still the one');
    $ng->stop;
}

CT::done_testing();
