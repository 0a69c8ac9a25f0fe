# Timestamps and dates as the API writes them, whatever the database's own
# settings (here DateStyle 'SQL, DMY' and TimeZone Asia/Kolkata): the
# pool asks for DateStyle ISO and TimeZone UTC on every connection, so
# dates are YYYY-MM-DD and timestamps RFC 3339 UTC with milliseconds
# (every length of fraction, truncated, never rounded; api_ts() in SQL is
# the reference).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $db = CT::db_create();

# a database whose defaults would write dates and times differently
CT::sql($db, qq{ALTER DATABASE "$db" SET DateStyle = 'SQL, DMY'});
CT::sql($db, qq{ALTER DATABASE "$db" SET TimeZone = 'Asia/Kolkata'});

my $ng = CT::nginx_start(db => $db);

my @cases = (
    ['2026-01-15 09:30:00+00', '2026-01-15T09:30:00.000Z'],
    ['2026-01-15 09:30:00.1+00', '2026-01-15T09:30:00.100Z'],
    ['2026-01-15 09:30:00.12+00', '2026-01-15T09:30:00.120Z'],
    ['2026-01-15 09:30:00.123+00', '2026-01-15T09:30:00.123Z'],
    ['2026-01-15 09:30:00.1234+00', '2026-01-15T09:30:00.123Z'],
    ['2026-01-15 09:30:00.99999+00', '2026-01-15T09:30:00.999Z'],
    ['2026-12-31 23:59:59.999999+00', '2026-12-31T23:59:59.999Z'],
    ['2000-02-29 00:00:00.000001+00', '2000-02-29T00:00:00.000Z'],
    # an offset: the same instant, written in UTC
    ['2026-06-01 05:30:00.5+05:30', '2026-06-01T00:00:00.500Z'],
);

my $n = 0;
for my $c (@cases) {
    my ($stored, $want) = @$c;
    $n++;
    my $id = CT::sql($db, q{INSERT INTO customers (user_id, email, full_name,
        date_of_birth, customer_since, last_order_date, verified_at)
        VALUES (:'p1', :'p1' || '@example.com', 'Time Test', '1990-07-04',
        :'p2', :'p2', :'p2') RETURNING id}, "ts-$$-$n", $stored);

    my $r = $ng->req(GET => "/api/customers/$id");
    is($r->{status}, 200, "$stored: 200") or diag($r->{body});
    my $d = $r->{json}{data} // {};
    is($d->{customerSince}, $want, "$stored: customerSince $want");
    is($d->{lastOrderDate}, $want, "$stored: lastOrderDate");
    is($d->{verifiedAt}, $want, "$stored: verifiedAt");
    is($d->{dateOfBirth}, '1990-07-04', "$stored: dateOfBirth YYYY-MM-DD");
    is($d->{createdAt}, scalar CT::sql($db, q{SELECT api_ts(created_at)
        FROM customers WHERE id = :'p1'}, $id),
        "$stored: createdAt as api_ts() writes it");
    is($d->{customerSince}, scalar CT::sql($db, q{SELECT
        api_ts(customer_since) FROM customers WHERE id = :'p1'}, $id),
        "$stored: customerSince as api_ts() writes it");

    # the list and the writes' answers use the same form
    $r = $ng->req(PATCH => "/api/customers/$id", json => { notes => 'n' });
    is($r->{status}, 200, "$stored: PATCH 200") or diag($r->{body});
    is(($r->{json}{data} // {})->{customerSince}, $want,
        "$stored: PATCH answers customerSince $want");
}

# null stays null
my $id = CT::sql($db, q{INSERT INTO customers (user_id, email, full_name)
    VALUES ('ts-null', 'tsnull@example.com', 'Time Null') RETURNING id});
my $r = $ng->req(GET => "/api/customers/$id");
is($r->{json}{data}{lastOrderDate}, undef, 'no last order: null');
is($r->{json}{data}{verifiedAt}, undef, 'not verified: null');

# a vehicle's and a document's dates, under the same settings
$r = $ng->req(POST => "/api/customers/$id/vehicles", json => {
    make => 'Honda', model => 'Accord', year => 2003,
    vin => '1HGCM82633A004352', insuranceExpiry => '2031-03-09' });
is($r->{status}, 201, 'vehicle: 201') or diag($r->{body});
is($r->{json}{data}{insuranceExpiry}, '2031-03-09',
    'vehicle: a date as YYYY-MM-DD');
like($r->{json}{data}{createdAt} // '',
    qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\z/,
    'vehicle: createdAt in UTC');

CT::done_testing();
