# Outbox leases under a slow Auth Service, and rows that keep failing.
#
# 1. A claimant (A) claims four rows and is slow on the first send; while
#    it waits, the other rows' leases run out (the test moves their time
#    forward, as 60 s would) and a second claimant (B) takes them over and
#    delivers them. A then leaves them alone: it renews its lease before
#    each send, and a renewal that finds a new claimant sends nothing.
#    Every row reaches the Auth Service once, and A's answer says how
#    many it left to B.
# 2. A row the Auth Service refuses every time is set aside as dead after
#    ten attempts: /health and the metrics count it, it no longer holds
#    back that customer's later change, and a huge attempt count does not
#    overflow the backoff.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $T = JSON::PP::true;
my $PEER_KEY = 'peer-key-lease-0123456789abcdef';

my $db = CT::db_create();
sub customer { CT::insert_customer($db, 'lease') }

sub outbox_row {
    my ($c, $active, $due) = @_;
    return scalar CT::sql($db, q{INSERT INTO events (destination, type,
        customer_id, subject, data, channels, next_attempt_at)
        VALUES ('auth', 'customer.status_changed', :'p1',
        'customers/' || :'p1', jsonb_build_object('customerId', :'p1',
        'userId', :'p2', 'isActive', :'p3'::boolean, 'reason', 'lease test'),
        '{}', now() + :'p4'::interval) RETURNING id}, $c->{id}, $c->{user},
        $active ? 'true' : 'false',
        $due // '0 s');
}

# --- 1. a slow Auth Service ------------------------------------------------

{
    my @cs = map { customer() } 1 .. 4;
    my $slow = $cs[0]{user};
    my $auth = CT::peer_start(handler => sub {
        my ($req) = @_;
        select(undef, undef, undef, $req->{path} =~ m{/\Q$slow\E/} ? 4 : 0);
        [200, {}, { success => $T }] });
    my $ng = CT::nginx_start(db => $db, peers => { auth => $auth,
        read_timeout => '10s', key => $PEER_KEY }, allow_log => qr/outbox row/);

    my @ids = map { outbox_row($_, 0) } @cs;

    # A, in a child: claims all four, then waits 4 s on the first
    my $out = "$ng->{dir}/claimant-a.json";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        my $r = $ng->req(POST => '/api/customers/internal/outbox',
            auth => 'service', timeout => 30);
        open my $fh, '>', $out or die "$out: $!";
        print $fh $r->{body};
        close $fh;
        POSIX::_exit(0);
    }
    ok(CT::wait_for(sub { scalar $auth->requests }, timeout => 10),
        'A is sending its first row');

    # the leases of A's other three rows run out
    CT::sql($db, q{UPDATE events SET next_attempt_at = now()
        WHERE destination = 'auth' AND delivered_at IS NULL
        AND id <> :'p1'}, $ids[0]);
    my $b = $ng->req(POST => '/api/customers/internal/outbox',
        auth => 'service');
    is($b->{json}{data}{claimed}, 3, 'B claims the three expired rows')
        or diag($b->{body});
    is($b->{json}{data}{delivered}, 3, 'B delivers them');

    waitpid $pid, 0;
    my $a = JSON::PP::decode_json(CT::_slurp($out));
    is($a->{data}{claimed}, 4, 'A had claimed four');
    is($a->{data}{delivered}, 1, 'A delivered only its first')
        or diag(CT::_slurp($out));
    is($a->{data}{skipped}, 3, 'A left three to their new claimant');

    my @calls = $auth->requests;
    is(scalar @calls, 4, 'four rows, four calls: none sent twice')
        or diag(join "\n", map { $_->{path} } @calls);
    for my $c (@cs) {
        is(scalar(grep { $_->{path} eq "/api/auth/user/$c->{user}/status" }
            @calls), 1, "$c->{user}: told once");
    }
    is(CT::sql($db, q{SELECT count(*) FROM events WHERE destination = 'auth'
        AND delivered_at IS NOT NULL AND attempts = 1}), 4,
        'each row delivered, one attempt recorded');
    like($ng->error_log, qr/outbox row \d+ left to its new claimant/,
        'the log says which rows A left');
    $ng->stop;
    CT::sql($db, q{DELETE FROM events WHERE destination = 'auth'});
}

# --- 2. a row that keeps failing ----------------------------------------------

{
    my $bad = customer();
    my $auth = CT::peer_start(handler => sub {
        my ($req) = @_;
        return $req->{path} =~ m{/\Q$bad->{user}\E/}
            ? [500, {}, { success => JSON::PP::false }]
            : [200, {}, { success => $T }] });
    my $ng = CT::nginx_start(db => $db, peers => { auth => $auth,
        read_timeout => '2s', key => $PEER_KEY },
        server_extra => "        location = /metrics { customer_metrics; }\n",
        allow_log => qr/outbox row/);

    my $first = outbox_row($bad, 0);
    my $later = outbox_row($bad, 1);
    for my $i (1 .. 10) {
        CT::sql($db, q{UPDATE events SET next_attempt_at = now()
            WHERE id = :'p1'}, $first);
        my $r = $ng->req(POST => '/api/customers/internal/outbox',
            auth => 'service');
        is($r->{json}{data}{failed}, 1, "attempt $i failed")
            or diag($r->{body});
    }
    is(CT::sql($db, q{SELECT (dead_at IS NOT NULL)::text || attempts
        FROM events WHERE id = :'p1'}, $first), 'true10',
        'after ten attempts the row is dead');
    # the counts of /health and the metrics are up to about a second old
    my ($h, $m);
    CT::wait_for(sub {
        $h = $ng->req(GET => '/health', auth => 'none');
        $m = $ng->req(GET => '/metrics', auth => 'none')->{body};
        my $o = ($h->{json}{data} // {})->{outbox} // {};
        ($o->{dead} // -1) == 1 && ($o->{pending} // -1) == 1
            && $m =~ /^customer_outbox_dead 1$/m
    }, timeout => 5);
    is($h->{json}{data}{outbox}{dead}, 1, '/health: dead 1');
    is($h->{json}{data}{outbox}{pending}, 1, '/health: the later one pending');
    like($m, qr/^customer_outbox_dead 1$/m, 'metrics: customer_outbox_dead 1');

    # the later change is no longer held back by the dead one; it fails
    # too (same user), but it is tried
    CT::sql($db, q{UPDATE events SET next_attempt_at = now()
        WHERE id = :'p1'}, $later);
    my $r = $ng->req(POST => '/api/customers/internal/outbox',
        auth => 'service');
    is($r->{json}{data}{claimed}, 1, 'the later change is claimed');

    # a huge attempt count: the backoff is capped, nothing overflows
    my $other = customer();
    my $big = outbox_row($other, 0);
    CT::sql($db, q{UPDATE events SET attempts = 5000 WHERE id = :'p1'},
        $big);
    $auth->clear;
    # not this user: make it fail by pointing it at the bad user's path
    CT::sql($db, q{UPDATE events
        SET data = jsonb_set(data, '{userId}', to_jsonb(:'p2'::text))
        WHERE id = :'p1'}, $big, $bad->{user});
    CT::sql($db, q{UPDATE events SET next_attempt_at = now() + interval
        '1 hour' WHERE id = :'p1'}, $later);
    $r = $ng->req(POST => '/api/customers/internal/outbox', auth => 'service');
    is($r->{json}{data}{failed}, 1, 'attempt 5001 failed') or diag($r->{body});
    is(CT::sql($db, q{SELECT attempts || ' ' || (dead_at IS NOT NULL)::text
        || ' ' || (next_attempt_at < now() + interval '301 s')::text
        FROM events WHERE id = :'p1'}, $big), '5001 true true',
        'recorded, dead, backoff capped at five minutes');
    unlike($ng->error_log, qr/could not record an outbox delivery/,
        'every outcome was recorded');
    $ng->stop;
}

CT::done_testing();
