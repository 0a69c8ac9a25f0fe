# Clients that go away while their query waits for a connection, while it
# runs in PostgreSQL (blocked on a lock), and once its answer is back:
# afterwards the pool has nothing in flight or waiting, every connection
# is idle again, later requests are answered, and the error log has no
# [alert] or [crit] (no freed request touched).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use IO::Socket::INET;

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db, workers => 1, pool => 1, queue => 64,
    timeout => '10s');

my $r = $ng->req(POST => '/api/customers', json => { userId => "ab-$$",
    email => "ab-$$\@example.com", fullName => 'Abort Test' });
is($r->{status}, 201, 'a customer') or diag($r->{body});
my $id = $r->{json}{data}{customerId};

sub send_raw {
    my ($method, $path) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $ng->port, Proto => 'tcp') or die "connect: $!";
    print $s "$method $path HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
        . CT::admin_token() . "\r\nContent-Length: 0\r\n\r\n";
    return $s;
}

sub health {
    my $h = $ng->req(GET => '/health', auth => 'none');
    return $h->{json}{data}{pool} // {};
}

sub lock_waiters {
    return CT::sql($db, q{SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock'});
}

my $s = CT::psql_session($db);
$s->run('BEGIN');
$s->run('LOCK TABLE customers IN ACCESS EXCLUSIVE MODE');

# one runs (blocked on the lock, holding the only connection), others
# wait in the module's queue; a list waits too
my @socks = (send_raw(GET => "/api/customers/$id"));
ok(CT::wait_for(sub { lock_waiters() >= 1 }), 'the first query is running');
push @socks, send_raw(GET => "/api/customers/$id") for 1 .. 3;
push @socks, send_raw(GET => '/api/customers?limit=5');
push @socks, send_raw(PATCH => "/api/customers/$id");
ok(CT::wait_for(sub { CT::unread($ng, @socks) == 0 }),
    'nginx has read every request (they wait for the connection)');

# every client goes away
close $_ for @socks;

$s->run('COMMIT');
$s->close;

# /health reads the figures once its own query has answered
ok(CT::wait_for(sub {
        my $p = health();
        defined $p->{inFlight} && $p->{inFlight} == 0 && $p->{waiting} == 0 },
    timeout => 15),
    'afterwards nothing is in flight or waiting')
    or diag(explain(health()));
my $p = health();
is($p->{idle}, $p->{live}, 'every live connection is idle');

# a client that goes away just as its answer arrives, many times
for my $i (1 .. 30) {
    my $x = send_raw(GET => "/api/customers/$id");
    close $x;
}
ok(CT::wait_for(sub { my $p = health();
        defined $p->{inFlight} && $p->{inFlight} == 0 && $p->{waiting} == 0 }),
    'after 30 quick aborts: nothing in flight or waiting')
    or diag(explain(health()));

for my $i (1 .. 3) {
    is($ng->req(GET => "/api/customers/$id")->{status}, 200,
        "a request after the aborts: 200 ($i)");
}
is(CT::sql($db, q{SELECT version FROM customers WHERE id = :'p1'}, $id), 1,
    'the aborted bodiless PATCH wrote nothing');

$ng->stop;
CT::done_testing();
