# A slow Auth Service, in real time: 24 changes of 20 customers are due
# at once, the Auth Service takes 4 s a call, two workers trigger the
# outbox every second. One run claims the 20 first changes (one per
# customer; a customer's second waits for its first) and sends them one
# after another: 80 s, past the 60 s lease of the rows it has not reached,
# which the other worker's runs then take over. Every change reaches the
# Auth Service exactly once (one call per outbox row, told apart by the
# Idempotency-Key the module sends), and each customer's changes arrive in
# the order they were made.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $T = JSON::PP::true;
my $F = JSON::PP::false;
my $PEER_KEY = 'peer-key-slow-auth-0123456789abc';

my $auth = CT::peer_start(handler => sub {
    sleep 4;
    [200, {}, { success => $T }] });
$auth->stop;

my $db = CT::db_create();
my ($http, $server) = CT::peer_conf(auth => $auth, read_timeout => '10s',
    key => $PEER_KEY);
my $ng = CT::nginx_start(db => $db, http_extra => $http,
    server_extra => $server, workers => 2, trigger => '1s');

# 20 customers suspended, 4 of them active again, while the Auth Service
# is down: 24 rows wait in the outbox
my (@c, %want);
for my $n (1 .. 20) {
    my $u = "slow-$$-$n";
    my $r = $ng->req(POST => '/api/customers', json => { userId => $u,
        email => "$u\@example.com", fullName => "Slow Auth $n" });
    die "create: $r->{body}" unless $r->{status} == 201;
    push @c, { id => $r->{json}{data}{customerId}, user => $u };
}
for my $c (@c) {
    my $r = $ng->req(PATCH => "/api/customers/$c->{id}/status",
        json => { status => 'Suspended', reason => 'slow' });
    die "status: $r->{body}" unless $r->{status} == 200;
    push @{ $want{$c->{user}} }, $F;
}
for my $c (@c[0 .. 3]) {
    my $r = $ng->req(PATCH => "/api/customers/$c->{id}/status",
        json => { status => 'Active', reason => 'back' });
    die "status: $r->{body}" unless $r->{status} == 200;
    push @{ $want{$c->{user}} }, $T;
}
is(CT::sql($db, q{SELECT count(*) FROM events WHERE destination = 'auth'
    AND delivered_at IS NULL}),
    24, '24 changes wait in the outbox');

$auth->start;
my $t0 = time;
ok(CT::wait_for(sub { CT::sql($db, q{SELECT count(*) FROM events
        WHERE destination = 'auth' AND delivered_at IS NULL}) == 0 },
    timeout => 240, interval => 1),
    'all 24 are delivered');
note(sprintf 'delivered in %d s', time - $t0);

# the calls still under way when the rows were marked delivered have
# ended by the time the peer's record is read
CT::wait_for(sub { scalar($auth->requests) >= 24 }, timeout => 10);
my @calls = $auth->requests;
is(scalar @calls, 24, 'the Auth Service got 24 calls, one per change');

my %by_key;
$by_key{ $_->{headers}{'idempotency-key'} // '' }++ for @calls;
my $ids = CT::sql($db, q{SELECT string_agg('customer-outbox-' || id, ','
    ORDER BY id) FROM events WHERE destination = 'auth'});
is_deeply([sort keys %by_key], [sort split /,/, $ids],
    'each outbox row was sent ...');
is(scalar(grep { $_ != 1 } values %by_key), 0, '... exactly once');

my %got;
push @{ $got{ $_->{json}{userId} } }, $_->{json}{isActive} for @calls;
is_deeply(\%got, \%want, "each customer's changes arrived in order");

is(CT::sql($db, q{SELECT count(*) FROM events WHERE destination = 'auth'
    AND dead_at IS NOT NULL}),
    0, 'none set aside as dead');

$ng->stop;
CT::done_testing();
