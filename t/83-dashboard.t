# The customer dashboard: GET /api/customers/{id}/dashboard and
# /api/customers/me/dashboard put together the profile, the vehicles with
# their service status (oldest first), the documents expiring within 30
# days, the latest 5 important notes (never a private one for a
# Customer), the loyalty account and the credit status; everything made
# here through the API, and each section checked against what the other
# endpoints say about the same data.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db, workers => 2);


my @DATA_KEYS = sort qw(customer vehicles expiringDocuments importantNotes
    recentDocuments loyalty creditStatus);
my @CUSTOMER_KEYS = sort qw(customerId userId fullName email contactNumber
    customerStatus customerType isVerified customerSince totalOrders
    totalOrderValue);
my @VEHICLE_KEYS = sort qw(vehicleId make model year vin licensePlate mileage
    serviceStatus);
my @STATUS_KEYS = sort qw(service insurance registration warranty);
my @DOC_KEYS = sort qw(documentId type title vehicleId expiresAt daysRemaining);
my @NOTE_KEYS = sort qw(noteId content noteType isPrivate createdAt);


# --- helpers -------------------------------------------------------------

sub make_customer { CT::make_customer($ng, 'dash', @_) }

# the API's today plus N days, YYYY-MM-DD
sub day { CT::day($db, @_) }

sub make_vehicle {
    my ($cid, %v) = @_;
    return CT::make_vehicle($ng, $db, $cid, '2T1BR32000', %v);
}

sub pct { CT::pct(@_) }

sub upload {
    my ($cid, %q) = @_;
    my $query = join '&', map { "$_=" . CT::pct($q{$_}) } sort keys %q;
    my $r = $ng->req(POST => "/api/customers/$cid/documents?$query",
        body => "file of $q{title}",
        headers => { 'Content-Type' => 'text/plain' });
    die "upload failed ($r->{status}): $r->{body}" unless $r->{status} == 201;
    return $r->{json}{data};
}

sub add_note { CT::add_note($ng, @_) }

sub dashboard {
    my ($id, %o) = @_;
    return $ng->req(GET => "/api/customers/$id/dashboard", %o);
}

sub is_null {
    my ($h, $k, $name) = @_;
    ok(ref $h eq 'HASH' && exists $h->{$k} && !defined $h->{$k},
        "$name: null");
}


# --- a customer with everything ------------------------------------------

my ($ID, $SUB) = make_customer(contactNumber => '+14155550123',
    customerType => 'Premium', isVerified => $T, totalOrders => 3,
    totalOrderValue => 150.5, customerSince => '2021-06-01T00:00:00Z');
my $CUSTOMER = CT::customer_token($SUB);
my ($OTHER, $OTHER_SUB) = make_customer();

# overdue: 5000 km past its service (and the date long past too)
my $OVERDUE = make_vehicle($ID, make => 'Toyota', model => 'Corolla',
    year => 2015, licensePlate => 'KA01AB1234', mileage => 25000,
    lastServiceDate => day(-400), lastServiceMileage => 10000,
    insuranceExpiry => day(5), warrantyExpiry => day(-1));
# serviced today, 10000 km and 12 months to go
my $FINE = make_vehicle($ID, make => 'Honda', model => 'Civic',
    year => 2022, mileage => 1000, lastServiceDate => day(0),
    lastServiceMileage => 1000, insuranceExpiry => day(100),
    registrationExpiry => day(30), warrantyExpiry => day(31));
make_vehicle($OTHER, make => 'Ford', model => 'Focus', year => 2019);

my $SOON = upload($ID, type => 'insurance', title => 'Soon',
    expiresAt => day(5), vehicleId => $OVERDUE);
upload($ID, type => 'registration', title => 'Later', expiresAt => day(40));
upload($ID, type => 'other', title => 'Expired', expiresAt => day(-3));
upload($ID, type => 'service', title => 'Never');
upload($OTHER, type => 'insurance', title => 'Not mine',
    expiresAt => day(3));

# n1 not important; n2..n7 important, n6 also private
my %NOTE;
for my $n (['n1', 'general', 0, 0], ['n2', 'service', 0, 1],
    ['n3', 'billing', 0, 1], ['n4', 'complaint', 0, 1],
    ['n5', 'general', 0, 1], ['n6', 'billing', 1, 1],
    ['n7', 'other', 0, 1])
{
    $NOTE{ $n->[0] } = add_note($ID, content => $n->[0],
        noteType => $n->[1], isPrivate => $n->[2] ? $T : $F,
        isImportant => $n->[3] ? $T : $F);
}
add_note($OTHER, content => 'other', isImportant => $T);

for my $c (['earn', 1500], ['redeem', 200]) {
    my $r = $ng->req(POST => "/api/customers/$ID/loyalty/$c->[0]",
        json => { points => $c->[1] });
    die "loyalty $c->[0] failed: $r->{body}" unless $r->{status} == 201;
}
my $CREDIT = $ng->req(PUT => "/api/customers/$ID/credit-status",
    json => { creditScore => 720, source => 'bureau' });
die "credit failed: $CREDIT->{body}" unless $CREDIT->{status} == 200;
$CREDIT = $CREDIT->{json}{data};

sub note_item {
    my ($n) = @_;
    my $note = $NOTE{$n};
    return { noteId => $note->{noteId}, content => $note->{content},
        noteType => $note->{noteType}, isPrivate => $note->{isPrivate},
        createdAt => $note->{createdAt} };
}

# the contents of a dashboard's importantNotes, in order
sub notes_in { [ map { $_->{content} } @{ $_[0]{importantNotes} // [] } ] }

# importantNotes are the notes named, in that order: their contents (test
# NAME) and each item as the note was added (test ITEMS)
sub notes_are {
    my ($d, $want, $name, $items) = @_;
    is_deeply(notes_in($d), $want, $name);
    is_deeply($d->{importantNotes}, [map { note_item($_) } @$want], $items);
}


# --- as an Administrator -------------------------------------------------

my $ADMIN_VIEW;
{
    my $r = dashboard($ID);
    is($r->{status}, 200, 'dashboard: 200') or diag($r->{body});
    is($r->{json}{success}, $T, 'dashboard: success');
    my $d = $r->{json}{data} // {};
    $ADMIN_VIEW = $d;
    is_deeply([sort keys %$d], \@DATA_KEYS, 'dashboard: the sections');

    # customer
    my $c = $d->{customer} // {};
    is_deeply([sort keys %$c], \@CUSTOMER_KEYS, 'customer: the fields');
    my $rec = $ng->req(GET => "/api/customers/$ID")->{json}{data};
    is_deeply($c, { map { ($_ => $rec->{$_}) } @CUSTOMER_KEYS },
        'customer: as GET /api/customers/{id} has it');
    is($c->{customerId}, $ID, 'customer: customerId');
    is($c->{userId}, $SUB, 'customer: userId');
    is($c->{contactNumber}, '+14155550123', 'customer: contactNumber');
    is($c->{customerType}, 'Premium', 'customer: customerType');
    is($c->{customerStatus}, 'Active', 'customer: customerStatus');
    is($c->{isVerified}, $T, 'customer: isVerified');
    is($c->{totalOrders}, 3, 'customer: totalOrders');
    cmp_ok($c->{totalOrderValue} // 0, '==', 150.5,
        'customer: totalOrderValue');
    like($r->{body}, qr/"totalOrderValue":\s*150\.50?\s*[,}]/,
        'customer: totalOrderValue a number');
    like($c->{customerSince} // '', qr/^2021-06-01T00:00:00\.000Z\z/,
        'customer: customerSince');

    # vehicles, oldest first, each with its service status
    my $v = $d->{vehicles} // [];
    is_deeply([map { $_->{vehicleId} } @$v], [$OVERDUE, $FINE],
        'vehicles: both, oldest first, none of the other customer');
    is_deeply([sort keys %{ $v->[0] // {} }], \@VEHICLE_KEYS,
        'vehicles: the fields');
    is_deeply([sort keys %{ $v->[0]{serviceStatus} // {} }], \@STATUS_KEYS,
        'vehicles: serviceStatus has service, insurance, registration,'
        . ' warranty');
    for my $i (0, 1) {
        my $vid = $v->[$i]{vehicleId} // $MISSING;
        my $full = $ng->req(GET => "/api/vehicles/$vid");
        is_deeply({ map { ($_ => $v->[$i]{$_}) }
            grep { $_ ne 'serviceStatus' } @VEHICLE_KEYS },
            { map { ($_ => $full->{json}{data}{$_}) }
            grep { $_ ne 'serviceStatus' } @VEHICLE_KEYS },
            "vehicle $i: as GET /api/vehicles/{id} has it");
        my $st = $ng->req(GET => "/api/vehicles/$vid/service-status");
        is_deeply($v->[$i]{serviceStatus}, { map {
            ($_ => $st->{json}{data}{$_}) } @STATUS_KEYS },
            "vehicle $i: serviceStatus as GET .../service-status has it");
    }
    my ($o, $f) = @$v;
    is_deeply([@{ $o // {} }{qw(make model year licensePlate mileage)}],
        ['Toyota', 'Corolla', 2015, 'KA01AB1234', 25000],
        'overdue vehicle: make, model, year, plate, mileage');
    like($o->{vin} // '', qr/^[A-HJ-NPR-Z0-9]{17}\z/, 'overdue vehicle: vin');
    my $os = $o->{serviceStatus} // {};
    is($os->{service}{status}, 'overdue', 'overdue vehicle: status overdue');
    is($os->{service}{overdue}, $T, 'overdue vehicle: overdue true');
    is($os->{service}{due}, $T, 'overdue vehicle: due true');
    is($os->{service}{nextServiceMileage}, 20000,
        'overdue vehicle: nextServiceMileage 20000');
    is($os->{service}{kmRemaining}, -5000,
        'overdue vehicle: kmRemaining -5000');
    is_deeply($os->{insurance}, { expiresOn => day(5), daysRemaining => 5,
        status => 'expiring' }, 'overdue vehicle: insurance expiring');
    is_deeply($os->{registration}, { expiresOn => undef,
        daysRemaining => undef, status => 'unknown' },
        'overdue vehicle: registration unknown');
    is_deeply($os->{warranty}, { expiresOn => day(-1), daysRemaining => -1,
        status => 'expired' }, 'overdue vehicle: warranty expired');

    my $fs = $f->{serviceStatus} // {};
    is($f->{make}, 'Honda', 'fine vehicle: make');
    ok(exists $f->{licensePlate} && !defined $f->{licensePlate},
        'fine vehicle: licensePlate null');
    is($fs->{service}{status}, 'ok', 'fine vehicle: status ok');
    is($fs->{service}{due}, $F, 'fine vehicle: due false');
    is($fs->{service}{overdue}, $F, 'fine vehicle: overdue false');
    is($fs->{service}{kmRemaining}, 10000, 'fine vehicle: kmRemaining');
    is($fs->{insurance}{status}, 'valid', 'fine vehicle: insurance valid');
    is_deeply($fs->{registration}, { expiresOn => day(30),
        daysRemaining => 30, status => 'expiring' },
        'fine vehicle: registration expiring at 30 days');
    is($fs->{warranty}{status}, 'valid', 'fine vehicle: warranty valid');

    # documents: only the one in 5 days
    is_deeply($d->{expiringDocuments}, [{ documentId => $SOON->{documentId},
        type => 'insurance', title => 'Soon', vehicleId => $OVERDUE,
        expiresAt => day(5), daysRemaining => 5 }],
        'expiringDocuments: only the one in 5 days');

    # notes: the latest 5 important, the private one too
    notes_are($d, [qw(n7 n6 n5 n4 n3)],
        'importantNotes: n7 to n3, newest first, n6 (private) among them',
        'importantNotes: the latest 5 important, with the private one');
    is_deeply([sort keys %{ $d->{importantNotes}[0] // {} }], \@NOTE_KEYS,
        'importantNotes: the fields');
    like($d->{importantNotes}[0]{createdAt} // '', $TS,
        'importantNotes: createdAt');

    # loyalty and credit
    is_deeply($d->{loyalty}, { balance => 1300, lifetimePoints => 1500,
        tier => 'Silver' }, 'loyalty: balance, lifetimePoints, tier');
    my $acct = $ng->req(GET => "/api/customers/$ID/loyalty")->{json}{data};
    is_deeply($d->{loyalty}, { map { ($_ => $acct->{$_}) }
        qw(balance lifetimePoints tier) },
        'loyalty: as GET .../loyalty has it');
    is_deeply($d->{creditStatus}, { creditScore => 720, band => 'Good',
        lastUpdated => $CREDIT->{lastUpdated} },
        'creditStatus: score, band, lastUpdated');
    like($d->{creditStatus}{lastUpdated} // '', $TS,
        'creditStatus: lastUpdated a timestamp');
    my $cs = $ng->req(GET => "/api/customers/$ID/credit-status")
        ->{json}{data};
    is_deeply($d->{creditStatus}, { map { ($_ => $cs->{$_}) }
        qw(creditScore band lastUpdated) },
        'creditStatus: as GET .../credit-status has it');
}


# --- as the Customer: /{id} and /me --------------------------------------

{
    my $r = dashboard($ID, auth => $CUSTOMER);
    is($r->{status}, 200, 'Customer dashboard: 200') or diag($r->{body});
    my $d = $r->{json}{data} // {};
    notes_are($d, [qw(n7 n5 n4 n3 n2)],
        'Customer dashboard: n7, n5 to n2: n6 (private) left out',
        'Customer dashboard: the latest 5 important, no private one');
    for my $k (grep { $_ ne 'importantNotes' } @DATA_KEYS) {
        is_deeply($d->{$k}, $ADMIN_VIEW->{$k},
            "Customer dashboard: $k as the Administrator sees it");
    }

    my $me = $ng->req(GET => '/api/customers/me/dashboard',
        auth => $CUSTOMER);
    is($me->{status}, 200, 'me/dashboard: 200') or diag($me->{body});
    is_deeply($me->{json}{data}, $d, 'me/dashboard: the same as /{id}');

    # add a private important note: still not for the Customer
    add_note($ID, content => 'n8', isPrivate => $T, isImportant => $T);
    $me = $ng->req(GET => '/api/customers/me/dashboard', auth => $CUSTOMER);
    is_deeply(notes_in($me->{json}{data}), [qw(n7 n5 n4 n3 n2)],
        'me/dashboard: a newer private note does not show');
    is_deeply(notes_in(dashboard($ID)->{json}{data}), [qw(n8 n7 n6 n5 n4)],
        '... while the Administrator sees it first');
}


# --- a customer with nothing ---------------------------------------------

{
    my ($eid, $esub) = make_customer();
    add_note($eid, content => 'plain', isImportant => $F);
    upload($eid, type => 'other', title => 'No expiry');
    upload($eid, type => 'insurance', title => 'Far', expiresAt => day(40));

    my $r = dashboard($eid);
    is($r->{status}, 200, 'empty dashboard: 200') or diag($r->{body});
    my $d = $r->{json}{data} // {};
    is_deeply([sort keys %$d], \@DATA_KEYS, 'empty dashboard: the sections');
    is($d->{customer}{customerId}, $eid, 'empty dashboard: the customer');
    ok(exists $d->{customer}{contactNumber}
        && !defined $d->{customer}{contactNumber},
        'empty dashboard: contactNumber null');
    is_deeply($d->{vehicles}, [], 'empty dashboard: vehicles []');
    is_deeply($d->{expiringDocuments}, [],
        'empty dashboard: expiringDocuments []');
    is_deeply($d->{importantNotes}, [], 'empty dashboard: importantNotes []');
    is_null($d, 'loyalty', 'empty dashboard: loyalty');
    is_null($d, 'creditStatus', 'empty dashboard: creditStatus');
    like($r->{body}, qr/"vehicles"\s*:\s*\[\]/,
        'empty dashboard: [] in the body');

    my $me = $ng->req(GET => '/api/customers/me/dashboard',
        auth => CT::customer_token($esub));
    is($me->{status}, 200, 'empty me/dashboard: 200');
    is_deeply($me->{json}{data}, $d, 'empty me/dashboard: the same');
}


# --- expiring documents: the 30-day window -------------------------------

{
    my ($bid) = make_customer();
    my %id;
    for my $c (['yesterday', -1], ['today', 0], ['in 30', 30],
        ['in 31', 31], ['in 12', 12])
    {
        $id{ $c->[0] } = upload($bid, type => 'other', title => $c->[0],
            expiresAt => day($c->[1]))->{documentId};
    }
    my $d = dashboard($bid)->{json}{data} // {};
    is_deeply([map { "$_->{title}:$_->{daysRemaining}" }
        @{ $d->{expiringDocuments} // [] }],
        ['today:0', 'in 12:12', 'in 30:30'],
        'expiringDocuments: today to today+30, soonest first');
    ok(exists(($d->{expiringDocuments} // [{}])->[0]{vehicleId})
        && !defined $d->{expiringDocuments}[0]{vehicleId},
        'expiringDocuments: vehicleId null without a vehicle');
    is(($d->{expiringDocuments} // [{}])->[0]{documentId}, $id{today},
        'expiringDocuments: the documentId');
}


# --- refusals ------------------------------------------------------------

{
    is_error(dashboard($OTHER, auth => $CUSTOMER), 404, undef, undef,
        "a Customer asking for another customer's dashboard");
    is_error(dashboard($MISSING), 404, undef, undef, 'an unknown customer');
    is_error(dashboard($MISSING, auth => $CUSTOMER), 404, undef, undef,
        'a Customer asking for an unknown id');
    is_error(dashboard('not-a-uuid'), 400, undef, ['customerId'], 'a bad id');
    is_error(dashboard('not-a-uuid', auth => $CUSTOMER), 400, undef, ['customerId'], 'a bad id, as a Customer');
    is_error(dashboard($ID, auth => 'none'), 401, undef, undef,
        'dashboard without a token');
    is_error($ng->req(GET => '/api/customers/me/dashboard', auth => 'none'),
        401, undef, undef, 'me/dashboard without a token');
    is_error($ng->req(GET => '/api/customers/me/dashboard',
        auth => CT::customer_token("dash-nobody-$$")), 404, undef, undef,
        'me/dashboard for a sub without a customer');
    is_error($ng->req(GET => '/api/customers/me/dashboard'), 404, undef, undef,
        'me/dashboard for an Administrator without a customer record');
}

done_testing();
