# A customer_db naming several hosts reaches the one that works, without
# restarting nginx: libpq gives up on the first host (it answers the
# startup packet with 57P03 "the database system is starting up", as a
# standby does, so libpq moves on) and opens a new socket for the next,
# usually with the same descriptor number, which the pool must register
# afresh.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use Socket ();

my $db = CT::db_create();

# answers every startup packet with 57P03, then closes
my $fields = join '', map { "$_\0" } 'SFATAL', 'VFATAL', 'C57P03',
    'Mthe database system is starting up';
my $STARTING_UP = 'E' . pack('N', 4 + length($fields) + 1) . $fields
    . "\0";
my $DEAD = CT::tcp_server(sub {
    my ($c) = @_;
    my $got = '';
    while (length $got < 4 || length $got < unpack('N', $got)) {
        last unless sysread($c, $got, 8192, length $got);
    }
    syswrite $c, $STARTING_UP;
});

my $ng = CT::nginx_start(workers => 1, pool => 2, timeout => '3s',
    conninfo => "host=127.0.0.1,127.0.0.1 port=$DEAD,$ENV{CT_PGPORT}"
        . " dbname=$db user=$ENV{CT_PGUSER} sslmode=disable"
        . ' gssencmode=disable',
    allow_log => qr/PostgreSQL|starting up/);

for my $i (1 .. 3) {
    my $r = $ng->req(GET => '/health', auth => 'none');
    is($r->{status}, 200, "health $i through the second host: 200")
        or diag($r->{body});
    cmp_ok($r->{elapsed}, '<', 2, "health $i: well within the timeout");
}
my $r = $ng->req(POST => '/api/customers', json => { userId => "mh-$$",
    email => "mh-$$\@example.com", fullName => 'Multi Host' });
is($r->{status}, 201, 'a write through the second host') or diag($r->{body});
$ng->stop;

# a host name is resolved when the configuration is read: the worker's
# libpq gets the address (hostaddr) and never resolves it itself
SKIP: {
    my ($err, @ai) = Socket::getaddrinfo('localhost', undef,
        { socktype => Socket::SOCK_STREAM() });
    my ($first) = map { (Socket::getnameinfo($_->{addr},
        Socket::NI_NUMERICHOST()))[1] } @ai;
    skip 'localhost does not resolve to 127.0.0.1 first here', 3
        if $err || !defined $first || $first ne '127.0.0.1';
    my $n2 = CT::nginx_start(workers => 1, conninfo => "host=localhost"
        . " port=$ENV{CT_PGPORT} dbname=$db user=$ENV{CT_PGUSER}"
        . ' sslmode=disable gssencmode=disable');
    my $r = $n2->req(GET => '/health', auth => 'none');
    is($r->{status}, 200, 'host=localhost: resolved once, the pool connects')
        or diag($r->{body});
    my ($pid) = $n2->worker_pids;
    my $peer = CT::sql($db, q{SELECT host(client_addr) FROM pg_stat_activity
        WHERE application_name = 'nginx-customer' AND datname = :'p1'
        LIMIT 1}, $db);
    is($peer, '127.0.0.1', 'the worker connected to the resolved address');
    $n2->stop;
}

CT::done_testing();
