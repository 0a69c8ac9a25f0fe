# Vehicles: a customer's vehicles created, read, listed,
# replaced, patched and deleted through the API with every field's rule
# (the VIN's ISO 3779 check digit against an implementation of our own),
# ETag and If-Match, update-mileage that never goes down, the
# administrators' GET /api/vehicles with each filter against the same
# question asked in SQL, and who may reach which vehicle route. Every
# rejected request is checked to have written nothing.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;


my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db, workers => 2);


my @KEYS = sort qw(vehicleId customerId make model year vin vinCheckDigitValid
    licensePlate color
    mileage lastServiceDate lastServiceMileage serviceIntervalKm
    serviceIntervalMonths insuranceExpiry registrationExpiry warrantyExpiry
    createdAt updatedAt createdBy updatedBy version);

# the body members and their columns
my %COLUMN = (make => 'make', model => 'model', year => 'year',
    vin => 'vin', licensePlate => 'license_plate', color => 'color',
    mileage => 'mileage', lastServiceDate => 'last_service_date',
    lastServiceMileage => 'last_service_mileage',
    serviceIntervalKm => 'service_interval_km',
    serviceIntervalMonths => 'service_interval_months',
    insuranceExpiry => 'insurance_expiry',
    registrationExpiry => 'registration_expiry',
    warrantyExpiry => 'warranty_expiry');
my @NULLABLE = qw(licensePlate color lastServiceDate lastServiceMileage
    insuranceExpiry registrationExpiry warrantyExpiry);

# "today" as the contract has it: the UTC date, from PostgreSQL
my $TODAY = CT::sql($db, q{SELECT (now() AT TIME ZONE 'UTC')::date});
my $YEAR = CT::sql($db,
    q{SELECT extract(year FROM now() AT TIME ZONE 'UTC')::int});

sub day { CT::day($db, @_) }


# --- the ISO 3779 check digit, our own -----------------------------------

my @VIN_CHARS = grep { !/[IOQ]/ } ('0' .. '9', 'A' .. 'Z');
sub vin_check { CT::vin_check(@_) }
sub with_check { CT::with_check(@_) }

sub vin_ok {
    my $c = vin_check($_[0]);
    return defined $c && substr(uc $_[0], 8, 1) eq $c;
}

# a fresh valid VIN: a serial number in positions 11..17
sub new_vin { CT::new_vin('TSMVH7KA0L') }

# a random valid VIN (fixed seed: the same ones every run)
srand(7);

sub random_vin {
    return with_check(join '', map { $VIN_CHARS[rand @VIN_CHARS] } 1 .. 17);
}

# real-world VINs whose check digit is right (checked below)
my @REAL_VINS = qw(1HGCM82633A004352 1M8GDM9AXKP042788 JH4KA7561PC008269
    1GNEK13ZX3R298984 JHMCM56557C404453 1G1JC524417418958
    1N4AL3AP8JC231503);

ok(vin_ok($_), "our check digit: $_ is valid") for @REAL_VINS;
ok(!vin_ok($_), "our check digit: $_ is not")
    for qw(1HGCM82633A004353 1HGCM82643A004352 5YJSA1E14HF000337
    WBA3A5C51CF256651 1HGCM82633A00435 1HGCM8263IA004352);
is(vin_check('11111111111111111'), '1', 'our check digit: 1s give 1');


# --- helpers -------------------------------------------------------------

sub make_customer { CT::make_customer($_[0] // $ng, 'veh') }

sub cpath { "/api/customers/$_[0]/vehicles" }
sub vpath { "/api/vehicles/$_[0]" . ($_[1] // '') }

sub create {
    my ($cid, $body, %o) = @_;
    return $ng->req(POST => cpath($cid), json => $body, %o);
}

# the required members with a fresh VIN, and the given ones
sub good {
    return { make => 'Honda', model => 'Civic', year => 2015,
        vin => new_vin(), @_ };
}

sub new_vehicle {
    my ($cid, @f) = @_;
    my $r = create($cid, good(@f));
    die "vehicle create failed: $r->{body}" unless $r->{status} == 201;
    return $r->{json}{data};
}

# the error envelope: status, success false, message, the fields named
# the stored row as text ('' when there is none), the number of rows
sub vrow { CT::row_of($db, 'vehicles', $_[0]) }

sub vcount { scalar CT::sql($db, 'SELECT count(*) FROM vehicles') }

sub srcount {
    return scalar CT::sql($db, 'SELECT count(*) FROM service_records');
}

sub row {
    my $t = vrow($_[0]);
    return length $t ? JSON::PP->new->decode($t) : undef;
}

# the text of a member in the body: numbers as sent
sub raw { CT::raw_member(@_) }

# the members given equal those in $data (and in the stored row)
sub has_fields {
    my ($data, $want, $name) = @_;
    my %got = map { ($_ => $data->{$_}) } keys %$want;
    is_deeply(\%got, $want, "$name: the fields") or diag(explain($data));
}

sub row_has {
    my ($id, $want, $name) = @_;
    my $row = row($id) // {};
    my %got = map { ($_ => $row->{ $COLUMN{$_} }) } keys %$want;
    is_deeply(\%got, $want, "$name: the stored row") or diag(explain($row));
}

sub pages { CT::pages(@_) }

sub ids_of {
    return [ map { $_->{vehicleId} } @{ ($_[0]{json}{data} // {})->{vehicles}
        // [] } ];
}


my ($CID, $SUB) = make_customer();
my ($CID2, $SUB2) = make_customer();
my $OWN = CT::customer_token($SUB);
my $OTHER = CT::customer_token($SUB2);


# --- create with every field, read it back -------------------------------

my %FULL = (make => 'Honda', model => 'Accord', year => 2003,
    vin => $REAL_VINS[0], licensePlate => 'KA-01-AB-1234',
    color => 'Silver', mileage => 120500, lastServiceDate => day(-100),
    lastServiceMileage => 115000, serviceIntervalKm => 7500,
    serviceIntervalMonths => 6, insuranceExpiry => day(200),
    registrationExpiry => day(-5), warrantyExpiry => '2030-02-28');
my $V;
{
    my $before = vcount();
    my $r = create($CID, \%FULL);
    is($r->{status}, 201, 'POST every field: 201') or diag($r->{body});
    is($r->{json}{success}, $T, 'POST: success');
    is($r->{json}{message}, 'Vehicle created successfully', 'POST: message');
    my $d = $V = $r->{json}{data} // {};
    is_deeply([sort keys %$d], \@KEYS, 'POST: the vehicle members');
    like($d->{vehicleId} // '', $UUID, 'POST: id');
    is($d->{customerId}, $CID, 'POST: customerId');
    has_fields($d, \%FULL, 'POST');
    like($d->{createdAt} // '', $TS, 'POST: createdAt');
    like($d->{updatedAt} // '', $TS, 'POST: updatedAt');
    is($d->{createdBy}, 'admin-user', 'POST: createdBy is the sub');
    is($d->{updatedBy}, 'admin-user', 'POST: updatedBy is the sub');
    is($d->{version}, 1, 'POST: version 1');
    is($r->{headers}{etag}, '"1"', 'POST: ETag "1"');
    for my $m (qw(year mileage lastServiceMileage serviceIntervalKm
        serviceIntervalMonths version))
    {
        like(raw($r, $m) // '', qr/^[0-9]+\z/, "POST: $m a JSON number");
    }
    like(raw($r, 'lastServiceDate') // '', qr/^"\d{4}-\d\d-\d\d"\z/,
        'POST: lastServiceDate a YYYY-MM-DD string');
    is(vcount(), $before + 1, 'POST: one row');
    row_has($d->{vehicleId}, \%FULL, 'POST');
    my $row = row($d->{vehicleId});
    is($row->{customer_id}, $CID, 'POST: customer_id stored');
    is($row->{created_by}, 'admin-user', 'POST: created_by stored');
    is($row->{version}, 1, 'POST: version stored');

    $r = $ng->req(GET => vpath($d->{vehicleId}));
    is($r->{status}, 200, 'GET: 200') or diag($r->{body});
    is($r->{json}{success}, $T, 'GET: success');
    is_deeply($r->{json}{data}, $d, 'GET: the vehicle as created');
    is($r->{headers}{etag}, '"1"', 'GET: ETag "1"');

    is_error($ng->req(GET => vpath($MISSING)), 404, undef, undef,
        'GET an unknown vehicle');
    is_error($ng->req(GET => vpath('not-a-uuid')), 400, undef,
        ['vehicleId'], 'GET with a bad vehicle id');
}

# defaults; make trimmed; a Customer creating its own
{
    my %min = (make => '  Toyota ', model => 'Corolla', year => 2018,
        vin => new_vin());
    my $r = create($CID, \%min);
    is($r->{status}, 201, 'POST the required fields only: 201')
        or diag($r->{body});
    my $d = $r->{json}{data} // {};
    has_fields($d, { make => 'Toyota', model => 'Corolla', year => 2018,
        vin => $min{vin}, mileage => 0, serviceIntervalKm => 10000,
        serviceIntervalMonths => 12, (map { ($_ => undef) } @NULLABLE) },
        'POST defaults');
    ok(!grep({ !exists $d->{$_} } @NULLABLE),
        'POST defaults: the nullable members are there as null');
    row_has($d->{vehicleId}, { make => 'Toyota', mileage => 0,
        serviceIntervalKm => 10000, serviceIntervalMonths => 12,
        (map { ($_ => undef) } @NULLABLE) }, 'POST defaults');

    $r = create($CID, good(), auth => $OWN);
    is($r->{status}, 201, 'Customer POST own vehicle: 201')
        or diag($r->{body});
    is($r->{json}{data}{createdBy}, $SUB, '... createdBy is its sub');
    is(row($r->{json}{data}{vehicleId})->{created_by}, $SUB,
        '... created_by stored');
}

# the bounds themselves are accepted
{
    my %max = (make => 'm' x 50, model => 'o' x 50, year => $YEAR + 1,
        vin => new_vin(), licensePlate => 'p' x 20, color => 'c' x 30,
        mileage => 10000000, lastServiceDate => $TODAY,
        lastServiceMileage => 10000000, serviceIntervalKm => 1000000,
        serviceIntervalMonths => 120);
    my $r = create($CID, \%max);
    is($r->{status}, 201, 'POST the upper bounds: 201') or diag($r->{body});
    has_fields($r->{json}{data} // {}, \%max, 'POST the upper bounds');

    my %min = (make => 'm', model => 'o', year => 1886, vin => new_vin(),
        licensePlate => 'p', color => 'c', mileage => 0,
        lastServiceMileage => 0, serviceIntervalKm => 1,
        serviceIntervalMonths => 1, lastServiceDate => '1900-01-01',
        insuranceExpiry => '1999-12-31', registrationExpiry => '2000-02-29',
        warrantyExpiry => '2099-12-31');
    $r = create($CID, \%min);
    is($r->{status}, 201, 'POST the lower bounds: 201') or diag($r->{body});
    has_fields($r->{json}{data} // {}, \%min, 'POST the lower bounds');
    row_has($r->{json}{data}{vehicleId}, \%min, 'POST the lower bounds');

    # the contract bounds a date only by today: a car of 1886 serviced
    # in its first year
    $r = create($CID, good(year => 1886, lastServiceDate => '1886-12-31',
        insuranceExpiry => '1886-12-31'));
    is($r->{status}, 201, 'POST dates in 1886: 201') or diag($r->{body});
}


# --- validation: every bad input is a 400 naming it, nothing written ------

{
    my @bad = (
        CT::bad_values(make => ['', 'empty'], ['   ', 'blank'],
            ['x' x 51, 'of 51'], [5, 'a number'], [undef, 'null'],
            [['Honda'], 'an array']),
        CT::bad_values(model => ['', 'empty'], ['x' x 51, 'of 51'],
            [7, 'a number'], [undef, 'null']),
        CT::bad_values(year => [1885, '1885'], [$YEAR + 2, 'next year + 1'],
            [0, '0'], [-2015, 'negative'], ['2015', 'a string'],
            [2015.5, 'a fraction'], [undef, 'null'], [$T, 'true']),
        CT::bad_values(vin => [5, 'a number'], [undef, 'null'], ['', 'empty']),
        CT::bad_values(licensePlate => ['', 'empty'], ['x' x 21, 'of 21'],
            [123, 'a number']),
        CT::bad_values(color => ['', 'empty'], ['x' x 31, 'of 31'],
            [1, 'a number']),
        CT::bad_values(mileage => [-1, '-1'], [10000001, '10000001'],
            [1.5, 'a fraction'], ['5', 'a string'], [undef, 'null']),
        CT::bad_values(lastServiceDate => [day(1), 'tomorrow'],
            ['2024-02-30', '2024-02-30'], ['2023-02-29', '2023-02-29'],
            ['2024/01/01', 'with slashes'], ['20240101', 'without dashes'],
            ['2024-01-01T00:00:00Z', 'a timestamp'], ['', 'empty'],
            [20240101, 'a number']),
        CT::bad_values(lastServiceMileage => [-1, '-1'],
            [10000001, '10000001'], [2.5, 'a fraction'], ['100', 'a string']),
        CT::bad_values(serviceIntervalKm => [0, '0'], [1000001, '1000001'],
            [1.5, 'a fraction'], [undef, 'null']),
        CT::bad_values(serviceIntervalMonths => [0, '0'], [121, '121'],
            ['12', 'a string'], [undef, 'null']),
        (map {
            ([{ $_ => '2025-13-01' }, [$_], "$_ month 13"],
             [{ $_ => '2025-04-31' }, [$_], "$_ April 31"],
             [{ $_ => 'tomorrow' }, [$_], "$_ a word"],
             [{ $_ => 20250101 }, [$_], "$_ a number"])
        } qw(insuranceExpiry registrationExpiry warrantyExpiry)),
        [{ nickname => 'x' }, ['nickname'], 'an unknown member'],
        [{ customerId => $CID2 }, ['customerId'],
            'customerId in the body (unknown member)'],
        [{ make => '', year => 1885, mileage => -1, color => '',
            serviceIntervalMonths => 0, extra => 1 },
            [qw(make year mileage color serviceIntervalMonths extra)],
            'every bad member listed'],
    );
    my $target = new_vehicle($CID, mileage => 0);
    my $before = vcount();
    my $snapshot = vrow($target->{vehicleId});
    for my $c (@bad) {
        my ($patch, $fields, $name) = @$c;
        my %body = (%{ good() }, %$patch);
        is_error(create($CID, \%body), 400, 'Validation failed', $fields,
            "POST $name");
        is_error($ng->req(PUT => vpath($target->{vehicleId}), json => \%body), 400,
            'Validation failed', $fields, "PUT $name");
        is_error($ng->req(PATCH => vpath($target->{vehicleId}), json => $patch),
            400, 'Validation failed', $fields, "PATCH $name");
    }
    for my $f (qw(make model year vin)) {
        my $body = good();
        delete $body->{$f};
        is_error(create($CID, $body), 400, 'Validation failed', [$f],
            "POST without $f");
        $body->{vin} = $target->{vin} if $f ne 'vin';
        is_error($ng->req(PUT => vpath($target->{vehicleId}), json => $body), 400,
            'Validation failed', [$f], "PUT without $f");
    }
    is_error(create($CID, {}), 400, 'Validation failed',
        [qw(make model year vin)], 'POST {}: the four required members');
    is_error($ng->req(PUT => vpath($target->{vehicleId}), json => {}), 400,
        'Validation failed', [qw(make model year vin)], 'PUT {}');
    is_error($ng->req(PATCH => vpath($target->{vehicleId}), json => {}), 400,
        'Validation failed', undef, 'PATCH {}');

    my %ct = ('Content-Type' => 'application/json');
    for my $c (['', 'an empty body'], ['{"make":', 'malformed JSON'],
        ['not json', 'not JSON'], ['[]', 'an array'], ['null', 'null'],
        ['"Honda"', 'a string'], ['{"make":"Honda"} x', 'trailing bytes'])
    {
        my ($body, $name) = @$c;
        is_error($ng->req(POST => cpath($CID), body => $body, headers => \%ct),
            400, undef, undef, "POST $name");
        is_error($ng->req(PUT => vpath($target->{vehicleId}), body => $body,
            headers => \%ct), 400, undef, undef, "PUT $name");
        is_error($ng->req(PATCH => vpath($target->{vehicleId}), body => $body,
            headers => \%ct), 400, undef, undef, "PATCH $name");
    }
    is(vcount(), $before, 'validation: no vehicle created');
    is(vrow($target->{vehicleId}), $snapshot, 'validation: the vehicle unchanged');

    is_error(create($MISSING, good()), 404, undef, undef,
        'POST for an unknown customer');
    is_error(create('not-a-uuid', good()), 400, undef, ['customerId'],
        'POST with a bad customer id');
    is(vcount(), $before, 'unknown/bad customer: nothing written');
}


# --- year bounds ----------------------------------------------------------

{
    my $before = vcount();
    for my $y (1885, $YEAR + 2) {
        is_error(create($CID, good(year => $y)), 400, 'Validation failed',
            ['year'], "year $y");
    }
    is(vcount(), $before, 'bad years: nothing written');
    for my $y (1886, $YEAR, $YEAR + 1) {
        my $r = create($CID, good(year => $y));
        is($r->{status}, 201, "year $y: 201") or diag($r->{body});
        is($r->{json}{data}{year}, $y, "year $y: stored");
    }
}


# --- the VIN --------------------------------------------------------------

{
    # real-world VINs and random ones with a right check digit
    for my $vin (@REAL_VINS[1 .. $#REAL_VINS]) {
        my $r = create($CID, good(vin => $vin));
        is($r->{status}, 201, "VIN $vin: 201") or diag($r->{body});
        is($r->{json}{data}{vin}, $vin, "VIN $vin: as sent");
    }
    my @random = map { random_vin() } 1 .. 20;
    my @fail = grep {
        my $r = create($CID, good(vin => $_));
        $r->{status} != 201 || ($r->{json}{data}{vin} // '') ne $_
    } @random;
    is_deeply(\@fail, [], '20 random VINs with a right check digit: 201');

    # lower case accepted, stored upper
    my $vin = new_vin();
    my $r = create($CID, good(vin => lc $vin));
    is($r->{status}, 201, 'lower-case VIN: 201') or diag($r->{body});
    is($r->{json}{data}{vin}, $vin, 'lower-case VIN: answered upper case');
    is(row($r->{json}{data}{vehicleId})->{vin}, $vin, 'lower-case VIN: stored upper');
    my $mixed = 'jH4kA7561Pc008269';
    is(create($CID, good(vin => lc $REAL_VINS[2]))->{status}, 409,
        'lower case of a stored VIN: 409');
    is(create($CID, good(vin => $mixed))->{status}, 409,
        'mixed case of a stored VIN: 409');

    # every single-character change that breaks the check digit of a
    # North American VIN (where it is mandatory; in position 1 only the
    # changes that keep the WMI North American or Chinese)
    my $base = CT::new_vin('1HGCM82600');
    my $before = vcount();
    my ($rejected, @still_valid) = (0);
    for my $pos (0 .. 16) {
        my @wrong;
        my $tried = 0;
        for my $ch (@VIN_CHARS) {
            next if $ch eq substr($base, $pos, 1);
            next if $pos == 0 && $ch !~ /^[1-5L]\z/;
            my $m = $base;
            substr($m, $pos, 1, $ch);
            if (vin_ok($m)) {
                push @still_valid, $m;
                next;
            }
            $tried++;
            my $r = create($CID, good(vin => $m));
            push @wrong, "$m: $r->{status} @{ field_set($r) }"
                unless $r->{status} == 400 && $r->{json}
                && !$r->{json}{success}
                && join(',', @{ field_set($r) }) eq 'vin';
        }
        $rejected += $tried;
        ok(!@wrong, "VIN $base, position " . ($pos + 1) . ": all $tried"
            . ' changes that break the check digit are 400 vin')
            or diag(join "\n", @wrong);
    }
    cmp_ok($rejected, '>=', 400, "$rejected changed VINs tried");
    is(vcount(), $before, 'changed VINs: nothing written');
    # a change that keeps the check digit right is a valid VIN
    for my $m (@still_valid[0 .. 3]) {
        is(create($CID, good(vin => $m))->{status}, 201,
            "VIN $m (the check digit still right): 201");
    }

    # the check digit where it is mandatory and where it is not: real
    # European VINs (VW, BMW, Volvo, Fiat, Peugeot, Mercedes) carry any
    # character in position 9 (a Z, or a digit that is no check digit)
    $before = vcount();
    my @eu = qw(WVWZZZ1KZ6W612345 WBA3A5C51CF256651 YV1LW5548W2345678
        ZFA22300005556777 VF32A5FS0AW123456 WDD2040081A123456
        SALGA2EF8EA123456 MA3FB31S2B0123456);
    ok(!vin_ok($_), "European VIN $_: position 9 is not its check digit")
        for @eu[0, 1];
    for my $vin (@eu) {
        my $want = vin_ok($vin) ? $T : $F;
        my $r = create($CID, good(vin => $vin));
        is($r->{status}, 201, "VIN $vin: 201") or diag($r->{body});
        is($r->{json}{data}{vin}, $vin, "VIN $vin: as sent");
        is($r->{json}{data}{vinCheckDigitValid}, $want,
            "VIN $vin: vinCheckDigitValid " . ($want ? 'true' : 'false'));
        my $id = $r->{json}{data}{vehicleId} // $MISSING;
        is($ng->req(GET => vpath($id))->{json}{data}{vinCheckDigitValid},
            $want, "VIN $vin: GET says the same");
        is(row($id)->{vin}, $vin, "VIN $vin: stored");
    }
    is(vcount(), $before + @eu, 'European VINs: all stored');
    # lower case and a European VIN's own right check digit
    my $ok_eu = CT::new_vin('WAUZZZ8K9B');
    my $r2 = create($CID, good(vin => lc $ok_eu));
    is($r2->{json}{data}{vin}, $ok_eu, "VIN $ok_eu in lower case: upper");
    is($r2->{json}{data}{vinCheckDigitValid}, $T,
        "VIN $ok_eu: vinCheckDigitValid true");
    # North America (1-5) and China (L) with a wrong check digit: 400
    $before = vcount();
    for my $vin (qw(1HGCM82643A004352 1HGCM82633A004353 5YJSA1E14HF000337
        2T1BR32E54C123456 LSVAM4180C2184847 lsvam4180c2184847))
    {
        ok(!vin_ok($vin), "$vin: a wrong check digit");
        is_error(create($CID, good(vin => $vin)), 400, 'Validation failed',
            ['vin'], "VIN $vin (check digit mandatory)");
    }
    my $cn = with_check('LSVAM4187C2184847');
    my $r3 = create($CID, good(vin => $cn));
    is($r3->{status}, 201, "Chinese VIN $cn with its check digit: 201");
    is($r3->{json}{data}{vinCheckDigitValid}, $T,
        "VIN $cn: vinCheckDigitValid true");
    is(vcount(), $before + 1, 'wrong check digits: nothing written');
    # PUT and PATCH follow the same rule
    {
        my $w = new_vehicle($CID);
        is_error($ng->req(PATCH => vpath($w->{vehicleId}),
            json => { vin => '1HGCM82643A004352' }), 400,
            'Validation failed', ['vin'], 'PATCH a wrong North American VIN');
        my $p = $ng->req(PATCH => vpath($w->{vehicleId}),
            json => { vin => 'WVWZZZ3CZWE689725' });
        is($p->{status}, 200, 'PATCH a European VIN: 200')
            or diag($p->{body});
        is($p->{json}{data}{vinCheckDigitValid}, $F,
            'PATCH a European VIN: vinCheckDigitValid false');
    }
    # the SQL function and our own check agree on random VINs
    my @sample = ((map { random_vin() } 1 .. 30),
        map { my $v = random_vin(); substr($v, 8, 1,
            substr($v, 8, 1) eq '0' ? '1' : '0'); $v } 1 .. 30);
    my @disagree = grep {
        (CT::sql($db, q{SELECT vin_check_digit_valid(:'p1')}, $_) eq 't')
            != (vin_ok($_) ? 1 : 0)
    } @sample;
    is_deeply(\@disagree, [], 'vin_check_digit_valid() as our own check');

    # I, O and Q are never VIN characters; 16 and 18 characters
    $before = vcount();
    my $v = new_vin();
    for my $c ([0, 'I'], [3, 'O'], [10, 'Q'], [16, 'I'], [5, 'o'],
        [12, 'q'], [1, 'i'])
    {
        my ($pos, $ch) = @$c;
        my $m = $v;
        substr($m, $pos, 1, $ch);
        is_error(create($CID, good(vin => $m)), 400, 'Validation failed',
            ['vin'], "VIN with $ch at position " . ($pos + 1));
    }
    # an I/O/Q where the check digit would come out right if it were
    # read as 1/0/8 or 9
    for my $c (['I', '1'], ['O', '0'], ['Q', '8']) {
        my ($bad, $as) = @$c;
        my $m = with_check('1HGCM826' . '0' . "3A00435$as");
        substr($m, 16, 1, $bad);
        is_error(create($CID, good(vin => $m)), 400, 'Validation failed',
            ['vin'], "VIN $m ($bad read as $as would pass)");
    }
    is_error(create($CID, good(vin => substr($v, 0, 16))), 400,
        'Validation failed', ['vin'], 'VIN of 16 characters');
    is_error(create($CID, good(vin => "${v}1")), 400, 'Validation failed',
        ['vin'], 'VIN of 18 characters');
    is_error(create($CID, good(vin => " $v")), 400, 'Validation failed',
        ['vin'], 'VIN with a leading space (18 characters)');
    is_error(create($CID, good(vin => 'ABCDEFGH-JKLMNPRS')), 400,
        'Validation failed', ['vin'], 'VIN with a dash');
    is(vcount(), $before, 'bad VINs: nothing written');

    # duplicates: 409 on POST, PUT and PATCH, nothing written
    is_error(create($CID2, good(vin => $REAL_VINS[0])), 409, undef, ['vin'],
        'POST with a VIN another vehicle has');
    is(vcount(), $before, 'duplicate VIN on POST: nothing written');
    my $w = new_vehicle($CID2);
    my $snapshot = vrow($w->{vehicleId});
    is_error($ng->req(PATCH => vpath($w->{vehicleId}),
        json => { vin => $REAL_VINS[0] }), 409, undef, ['vin'],
        "PATCH to another vehicle's VIN");
    is_error($ng->req(PATCH => vpath($w->{vehicleId}),
        json => { vin => lc $REAL_VINS[0] }), 409, undef, ['vin'],
        "PATCH to another vehicle's VIN in lower case");
    is_error($ng->req(PUT => vpath($w->{vehicleId}), json => { make => 'X',
        model => 'Y', year => 2000, vin => $REAL_VINS[0] }), 409, undef,
        ['vin'], "PUT with another vehicle's VIN");
    is(vrow($w->{vehicleId}), $snapshot, 'duplicate VIN on PUT/PATCH: unchanged');
    $r = $ng->req(PATCH => vpath($w->{vehicleId}), json => { vin => $w->{vin},
        color => 'Blue' });
    is($r->{status}, 200, 'PATCH with its own VIN: 200') or diag($r->{body});
}


# --- PUT and PATCH, ETag and If-Match -------------------------------------

{
    my $id = $V->{vehicleId};
    my %new = (make => 'Mazda', model => 'MX-5', year => 1990,
        vin => $REAL_VINS[0], licensePlate => 'NEW-1', color => 'Red',
        mileage => 130000, lastServiceDate => day(-1),
        lastServiceMileage => 129000, serviceIntervalKm => 15000,
        serviceIntervalMonths => 24, insuranceExpiry => day(1),
        registrationExpiry => day(2), warrantyExpiry => day(3));
    my $r = $ng->req(PUT => vpath($id), json => \%new,
        headers => { 'If-Match' => '"1"' });
    is($r->{status}, 200, 'PUT with If-Match "1": 200') or diag($r->{body});
    my $d = $r->{json}{data} // {};
    is_deeply([sort keys %$d], \@KEYS, 'PUT: the vehicle members');
    has_fields($d, \%new, 'PUT');
    is($d->{vehicleId}, $id, 'PUT: the same id');
    is($d->{customerId}, $CID, 'PUT: the same customer');
    is($d->{createdAt}, $V->{createdAt}, 'PUT: createdAt kept');
    like($d->{updatedAt} // '', $TS, 'PUT: updatedAt');
    ok(($d->{updatedAt} // '') ge $V->{updatedAt}, 'PUT: updatedAt moved');
    is($d->{version}, 2, 'PUT: version 2');
    is($r->{headers}{etag}, '"2"', 'PUT: ETag "2"');
    row_has($id, \%new, 'PUT');
    is(row($id)->{version}, 2, 'PUT: version 2 stored');

    # a PUT resets what it leaves out
    my %req = (make => 'Mazda', model => 'MX-5', year => 1991,
        vin => $REAL_VINS[0], mileage => 130000);
    $r = $ng->req(PUT => vpath($id), json => \%req);
    is($r->{status}, 200, 'PUT without If-Match: 200') or diag($r->{body});
    my %reset = (%req, serviceIntervalKm => 10000,
        serviceIntervalMonths => 12, map { ($_ => undef) } @NULLABLE);
    has_fields($r->{json}{data} // {}, \%reset,
        'PUT of the required members and mileage: the rest reset');
    row_has($id, \%reset, 'PUT reset');
    is($r->{json}{data}{version}, 3, 'PUT: version 3');

    # a PUT without mileage keeps it: an odometer never goes back
    delete $req{mileage};
    $r = $ng->req(PUT => vpath($id), json => \%req);
    is($r->{status}, 200, 'PUT without mileage: 200') or diag($r->{body});
    is($r->{json}{data}{mileage}, 130000, 'PUT without mileage: kept');
    is(row($id)->{mileage}, 130000, 'PUT without mileage: kept in the row');
    my $snapshot = vrow($id);
    is_error($ng->req(PUT => vpath($id), json => { %req, mileage => 129999 }),
        422, undef, ['mileage'], 'PUT with a lower mileage');
    is(vrow($id), $snapshot, 'PUT with a lower mileage: nothing written');

    # If-Match: the version before and the one after the stored one
    my $ver = row($id)->{version};
    for my $m (qw(PUT PATCH)) {
        my $body = $m eq 'PUT' ? { %req, mileage => 140000 }
            : { color => 'Green' };
        for my $stale ($ver - 1, $ver + 1) {
            $snapshot = vrow($id);
            is_error($ng->req($m => vpath($id), json => $body,
                headers => { 'If-Match' => qq{"$stale"} }), 412, undef,
                undef, qq{$m with If-Match "$stale" (stored: $ver)});
            is(vrow($id), $snapshot,
                qq{$m with If-Match "$stale": nothing written});
        }
    }

    # PATCH: only the members given
    $ver = row($id)->{version};
    $r = $ng->req(PATCH => vpath($id), json => { color => 'Green',
        licensePlate => 'P-1', insuranceExpiry => day(10) },
        headers => { 'If-Match' => qq{"$ver"} });
    is($r->{status}, 200, qq{PATCH with If-Match "$ver": 200})
        or diag($r->{body});
    my %now = (%reset, color => 'Green', licensePlate => 'P-1',
        insuranceExpiry => day(10));
    has_fields($r->{json}{data} // {}, \%now, 'PATCH three members');
    is($r->{json}{data}{version}, $ver + 1, 'PATCH: version + 1');
    is($r->{headers}{etag}, '"' . ($ver + 1) . '"', 'PATCH: ETag');
    row_has($id, \%now, 'PATCH');

    $ver = row($id)->{version};
    my %all = (licensePlate => 'ALL-1', color => 'Black',
        lastServiceDate => day(-3), lastServiceMileage => 100,
        insuranceExpiry => day(100), registrationExpiry => day(200),
        warrantyExpiry => day(300), serviceIntervalKm => 5000,
        serviceIntervalMonths => 3, mileage => row($id)->{mileage} + 1,
        make => 'Mazda2', model => 'MX-6', year => 1992);
    $r = $ng->req(PATCH => vpath($id), json => \%all);
    is($r->{status}, 200, 'PATCH of every member but vin: 200')
        or diag($r->{body});
    %now = (%now, %all);
    has_fields($r->{json}{data} // {}, \%now, 'PATCH of every member');
    row_has($id, \%now, 'PATCH of every member');
    is($r->{json}{data}{version}, $ver + 1, 'PATCH of every member: + 1');

    # null clears every nullable member, leaves the rest
    %now = (%{ $ng->req(GET => vpath($id))->{json}{data} },
        map { ($_ => undef) } @NULLABLE);
    delete @now{qw(version updatedAt)};
    $r = $ng->req(PATCH => vpath($id),
        json => { map { ($_ => undef) } @NULLABLE });
    is($r->{status}, 200, 'PATCH null of every nullable member: 200')
        or diag($r->{body});
    has_fields($r->{json}{data} // {}, \%now, 'PATCH nulls');
    row_has($id, { map { ($_ => $now{$_}) } keys %COLUMN }, 'PATCH nulls');
    is($r->{json}{data}{version}, $ver + 2, 'PATCH nulls: version + 1');

    # PATCH null on a member that is not nullable, lower mileage
    $snapshot = vrow($id);
    for my $f (qw(make model year vin mileage serviceIntervalKm
        serviceIntervalMonths))
    {
        is_error($ng->req(PATCH => vpath($id), json => { $f => undef }), 400,
            'Validation failed', [$f], "PATCH $f null");
    }
    my $lower = $ng->req(PATCH => vpath($id),
        json => { mileage => row($id)->{mileage} - 1 });
    is_error($lower, 422, undef, ['mileage'], 'PATCH a lower mileage');
    is(vrow($id), $snapshot, 'PATCH rejected: nothing written');

    $r = $ng->req(PATCH => vpath($id), json => { vin => lc $REAL_VINS[0] });
    is($r->{status}, 200, 'PATCH own VIN in lower case: 200');
    is(row($id)->{vin}, $REAL_VINS[0], '... stored upper case');

    my $vin = new_vin();
    $r = $ng->req(PATCH => vpath($id), json => { vin => lc $vin },
        auth => $OWN);
    is($r->{status}, 200, 'Customer PATCH own vehicle: 200')
        or diag($r->{body});
    is($r->{json}{data}{vin}, $vin, '... a new VIN, upper case');
    is($r->{json}{data}{updatedBy}, $SUB, '... updatedBy is its sub');
    is($r->{json}{data}{createdBy}, 'admin-user', '... createdBy kept');
    is(row($id)->{updated_by}, $SUB, '... updated_by stored');

    $r = $ng->req(GET => vpath($id));
    is($r->{headers}{etag}, '"' . row($id)->{version} . '"',
        'GET: ETag is the stored version');

    for my $m (qw(PUT PATCH)) {
        is_error($ng->req($m => vpath($MISSING), json => { %req,
            mileage => 1 }), 404, undef, undef, "$m an unknown vehicle");
        is_error($ng->req($m => vpath('nope'), json => { %req,
            mileage => 1 }), 400, undef, ['vehicleId'], "$m a bad id");
    }
}


# --- update-mileage -------------------------------------------------------

{
    my $v = new_vehicle($CID, mileage => 5000);
    my $id = $v->{vehicleId};
    my $p = vpath($id, '/update-mileage');
    my $snapshot = vrow($id);

    my $r = $ng->req(POST => $p, json => { mileage => 4999 });
    is_error($r, 422, undef, ['mileage'], 'update-mileage lower');
    # the words are the error's (or the envelope's) message
    ok(grep({ ($_ // '') eq 'Mileage cannot decrease' }
        ($r->{json} // {})->{message},
        map { $_->{message} } @{ ($r->{json} // {})->{errors} // [] }),
        'update-mileage lower: "Mileage cannot decrease"')
        or diag($r->{body});
    is_error($ng->req(POST => $p, json => { mileage => 0 }), 422, undef,
        ['mileage'], 'update-mileage to 0');
    is(vrow($id), $snapshot, 'update-mileage lower: nothing written');

    $r = $ng->req(POST => $p, json => { mileage => 5000 });
    is($r->{status}, 200, 'update-mileage equal: 200') or diag($r->{body});
    is($r->{json}{success}, $T, 'update-mileage equal: success');
    is_deeply([sort keys %{ $r->{json}{data} // {} }], \@KEYS,
        'update-mileage: the vehicle');
    is($r->{json}{data}{mileage}, 5000, 'update-mileage equal: 5000');
    is(row($id)->{mileage}, 5000, 'update-mileage equal: stored 5000');

    $r = $ng->req(POST => $p, json => { mileage => 7250 }, auth => $OWN);
    is($r->{status}, 200, 'update-mileage higher (Customer): 200')
        or diag($r->{body});
    is($r->{json}{data}{mileage}, 7250, 'update-mileage higher: 7250');
    my $row = row($id);
    is($row->{mileage}, 7250, 'update-mileage higher: stored');
    is($r->{headers}{etag}, qq{"$row->{version}"},
        'update-mileage: ETag is the stored version');
    is($r->{json}{data}{version}, $row->{version},
        'update-mileage: version is the stored one');
    is($row->{updated_by}, $SUB, 'update-mileage: updated_by');
    $r = $ng->req(POST => $p, json => { mileage => 10000000 });
    is($r->{status}, 200, 'update-mileage 10000000: 200');

    $snapshot = vrow($id);
    my %ct = ('Content-Type' => 'application/json');
    for my $c ([{}, ['mileage'], 'no mileage'],
        CT::bad_values(mileage => [-1, '-1'], [10000001, '10000001'],
            [10000000.5, 'a fraction'], ['10000000', 'a string'],
            [undef, 'null']),
        [{ mileage => 10000000, note => 'x' }, ['note'],
            'an unknown member'])
    {
        my ($body, $fields, $name) = @$c;
        is_error($ng->req(POST => $p, json => $body), 400,
            'Validation failed', $fields, "update-mileage $name");
    }
    for my $body ('', '{"mileage":', '[10]', '10') {
        is_error($ng->req(POST => $p, body => $body, headers => \%ct), 400,
            undef, undef, "update-mileage body '$body'");
    }
    is(vrow($id), $snapshot, 'update-mileage bad bodies: nothing written');
    is_error($ng->req(POST => vpath($MISSING, '/update-mileage'),
        json => { mileage => 1 }), 404, undef, undef,
        'update-mileage of an unknown vehicle');
    is_error($ng->req(POST => vpath('x', '/update-mileage'),
        json => { mileage => 1 }), 400, undef, ['vehicleId'],
        'update-mileage with a bad id');
}


# --- a customer's list ----------------------------------------------------

{
    my ($cid) = make_customer();
    my @ids = map { new_vehicle($cid, model => "M$_")->{vehicleId} } 1 .. 5;
    my $want = [ CT::sql($db, q{SELECT id FROM vehicles
        WHERE customer_id = :'p1' ORDER BY created_at DESC, id DESC}, $cid) ];
    is_deeply($want, [reverse @ids], 'fixture: five, created in order');

    my $r = $ng->req(GET => cpath($cid));
    is($r->{status}, 200, 'list: 200') or diag($r->{body});
    is_deeply(ids_of($r), $want, 'list: newest first');
    is_deeply($r->{json}{data}{pagination}, pages(1, 20, 5),
        'list: pagination');
    is_deeply([sort keys %{ $r->{json}{data}{vehicles}[0] // {} }], \@KEYS,
        'list: the vehicle members');
    is_deeply($r->{json}{data}{vehicles}[0],
        $ng->req(GET => vpath($ids[-1]))->{json}{data},
        'list: the same vehicle as GET');

    $r = $ng->req(GET => cpath($cid) . '?limit=2&page=2');
    is_deeply(ids_of($r), [@$want[2, 3]], 'list: page 2 of 2 a page');
    is_deeply($r->{json}{data}{pagination}, pages(2, 2, 5),
        'list: page 2 pagination');
    $r = $ng->req(GET => cpath($cid) . '?limit=2&page=3');
    is_deeply(ids_of($r), [$want->[4]], 'list: the last page');
    $r = $ng->req(GET => cpath($cid) . '?page=4&limit=2');
    is_deeply(ids_of($r), [], 'list: beyond the last page empty');
    $r = $ng->req(GET => cpath($cid) . '?limit=100');
    is($r->{status}, 200, 'list: limit=100 200');

    my ($empty) = make_customer();
    $r = $ng->req(GET => cpath($empty));
    is($r->{status}, 200, 'list of a customer without vehicles: 200');
    is_deeply(ids_of($r), [], '... empty');

    for my $bad (qw(page=0 page=-1 page=x limit=0 limit=101 limit=x
        limit=1.5))
    {
        is_error($ng->req(GET => cpath($cid) . "?$bad"), 400, undef, undef,
            "list ?$bad");
    }
    is_error($ng->req(GET => cpath($MISSING)), 404, undef, undef,
        'list of an unknown customer');
    is_error($ng->req(GET => cpath('nope')), 400, undef, ['customerId'],
        'list with a bad customer id');
}


# --- DELETE ---------------------------------------------------------------

{
    my $v = new_vehicle($CID, mileage => 10);
    my $id = $v->{vehicleId};
    my $r = $ng->req(POST => vpath($id, '/service-records'),
        json => { serviceDate => $TODAY, mileage => 20,
        description => 'Oil' });
    is($r->{status}, 201, 'fixture: a service record') or diag($r->{body});
    my $doc = CT::sql($db, q{INSERT INTO documents (customer_id, vehicle_id,
        type, title, filename, content_type, size, sha256) VALUES
        (:'p1', :'p2', 'insurance', 'Policy', 'policy.pdf',
        'application/pdf', 0, repeat('0', 64)) RETURNING id}, $CID, $id);

    my $before = vcount();
    CT::is_deleted($ng->req(DELETE => vpath($id)), vehicleId => $id,
        'DELETE');
    is(vrow($id), '', 'DELETE: the row is gone');
    is(vcount(), $before - 1, 'DELETE: one row fewer');
    is(CT::sql($db, q{SELECT count(*) FROM service_records
        WHERE vehicle_id = :'p1'}, $id), 0,
        'DELETE: its service records went with it');
    is(CT::sql($db, q{SELECT coalesce(vehicle_id::text, 'null')
        FROM documents WHERE id = :'p1'}, $doc), 'null',
        'DELETE: its document stays, vehicleId null');

    is_error($ng->req(GET => vpath($id)), 404, undef, undef,
        'GET after DELETE');
    is_error($ng->req(DELETE => vpath($id)), 404, undef, undef,
        'DELETE again');
    is_error($ng->req(DELETE => vpath($MISSING)), 404, undef, undef,
        'DELETE an unknown vehicle');
    is_error($ng->req(DELETE => vpath('zz')), 400, undef, ['vehicleId'],
        'DELETE a bad id');
    is(vcount(), $before - 1, 'DELETE 404/400: nothing else removed');
}


# --- who may reach which route --------------------------------------------

{
    my ($cid, $sub) = make_customer();
    my $own = CT::customer_token($sub);
    my $mv = new_vehicle($cid, mileage => 100);
    my $id = $mv->{vehicleId};
    my $n = 0;
    my $mileage = sub { row($id)->{mileage} };

    my @routes = (
        ['GET customer vehicles', GET => cpath($cid), undef, 200],
        ['POST customer vehicles', POST => cpath($cid), sub { good() }, 201],
        ['GET vehicle', GET => vpath($id), undef, 200],
        ['PUT vehicle', PUT => vpath($id), sub { { make => 'Kia',
            model => 'Rio' . ++$n, year => 2016, vin => $mv->{vin},
            mileage => $mileage->() } }, 200],
        ['PATCH vehicle', PATCH => vpath($id),
            sub { { color => 'C' . ++$n } }, 200],
        ['update-mileage', POST => vpath($id, '/update-mileage'),
            sub { { mileage => $mileage->() + 1 } }, 200],
        ['service-status', GET => vpath($id, '/service-status'), undef,
            200],
        ['GET service-records', GET => vpath($id, '/service-records'),
            undef, 200],
        ['POST service-records', POST => vpath($id, '/service-records'),
            sub { { serviceDate => $TODAY, mileage => $mileage->(),
                description => 'Check ' . ++$n } }, 201],
        ['service-history', GET => "/api/customers/$cid/service-history",
            undef, 200],
    );
    my $state = sub {
        return scalar CT::sql($db, q{SELECT md5(coalesce((SELECT
            string_agg(row_to_json(v)::text, ',' ORDER BY id)
            FROM vehicles v), '') || coalesce((SELECT
            string_agg(row_to_json(s)::text, ',' ORDER BY id)
            FROM service_records s), ''))});
    };

    for my $rt (@routes) {
        my ($name, $method, $path, $body, $ok) = @$rt;
        for my $who (['owner', $own, $ok], ['another customer', $OTHER, 404],
            ['admin', undef, $ok], ['no token', 'none', 401])
        {
            my ($role, $auth, $want) = @$who;
            my $before = $state->();
            my $r = $ng->req($method => $path,
                $body ? (json => $body->()) : (),
                defined $auth ? (auth => $auth) : ());
            is($r->{status}, $want, "$name as $role: $want")
                or diag($r->{body});
            ok($r->{json} && ref $r->{json} eq 'HASH'
                && ($r->{json}{success} ? 1 : 0) == ($want < 300 ? 1 : 0),
                "$name as $role: the envelope");
            is($state->(), $before, "$name as $role: nothing written")
                if $want >= 400;
        }
    }

    # DELETE: a vehicle each for those allowed
    for my $who (['another customer', $OTHER, 404], ['no token', 'none', 401],
        ['owner', $own, 200], ['admin', undef, 200])
    {
        my ($role, $auth, $want) = @$who;
        my $v = new_vehicle($cid);
        my $before = vcount();
        my $r = $ng->req(DELETE => vpath($v->{vehicleId}),
            defined $auth ? (auth => $auth) : ());
        is($r->{status}, $want, "DELETE vehicle as $role: $want")
            or diag($r->{body});
        is(vcount(), $want == 200 ? $before - 1 : $before,
            "DELETE vehicle as $role: " . ($want == 200 ? 'removed'
            : 'nothing removed'));
    }

    # a Customer on a vehicle that does not exist, and without a record
    is($ng->req(GET => vpath($MISSING), auth => $own)->{status}, 404,
        'Customer GET an unknown vehicle: 404');
    is($ng->req(GET => vpath($id), auth => CT::customer_token("nobody-$$"))
        ->{status}, 404, 'Customer without a record GET a vehicle: 404');
    is($ng->req(GET => '/api/vehicles', auth => $own)->{status}, 403,
        'Customer GET /api/vehicles: 403');
    is($ng->req(GET => '/api/vehicles', auth => 'none')->{status}, 401,
        'anonymous GET /api/vehicles: 401');
}


# --- GET /api/vehicles: the filters against SQL over a fixture ------------
# A database of its own, so the fixture is every vehicle there is.

{
    my $ldb = CT::db_create();
    my $lng = CT::nginx_start(db => $ldb);
    my $ld = sub {
        return scalar CT::sql($ldb, q{SELECT ((now() AT TIME ZONE 'UTC')
            ::date + :'p1'::int)::text}, $_[0]);
    };
    my @c = map { (make_customer($lng))[0] } 1 .. 3;
    my @fixture = (
        [0, make => 'Honda', model => 'Civic', year => 2015,
            mileage => 5000],
        [0, make => 'HONDA', model => 'civic', year => 2005,
            mileage => 30000, lastServiceMileage => 20000,
            lastServiceDate => $ld->(-30)],
        [1, make => 'honda', model => 'Accord', year => 1990,
            mileage => 40000, lastServiceMileage => 20000,
            lastServiceDate => $ld->(-10)],
        [1, make => 'Hondas', model => 'Civic', year => 2020,
            insuranceExpiry => $ld->(0)],
        [2, make => 'Toyota', model => 'Corolla', year => $YEAR + 1,
            insuranceExpiry => $ld->(30)],
        [2, make => 'Toyota', model => 'CIVIC', year => 1886,
            insuranceExpiry => $ld->(31)],
        [0, make => 'Ford', model => 'Focus', year => 2010,
            insuranceExpiry => $ld->(-1), lastServiceDate => $ld->(-400)],
        [1, make => 'Ford', model => 'Fiesta', year => 2011,
            insuranceExpiry => $ld->(365), lastServiceDate => $ld->(-366)],
        [2, make => 'Kia', model => 'Rio', year => 2016,
            insuranceExpiry => $ld->(366)],
        [0, make => 'Kia', model => 'Ceed', year => 2005,
            insuranceExpiry => $ld->(7), mileage => 9999],
        [1, make => 'Audi', model => 'A4', year => 2015,
            serviceIntervalMonths => 1, lastServiceDate => $ld->(-31)],
        [2, make => 'BMW', model => 'X3', year => 2019],
        [2, make => 'BMW', model => 'X5', year => 2019,
            mileage => 10000],
    );
    for my $f (@fixture) {
        my ($ci, %b) = @$f;
        my $r = $lng->req(POST => cpath($c[$ci]),
            json => { vin => new_vin(), %b });
        die "fixture: $r->{body}" unless $r->{status} == 201;
    }
    # the X3 has not been serviced and was bought two years ago
    CT::sql($ldb, q{UPDATE vehicles SET created_at = now()
        - interval '2 years' WHERE model = 'X3'});

    my $total = @fixture;
    my $today = q{(now() AT TIME ZONE 'UTC')::date};
    my $due = qq{(coalesce(last_service_mileage, 0) + service_interval_km
        - mileage <= 0 OR (coalesce(last_service_date, (created_at AT TIME
        ZONE 'UTC')::date) + make_interval(months =>
        service_interval_months))::date <= $today)};
    my $n_due = CT::sql($ldb, "SELECT count(*) FROM vehicles WHERE $due");
    ok($n_due >= 3 && $n_due <= $total - 3,
        "fixture: $n_due of $total due for service");

    my @cases = (
        ['', 'TRUE'],
        ['make=honda', q{lower(make) = 'honda'}],
        ['make=HONDA', q{lower(make) = 'honda'}],
        ['make=Hond', 'FALSE'],
        ['make=hondas', q{lower(make) = 'hondas'}],
        ['model=civic', q{lower(model) = 'civic'}],
        ['make=toyota&model=Civic',
            q{lower(make) = 'toyota' AND lower(model) = 'civic'}],
        ['yearFrom=2005', 'year >= 2005'],
        ['yearTo=2005', 'year <= 2005'],
        ['yearFrom=2005&yearTo=2015', 'year BETWEEN 2005 AND 2015'],
        ['yearFrom=2016&yearTo=2016', 'year = 2016'],
        ['yearFrom=1886', 'TRUE'],
        ['yearTo=1886', 'year = 1886'],
        ['yearFrom=' . ($YEAR + 1), 'year = ' . ($YEAR + 1)],
        ['yearTo=' . ($YEAR + 1), 'TRUE'],
        ['serviceDue=true', $due],
        ['serviceDue=false', "NOT $due"],
        ['insuranceExpiringWithin=0', "insurance_expiry = $today"],
        ['insuranceExpiringWithin=7',
            "insurance_expiry BETWEEN $today AND $today + 7"],
        ['insuranceExpiringWithin=30',
            "insurance_expiry BETWEEN $today AND $today + 30"],
        ['insuranceExpiringWithin=365',
            "insurance_expiry BETWEEN $today AND $today + 365"],
        ["customerId=$c[0]", "customer_id = '$c[0]'"],
        ["customerId=$c[2]&serviceDue=true", "customer_id = '$c[2]' AND $due"],
        ["customerId=$MISSING", 'FALSE'],
        ['make=kia&insuranceExpiringWithin=30', "lower(make) = 'kia' AND
            insurance_expiry BETWEEN $today AND $today + 30"],
        ['yearFrom=2000&serviceDue=false&model=civic', "year >= 2000 AND
            NOT $due AND lower(model) = 'civic'"],
    );
    for my $c (@cases) {
        my ($q, $where) = @$c;
        my $want = [ CT::sql($ldb, "SELECT id FROM vehicles WHERE $where
            ORDER BY created_at DESC, id DESC") ];
        my $r = $lng->req(GET => "/api/vehicles?$q");
        is($r->{status}, 200, "admin list ?$q: 200") or diag($r->{body});
        is_deeply(ids_of($r), $want, "admin list ?$q: the "
            . scalar(@$want) . ' SQL finds, newest first');
        is(($r->{json}{data}{pagination} // {})->{totalItems}, scalar @$want,
            "admin list ?$q: totalItems");
    }

    my $all = [ CT::sql($ldb, 'SELECT id FROM vehicles
        ORDER BY created_at DESC, id DESC') ];
    for my $c ([5, 1], [5, 2], [5, 3], [5, 4], [13, 1], [100, 1]) {
        my ($limit, $page) = @$c;
        my $r = $lng->req(GET => "/api/vehicles?limit=$limit&page=$page");
        my $from = ($page - 1) * $limit;
        my $to = $from + $limit - 1;
        $to = $#$all if $to > $#$all;
        is_deeply(ids_of($r), [ $from <= $#$all ? @$all[$from .. $to] : () ],
            "admin list limit=$limit&page=$page: the ids");
        is_deeply($r->{json}{data}{pagination}, pages($page, $limit, $total),
            "admin list limit=$limit&page=$page: pagination");
    }
    my $r = $lng->req(GET => '/api/vehicles');
    is_deeply($r->{json}{data}{pagination}, pages(1, 20, $total),
        'admin list: limit 20 by default');
    is_deeply([sort keys %{ $r->{json}{data}{vehicles}[0] // {} }], \@KEYS,
        'admin list: the vehicle members');
    my $honda = [ CT::sql($ldb, q{SELECT id FROM vehicles
        WHERE lower(make) = 'honda' ORDER BY created_at DESC, id DESC}) ];
    $r = $lng->req(GET => '/api/vehicles?make=honda&limit=1&page=2');
    is_deeply(ids_of($r), [$honda->[1]], 'admin list make=honda page 2 of 1');
    is_deeply($r->{json}{data}{pagination}, pages(2, 1, scalar @$honda),
        'admin list make=honda page 2: pagination');

    for my $bad ('yearFrom=1885', 'yearFrom=' . ($YEAR + 2), 'yearTo=1885',
        'yearTo=' . ($YEAR + 2), 'yearFrom=abc', 'yearTo=2015.5',
        'yearFrom=', 'serviceDue=yes', 'serviceDue=1', 'serviceDue=',
        'insuranceExpiringWithin=-1', 'insuranceExpiringWithin=366',
        'insuranceExpiringWithin=x', 'insuranceExpiringWithin=1.5',
        'customerId=nope', "customerId=${MISSING}0", 'page=0', 'page=x',
        'limit=0', 'limit=101', 'limit=x')
    {
        is_error($lng->req(GET => "/api/vehicles?$bad"), 400, undef, undef,
            "admin list ?$bad");
    }
    my ($cust, $sub) = make_customer($lng);
    is($lng->req(GET => '/api/vehicles', auth => CT::customer_token($sub))
        ->{status}, 403, 'admin list as a Customer: 403');
    is($lng->req(GET => "/api/vehicles?customerId=$cust",
        auth => CT::customer_token($sub))->{status}, 403,
        'admin list of its own as a Customer: 403');
}


done_testing();
