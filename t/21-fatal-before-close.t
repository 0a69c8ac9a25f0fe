# A session that the server ends says so before it closes: its FATAL
# comes first, the close after. Through a relay that passes the server's
# bytes on at once but holds its close for a few seconds, the FATAL
# reaches an idle pooled connection well before the close. The pool must
# drop that connection then: a write in between runs on another
# connection, is answered 200 (not "Outcome unknown") and is written once.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use IO::Select;
use IO::Socket::INET;

my $db = CT::db_create();
my $dir = CT::_fresh_dir('relay', 0755);
my $HOLD = 4;

# each connection to the relay is one to PostgreSQL; the server's bytes go
# on at once, its close $HOLD seconds later (a file named by the session's
# client_port says it came, after its last bytes went on)
my $relay = CT::tcp_server(sub {
    my ($c) = @_;
    my $pg = IO::Socket::INET->new(PeerAddr => $ENV{CT_PGHOST},
        PeerPort => $ENV{CT_PGPORT}, Proto => 'tcp') or return;
    my $port = $pg->sockport;
    my $sel = IO::Select->new($c, $pg);
    while (1) {
        for my $s ($sel->can_read) {
            my $n = sysread($s, my $buf, 65536);
            if (!$n) {
                # nginx may drop the connection first: the server's close
                # still comes, and is what the test waits for
                1 while $s == $c && sysread($pg, $buf, 65536);
                open my $f, '>', "$dir/closed-$port";
                close $f;
                sleep $HOLD if $s == $pg;
                return;
            }
            syswrite($s == $c ? $pg : $c, $buf) // return;
        }
    }
}, fork => 1);

# bytes the server sent that nginx has not read, on its connections to
# the relay (/proc/net/tcp: nginx's side, the relay's port as remote)
sub unread_by_nginx {
    my $port = sprintf '%04X', $relay;
    my $n = 0;
    open my $t, '<', '/proc/net/tcp' or die "/proc/net/tcp: $!";
    while (<$t>) {
        my (undef, undef, $remote, undef, $queues) = split ' ';
        next unless defined $queues && $remote =~ /:$port\z/;
        my (undef, $rx) = split /:/, $queues;
        $n += hex $rx;
    }
    return $n;
}

my $ng = CT::nginx_start(pool => 1,
    conninfo => "host=127.0.0.1 port=$relay dbname=$db"
        . " user=$ENV{CT_PGUSER}");
my ($id) = CT::make_customer($ng, 'fatal');

for my $round (1 .. 2) {
    is($ng->req(GET => "/api/customers/$id")->{status}, 200,
        "round $round: a read, so that the pool has a session");
    unlink glob("$dir/closed-*");
    my @ports = split /,/, CT::sql($db, q{SELECT string_agg(client_port::text,
        ',') FROM pg_stat_activity WHERE datname = current_database()
        AND application_name = 'nginx-customer'}) // '';
    cmp_ok(scalar @ports, '>=', 1, "round $round: the pool has sessions");
    CT::sql($db, q{SELECT count(pg_terminate_backend(pid))
        FROM pg_stat_activity WHERE datname = current_database()
        AND client_port = ANY (string_to_array(:'p1', ',')::int[])},
        join ',', @ports);
    ok(CT::wait_for(sub { !grep { !-e "$dir/closed-$_" } @ports }),
        "round $round: the server closed them (the relay holds the close)");
    ok(CT::wait_for(sub { unread_by_nginx() == 0 }),
        "round $round: nginx has read their FATAL");

    my $r = $ng->req(PATCH => "/api/customers/$id",
        json => { notes => "between the FATAL and the close $round" });
    is($r->{status}, 200, "round $round: a PATCH meanwhile is 200")
        or diag($r->{body});
    is(CT::sql($db, q{SELECT notes FROM customers WHERE id = :'p1'}, $id),
        "between the FATAL and the close $round",
        "round $round: ... and written");
    my @dropped = $ng->error_log =~ /PostgreSQL closed an idle connection\n/g;
    is(scalar @dropped, $round,
        "round $round: the error log says the connection was dropped");
}

done_testing();
