# Vehicle service: GET /api/vehicles/{id}/service-status at its
# boundaries (due by date or by mileage, overdue, due soon, which comes
# first, never serviced; insurance, registration and warranty expiry),
# every expected value computed here and in PostgreSQL from the stored
# row as the contract says; service records (every field's rule, the
# vehicle's last service, mileage and version moved in the same
# transaction, back-dated records, newest first with paging) and a
# customer's service history across its vehicles.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;


my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db, workers => 2);


my @STATUS_KEYS = sort qw(vehicleId mileage asOf service insurance
    registration warranty);
my @SERVICE_KEYS = sort qw(nextServiceMileage nextServiceDate kmRemaining
    daysRemaining dueBy due overdue status);
my @RECORD_KEYS = sort qw(serviceRecordId vehicleId customerId serviceDate
    mileage description cost performedBy createdAt createdBy version);

# "today" as the contract has it: the UTC date, from PostgreSQL
my $TODAY_SQL = q{(now() AT TIME ZONE 'UTC')::date};
my $TODAY = CT::sql($db, "SELECT $TODAY_SQL");

sub day {
    my ($n) = @_;
    return scalar CT::sql($db, "SELECT ($TODAY_SQL + :'p1'::int)::text", $n);
}


# --- helpers -------------------------------------------------------------

# a valid VIN (ISO 3779 check digit in position 9) for each call
sub new_vin { CT::new_vin('SRVCE7KA0L') }

sub make_customer { CT::make_customer($ng, 'svc') }

sub vpath { "/api/vehicles/$_[0]" . ($_[1] // '') }

sub new_vehicle {
    my ($cid, %f) = @_;
    my $r = $ng->req(POST => "/api/customers/$cid/vehicles", json => {
        make => 'Skoda', model => 'Octavia', year => 2019,
        vin => new_vin(), %f });
    die "vehicle create failed: $r->{body}" unless $r->{status} == 201;
    return $r->{json}{data};
}

sub vrow { CT::row_of($db, 'vehicles', $_[0]) }

sub row {
    my $t = vrow($_[0]);
    return length $t ? JSON::PP->new->decode($t) : undef;
}

sub records_of {
    return scalar CT::sql($db, q{SELECT count(*) FROM service_records
        WHERE vehicle_id = :'p1'}, $_[0]);
}

sub pages { CT::pages(@_) }

sub raw { CT::raw_member(@_) }

sub status_of {
    my ($id, %o) = @_;
    return $ng->req(GET => vpath($id, '/service-status'), %o);
}

# The service object the contract gives for the stored vehicle: the dates
# and their differences from PostgreSQL, the rest computed here.
sub expect_service {
    my ($id) = @_;
    my $line = CT::sql($db, qq{SELECT concat_ws(' ', t.next_date,
        t.next_date - t.today, t.next_date - t.base, t.next_km, t.mileage,
        t.ikm) FROM (SELECT $TODAY_SQL AS today, b.base,
        (b.base + make_interval(months => v.service_interval_months))::date
            AS next_date,
        coalesce(v.last_service_mileage, 0) + v.service_interval_km
            AS next_km,
        v.mileage, v.service_interval_km AS ikm
        FROM vehicles v, LATERAL (SELECT coalesce(v.last_service_date,
            (v.created_at AT TIME ZONE 'UTC')::date) AS base) b
        WHERE v.id = :'p1') t}, $id);
    my ($next, $days, $span, $next_km, $mileage, $ikm) = split / /, $line;
    my $km = $next_km - $mileage;
    my $overdue = $km < 0 || $days < 0;
    my $due = $km <= 0 || $days <= 0;
    return { nextServiceMileage => $next_km, nextServiceDate => $next,
        kmRemaining => $km, daysRemaining => $days,
        # km / ikm <= days / span, without dividing
        dueBy => $km * $span <= $days * $ikm ? 'mileage' : 'date',
        due => $due ? $T : $F, overdue => $overdue ? $T : $F,
        status => $overdue ? 'overdue' : $due ? 'due'
            : ($km <= 500 || $days <= 14) ? 'due-soon' : 'ok' };
}

sub expect_expiry {
    my ($date) = @_;
    return { expiresOn => undef, daysRemaining => undef,
        status => 'unknown' } unless defined $date;
    my $days = CT::sql($db, "SELECT :'p1'::date - $TODAY_SQL", $date);
    return { expiresOn => $date, daysRemaining => $days,
        status => $days < 0 ? 'expired' : $days <= 30 ? 'expiring'
            : 'valid' };
}

# the whole answer checked against the contract; %want: the members of
# service the case is about, stated outright
sub check_status {
    my ($id, $name, %want) = @_;
    my $r = status_of($id);
    is($r->{status}, 200, "$name: 200") or diag($r->{body});
    my $d = $r->{json}{data} // {};
    my $s = $d->{service} // {};
    my %got = map { ($_ => $s->{$_}) } keys %want;
    my $said = join ', ', map { my $w = $want{$_};
        "$_ " . (ref $w ? ($w ? 'true' : 'false') : $w) } sort keys %want;
    is_deeply(\%got, \%want, "$name: $said") or diag(explain($s));
    is_deeply($s, expect_service($id), "$name: the service object")
        or diag(explain($s));
    is_deeply([sort keys %$s], \@SERVICE_KEYS, "$name: the service members");
    return $d;
}

# (lastServiceDate, serviceIntervalMonths) such that the next service date
# comes out exactly today + $k: month arithmetic does not always go back
# and forth (a 29th of February, a 31st), so PostgreSQL finds the pair
sub base_for {
    my ($k) = @_;
    my $line = CT::sql($db, qq{SELECT (t - g) || ' ' || m
        FROM (SELECT $TODAY_SQL AS t) x,
             unnest(ARRAY[12, 6, 3, 1]) WITH ORDINALITY AS u(m, o),
             generate_series(0, 400) g
        WHERE ((t - g) + make_interval(months => m))::date = t + :'p1'::int
        ORDER BY o, g LIMIT 1}, $k);
    die "no base date for today + $k" unless $line;
    my ($d, $m) = split / /, $line;
    return ($d, $m + 0);
}


my ($CID, $SUB) = make_customer();
my ($CID2, $SUB2) = make_customer();
my $OWN = CT::customer_token($SUB);
my $OTHER = CT::customer_token($SUB2);


# --- the answer's shape ---------------------------------------------------

{
    my $v = new_vehicle($CID, mileage => 1234);
    my $r = status_of($v->{vehicleId});
    is($r->{status}, 200, 'service-status: 200') or diag($r->{body});
    is($r->{json}{success}, $T, 'service-status: success');
    my $d = $r->{json}{data} // {};
    is_deeply([sort keys %$d], \@STATUS_KEYS, 'service-status: the members');
    is($d->{vehicleId}, $v->{vehicleId}, 'service-status: vehicleId');
    is($d->{mileage}, 1234, 'service-status: mileage');
    is($d->{asOf}, $TODAY, 'service-status: asOf is the UTC date');
    for my $k (qw(insurance registration warranty)) {
        is_deeply($d->{$k}, { expiresOn => undef, daysRemaining => undef,
            status => 'unknown' }, "service-status: $k unknown");
    }
    like(raw($r, 'kmRemaining') // '', qr/^-?[0-9]+\z/,
        'service-status: kmRemaining a JSON number');
    like(raw($r, 'due') // '', qr/^(true|false)\z/,
        'service-status: due a JSON boolean');

    # never serviced, bought today: base is today
    check_status($v->{vehicleId}, 'never serviced, created today',
        nextServiceMileage => 10000, kmRemaining => 8766,
        nextServiceDate => scalar CT::sql($db, "SELECT ($TODAY_SQL
            + interval '12 months')::date"),
        status => 'ok', due => $F, overdue => $F);

    is_error(status_of($MISSING), 404, undef, undef,
        'service-status of an unknown vehicle');
    is_error(status_of('nope'), 400, undef, ['vehicleId'],
        'service-status with a bad id');
    is(status_of($v->{vehicleId}, auth => $OWN)->{status}, 200,
        'service-status as the owner: 200');
    is(status_of($v->{vehicleId}, auth => $OTHER)->{status}, 404,
        'service-status as another customer: 404');
}


# --- due by date, by mileage, overdue, due soon ---------------------------

{
    # due today by date: the round trip gives exactly today
    my ($base, $months) = base_for(0);
    my $v = new_vehicle($CID, lastServiceDate => $base,
        serviceIntervalMonths => $months, lastServiceMileage => 1000,
        mileage => 1000);
    is($v->{lastServiceDate}, $base, "due today: lastServiceDate $base kept");
    check_status($v->{vehicleId}, "due today by date ($base + $months months)",
        nextServiceDate => $TODAY, daysRemaining => 0, kmRemaining => 10000,
        due => $T, overdue => $F, status => 'due', dueBy => 'date');

    # overdue by date (yesterday), not by mileage
    ($base, $months) = base_for(-1);
    $v = new_vehicle($CID, lastServiceDate => $base,
        serviceIntervalMonths => $months, lastServiceMileage => 1000,
        mileage => 1000);
    check_status($v->{vehicleId}, 'overdue by date by one day, not by mileage',
        nextServiceDate => day(-1), daysRemaining => -1,
        kmRemaining => 10000, due => $T, overdue => $T,
        status => 'overdue');

    # due in 14 days: due soon; in 15: ok (mileage far)
    for my $c ([14, 'due-soon'], [15, 'ok']) {
        my ($k, $st) = @$c;
        ($base, $months) = base_for($k);
        $v = new_vehicle($CID, lastServiceDate => $base,
            serviceIntervalMonths => $months, lastServiceMileage => 0,
            mileage => 0);
        check_status($v->{vehicleId}, "due in $k days",
            nextServiceDate => day($k), daysRemaining => $k,
            kmRemaining => 10000, due => $F, overdue => $F, status => $st,
            dueBy => 'date');
    }

    # by mileage, serviced today (the date a year off)
    for my $c ([29999, 1, 'due-soon', $F, $F], [30000, 0, 'due', $T, $F],
        [30001, -1, 'overdue', $T, $T], [29500, 500, 'due-soon', $F, $F],
        [29499, 501, 'ok', $F, $F])
    {
        my ($mileage, $km, $st, $due, $overdue) = @$c;
        $v = new_vehicle($CID, lastServiceDate => $TODAY,
            lastServiceMileage => 20000, mileage => $mileage);
        check_status($v->{vehicleId}, "mileage $mileage of 30000",
            nextServiceMileage => 30000, kmRemaining => $km,
            due => $due, overdue => $overdue, status => $st,
            dueBy => 'mileage');
        ok(status_of($v->{vehicleId})->{json}{data}{service}{daysRemaining} > 300,
            "mileage $mileage of 30000: the date far off");
    }

    # a custom interval
    $v = new_vehicle($CID, lastServiceDate => day(-2),
        lastServiceMileage => 50000, serviceIntervalKm => 15000,
        serviceIntervalMonths => 24, mileage => 64999);
    check_status($v->{vehicleId}, 'a 15000 km / 24 month interval',
        nextServiceMileage => 65000, kmRemaining => 1,
        nextServiceDate => scalar CT::sql($db, "SELECT ($TODAY_SQL - 2
            + interval '24 months')::date"), status => 'due-soon');
}


# --- never serviced: the base is the UTC date of createdAt ----------------

{
    # bought 400 days ago, a minute before midnight UTC: overdue by date
    my $v = new_vehicle($CID, mileage => 9000);
    CT::sql($db, qq{UPDATE vehicles SET created_at = (($TODAY_SQL - 400)
        + time '23:59:00') AT TIME ZONE 'UTC' WHERE id = :'p1'}, $v->{vehicleId});
    check_status($v->{vehicleId}, 'never serviced, created 400 days ago',
        nextServiceMileage => 10000, kmRemaining => 1000,
        nextServiceDate => scalar CT::sql($db, "SELECT ($TODAY_SQL - 400
            + interval '12 months')::date"),
        overdue => $T, status => 'overdue');

    # the next date exactly today, created at the first and the last
    # second of the base day (UTC)
    my ($base, $months) = base_for(0);
    for my $t ('00:00:01', '23:59:59') {
        $v = new_vehicle($CID, serviceIntervalMonths => $months,
            mileage => 9499);
        CT::sql($db, q{UPDATE vehicles SET created_at = (:'p2'::date
            + :'p3'::time) AT TIME ZONE 'UTC' WHERE id = :'p1'},
            $v->{vehicleId}, $base, $t);
        my $got = $ng->req(GET => vpath($v->{vehicleId}))->{json}{data}{createdAt};
        like($got // '', qr/^\Q$base\ET\Q$t\E\.000Z\z/,
            "createdAt $base $t UTC");
        check_status($v->{vehicleId}, "never serviced, created $base $t UTC",
            nextServiceMileage => 10000, kmRemaining => 501,
            nextServiceDate => $TODAY, daysRemaining => 0, due => $T,
            overdue => $F, status => 'due', dueBy => 'date');
    }

    # no lastServiceMileage: counted from 0
    $v = new_vehicle($CID, mileage => 9500, lastServiceDate => $TODAY);
    check_status($v->{vehicleId}, 'no lastServiceMileage, mileage 9500',
        nextServiceMileage => 10000, kmRemaining => 500,
        status => 'due-soon');
    $v = new_vehicle($CID, mileage => 10000);
    check_status($v->{vehicleId}, 'never serviced, mileage 10000',
        kmRemaining => 0, due => $T, status => 'due');
}


# --- dueBy: whichever comes first as a share of its interval --------------

{
    # serviced 100 days ago, an interval of as many km as the interval has
    # days: after 100 km both shares are equal (mileage wins the tie)
    my $base = day(-100);
    my $span = 0 + CT::sql($db, q{SELECT (:'p1'::date
        + interval '12 months')::date - :'p1'::date}, $base);
    for my $c ([100, 'mileage', 'equal shares'], [99, 'date',
        'a km more left'], [101, 'mileage', 'a km less left'])
    {
        my ($used, $by, $what) = @$c;
        my $v = new_vehicle($CID, lastServiceDate => $base,
            lastServiceMileage => 0, mileage => $used,
            serviceIntervalKm => $span);
        check_status($v->{vehicleId}, "dueBy, $what",
            kmRemaining => $span - $used, daysRemaining => $span - 100,
            dueBy => $by);
    }
    # half the time gone, 90% of the km left: by date
    my $v = new_vehicle($CID, lastServiceDate => day(-180),
        lastServiceMileage => 0, mileage => 1000);
    check_status($v->{vehicleId}, 'dueBy date: the time runs out first',
        kmRemaining => 9000, dueBy => 'date', status => 'ok');
    $v = new_vehicle($CID, lastServiceDate => $TODAY,
        lastServiceMileage => 0, mileage => 6000);
    check_status($v->{vehicleId}, 'dueBy mileage: the km run out first',
        kmRemaining => 4000, dueBy => 'mileage', status => 'ok');
    # overdue both ways: the one further past
    $v = new_vehicle($CID, lastServiceDate => day(-800),
        lastServiceMileage => 0, mileage => 10100);
    check_status($v->{vehicleId}, 'overdue both ways',
        kmRemaining => -100, overdue => $T, status => 'overdue');
}


# --- insurance, registration, warranty ------------------------------------

{
    for my $c ([undef, undef, 'unknown'], [-1, -1, 'expired'],
        [-400, -400, 'expired'], [0, 0, 'expiring'], [1, 1, 'expiring'],
        [30, 30, 'expiring'], [31, 31, 'valid'], [365, 365, 'valid'])
    {
        my ($k, $days, $st) = @$c;
        my $date = defined $k ? day($k) : undef;
        my $v = new_vehicle($CID, insuranceExpiry => $date,
            registrationExpiry => $date, warrantyExpiry => $date);
        my $r = status_of($v->{vehicleId});
        is($r->{status}, 200, 'expiry ' . ($k // 'null') . ': 200');
        for my $f (qw(insurance registration warranty)) {
            my $want = { expiresOn => $date, daysRemaining => $days,
                status => $st };
            is_deeply($r->{json}{data}{$f}, $want,
                "$f expiring " . ($date // 'null') . ": $st, "
                . ($days // 'null')) or diag($r->{body});
            is_deeply($r->{json}{data}{$f}, expect_expiry($date),
                "$f " . ($date // 'null') . ': as computed in SQL');
        }
    }
    # each member reads its own column
    my %d = (insuranceExpiry => undef, registrationExpiry => day(-1),
        warrantyExpiry => day(31));
    my $v = new_vehicle($CID, %d);
    my $r = status_of($v->{vehicleId});
    is($r->{json}{data}{insurance}{status}, 'unknown',
        'mixed: insurance unknown');
    is($r->{json}{data}{registration}{status}, 'expired',
        'mixed: registration expired');
    is($r->{json}{data}{warranty}{status}, 'valid', 'mixed: warranty valid');
    is($r->{json}{data}{warranty}{expiresOn}, $d{warrantyExpiry},
        'mixed: warranty expiresOn');
}


# --- service records: POST ------------------------------------------------

{
    my $v = new_vehicle($CID, mileage => 10000);
    my $id = $v->{vehicleId};
    my $p = vpath($id, '/service-records');

    my $r = $ng->req(POST => $p, json => { serviceDate => day(-10),
        mileage => 12000, description => 'Oil change', cost => 45.5,
        performedBy => 'Joe Garage' });
    is($r->{status}, 201, 'POST record: 201') or diag($r->{body});
    is($r->{json}{success}, $T, 'POST record: success');
    my $d = $r->{json}{data} // {};
    is_deeply([sort keys %$d], \@RECORD_KEYS, 'POST record: the members');
    like($d->{serviceRecordId} // '', $UUID, 'POST record: id');
    is($d->{vehicleId}, $id, 'POST record: vehicleId');
    is($d->{customerId}, $CID, 'POST record: customerId');
    is($d->{serviceDate}, day(-10), 'POST record: serviceDate');
    is($d->{mileage}, 12000, 'POST record: mileage');
    is($d->{description}, 'Oil change', 'POST record: description');
    cmp_ok($d->{cost} // -1, '==', 45.5, 'POST record: cost 45.5');
    like(raw($r, 'cost') // '', qr/^[0-9]+(\.[0-9]{1,2})?\z/,
        'POST record: cost a JSON number, two decimals at most');
    is($d->{performedBy}, 'Joe Garage', 'POST record: performedBy');
    like($d->{createdAt} // '', $TS, 'POST record: createdAt');
    is($d->{createdBy}, 'admin-user', 'POST record: createdBy');
    is(CT::sql($db, q{SELECT concat_ws('|', vehicle_id, customer_id,
        service_date, mileage, description, cost, performed_by, created_by)
        FROM service_records WHERE id = :'p1'}, $d->{serviceRecordId}),
        join('|', $id, $CID, day(-10), 12000, 'Oil change', '45.50',
        'Joe Garage', 'admin-user'), 'POST record: the row stored');

    my $row = row($id);
    is_deeply([@$row{qw(last_service_date last_service_mileage mileage
        version)}], [day(-10), 12000, 12000, 2],
        'POST record: the vehicle took its date, mileage, version 2');
    is($ng->req(GET => vpath($id))->{headers}{etag}, '"2"',
        'POST record: the vehicle ETag "2"');
    check_status($id, 'after the first record',
        nextServiceMileage => 22000, kmRemaining => 10000);

    # back-dated: the vehicle keeps its last service; cost defaults to 0
    $r = $ng->req(POST => $p, json => { serviceDate => day(-30),
        mileage => 11000, description => 'Tyres' });
    is($r->{status}, 201, 'POST back-dated record: 201') or diag($r->{body});
    cmp_ok($r->{json}{data}{cost} // -1, '==', 0, 'POST record: cost 0');
    ok(exists $r->{json}{data}{performedBy}
        && !defined $r->{json}{data}{performedBy},
        'POST record: performedBy null');
    $row = row($id);
    is_deeply([@$row{qw(last_service_date last_service_mileage mileage
        version)}], [day(-10), 12000, 12000, 3],
        'back-dated record: last service not moved back, version 3');

    # newer, with less mileage than the vehicle: the vehicle keeps its own
    $r = $ng->req(POST => $p, json => { serviceDate => $TODAY,
        mileage => 11500, description => 'Wipers', cost => 0,
        performedBy => undef }, auth => $OWN);
    is($r->{status}, 201, 'POST record (Customer), less mileage: 201')
        or diag($r->{body});
    is($r->{json}{data}{createdBy}, $SUB, '... createdBy the sub');
    $row = row($id);
    is_deeply([@$row{qw(last_service_date last_service_mileage mileage
        version)}], [$TODAY, 11500, 12000, 4],
        'newer record: its date and mileage, vehicle mileage the max');

    # the same date as the last service: it becomes the last service
    $r = $ng->req(POST => $p, json => { serviceDate => $TODAY,
        mileage => 13000, description => 'Brakes', cost => 99999.99 });
    is($r->{status}, 201, 'POST record on the same date: 201')
        or diag($r->{body});
    $row = row($id);
    is_deeply([@$row{qw(last_service_date last_service_mileage mileage
        version)}], [$TODAY, 13000, 13000, 5],
        'same-date record: the last service, mileage raised, version 5');
    is(records_of($id), 4, 'four records stored');

    # a vehicle created with a last service: an older record leaves it
    my $w = new_vehicle($CID, mileage => 500, lastServiceDate => day(-5),
        lastServiceMileage => 400);
    $r = $ng->req(POST => vpath($w->{vehicleId}, '/service-records'),
        json => { serviceDate => day(-6), mileage => 450,
        description => 'x' });
    is($r->{status}, 201, 'record older than lastServiceDate: 201');
    is_deeply([@{ row($w->{vehicleId}) }{qw(last_service_date last_service_mileage
        mileage version)}], [day(-5), 400, 500, 2],
        'record older than lastServiceDate: only the version moves');
    $r = $ng->req(POST => vpath($w->{vehicleId}, '/service-records'),
        json => { serviceDate => day(-5), mileage => 480,
        description => 'y' });
    is_deeply([@{ row($w->{vehicleId}) }{qw(last_service_date last_service_mileage
        mileage version)}], [day(-5), 480, 500, 3],
        'record on lastServiceDate: its mileage taken');

    # the bounds themselves
    my $bv = new_vehicle($CID);
    for my $c ([{ serviceDate => $TODAY, mileage => 0, description => 'd',
        cost => 0.01, performedBy => 'p' x 100 }, 'lower bounds'],
        [{ serviceDate => '2000-02-29', mileage => 10000000,
        description => 'd' x 1000, cost => 100 }, 'upper bounds'])
    {
        my ($body, $name) = @$c;
        $r = $ng->req(POST => vpath($bv->{vehicleId}, '/service-records'),
            json => $body);
        is($r->{status}, 201, "POST record, $name: 201") or diag($r->{body});
        my %got = map { ($_ => $r->{json}{data}{$_}) } keys %$body;
        is_deeply(\%got, $body, "POST record, $name: as sent");
    }
    is(row($bv->{vehicleId})->{mileage}, 10000000, 'vehicle mileage 10000000');
}


# --- service records: validation, nothing written -------------------------

{
    my $v = new_vehicle($CID, mileage => 100, lastServiceDate => day(-3),
        lastServiceMileage => 50);
    my $id = $v->{vehicleId};
    my $p = vpath($id, '/service-records');
    my %good = (serviceDate => day(-1), mileage => 200,
        description => 'Service', cost => 10, performedBy => 'Me');
    my $snapshot = vrow($id);
    my $total = CT::sql($db, 'SELECT count(*) FROM service_records');

    my @bad = (
        CT::bad_values(serviceDate => [day(1), 'tomorrow'],
            [day(400), 'next year'], ['2024-02-30', '2024-02-30'],
            ['2024-1-5', '2024-1-5'], ['yesterday', 'a word'],
            [20240105, 'a number'], [undef, 'null']),
        CT::bad_values(mileage => [-1, '-1'], [10000001, '10000001'],
            [1.5, 'a fraction'], ['200', 'a string'], [undef, 'null']),
        CT::bad_values(description => ['', 'empty'], ['x' x 1001, 'of 1001'],
            [5, 'a number'], [undef, 'null']),
        CT::bad_values(cost => [1.005, 'with 3 decimals'], [10.001, '10.001'],
            [-1, 'negative'], [-0.01, '-0.01'], ['10.00', 'a string'],
            [undef, 'null']),
        CT::bad_values(performedBy => ['p' x 101, 'of 101'], [7, 'a number']),
        [{ vehicleId => $id }, ['vehicleId'], 'vehicleId (unknown member)'],
        [{ technician => 'x' }, ['technician'], 'an unknown member'],
        [{ serviceDate => day(1), mileage => -1, description => '',
            cost => -1, extra => 1 },
            [qw(serviceDate mileage description cost extra)],
            'every bad member listed'],
    );
    for my $c (@bad) {
        my ($patch, $fields, $name) = @$c;
        is_error($ng->req(POST => $p, json => { %good, %$patch }), 400,
            'Validation failed', $fields, "POST record $name");
    }
    for my $f (qw(serviceDate mileage description)) {
        my %body = %good;
        delete $body{$f};
        is_error($ng->req(POST => $p, json => \%body), 400,
            'Validation failed', [$f], "POST record without $f");
    }
    is_error($ng->req(POST => $p, json => {}), 400, 'Validation failed',
        [qw(serviceDate mileage description)], 'POST record {}');
    my %ct = ('Content-Type' => 'application/json');
    for my $body ('', '{"serviceDate":', '[]', 'null') {
        is_error($ng->req(POST => $p, body => $body, headers => \%ct), 400,
            undef, undef, "POST record body '$body'");
    }
    is(CT::sql($db, 'SELECT count(*) FROM service_records'), $total,
        'bad records: none written');
    is(vrow($id), $snapshot, 'bad records: the vehicle unchanged');

    is_error($ng->req(POST => vpath($MISSING, '/service-records'),
        json => \%good), 404, undef, undef, 'POST record, unknown vehicle');
    is_error($ng->req(POST => vpath('x-y', '/service-records'),
        json => \%good), 400, undef, ['vehicleId'], 'POST record, bad id');
    is_error($ng->req(POST => $p, json => \%good, auth => $OTHER), 404,
        undef, undef, "POST record on another customer's vehicle");
    is(CT::sql($db, 'SELECT count(*) FROM service_records'), $total,
        '404s: none written');
    is(vrow($id), $snapshot, '404s: the vehicle unchanged');
}


# --- service records: the list --------------------------------------------

{
    my $v = new_vehicle($CID);
    my $p = vpath($v->{vehicleId}, '/service-records');
    for my $k (-50, -10, -30, -40, -20) {
        my $r = $ng->req(POST => $p, json => { serviceDate => day($k),
            mileage => 100 - $k, description => "at $k" });
        die "record: $r->{body}" unless $r->{status} == 201;
    }
    my $r = $ng->req(GET => $p);
    is($r->{status}, 200, 'records list: 200') or diag($r->{body});
    my $list = $r->{json}{data}{serviceRecords} // [];
    is_deeply([ map { $_->{description} } @$list ],
        [ map { "at $_" } -10, -20, -30, -40, -50 ],
        'records list: newest serviceDate first');
    is_deeply([ map { $_->{serviceDate} } @$list ],
        [ map { day($_) } -10, -20, -30, -40, -50 ],
        'records list: the dates');
    is_deeply([sort keys %{ $list->[0] // {} }], \@RECORD_KEYS,
        'records list: the record members');
    is_deeply($r->{json}{data}{pagination}, pages(1, 20, 5),
        'records list: pagination');

    $r = $ng->req(GET => "$p?limit=2&page=2");
    is_deeply([ map { $_->{description} }
        @{ $r->{json}{data}{serviceRecords} // [] } ], ['at -30', 'at -40'],
        'records list page 2 of 2 a page');
    is_deeply($r->{json}{data}{pagination}, pages(2, 2, 5),
        'records list page 2: pagination');
    $r = $ng->req(GET => "$p?limit=2&page=3", auth => $OWN);
    is_deeply([ map { $_->{description} }
        @{ $r->{json}{data}{serviceRecords} // [] } ], ['at -50'],
        'records list the last page (Customer)');
    $r = $ng->req(GET => "$p?page=4&limit=2");
    is_deeply($r->{json}{data}{serviceRecords}, [], 'records list: beyond');

    my $e = new_vehicle($CID);
    $r = $ng->req(GET => vpath($e->{vehicleId}, '/service-records'));
    is_deeply($r->{json}{data}{serviceRecords}, [],
        'records list of a vehicle without any: empty');
    is_deeply($r->{json}{data}{pagination}, pages(1, 20, 0),
        'records list empty: pagination');

    for my $bad (qw(page=0 limit=0 limit=101 page=x)) {
        is_error($ng->req(GET => "$p?$bad"), 400, undef, undef,
            "records list ?$bad");
    }
    is_error($ng->req(GET => vpath($MISSING, '/service-records')), 404,
        undef, undef, 'records list of an unknown vehicle');
    is_error($ng->req(GET => $p, auth => $OTHER), 404, undef, undef,
        "records list of another customer's vehicle");
}


# --- a customer's service history -----------------------------------------

{
    my ($cid, $sub) = make_customer();
    my %veh = (A => new_vehicle($cid, make => 'Skoda', model => 'Octavia'),
        B => new_vehicle($cid, make => 'Volvo', model => 'V70',
            year => 2001));
    my @plan = ([A => -5], [B => -15], [A => -25], [B => -35], [B => -1]);
    for my $c (@plan) {
        my ($which, $k) = @$c;
        my $r = $ng->req(POST => vpath($veh{$which}{vehicleId}, '/service-records'),
            json => { serviceDate => day($k), mileage => 1000 - $k,
            description => "$which $k", cost => 12.34 });
        die "record: $r->{body}" unless $r->{status} == 201;
    }
    # another customer's records stay out
    my $o = new_vehicle($CID2);
    $ng->req(POST => vpath($o->{vehicleId}, '/service-records'),
        json => { serviceDate => $TODAY, mileage => 1, description => 'o' });

    my $h = "/api/customers/$cid/service-history";
    my $r = $ng->req(GET => $h);
    is($r->{status}, 200, 'service history: 200') or diag($r->{body});
    my $list = $r->{json}{data}{serviceRecords} // [];
    my @want = ('B -1', 'A -5', 'B -15', 'A -25', 'B -35');
    is_deeply([ map { $_->{description} } @$list ], \@want,
        'service history: both vehicles, newest serviceDate first');
    is_deeply([sort keys %{ $list->[0] // {} }],
        [sort @RECORD_KEYS, qw(make model vin)],
        'service history: the record members plus make, model, vin');
    my @bad = grep {
        my $x = $list->[$_];
        my $veh = $veh{ substr($want[$_], 0, 1) };
        $x->{vehicleId} ne $veh->{vehicleId} || $x->{make} ne $veh->{make}
            || $x->{model} ne $veh->{model} || $x->{vin} ne $veh->{vin}
            || $x->{customerId} ne $cid
    } 0 .. $#$list;
    is_deeply(\@bad, [], 'service history: each with its vehicle');
    is_deeply($r->{json}{data}{pagination}, pages(1, 20, 5),
        'service history: pagination');

    $r = $ng->req(GET => "$h?limit=2&page=2", auth => CT::customer_token($sub));
    is($r->{status}, 200, 'service history as the owner: 200');
    is_deeply([ map { $_->{description} }
        @{ $r->{json}{data}{serviceRecords} // [] } ], [@want[2, 3]],
        'service history page 2 of 2 a page');
    is_deeply($r->{json}{data}{pagination}, pages(2, 2, 5),
        'service history page 2: pagination');
    $r = $ng->req(GET => "$h?limit=2&page=3");
    is_deeply([ map { $_->{description} }
        @{ $r->{json}{data}{serviceRecords} // [] } ], [$want[4]],
        'service history: the last page');

    is_error($ng->req(GET => $h, auth => $OTHER), 404, undef, undef,
        "service history of another customer");
    is_error($ng->req(GET => $h, auth => 'none'), 401, undef, undef,
        'service history without a token');
    is_error($ng->req(GET => "/api/customers/$MISSING/service-history"),
        404, undef, undef, 'service history of an unknown customer');
    is_error($ng->req(GET => '/api/customers/nope/service-history'), 400,
        undef, ['customerId'], 'service history with a bad id');
    for my $bad (qw(page=0 limit=0 limit=101)) {
        is_error($ng->req(GET => "$h?$bad"), 400, undef, undef,
            "service history ?$bad");
    }
    my ($none) = make_customer();
    $r = $ng->req(GET => "/api/customers/$none/service-history");
    is($r->{status}, 200, 'service history without vehicles: 200');
    is_deeply($r->{json}{data}{serviceRecords}, [], '... empty');

    # a deleted vehicle takes its records out of the history
    is($ng->req(DELETE => vpath($veh{B}{vehicleId}))->{status}, 200,
        'DELETE vehicle B: 200');
    $r = $ng->req(GET => $h);
    is_deeply([ map { $_->{description} }
        @{ $r->{json}{data}{serviceRecords} // [] } ], ['A -5', 'A -25'],
        'service history after deleting B: only A');
    is(CT::sql($db, q{SELECT count(*) FROM service_records
        WHERE vehicle_id = :'p1'}, $veh{B}{vehicleId}), 0,
        "B's records deleted with it");
}


done_testing();
