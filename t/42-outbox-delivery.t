# The outbox trigger (customer_outbox_trigger, CT::nginx_start trigger =>):
# every worker POSTs to /api/customers/internal/outbox over loopback; with
# two workers doing so every 200 ms, what the Auth Service was not told
# while it was down is delivered once it is up, each row exactly once
# (FOR UPDATE SKIP LOCKED and the lease); rows survive a stop and a new
# nginx on the same database; a customer deleted after its status change
# still has its change delivered.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $T = JSON::PP::true;
my $F = JSON::PP::false;
my $PEER_KEY = 'peer-key-outbox-0123456789abcdef';
my $ADMIN = CT::admin_token('outbox-admin');

# a little slow, so that deliveries of the two workers overlap
my $auth = CT::peer_start(handler => sub {
    select(undef, undef, undef, 0.05);
    [200, {}, { success => $T }] });
my $db = CT::db_create();

sub start_nginx {
    return CT::nginx_start(db => $db, peers => { auth => $auth,
        read_timeout => '1s', key => $PEER_KEY }, workers => 2,
        trigger => '200ms');
}


# --- helpers -------------------------------------------------------------

sub customer {
    return { %{ CT::insert_customer($db, 'outbox') }, changes => [] };
}

sub set_status {
    my ($ng, $c, $status) = @_;
    my $r = $ng->req(PATCH => "/api/customers/$c->{id}/status",
        json => { status => $status, reason => "to $status" },
        auth => $ADMIN);
    push @{ $c->{changes} }, $status eq 'Active' ? 1 : 0
        if $r->{status} == 200;
    return $r;
}

sub undelivered {
    return scalar CT::sql($db,
        q{SELECT count(*) FROM events WHERE destination = 'auth'
        AND delivered_at IS NULL});
}

# isActive of every call the Auth Service got for $c, in arrival order.
sub calls_for {
    my ($c) = @_;
    return map { $_->{json}{isActive} ? 1 : 0 }
        grep { $_->{path} eq "/api/auth/user/$c->{user}/status"
            && ($_->{json}{customerId} // '') eq $c->{id} } $auth->requests;
}

# POSTs the trigger made to this nginx so far (access.log).
sub trigger_hits {
    my ($ng) = @_;
    my $log = CT::_slurp($ng->dir . '/access.log');
    my $n = () = $log =~ m{"POST /api/customers/internal/outbox HTTP/1\.0" }g;
    return $n;
}

# Lets the trigger run $n more times (after a delivery: nothing more comes).
sub more_ticks {
    my ($ng, $n) = @_;
    my $from = trigger_hits($ng);
    return CT::wait_for(sub { trigger_hits($ng) >= $from + $n },
        timeout => 10);
}

# One row per change, all delivered once, in the calls the peer got.
sub all_once {
    my ($list, $name) = @_;
    for my $c (@$list) {
        my @calls = calls_for($c);
        is(scalar @calls, scalar @{ $c->{changes} },
            "$name: $c->{user}: one call per change")
            or diag(explain(\@calls));
        is_deeply([sort @calls], [sort @{ $c->{changes} }],
            "$name: $c->{user}: the isActive of each change");
    }
    my %seen;
    my @dup = grep { $seen{ JSON::PP->new->canonical->encode($_->{json}) }++ }
        $auth->requests;
    is(scalar @dup, 0, "$name: no call was made twice")
        or diag(explain(\@dup));
    is(scalar CT::sql($db, q{SELECT count(*) FROM events
        WHERE destination = 'auth'
        AND (delivered_at IS NULL OR last_error IS NOT NULL)}), 0,
        "$name: every row delivered, no error left");
}


# --- two workers, the Auth Service down, then up ---------------------------

my $ng = start_nginx();
my @workers = $ng->worker_pids;
is(scalar @workers, 2, 'two workers');
ok(more_ticks($ng, 4), 'the trigger POSTs to the outbox route')
    or diag($ng->error_log);
unlike(CT::_slurp($ng->dir . '/access.log'),
    qr{internal/outbox HTTP/1\.0" (?!200 )}, 'the trigger is answered 200');

$auth->stop;

my @cs = map { customer() } 1 .. 8;
my @plan = (['Suspended', 'Active', 'Inactive'], ['Inactive', 'Active'],
    ['Suspended']);
my $pending_ok = 1;
for my $i (0 .. $#cs) {
    for my $status (@{ $plan[$i % @plan] }) {
        my $r = set_status($ng, $cs[$i], $status);
        $pending_ok &&= $r->{status} == 200
            && $r->{json}{data}{authService} eq 'pending';
        diag($r->{body}) unless $pending_ok;
    }
}
ok($pending_ok, 'Auth down: every change answered 200, pending');
my $rows = scalar CT::sql($db,
    q{SELECT count(*) FROM events WHERE destination = 'auth'});
my $changes = 0;
$changes += @{ $_->{changes} } for @cs;
is($rows, $changes, "one outbox row per change ($changes)");
cmp_ok(undelivered(), '==', $changes, 'all of them undelivered');

# a customer deleted after its change: its row stays and goes out
my $gone = $cs[2];
my $r = $ng->req(DELETE => "/api/customers/$gone->{id}", auth => $ADMIN);
is($r->{status}, 200, 'a customer with a pending change is deleted')
    or diag($r->{body});
is(scalar CT::sql($db, q{SELECT count(*) FROM customers WHERE id = :'p1'},
    $gone->{id}), 0, 'deleted: the customer row is gone');
is(scalar CT::sql($db, q{SELECT count(*) FROM customer_status_history
    WHERE customer_id = :'p1'}, $gone->{id}), 0,
    'deleted: its status history is gone');
is(scalar CT::sql($db, q{SELECT count(*) FROM events
    WHERE destination = 'auth' AND customer_id = :'p1'}, $gone->{id}), 1,
    'deleted: its outbox row stays');

$auth->start;
ok(CT::wait_for(sub { undelivered() == 0 }, timeout => 20),
    'Auth up: the trigger delivers every row')
    or diag(CT::sql($db,
    q{SELECT * FROM events WHERE destination = 'auth' ORDER BY id}));
ok(more_ticks($ng, 6), 'the trigger runs on');
all_once(\@cs, 'two workers');
is_deeply([calls_for($gone)], $gone->{changes},
    'the deleted customer\'s change was delivered once');
my ($gone_call) = grep { $_->{path} =~ /\Q$gone->{user}\E/ } $auth->requests;
is_deeply(($gone_call // {})->{json}, { userId => $gone->{user},
    customerId => $gone->{id}, isActive => $F, reason => 'to Suspended' },
    'the deleted customer\'s call: its userId and customerId');
is(($gone_call // {})->{headers}{'x-service-api-key'}, $PEER_KEY,
    'the trigger\'s deliveries carry customer_peer_key');
# a customer's first change failed in its own request, then was
# delivered; later ones waited behind it (never tried inline): one try
is(scalar CT::sql($db, q{SELECT count(*) FROM events a
    WHERE destination = 'auth' AND delivered_at IS NOT NULL AND (attempts < 1
        OR (attempts < 2 AND NOT EXISTS (SELECT 1 FROM events p
            WHERE p.destination = 'auth'
            AND p.customer_id = a.customer_id AND p.id < a.id)))}), 0,
    'first rows took the failed attempt and the delivery, later ones one');

# /health's counts are up to about a second old
my $h;
CT::wait_for(sub {
    $h = $ng->req(GET => '/health', auth => 'none');
    (($h->{json}{data}{outbox} // {})->{pending} // -1) == 0
}, timeout => 5);
is(($h->{json}{data}{outbox} // {})->{pending}, 0, 'health: nothing pending');
is_deeply([sort $ng->worker_pids], [sort @workers], 'both workers lived');

# a change while the Auth Service is up: the request delivers it, the
# trigger does not send it again
$auth->clear;
my $up = customer();
$r = set_status($ng, $up, 'Suspended');
is(($r->{json}{data} // {})->{authService}, 'notified', 'Auth up: notified');
ok(more_ticks($ng, 6), 'the trigger runs on');
is_deeply([calls_for($up)], [0], 'Auth up: one call, from the request');
is(scalar $auth->requests, 1, 'Auth up: no other call');


# --- across a restart ----------------------------------------------------

# pending_change($ng, STATUS, WHEN): with the Auth Service down, a new
# customer's status change that stays pending; the customer
sub pending_change {
    my ($ng, $status, $when) = @_;
    $auth->stop;
    $auth->clear;
    my $c = customer();
    my $r = set_status($ng, $c, $status);
    is(($r->{json}{data} // {})->{authService}, 'pending',
        "before the $when: pending");
    return $c;
}

# delivered_once($ng, $c, WHEN, NAME): the Auth Service back, the pending
# row is delivered (test NAME), the trigger runs on, and $c's change was
# the one call
sub delivered_once {
    my ($ng, $c, $when, $name) = @_;
    ok(CT::wait_for(sub { undelivered() == 0 }, timeout => 20), $name)
        or diag(CT::sql($db,
    q{SELECT * FROM events WHERE destination = 'auth' ORDER BY id}));
    ok(more_ticks($ng, 6), "the trigger runs on after the $when");
    is_deeply([calls_for($c)], [0], "after the $when: exactly one call");
    is(scalar $auth->requests, 1, "after the $when: no other call");
}

my $rc = pending_change($ng, 'Inactive', 'restart');
ok($ng->stop, 'nginx stops with a pending row');
is(undelivered(), 1, 'the row is still pending');

$auth->start;
my $ng2 = start_nginx();
delivered_once($ng2, $rc, 'restart', 'a new nginx delivers it');
is(scalar CT::sql($db, q{SELECT last_error IS NULL FROM events
    WHERE destination = 'auth' AND customer_id = :'p1'}, $rc->{id}), 't',
    'no error left');


# --- across a reload (HUP): the new workers trigger, the old ones exit -----

my $rl = pending_change($ng2, 'Suspended', 'reload');
my @old = $ng2->worker_pids;
kill 'HUP', $ng2->pid;
ok(CT::wait_for(sub {
    my @now = $ng2->worker_pids;
    my %was = map { $_ => 1 } @old;
    @now == 2 && !grep { $was{$_} } @now;
}, timeout => 20), 'the reload replaced both workers');
$auth->start;
delivered_once($ng2, $rl, 'reload', 'after the reload the row is delivered');

done_testing();
