# `make run` is the whole thing: scripts/run.sh, started for real with its
# own ports and run directory, brings up PostgreSQL, the Auth, Order,
# Complaint and Notification stand-ins and nginx; with the Administrator
# token it printed, a customer is created, its orders and complaints
# listed, its status changed (the Auth Service told: authService
# "notified"; the Notification Service gets the signed events) and it is
# deleted (the Order Service reports no active orders): 200 each. Then
# SIGINT to run.sh alone, as Ctrl-C would send it, stops nginx, the
# stand-ins and the cluster it started.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use HTTP::Tiny;
use JSON::PP ();
use POSIX qw(WNOHANG);

my $dir = CT::_fresh_dir('run', 0755);
my %port = map { $_ => CT::free_port() }
    qw(nginx auth orders complaints notifications pg);
my $out = "$dir/run.out";

my $pid = fork // die "fork: $!\n";
if (!$pid) {
    # a shell that starts us in the background ignores SIGINT, and an
    # ignored signal cannot be trapped: give run.sh the terminal's default
    $SIG{INT} = 'DEFAULT';
    delete $ENV{CUSTOMER_DB};
    $ENV{CUSTOMER_RUN_DIR} = $dir;
    $ENV{CUSTOMER_RUN_PORT} = $port{nginx};
    $ENV{CUSTOMER_AUTH_PORT} = $port{auth};
    $ENV{CUSTOMER_ORDER_PORT} = $port{orders};
    $ENV{CUSTOMER_COMPLAINT_PORT} = $port{complaints};
    $ENV{CUSTOMER_NOTIFY_PORT} = $port{notifications};
    $ENV{CUSTOMER_PG_PORT} = $port{pg};
    open STDIN, '<', '/dev/null';
    open STDOUT, '>', $out or POSIX::_exit(126);
    open STDERR, '>&', \*STDOUT;
    exec CT::root() . '/scripts/run.sh' or POSIX::_exit(127);
}

my $exited;
sub reaped {
    return 1 if defined $exited;
    return 0 if waitpid($pid, WNOHANG) != $pid;
    $exited = $?;
    return 1;
}

# whatever happens below, run.sh does not outlive the test
END {
    if ($pid && !defined $exited) {
        kill 'INT', $pid;
        CT::wait_for(\&reaped, timeout => 30) or kill 'KILL', $pid;
    }
}

my $http = HTTP::Tiny->new(timeout => 10);
my $base = "http://127.0.0.1:$port{nginx}";

# the build, the cluster's initdb and the migrations come first
my $up = CT::wait_for(sub {
    die "run.sh exited early:\n" . CT::_slurp($out) . "\n" if reaped();
    return $http->get("$base/health")->{status} == 200;
}, timeout => 180, interval => 0.2);
if (!ok($up, 'make run answers /health')) {
    diag(CT::_slurp($out));
    done_testing();
    exit 1;
}

my $printed = CT::_slurp($out);
my ($admin) = $printed =~ /admin:\s+-H 'Authorization: Bearer ([^']+)'/;
ok($admin, 'an Administrator token is printed') or diag($printed);
my ($key) = $printed =~ /service:\s+-H 'X-Service-API-Key: ([^']+)'/;
ok($key, 'a service key is printed');

my %peer_pid;
for my $s ([auth => 'auth'], [orders => 'order'],
    [complaints => 'complaint'])
{
    my ($role, $name) = @$s;
    like($printed, qr/$name service\s+127\.0\.0\.1:$port{$role} \(pid \d+\)/,
        "the $name stand-in is printed with its port");
    ($peer_pid{$role}) =
        $printed =~ /$name service\s+127\.0\.0\.1:\d+ \(pid (\d+)\)/;
}
like($printed,
    qr/notifications\s+127\.0\.0\.1:$port{notifications} \(pid \d+\)/,
    'the notification stand-in is printed with its port');
($peer_pid{notifications}) =
    $printed =~ /notifications\s+127\.0\.0\.1:\d+ \(pid (\d+)\)/;

my $nginx_pid = CT::_slurp("$dir/nginx/nginx.pid") =~ s/\s+//gr;
my ($pg_pid) = CT::_slurp("$dir/pgdata/postmaster.pid") =~ /^(\d+)/;
ok($nginx_pid && $pg_pid, 'nginx and PostgreSQL wrote their pid files');

sub api {
    my ($method, $path, $body) = @_;
    my $r = $http->request($method, "$base$path", {
        headers => { Authorization => "Bearer $admin",
            $body ? ('Content-Type' => 'application/json') : () },
        $body ? (content => JSON::PP::encode_json($body)) : () });
    $r->{json} = eval { JSON::PP::decode_json($r->{content}) };
    return $r;
}

# --- the bar -------------------------------------------------------------

my $r = api(POST => '/api/customers', { userId => 'make-run-user',
    email => 'make.run@example.com', fullName => 'Make Run',
    contactNumber => '+919876543210' });
is($r->{status}, 201, 'create a customer: 201') or diag($r->{content});
my $id = $r->{json}{data}{customerId} // 'none';

$r = api(GET => "/api/customers/$id/orders");
is($r->{status}, 200, 'its orders: 200') or diag($r->{content});
my $orders = $r->{json}{data}{orders} // [];
ok(@$orders >= 2, 'the Order Service stand-in has a few orders for it')
    or diag($r->{content});
is($r->{json}{data}{pagination}{totalItems}, scalar @$orders,
    'orders: the service\'s totalItems');
ok(!grep({ $_->{status} !~ /^(Delivered|Cancelled)$/ } @$orders),
    'orders: none active');

$r = api(GET => "/api/customers/$id/complaints");
is($r->{status}, 200, 'its complaints: 200') or diag($r->{content});
ok(@{ $r->{json}{data}{complaints} // [] } >= 1,
    'the Complaint Service stand-in has complaints for it');

$r = api(PATCH => "/api/customers/$id/status",
    { status => 'Suspended', reason => 'make run test' });
is($r->{status}, 200, 'change its status: 200') or diag($r->{content});
is($r->{json}{data}{authService}, 'notified',
    'the Auth Service stand-in was told: notified');
like(CT::_slurp("$dir/peers/auth.log"),
    qr{PATCH /api/auth/user/make-run-user/status .*"isActive":false},
    'the auth stand-in logged the status update');

# the events reach the Notification Service stand-in, signed, by the
# outbox run every worker's timer starts (customer_outbox_interval 5s)
ok(CT::wait_for(sub {
    my $h = $http->get("$base/health");
    my $j = eval { JSON::PP::decode_json($h->{content}) } // {};
    return ($j->{data}{events}{pending} // -1) == 0
        && CT::_slurp("$dir/peers/notifications.log")
           =~ /"customer\.status_changed"/;
}, timeout => 60, interval => 0.5), 'the events are delivered: none pending')
    or diag(CT::_slurp("$dir/peers/notifications.log"));
my $notified = CT::_slurp("$dir/peers/notifications.log");
like($notified, qr{POST /events \S*\{.*"customer\.created".* signed=yes},
    'the notification stand-in got customer.created, signed');
like($notified,
    qr{POST /events \S*\{.*"customer\.status_changed".* signed=yes},
    '... and customer.status_changed, signed');

# the seed's front ends in development may call the API from a browser
for my $origin ('http://localhost:3000', 'http://localhost:19006') {
    $r = $http->request(GET => "$base/api/customers/$id",
        { headers => { Authorization => "Bearer $admin",
            Origin => $origin } });
    is($r->{headers}{'access-control-allow-origin'}, $origin,
        "CORS: $origin is allowed");
}

$r = api(DELETE => "/api/customers/$id");
is($r->{status}, 200, 'delete it: 200') or diag($r->{content});
like(CT::_slurp("$dir/peers/orders.log"),
    qr{GET /api/orders\?customerId=$id&status=active},
    'the delete asked the Order Service for active orders');

$r = api(GET => "/api/customers/$id");
is($r->{status}, 404, 'then it is gone');

$r = $http->request(GET => "$base/api/customers/internal/user/nobody",
    { headers => { 'X-Service-API-Key' => $key } });
is($r->{status}, 404, 'the printed service key is accepted');

# --- Ctrl-C --------------------------------------------------------------

kill 'INT', $pid;
ok(CT::wait_for(\&reaped, timeout => 60), 'SIGINT: run.sh exits');
is($exited >> 8, 130, 'run.sh exits 130 after SIGINT')
    if defined $exited;

# a zombie has exited (PostgreSQL's parent is init, which may be slow to
# reap it, or never reap it in a container)
sub alive {
    my ($p) = @_;
    return 0 unless kill 0, $p;
    return CT::_slurp("/proc/$p/stat") !~ /^\d+ \(.*\) Z/s;
}

my %gone = (nginx => $nginx_pid, postgres => $pg_pid,
    map { ("$_ stand-in" => $peer_pid{$_}) } keys %peer_pid);
for my $what (sort keys %gone) {
    ok($gone{$what} && !alive($gone{$what}), "$what (pid "
        . ($gone{$what} // '?') . ") is gone");
}
for my $what (sort keys %port) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $port{$what}, Proto => 'tcp', Timeout => 2);
    ok(!$s, "nothing listens on the $what port any more");
}
like(CT::_slurp($out), qr/pg: dev cluster stopped/,
    'run.sh says it stopped the cluster');

my $log = CT::_slurp("$dir/nginx/error.log");
ok($log !~ /\[(alert|crit|emerg)\]/, 'no [alert], [crit] or [emerg] in '
    . 'nginx\'s error.log') or diag($log);

done_testing();
