# Events for the Notification Service: every change raises its event in
# the statement that makes it, the periodic scan raises the time-based
# ones once per cycle, and the outbox run (customer_outbox_trigger, two
# workers) POSTs each to customer_notification_service as a CloudEvents
# 1.0 structured JSON event signed the Standard Webhooks way with every
# customer_notification_secret. A real recording peer checks the bytes
# and the signatures; the Auth Service still gets its status updates as
# before. Also: a peer that is down gets the event later, once; a scan
# run again, on two workers or after a restart raises nothing twice;
# channels the customer turned off are absent, a marketing event without
# marketingOptIn is never sent; GET /api/events filters and pages with a
# cursor, and refuses bad arguments with the error envelope.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(encode_base64 decode_base64);

my $T = JSON::PP::true;
my $UUID = qr/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
my $PEER_KEY = 'peer-key-events-0123456789abcdef';

# two secrets, as during a rotation: one in the Standard Webhooks form
my $KEY1 = join '', map { chr(($_ * 37 + 11) % 256) } 1 .. 32;
my $SECRET1 = 'whsec_' . encode_base64($KEY1, '');
my $KEY2 = 'the-previous-secret-0123456789';

my $auth = CT::peer_start(handler => sub { [200, {}, { success => $T }] });
my $notify = CT::peer_start(handler => sub { [204, {}, ''] });
my $db = CT::db_create();

my ($http, $server) = CT::peer_conf(auth => $auth, key => $PEER_KEY);
$http .= <<"CONF";
    customer_notification_secret $SECRET1;
    customer_notification_secret $KEY2;
    customer_event_scan_interval 0;
    upstream customer_notify_up { server 127.0.0.1:@{[ $notify->port ]}; }
CONF
$server .= <<'CONF';
        location = /metrics { customer_metrics; }

        customer_notification_service /_svc/notify;

        location /_svc/notify/ {
            internal;
            proxy_pass http://customer_notify_up/;
            proxy_connect_timeout 1s;
            proxy_read_timeout 1s;
            proxy_next_upstream off;
            subrequest_output_buffer_size 64k;
        }
CONF

sub start_nginx {
    return CT::nginx_start(db => $db, http_extra => $http,
        server_extra => $server, workers => 2, trigger => '100ms',
        allow_log => qr/connect\(\) failed|upstream/);
}

my $ng = start_nginx();


# --- helpers -------------------------------------------------------------

# the events the Notification Service received, decoded, in arrival order
sub received {
    my @out;
    for my $q ($notify->requests) {
        push @out, { %$q, event => JSON::PP->new->utf8->decode($q->{body}) };
    }
    return @out;
}

sub received_of {
    my ($cid, $type) = @_;
    return grep { $_->{event}{data}{customerId} eq $cid
        && (!defined $type || $_->{event}{type} eq $type) } received();
}

sub events_of {
    my ($cid, $type) = @_;
    return scalar CT::sql($db, q{SELECT count(*) FROM events
        WHERE destination = 'notifications' AND customer_id = :'p1'
        AND (:'p2' = '' OR type = :'p2')},
        $cid, $type // '');
}

sub pending {
    return scalar CT::sql($db, q{SELECT count(*) FROM events
        WHERE destination = 'notifications' AND delivered_at IS NULL
        AND NOT suppressed AND dead_at IS NULL});
}

sub day {
    return scalar CT::sql($db, q{SELECT ((now() AT TIME ZONE 'UTC')::date
        + :'p1'::int)::text}, $_[0]);
}

sub sig_of {
    my ($key, $q) = @_;
    my $h = $q->{headers};
    return 'v1,' . encode_base64(hmac_sha256(
        "$h->{'webhook-id'}.$h->{'webhook-timestamp'}.$q->{body}", $key), '');
}

sub metric {
    my ($name) = @_;
    my $r = $ng->req(GET => '/metrics', auth => 'none');
    return $r->{body} =~ /^\Q$name\E (\S+)$/m ? $1 : undef;
}

sub ok_req {
    my ($what, $want, @req) = @_;
    my $r = $ng->req(@req);
    is($r->{status}, $want, "$what: $want") or diag($r->{body});
    return $r;
}


# --- one customer through every kind of change -----------------------------

# A wants SMS only and marketing; B keeps the defaults (email, no
# marketing)
my ($A, $A_USER) = CT::make_customer($ng, 'events-a',
    preferences => { communication => { email => JSON::PP::false,
        sms => $T, push => JSON::PP::false }, marketingOptIn => $T });
my ($B) = CT::make_customer($ng, 'events-b');

ok_req('PATCH the name', 200, PATCH => "/api/customers/$A",
    json => { fullName => 'Events A Renamed' });

my $credit1 = ok_req('first score', 200, PUT => "/api/customers/$A/credit-status",
    json => { creditScore => 560, source => 'bureau' });
my $credit2 = ok_req('second score', 200,
    PUT => "/api/customers/$A/credit-status",
    json => { creditScore => 700, source => 'bureau' });
my @alerts = map { @{ $_->{json}{data}{alerts} // [] } } $credit1, $credit2;
ok(@alerts > 0, 'the scores raised credit alerts');

ok_req('earn (A)', 201, POST => "/api/customers/$A/loyalty/earn",
    json => { points => 1200, reason => 'Order' });
ok_req('earn (B)', 201, POST => "/api/customers/$B/loyalty/earn",
    json => { points => 1200, reason => 'Order' });

ok_req('suspend', 200, PATCH => "/api/customers/$A/status",
    json => { status => 'Suspended', reason => 'events test' });

# due by mileage now (0 km left), overdue after more kilometres
my $v = ok_req('vehicle', 201, POST => "/api/customers/$A/vehicles",
    json => { make => 'Skoda', model => 'Octavia', year => 2019,
        vin => CT::new_vin('EVNTS7KA0L'), mileage => 20000, lastServiceMileage => 10000,
        serviceIntervalKm => 10000 })->{json}{data};
my $VID = $v->{vehicleId} // $v->{id};

my $doc1 = ok_req('expiring document', 201,
    POST => "/api/customers/$A/documents?type=insurance&title=Policy"
        . '&expiresAt=' . day(10),
    body => 'policy', headers => { 'Content-Type' => 'text/plain' });
my $doc2 = ok_req('expired document', 201,
    POST => "/api/customers/$A/documents?type=registration&title=RC"
        . '&expiresAt=' . day(-3),
    body => 'rc', headers => { 'Content-Type' => 'text/plain' });
my $DOC1 = $doc1->{json}{data}{documentId} // $doc1->{json}{data}{id};
my $DOC2 = $doc2->{json}{data}{documentId} // $doc2->{json}{data}{id};

my %WANT = ('customer.created' => 1, 'customer.updated' => 1,
    'customer.status_changed' => 1, 'credit.alert' => scalar @alerts,
    'loyalty.tier_changed' => 1, 'vehicle.service_due' => 1,
    'document.expiring' => 1, 'document.expired' => 1);

ok(CT::wait_for(sub {
    my %n;
    $n{ $_->{event}{type} }++ for received_of($A);
    return !grep { ($n{$_} // 0) != $WANT{$_} } keys %WANT;
}, timeout => 30), 'A: every event reached the Notification Service')
    or diag(explain([map { $_->{event}{type} } received_of($A)]));

# overdue: 1 km past the due mileage
ok_req('mileage past the due one', 200,
    POST => "/api/vehicles/$VID/update-mileage", json => { mileage => 20001 });
$WANT{'vehicle.service_overdue'} = 1;
ok(CT::wait_for(sub { received_of($A, 'vehicle.service_overdue') == 1 }, timeout => 30),
    'A: the overdue service reached the Notification Service');

my @got = received_of($A);
my %by_type;
push @{ $by_type{ $_->{event}{type} } }, $_ for @got;
is(scalar @{ $by_type{$_} // [] }, $WANT{$_}, "$_: sent once")
    for sort keys %WANT;

for my $q (@got) {
    my $e = $q->{event};
    my $t = $e->{type};
    my $h = $q->{headers};
    is($q->{method}, 'POST', "$t: POST");
    is($q->{path}, '/events', "$t: to <customer_notification_service>/events");
    like($h->{'content-type'}, qr{^application/cloudevents\+json},
        "$t: structured CloudEvents");
    is($e->{specversion}, '1.0', "$t: specversion");
    like($e->{id}, $UUID, "$t: id");
    is($h->{'webhook-id'}, $e->{id}, "$t: webhook-id is the event's id");
    is($h->{'idempotency-key'}, $e->{id}, "$t: so is Idempotency-Key");
    is($h->{'x-service-api-key'}, $PEER_KEY, "$t: our service key");
    like($h->{'webhook-timestamp'}, qr/^\d{10}$/, "$t: webhook-timestamp");
    ok(abs($h->{'webhook-timestamp'} - time) < 120, "$t: a recent timestamp");
    is($h->{'webhook-signature'},
        sig_of($KEY1, $q) . ' ' . sig_of($KEY2, $q),
        "$t: signed with both secrets");
    is($e->{source}, '/customer-service', "$t: source");
    like($e->{time}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, "$t: time");
    is($e->{data}{customerId}, $A, "$t: data.customerId");
    is_deeply($e->{data}{channels}, ['sms'],
        "$t: only the channel A allows (email and push are off)");
}

# a signature with a third, unknown secret does not match
{
    my $q = $got[0];
    unlike($q->{headers}{'webhook-signature'},
        qr/\Q@{[ sig_of('not-the-secret-0123456789', $q) ]}\E/,
        'a wrong secret gives another signature');
}

# subjects and data
is($by_type{'vehicle.service_due'}[0]{event}{subject}, "vehicles/$VID",
    'service due: subject');
is($by_type{'vehicle.service_due'}[0]{event}{data}{vehicleId}, $VID,
    'service due: vehicleId');
is($by_type{'vehicle.service_due'}[0]{event}{data}{kmRemaining}, 0,
    'service due: 0 km left');
is($by_type{'vehicle.service_overdue'}[0]{event}{data}{kmRemaining}, -1,
    'service overdue: 1 km over');
is($by_type{'document.expiring'}[0]{event}{subject}, "documents/$DOC1",
    'document expiring: subject');
is($by_type{'document.expiring'}[0]{event}{data}{daysRemaining}, 10,
    'document expiring: 10 days');
is($by_type{'document.expired'}[0]{event}{data}{documentId}, $DOC2,
    'document expired: documentId');
is($by_type{'customer.status_changed'}[0]{event}{data}{customerStatus},
    'Suspended', 'status changed: the new status');
is($by_type{'customer.status_changed'}[0]{event}{data}{previousStatus},
    'Active', 'status changed: the old one');
is_deeply($by_type{'customer.updated'}[0]{event}{data}{changedFields},
    ['fullName'], 'updated: the fields that changed, not their values');
is($by_type{'loyalty.tier_changed'}[0]{event}{data}{tier}, 'Silver',
    'tier changed: Silver');
is_deeply([sort map { $_->{event}{data}{alertId} } @{ $by_type{'credit.alert'} }],
    [sort map { $_->{alertId} } @alerts], 'credit alerts: one event each');

# in order per customer: the order of the changes
{
    my @seq = map { scalar CT::sql($db, q{SELECT id FROM events
        WHERE event_id = :'p1' AND destination = 'notifications'},
        $_->{event}{id}) } @got;
    is_deeply(\@seq, [sort { $a <=> $b } @seq],
        "A's events arrived in the order they were raised");
}

# the Auth Service still gets exactly its status update
{
    my @calls = grep { $_->{path} =~ m{^/api/auth/user/} } $auth->requests;
    is(scalar @calls, 1, 'auth: one call');
    is($calls[0]{method}, 'PATCH', 'auth: PATCH');
    is($calls[0]{path}, "/api/auth/user/$A_USER/status", 'auth: its path');
    is_deeply($calls[0]{json}, { userId => $A_USER, customerId => $A,
        isActive => JSON::PP::false, reason => 'events test' },
        'auth: the same body as ever');
    like($calls[0]{headers}{'idempotency-key'}, qr/^customer-outbox-\d+$/,
        'auth: its Idempotency-Key');

    # one event, delivered to both destinations: the Auth Service's call
    # is the delivery of the row of destination auth that has the event's
    # id, and its key names that row
    my ($ev) = @{ $by_type{'customer.status_changed'} // [] };
    my $rows = CT::sql($db, q{SELECT string_agg(destination || ':'
        || (delivered_at IS NOT NULL)::text || ':' || id, ','
        ORDER BY destination) FROM events WHERE event_id = :'p1'},
        $ev->{event}{id} // '');
    my ($auth_id) = ($rows // '') =~ /auth:true:(\d+)/;
    like($rows // '', qr/^auth:true:\d+,notifications:true:\d+$/,
        'auth: the status change is one event, delivered to both');
    is($calls[0]{headers}{'idempotency-key'},
        'customer-outbox-' . ($auth_id // ''),
        "auth: the key names the event's auth row");
    is(CT::sql($db, q{SELECT count(*) FROM events a JOIN events n
        USING (event_id) WHERE a.destination = 'auth'
        AND n.destination = 'notifications' AND a.data <> n.data}), 0,
        'auth: both rows carry the same data');
}


# --- marketing and channels --------------------------------------------------

{
    is(scalar received_of($B, 'loyalty.tier_changed'), 0,
        'B (no marketingOptIn): the tier change is not sent');
    is(scalar received_of($B, 'customer.created'), 1,
        'B: its creation is');
    is_deeply((received_of($B, 'customer.created'))[0]{event}{data}{channels},
        ['email'], 'B: the default channel, email');
    my $r = ok_req('GET B tier events', 200,
        GET => "/api/events?customerId=$B&type=loyalty.tier_changed");
    my $e = $r->{json}{data}{events}[0];
    is($e->{delivery}{status}, 'suppressed', 'B: the event is kept, '
        . 'marked suppressed');
    is_deeply($e->{data}{channels}, [], 'B: no channel for marketing');
}


# --- the scan again, on two workers, after a restart: nothing twice ---------

{
    my $before = CT::sql($db, q{SELECT count(*) FROM events});
    my $runs = 0;
    for (1 .. 3) {
        my $r = $ng->req(POST => '/api/customers/internal/outbox',
            auth => 'service');
        $runs += $r->{status} == 200;
    }
    is($runs, 3, 'three more runs by hand (and the two workers\' own)');
    is(scalar CT::sql($db, q{SELECT events_scan('0')}), 0,
        'a scan straight after raises nothing');
    is(scalar CT::sql($db, q{SELECT events_scan('0')}), 0, 'nor a second');

    $ng->stop;
    $ng = start_nginx();
    my $t0 = time;
    ok(CT::wait_for(sub {
        CT::sql($db, q{SELECT last_at > now() - interval '1 second'
            FROM event_scan}) eq 't' && time - $t0 > 1 }, timeout => 20),
        'the new nginx scans');
    is(scalar CT::sql($db, q{SELECT count(*) FROM events}), $before,
        'no event raised again');
    for my $t (qw(vehicle.service_due vehicle.service_overdue
        document.expiring document.expired))
    {
        is(events_of($A, $t), 1, "$t: one row");
        is(scalar received_of($A, $t), 1, "$t: sent once");
    }
}


# --- in order per customer: one transaction at a time ----------------------

{
    # a change of A left uncommitted in a session of its own holds A's
    # later changes back until it commits, so their events' ids follow
    # the commits
    ok_req('A active again', 200, PATCH => "/api/customers/$A/status",
        json => { status => 'Active' });
    my $s = CT::psql_session($db);
    $s->run('BEGIN');
    $s->run(qq{UPDATE customers SET notes = 'held' WHERE id = '$A'});
    my $held = $s->run(q{SELECT max(id) FROM events});
    my $a = CT::async_req($ng, POST => "/api/customers/$A/loyalty/earn",
        { points => 4000, reason => 'Order' });
    ok(CT::wait_for(sub { CT::lock_waiters($db) >= 1 }),
        'a second change of A waits for the first to commit');
    ok(!CT::async_answered($a), '... and has not answered');
    $s->run('COMMIT');
    ok(CT::wait_for(sub { CT::async_answered($a) }), 'then it answers');
    ok(CT::wait_for(sub { pending() == 0 }, timeout => 30),
        'both delivered');
    my @types = map { $_->{event}{type} }
        grep { (CT::sql($db, q{SELECT id FROM events WHERE event_id = :'p1'
            AND destination = 'notifications'}, $_->{event}{id}) // 0)
            >= $held } received_of($A);
    is_deeply(\@types, ['customer.updated', 'loyalty.tier_changed'],
        'delivered in the order of the commits')
        or diag(explain(\@types));
    $s->close;
}


# --- the Notification Service down: delivered later, once ------------------

{
    $notify->stop;
    ok_req('PATCH while the service is down', 200,
        PATCH => "/api/customers/$A", json => { notes => 'peer down' });
    ok(CT::wait_for(sub { CT::sql($db, q{SELECT attempts >= 1
        AND last_error IS NOT NULL FROM events
        WHERE customer_id = :'p1' AND type = 'customer.updated'
        ORDER BY id DESC LIMIT 1}, $A) eq 't' }, timeout => 20),
        'down: the event failed and waits');
    my $id = CT::sql($db, q{SELECT event_id FROM events
        WHERE customer_id = :'p1' AND type = 'customer.updated'
        ORDER BY id DESC LIMIT 1}, $A);
    # the counts of /health and the metrics are up to about a second old,
    # each worker's its own: the values asserted are the ones last seen
    # (a later request may reach the other worker, whose count is older)
    my ($h, $m);
    CT::wait_for(sub {
        $h = $ng->req(GET => '/health', auth => 'none');
        $m = metric('customer_events_pending');
        my $e = ($h->{json}{data} // {})->{events} // {};
        ($e->{pending} // -1) == 1 && ($e->{dead} // -1) == 0
            && ($m // -1) == 1
    }, timeout => 5);
    is($m, 1, 'down: customer_events_pending counts it');
    is_deeply(($h->{json}{data} // {})->{events}, { pending => 1, dead => 0 },
        'down: /health counts it among the events');
    ok(metric('customer_peer_failures_total{service="notifications"}') >= 1,
        'down: the failed calls are counted');
    $notify->start;
    ok(CT::wait_for(sub { pending() == 0 }, timeout => 30),
        'up again: delivered at its next attempt');
    my @it = grep { $_->{event}{id} eq $id } received();
    is(scalar @it, 1, 'delivered exactly once');
    is_deeply($it[0]{event}{data}{changedFields}, ['notes'],
        'the event that waited');
    my ($pending, $dead);
    CT::wait_for(sub {
        my $r = $ng->req(GET => '/metrics', auth => 'none');
        ($pending) = $r->{body} =~ /^customer_events_pending (\S+)$/m;
        ($dead) = $r->{body} =~ /^customer_events_dead (\S+)$/m;
        ($pending // -1) == 0
    }, timeout => 5);
    is($pending, 0, 'up: nothing pending');
    is($dead, 0, 'up: nothing dead');
}


# --- a dead letter: set aside after ten failures, holds nothing back --------

{
    $notify->handler(sub { [500, {}, '{"error":"no"}'] });
    ok_req('PATCH B while the service fails', 200,
        PATCH => "/api/customers/$B", json => { notes => 'to die' });
    my $ev = CT::sql($db, q{SELECT id FROM events WHERE customer_id = :'p1'
        AND type = 'customer.updated' ORDER BY id DESC LIMIT 1}, $B);
    ok(CT::wait_for(sub { CT::sql($db, q{SELECT attempts FROM events
        WHERE id = :'p1'}, $ev) >= 1 }, timeout => 20),
        'dead letter: a failed attempt');
    CT::sql($db, q{UPDATE events SET attempts = 9, next_attempt_at = now()
        WHERE id = :'p1'}, $ev);
    ok(CT::wait_for(sub { CT::sql($db, q{SELECT dead_at IS NOT NULL
        FROM events WHERE id = :'p1'}, $ev) eq 't' }, timeout => 20),
        'dead letter: set aside at the tenth');
    my ($h, $m);
    CT::wait_for(sub {
        $h = $ng->req(GET => '/health', auth => 'none');
        $m = metric('customer_events_dead');
        (($h->{json}{data}{events} // {})->{dead} // -1) == 1
            && ($m // -1) == 1
    }, timeout => 20);
    is($m, 1, 'dead letter: counted');
    is(($h->{json}{data}{events} // {})->{dead}, 1,
        'dead letter: /health counts it');
    is(($h->{json}{data}{outbox} // {})->{dead}, 0,
        "dead letter: not among the Auth Service's");
    my $dead = CT::sql($db, q{SELECT event_id FROM events WHERE id = :'p1'},
        $ev);
    my $sent = grep { $_->{event}{id} eq $dead } received();
    ok($sent >= 2, "dead letter: sent at each attempt ($sent)");
    my $r = ok_req('GET it', 200, GET => "/api/events?customerId=$B"
        . '&type=customer.updated');
    my ($e) = grep { $_->{sequence} == $ev } @{ $r->{json}{data}{events} };
    is($e->{delivery}{status}, 'dead', 'dead letter: listed as dead');
    like($e->{delivery}{lastError} // '', qr/status 500/,
        'dead letter: with its last error');
    $notify->handler(sub { [204, {}, ''] });
    ok_req('PATCH B again', 200, PATCH => "/api/customers/$B",
        json => { notes => 'after' });
    # the dead event itself changed notes too: wait for another one
    ok(CT::wait_for(sub { grep { ($_->{event}{data}{changedFields}[0] // '')
        eq 'notes' && $_->{event}{id} ne $dead }
        received_of($B, 'customer.updated') }, timeout => 20),
        'dead letter: B\'s next event is not held back');
    is(scalar(grep { $_->{event}{id} eq $dead } received()), $sent,
        'dead letter: never sent since');
    is(scalar(grep { ($_->{event}{data}{changedFields}[0] // '') eq 'notes'
        && $_->{event}{id} ne $dead } received_of($B, 'customer.updated')),
        1, 'dead letter: the next event sent once');
}


# --- one run delivers a customer's events one after the other ---------------

{
    # an nginx of its own without the trigger: runs by hand only
    my $db2 = CT::db_create();
    my $ng2 = CT::nginx_start(db => $db2, http_extra => $http,
        server_extra => $server);
    my ($c) = CT::make_customer($ng2, 'events-run');
    for my $n (1 .. 3) {
        my $r = $ng2->req(PATCH => "/api/customers/$c",
            json => { notes => "change $n" });
        is($r->{status}, 200, "run: change $n") or diag($r->{body});
    }
    $notify->clear;
    my $r = $ng2->req(POST => '/api/customers/internal/outbox',
        auth => 'service');
    is($r->{status}, 200, 'run: 200') or diag($r->{body});
    is_deeply($r->{json}{data}, { claimed => 4, delivered => 4, failed => 0,
        skipped => 0 }, 'run: the four events of one customer in one run');
    is_deeply([map { $_->{event}{type} } received()],
        ['customer.created', ('customer.updated') x 3], 'run: in order');
    is_deeply([map { $_->{event}{data}{changedFields}[0] // '' }
        received()], ['', ('notes') x 3], 'run: each change once');
    $ng2->stop;
}


# --- GET /api/events ---------------------------------------------------------

{
    my $r = ok_req('GET /api/events', 200, GET => '/api/events?limit=200');
    my $all = $r->{json}{data}{events};
    is($r->{json}{success}, $T, 'list: success');
    is(scalar @$all, CT::sql($db, q{SELECT count(*) FROM events
        WHERE destination = 'notifications'}),
        'list: every event of the 30 days (the Auth Service\'s rows aside)');
    my @keys = sort qw(specversion id source type time subject
        datacontenttype data sequence customerId delivery);
    is_deeply([sort keys %{ $all->[0] }], \@keys, 'list: the fields');

    # the cursor, two at a time
    my (@seen, $after);
    for (1 .. 100) {
        my $p = $ng->req(GET => "/api/events?customerId=$A&limit=2"
            . (defined $after ? "&after=$after" : ''));
        last unless $p->{status} == 200;
        my $d = $p->{json}{data};
        push @seen, map { $_->{sequence} } @{ $d->{events} };
        last unless $d->{hasMore};
        $after = $d->{nextAfter};
    }
    my @want = map { $_->{sequence} }
        grep { $_->{customerId} eq $A } @$all;
    is_deeply(\@seen, \@want, 'cursor: every event of A, once, in order');
    is(scalar @want, events_of($A), 'cursor: as many as A has');

    $r = ok_req('type filter', 200, GET => '/api/events?type=credit.alert');
    is_deeply([map { $_->{type} } @{ $r->{json}{data}{events} }],
        [('credit.alert') x CT::sql($db, q{SELECT count(*) FROM events
            WHERE type = 'credit.alert' AND destination = 'notifications'})],
        'type filter: the credit alerts, only them');

    # the Auth Service's deliveries: A's status changes, rows of their own
    $r = ok_req('destination=auth', 200,
        GET => "/api/events?destination=auth&customerId=$A");
    my $auth_rows = $r->{json}{data}{events} // [];
    my $changes = CT::sql($db, q{SELECT count(*) FROM customer_status_history
        WHERE customer_id = :'p1'}, $A);
    cmp_ok($changes, '>=', 1, "A's status changed");
    is_deeply([map { [$_->{type}, $_->{delivery}{destination},
        $_->{delivery}{status}] } @$auth_rows],
        [(['customer.status_changed', 'auth', 'delivered']) x $changes],
        "destination=auth: A's status changes, delivered to the Auth Service");
    is(($auth_rows->[0] // {})->{id},
        ($by_type{'customer.status_changed'}[0] // {})->{event}{id},
        'destination=auth: the same event as the Notification Service got');
    isnt(($auth_rows->[0] // {})->{sequence},
        scalar CT::sql($db, q{SELECT id FROM events WHERE event_id = :'p1'
            AND destination = 'notifications'},
            ($auth_rows->[0] // {})->{id} // ''),
        'destination=auth: a row of its own');
    is((grep { $_->{delivery}{destination} ne 'notifications' } @$all), 0,
        'by default: the Notification Service\'s rows only');

    $r = ok_req('after the last', 200,
        GET => "/api/events?after=$want[-1]&customerId=$A");
    is_deeply($r->{json}{data}{events}, [], 'after the last: nothing');
    is($r->{json}{data}{hasMore}, JSON::PP::false, 'after the last: no more');

    for my $bad (['type=customer.deleted', 'type'],
        ['customerId=nope', 'customerId'], ['after=abc', 'after'],
        ['after=-1', 'after'], ['limit=0', 'limit'], ['limit=201', 'limit'],
        ['destination=orders', 'destination'])
    {
        my $b = $ng->req(GET => "/api/events?$bad->[0]");
        CT::is_error($b, 400, 'Validation failed', [$bad->[1]],
            "GET /api/events?$bad->[0]");
    }

    is($ng->req(GET => '/api/events',
        auth => CT::customer_token($A_USER))->{status}, 403,
        'a Customer may not list events');
    is($ng->req(GET => '/api/events', auth => 'none')->{status}, 401,
        'nor may an anonymous caller');
}

CT::done_testing();
