# Customer self-service: PATCH /me changes the name, addresses, emergency
# contact and date of birth too (never status, type, statistics,
# verification, email or national id: 400 naming the field, nothing
# written); GET /api/customers/{ownId} is the Customer's own record (any
# other id 404); /me/vehicles, /me/documents, /me/loyalty (and its
# transactions), /me/alerts, /me/credit-status/history,
# /me/service-history answer what the {id} routes answer for the own id;
# POST /me/loyalty/redeem spends the Customer's own points and requires an
# Idempotency-Key (400 without one), also across a client that goes away.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use IO::Socket::INET;

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db, workers => 2);

my ($ID, $SUB) = CT::make_customer($ng, 'self', nationalId => 'ZX987654321');
my ($OTHER, $OTHER_SUB) = CT::make_customer($ng, 'selfother');
my $TOKEN = CT::customer_token($SUB);
my $OTHER_TOKEN = CT::customer_token($OTHER_SUB);

sub me {
    my ($method, $path, %o) = @_;
    return $ng->req($method => "/api/customers/me$path",
        auth => $o{auth} // $TOKEN, %o);
}

# the record, but the lastActivityDate any request of its Customer may
# write first
sub snapshot {
    return scalar CT::sql($db, q{SELECT (to_jsonb(c)
        #- '{metadata,lastActivityDate}')::text FROM customers c
        WHERE id = :'p1'}, $_[0]);
}

sub ledger {
    return scalar CT::sql($db, q{SELECT count(*) || '/' || coalesce((SELECT
        balance FROM loyalty_accounts WHERE customer_id = :'p1'), 0)
        FROM loyalty_transactions WHERE customer_id = :'p1'}, $_[0]);
}


# --- PATCH /me: what a Customer may change --------------------------------

{
    my $r = me(PATCH => '', json => { fullName => 'Self Renamed',
        dateOfBirth => '1985-02-03',
        addresses => [{ label => 'home', line1 => '2 Lane', city => 'Pune',
            country => 'IN', isDefault => $T }],
        emergencyContact => { name => 'Kin Person', phone => '+919800000001',
            relationship => 'sibling' } });
    is($r->{status}, 200, 'PATCH /me name, birth date, addresses, contact')
        or diag($r->{body});
    my $d = $r->{json}{data};
    is($d->{fullName}, 'Self Renamed', '... fullName');
    is($d->{dateOfBirth}, '1985-02-03', '... dateOfBirth');
    is($d->{addresses}[0]{line1}, '2 Lane', '... addresses');
    is($d->{emergencyContact}{name}, 'Kin Person', '... emergencyContact');
    is($d->{version}, 2, '... version 2');
    is(CT::sql($db, q{SELECT full_name || '|' || date_of_birth || '|'
        || (addresses->0->>'city') || '|' || (emergency_contact->>'phone')
        || '|' || updated_by FROM customers WHERE id = :'p1'}, $ID),
        "Self Renamed|1985-02-03|Pune|+919800000001|$SUB",
        '... stored, updatedBy the sub');

    $r = me(PATCH => '', json => { emergencyContact => undef,
        dateOfBirth => undef });
    is($r->{status}, 200, 'PATCH /me clearing contact and birth date');
    is($r->{json}{data}{emergencyContact}, undef, '... emergencyContact null');
    is($r->{json}{data}{dateOfBirth}, undef, '... dateOfBirth null');
}

{
    my $before = snapshot($ID);
    my %never = (customerStatus => 'VIP', customerType => 'VIP',
        totalOrders => 5, totalOrderValue => 10, openComplaints => 0,
        isVerified => $T, nationalId => 'X1', email => 'new@example.com',
        notes => 'mine', tags => ['x'], business => undef);
    for my $f (sort keys %never) {
        my $r = me(PATCH => '', json => { fullName => 'Not Written',
            $f => $never{$f} });
        is_error($r, 400, 'Validation failed', [$f], "PATCH /me with $f");
        is($r->{json}{errors}[0]{message}, 'Field is read-only',
            "... $f is read-only");
    }
    for my $c ([fullName => 'J'], [dateOfBirth => '2999-01-01'],
        [addresses => [{ line1 => 'x' }]], [emergencyContact => { name => 'N' }],
        [fullName => undef])
    {
        my $r = me(PATCH => '', json => { @$c });
        is($r->{status}, 400, "PATCH /me bad $c->[0]: 400");
    }
    is(snapshot($ID), $before, '... none of them wrote anything');
}


# --- GET /api/customers/{id}: the own record, nobody else's ---------------

{
    my $r = $ng->req(GET => "/api/customers/$ID", auth => $TOKEN);
    is($r->{status}, 200, 'GET /api/customers/{ownId} as the Customer: 200')
        or diag($r->{body});
    is_deeply($r->{json}{data}, me(GET => '')->{json}{data},
        '... the record GET /me answers');
    is($r->{json}{data}{nationalId}, '*******4321', '... nationalId masked');
    is($r->{headers}{etag}, '"3"', '... with its ETag');
    is($ng->req(HEAD => "/api/customers/$ID", auth => $TOKEN)->{status}, 200,
        '... HEAD too');

    $r = $ng->req(GET => "/api/customers/$OTHER", auth => $TOKEN);
    is_error($r, 404, 'Customer not found', ['customerId'],
        "GET another customer's id as a Customer");
    $r = $ng->req(GET => "/api/customers/$CT::MISSING", auth => $TOKEN);
    is_error($r, 404, 'Customer not found', ['customerId'],
        'GET a missing id as a Customer');
    $r = $ng->req(GET => '/api/customers/nope', auth => $TOKEN);
    is_error($r, 400, 'Validation failed', ['customerId'],
        'GET a non-UUID as a Customer');

    $r = $ng->req(GET => "/api/customers/$OTHER");
    is($r->{status}, 200, 'an Administrator still reads any record');
    is($r->{json}{data}{customerId}, $OTHER, '... that one');

    my $before = snapshot($ID);
    for my $m (qw(PUT PATCH DELETE)) {
        $r = $ng->req($m => "/api/customers/$ID", auth => $TOKEN,
            $m eq 'DELETE' ? () : (json => { notes => 'x' }));
        is_error($r, 403, 'Access denied', ['authorization'],
            "$m /api/customers/{ownId} as the Customer");
    }
    is(snapshot($ID), $before, '... nothing written');
}


# --- /me/vehicles, /me/service-history, /me/documents -----------------------

my $VID;
{
    my $r = me(POST => '/vehicles', json => { make => 'Tata', model => 'Nexon',
        year => 2022, vin => CT::new_vin('MAT6254SEL') });
    is($r->{status}, 201, 'POST /me/vehicles: 201') or diag($r->{body});
    $VID = $r->{json}{data}{vehicleId};
    is($r->{json}{data}{customerId}, $ID, '... the own customer\'s');
    is($r->{json}{data}{createdBy}, $SUB, '... createdBy the sub');

    $r = $ng->req(POST => "/api/customers/$OTHER/vehicles", json => {
        make => 'Other', model => 'Car', year => 2020,
        vin => CT::new_vin('MAT6254SEL') });
    is($r->{status}, 201, "another customer's vehicle");

    $r = me(GET => '/vehicles');
    is($r->{status}, 200, 'GET /me/vehicles: 200') or diag($r->{body});
    is_deeply([map { $_->{vehicleId} } @{ $r->{json}{data}{vehicles} }], [$VID],
        '... only the own vehicle');
    is_deeply($r->{json},
        $ng->req(GET => "/api/customers/$ID/vehicles", auth => $TOKEN)->{json},
        '... the answer of /api/customers/{id}/vehicles');
    is(me(GET => '/vehicles?limit=0')->{status}, 400,
        '... its page arguments are checked');

    $r = $ng->req(POST => "/api/vehicles/$VID/service-records",
        auth => $TOKEN, json => { serviceDate => '2026-01-10',
            mileage => 1000, description => 'first service' });
    is($r->{status}, 201, 'a service record') or diag($r->{body});
    $r = me(GET => '/service-history');
    is($r->{status}, 200, 'GET /me/service-history: 200');
    is($r->{json}{data}{serviceRecords}[0]{description}, 'first service',
        '... the own vehicle\'s record');
    is_deeply($r->{json}, $ng->req(GET => "/api/customers/$ID/service-history",
        auth => $TOKEN)->{json}, '... as /api/customers/{id}/service-history');

    $r = me(POST => '/documents?type=insurance&title=Policy&filename=p.pdf',
        body => "%PDF-1.4 bytes",
        headers => { 'Content-Type' => 'application/pdf' });
    is($r->{status}, 201, 'POST /me/documents: 201') or diag($r->{body});
    is($r->{json}{data}{customerId}, $ID, '... the own customer\'s');
    is($r->{json}{data}{size}, 14, '... its bytes');
    $r = me(GET => '/documents');
    is($r->{status}, 200, 'GET /me/documents: 200');
    is(scalar @{ $r->{json}{data}{documents} }, 1, '... one document');
    is_deeply($r->{json}, $ng->req(GET => "/api/customers/$ID/documents",
        auth => $TOKEN)->{json}, '... as /api/customers/{id}/documents');
    is(me(GET => '/documents?type=bogus')->{status}, 400,
        '... its arguments are checked');
}


# --- /me/loyalty and the redeem --------------------------------------------

{
    my $r = me(GET => '/loyalty');
    is($r->{status}, 200, 'GET /me/loyalty before any points: 200');
    is($r->{json}{data}{balance}, 0, '... balance 0');

    $r = $ng->req(POST => "/api/customers/$ID/loyalty/earn",
        json => { points => 500, reason => 'welcome' });
    is($r->{status}, 201, 'an Administrator earns 500 points for it');
    $r = $ng->req(POST => "/api/customers/$OTHER/loyalty/earn",
        json => { points => 70 });

    $r = me(GET => '/loyalty');
    is($r->{json}{data}{balance}, 500, 'GET /me/loyalty: 500');
    is_deeply($r->{json}, $ng->req(GET => "/api/customers/$ID/loyalty",
        auth => $TOKEN)->{json}, '... as /api/customers/{id}/loyalty');

    my $before = ledger($ID);
    $r = me(POST => '/loyalty/redeem', json => { points => 100 });
    is_error($r, 400, 'Idempotency-Key required', ['Idempotency-Key'],
        'redeem without an Idempotency-Key');
    $r = me(POST => '/loyalty/redeem', json => { points => 100 },
        headers => { 'Idempotency-Key' => 'k' x 101 });
    is_error($r, 400, 'Validation failed', ['Idempotency-Key'],
        'redeem with a key over 100 characters');
    $r = me(POST => '/loyalty/redeem', json => { points => 0 },
        headers => { 'Idempotency-Key' => 'r-0' });
    is_error($r, 400, 'Validation failed', ['points'], 'redeem 0 points');
    $r = me(POST => '/loyalty/redeem', json => { points => 501 },
        headers => { 'Idempotency-Key' => 'r-501' });
    is_error($r, 422, 'Insufficient points', ['points'],
        'redeem over the balance');
    is(ledger($ID), $before, '... none of them wrote a ledger row');

    $r = me(POST => '/loyalty/redeem', json => { points => 120,
        reason => 'voucher' }, headers => { 'Idempotency-Key' => 'r-1' });
    is($r->{status}, 201, 'redeem 120 with a key: 201') or diag($r->{body});
    is($r->{json}{data}{balance}, 380, '... balance 380');
    is($r->{json}{data}{customerId}, $ID, '... of the own record');
    my $first = $r->{body};

    $r = me(POST => '/loyalty/redeem', json => { points => 120,
        reason => 'voucher' }, headers => { 'Idempotency-Key' => 'r-1' });
    is($r->{status}, 201, 'the same redeem again: 201');
    is($r->{headers}{'idempotent-replayed'}, 'true', '... replayed');
    is($r->{body}, $first, '... the same answer');
    is(ledger($ID), '2/380', '... one redeem in the ledger, balance 380');

    $r = me(POST => '/loyalty/redeem', json => { points => 5 },
        headers => { 'Idempotency-Key' => 'r-1' });
    is($r->{status}, 409, 'the key with another body: 409');

    is(ledger($OTHER), '1/70', "another customer's points untouched");

    $r = me(GET => '/loyalty/transactions?kind=redeem');
    is($r->{status}, 200, 'GET /me/loyalty/transactions: 200');
    is(scalar @{ $r->{json}{data}{transactions} }, 1, '... one redeem');
    is_deeply($r->{json}, $ng->req(GET =>
        "/api/customers/$ID/loyalty/transactions?kind=redeem",
        auth => $TOKEN)->{json}, '... as the {id} ledger');
    is(me(GET => '/loyalty/transactions?kind=bogus')->{status}, 400,
        '... its arguments are checked');

    # the {id} redeem stays an Administrator's
    $r = $ng->req(POST => "/api/customers/$ID/loyalty/redeem",
        auth => $TOKEN, json => { points => 1 },
        headers => { 'Idempotency-Key' => 'r-admin' });
    is($r->{status}, 403, 'POST /api/customers/{ownId}/loyalty/redeem: 403');
}

# A client that goes away while its redeem waits on the account's lock:
# the retry with its key redeems once, whether the first one committed or
# not.
{
    my $before = ledger($ID);
    my $s = CT::psql_session($db);
    $s->run('BEGIN');
    $s->run("SELECT * FROM loyalty_accounts WHERE customer_id = '$ID'"
        . ' FOR UPDATE');

    my $body = '{"points":30}';
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $ng->port, Proto => 'tcp') or die "connect: $!";
    print $sock "POST /api/customers/me/loyalty/redeem HTTP/1.1\r\n"
        . "Host: t\r\nAuthorization: Bearer $TOKEN\r\n"
        . "Idempotency-Key: r-abort\r\nContent-Type: application/json\r\n"
        . 'Content-Length: ' . length($body) . "\r\n\r\n$body";
    ok(CT::wait_for(sub { CT::lock_waiters($db) >= 1 }),
        'the redeem waits on the account lock');
    close $sock;
    $s->run('COMMIT');
    $s->close;

    my $r;
    ok(CT::wait_for(sub {
            $r = me(POST => '/loyalty/redeem', body => $body,
                headers => { 'Idempotency-Key' => 'r-abort',
                    'Content-Type' => 'application/json' });
            $r->{status} == 201 }),
        'the retry with its key: 201') or diag($r->{body});
    my ($n, $bal) = split m{/}, $before;
    is(ledger($ID), ($n + 1) . '/' . ($bal - 30),
        '... exactly one redeem of 30 in the ledger');
    is($r->{json}{data}{balance}, $bal - 30, '... the answer says so');
}


# --- /me/alerts and /me/credit-status/history -------------------------------

{
    for my $score (600, 700) {
        my $r = $ng->req(PUT => "/api/customers/$ID/credit-status",
            json => { creditScore => $score, source => 'bureau' });
        die $r->{body} unless $r->{status} == 200;
    }
    my $r = $ng->req(PUT => "/api/customers/$OTHER/credit-status",
        json => { creditScore => 500 });
    $r = $ng->req(PUT => "/api/customers/$OTHER/credit-status",
        json => { creditScore => 800 });
    my $other_alert = $r->{json}{data}{alerts}[0]{alertId};

    $r = me(GET => '/alerts');
    is($r->{status}, 200, 'GET /me/alerts: 200') or diag($r->{body});
    my @alerts = @{ $r->{json}{data}{alerts} };
    is(scalar @alerts, 2, '... a rise and a milestone');
    is_deeply($r->{json}, $ng->req(GET => "/api/customers/$ID/alerts",
        auth => $TOKEN)->{json}, '... as /api/customers/{id}/alerts');

    $r = me(PATCH => "/alerts/$alerts[0]{alertId}", json => { read => $T });
    is($r->{status}, 200, 'PATCH /me/alerts/{alertId}: 200')
        or diag($r->{body});
    is($r->{json}{data}{isRead}, $T, '... read');
    is(me(GET => '/alerts?unread=true')->{json}{data}{pagination}{totalItems},
        1, '... one unread left');

    $r = me(PATCH => "/alerts/$other_alert", json => { read => $T });
    is_error($r, 404, 'Alert not found', ['alertId'],
        "PATCH /me/alerts/{another customer's alert}");
    is(CT::sql($db, q{SELECT is_read FROM credit_alerts WHERE id = :'p1'},
        $other_alert), 'f', '... left unread');
    $r = me(PATCH => '/alerts/nope', json => { read => $T });
    is_error($r, 400, 'Validation failed', ['alertId'],
        'PATCH /me/alerts/not-a-uuid');

    $r = me(GET => '/credit-status/history');
    is($r->{status}, 200, 'GET /me/credit-status/history: 200');
    is($r->{json}{data}{pagination}{totalItems}, 2, '... two scores');
}


# --- who: no record, an Administrator, a suspended Customer, methods ------

{
    my $r = me(GET => '/loyalty', auth => CT::customer_token('self-nobody'));
    is_error($r, 404, 'Customer not found', ['userId'],
        'GET /me/loyalty without a record');
    $r = me(GET => '/vehicles', auth => CT::admin_token('self-admin'));
    is_error($r, 404, 'Customer not found', ['userId'],
        "an Administrator without a record of its own");
    $r = me(GET => '/loyalty', auth => CT::jwt(sub => $SUB,
        roles => ['Customer', 'Administrator']));
    is($r->{status}, 200, 'an Administrator with a record: its own');
    is($r->{json}{data}{customerId}, $ID, '... that record');
    $r = me(GET => '/loyalty', auth => 'none');
    is($r->{status}, 401, 'anonymous: 401');
    $r = me(GET => '/loyalty', auth => 'service');
    is($r->{status}, 401, 'a service key: 401');

    $r = me(PUT => '/loyalty', json => {});
    is($r->{status}, 405, 'PUT /me/loyalty: 405');
    is($r->{headers}{allow}, 'GET, HEAD', '... Allow: GET, HEAD');
    is(me(HEAD => '/loyalty')->{status}, 200, 'HEAD /me/loyalty: 200');

    $r = $ng->req(PATCH => "/api/customers/$OTHER/status",
        json => { status => 'Suspended' });
    is($r->{status}, 200, 'the other customer is suspended');
    my $before = ledger($OTHER);
    $r = me(POST => '/loyalty/redeem', auth => $OTHER_TOKEN,
        json => { points => 10 }, headers => { 'Idempotency-Key' => 's-1' });
    is_error($r, 403, 'Access denied', ['authorization'],
        'a suspended Customer cannot redeem');
    is(ledger($OTHER), $before, '... nothing written');
    is(me(GET => '/vehicles', auth => $OTHER_TOKEN)->{status}, 403,
        '... nor read through /me');
}

done_testing();
