# The harness's fake peer service (CT::peer_start): what it records (query,
# headers, Content-Length and chunked bodies), concurrent slow requests,
# stop/start on the same port, handler switching, peer_conf's text.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use IO::Socket::INET;
use Time::HiRes qw(time sleep);

sub send_raw {
    my ($port, $bytes) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
        Proto => 'tcp', Timeout => 5) or return undef;
    print $s $bytes;
    local $/;
    my $out = <$s>;
    close $s;
    return $out;
}

my $peer = CT::peer_start(handler => sub {
    my ($req) = @_;
    sleep($req->{args}{sleep}) if $req->{args}{sleep};
    return if $req->{path} eq '/hangup';
    return [201, { 'X-Echo' => $req->{method} },
        { path => $req->{path}, body => $req->{body} }];
});
my $port = $peer->port;
ok(IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
    Proto => 'tcp'), 'listening when peer_start returns');

my $http = HTTP::Tiny->new(timeout => 5);
my $r = $http->request(POST => "http://127.0.0.1:$port/a/b?x=1&y=a%20b+c&z",
    { headers => { 'X-Request-Id' => 'abc', 'Content-Type' => 'text/json' },
      content => '{"k":[1,"é"]}' });
is($r->{status}, 201, 'handler status');
is($r->{headers}{'x-echo'}, 'POST', 'handler header');
is($r->{headers}{connection}, 'close', 'Connection: close');
is_deeply(JSON::PP->new->utf8->decode($r->{content}),
    { path => '/a/b', body => '{"k":[1,"é"]}' }, 'reference body sent as JSON');

my @q = $peer->requests;
is(scalar @q, 1, 'one request recorded');
is($q[0]{method}, 'POST', 'method');
is($q[0]{path}, '/a/b', 'path');
is($q[0]{query}, 'x=1&y=a%20b+c&z', 'raw query');
is_deeply($q[0]{args}, { x => 1, y => 'a b c', z => '' }, 'decoded args');
is($q[0]{headers}{'x-request-id'}, 'abc', 'lower-case header names');
is($q[0]{body}, '{"k":[1,"é"]}', 'body bytes');
is_deeply($q[0]{json}, { k => [1, "\x{e9}"] }, 'decoded JSON body');

$peer->clear;
my $raw = send_raw($port, "PUT /c HTTP/1.1\r\nHost: x\r\n"
    . "Transfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3;ext=1\r\n:1}\r\n"
    . "0\r\nTrailer: t\r\n\r\n");
like($raw // '', qr{^HTTP/1\.1 201 Created\r\n}, 'chunked request answered');
like($raw // '', qr{\r\nContent-Length: \d+\r\n}, 'with Content-Length');
@q = $peer->requests;
is($q[0]{body}, '{"a":1}', 'chunked body joined');
is_deeply($q[0]{json}, { a => 1 }, 'chunked body decoded');

is(send_raw($port, "GET /hangup HTTP/1.0\r\n\r\n"), '',
    'a handler returning nothing hangs up');

# three slow requests at once: served in parallel
$peer->clear;
my $t0 = time;
my @pids = map {
    my $pid = fork // die;
    if (!$pid) {
        my $r = HTTP::Tiny->new(timeout => 5)
            ->get("http://127.0.0.1:$port/slow?sleep=1");
        POSIX::_exit($r->{status} == 201 ? 0 : 1);
    }
    $pid;
} 1 .. 3;
my $ok = grep { waitpid($_, 0) == $_ && $? == 0 } @pids;
is($ok, 3, 'three slow requests answered');
cmp_ok(time - $t0, '<', 2.5, '... concurrently');
is(scalar(my @x = $peer->requests), 3, 'three recorded');

$peer->stop;
ok(!IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
    Proto => 'tcp'), 'nothing listens after stop');
$peer->start;
is($peer->port, $port, 'start listens on the same port');
$peer->handler(sub { [503, { 'Content-Type' => 'text/plain' }, 'garbage'] });
$r = $http->get("http://127.0.0.1:$port/");
is($r->{status}, 503, 'the new handler answers');
is($r->{content}, 'garbage', 'with its body');
is($r->{headers}{'content-type'}, 'text/plain', 'and its Content-Type');

my $free = CT::free_port();
ok(!IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $free,
    Proto => 'tcp'), 'free_port: nothing listens');

my ($h, $s) = CT::peer_conf(orders => $peer, complaints => 1234,
    read_timeout => '2s', key => 'k1');
like($h, qr/customer_peer_key k1;/, 'peer_conf: key');
like($h, qr/upstream customer_orders_up \{ server 127\.0\.0\.1:$port; \}/,
    'peer_conf: orders upstream (from a peer)');
like($h, qr/upstream customer_complaints_up .*:1234;/, 'complaints upstream');
unlike($h . $s, qr/auth/, 'no auth when not given');
like($s, qr{customer_order_service /_svc/orders;}, 'order service');
like($s, qr{location[ ]/_svc/complaints/[ ]\{.*?internal;.*?proxy_pass
    [ ]http://customer_complaints_up/;.*?proxy_read_timeout[ ]2s;}xs,
    'complaints location');

done_testing();
