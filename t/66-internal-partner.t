# The partner reads on a service key: GET /api/customers/internal/{id}
# (the customer, its financial profile with the derived values, its
# credit status and the latest 10 history rows in one answer), .../risk-
# profile (the same standing without personal data) and .../credit-status.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db);

sub svc {
    my ($path, %o) = @_;
    return $ng->req(GET => $path, auth => 'service', %o);
}

my ($ID, $SUB) = CT::make_customer($ng, 'partner',
    nationalId => 'AB123456789', dateOfBirth => '1990-06-15',
    addresses => [{ line1 => '1 Road', city => 'Pune', country => 'IN' }]);
my ($BARE) = CT::make_customer($ng, 'bare');


# --- a customer with nothing financial yet ------------------------------------

{
    my $r = svc("/api/customers/internal/$BARE");
    is($r->{status}, 200, 'internal read of a bare customer: 200')
        or diag($r->{body});
    my $d = $r->{json}{data};
    is_deeply([sort keys %$d],
        [sort qw(customer financialProfile creditStatus creditHistory)],
        '... customer, financialProfile, creditStatus, creditHistory');
    is($d->{financialProfile}, undef, '... no profile: null');
    is($d->{creditStatus}, undef, '... no score: null');
    is_deeply($d->{creditHistory}, [], '... no history: []');

    $r = svc("/api/customers/internal/$BARE/credit-status");
    is_error($r, 404, 'Credit status not found', ['creditScore'],
        'internal credit status before any score');

    $r = svc("/api/customers/internal/$BARE/risk-profile");
    is($r->{status}, 200, 'risk profile of a bare customer: 200');
    is($r->{json}{data}{ageYears}, undef, '... no birth date: ageYears null');
    is($r->{json}{data}{scoreChange90Days}, undef,
        '... no score: scoreChange90Days null');
}


# --- with a profile and twelve scores -----------------------------------------

my $r = $ng->req(POST => "/api/customers/$ID/financial-profile",
    json => { annualIncome => 1200000, monthlyDebts => 25000,
        totalAssets => 5000000.50, totalLiabilities => 1500000,
        employmentStatus => 'employed', employer => 'Acme',
        currency => 'INR' });
is($r->{status}, 201, 'financial profile created') or diag($r->{body});

for my $s (600, 610, 620, 630, 640, 650, 660, 670, 680, 690, 700, 710) {
    $r = $ng->req(PUT => "/api/customers/$ID/credit-status",
        json => { creditScore => $s, source => 'bureau' });
    die "PUT failed: $r->{body}" unless $r->{status} == 200;
}

{
    my $r = svc("/api/customers/internal/$ID");
    is($r->{status}, 200, 'internal read: 200') or diag($r->{body});
    my $d = $r->{json}{data};

    my $admin = $ng->req(GET => "/api/customers/$ID")->{json}{data};
    is_deeply($d->{customer}, $admin,
        '... customer: the record as GET /api/customers/{id} has it');
    is($d->{customer}{nationalId}, 'AB123456789',
        '... nationalId in full to a service');

    my $fin = $ng->req(GET => "/api/customers/$ID/financial-profile")
        ->{json}{data};
    is_deeply($d->{financialProfile}, $fin,
        '... financialProfile: as GET .../financial-profile answers it');
    is($d->{financialProfile}{debtToIncomeRatio}, 0.25,
        '... debtToIncomeRatio 25000 * 12 / 1200000');
    is($d->{financialProfile}{netWorth}, 3500000.50, '... netWorth');

    my $cs = $ng->req(GET => "/api/customers/$ID/credit-status")
        ->{json}{data};
    delete $cs->{customerId};
    is_deeply($d->{creditStatus}, $cs, '... creditStatus: the current one');
    is($d->{creditStatus}{creditScore}, 710, '... 710, the last score');

    my $hist = $ng->req(GET =>
        "/api/customers/$ID/credit-status/history?limit=10")->{json}{data};
    is($hist->{pagination}{totalItems}, 12, 'twelve history rows stored');
    is(scalar @{ $d->{creditHistory} }, 10, '... the answer has the latest 10');
    is_deeply($d->{creditHistory}, $hist->{history},
        '... the same as the first page of the history, newest first');
}

{
    my $r = svc("/api/customers/internal/$ID/credit-status");
    is($r->{status}, 200, 'internal credit status: 200') or diag($r->{body});
    is_deeply($r->{json}{data},
        $ng->req(GET => "/api/customers/$ID/credit-status")->{json}{data},
        '... the same as the admin read');
}


# --- the risk profile: the standing without personal data -------------------

{
    # the oldest score is made four months old: the change over 90 days is
    # counted from the last score at least 90 days old
    CT::sql($db, q{UPDATE credit_history SET changed_at = now()
        - interval '120 days' WHERE customer_id = :'p1'
        AND credit_score = 600}, $ID);

    my $r = svc("/api/customers/internal/$ID/risk-profile");
    is($r->{status}, 200, 'risk profile: 200') or diag($r->{body});
    my $d = $r->{json}{data};
    is_deeply([sort keys %$d], [sort qw(customerId userId customerStatus
        customerType isVerified customerSince ageYears totalOrders
        totalOrderValue totalComplaints openComplaints financialProfile
        creditStatus scoreChange90Days creditHistory)],
        '... its members: no email, phone, addresses or nationalId');
    unlike($r->{body}, qr/AB123456789|example\.com|Pune/,
        '... no personal data anywhere in it');
    my @t = gmtime;
    my $age = $t[5] + 1900 - 1990
        - (($t[4] + 1) * 100 + $t[3] < 615 ? 1 : 0);
    is($d->{ageYears}, $age, "... ageYears $age from 1990-06-15");
    is($d->{scoreChange90Days}, 110, '... scoreChange90Days 710 - 600');
    is($d->{financialProfile}{debtToIncomeRatio}, 0.25,
        '... the derived values');
    is(scalar @{ $d->{creditHistory} }, 10, '... the latest 10 scores');
}


# --- errors and who may call ------------------------------------------------

for my $p ('', '/risk-profile', '/credit-status') {
    my $r = svc("/api/customers/internal/$CT::MISSING$p");
    is_error($r, 404, 'Customer not found', ['customerId'],
        "GET internal/{missing}$p");

    $r = svc("/api/customers/internal/not-a-uuid$p");
    is_error($r, 400, 'Validation failed', ['customerId'],
        "GET internal/not-a-uuid$p");

    $r = $ng->req(GET => "/api/customers/internal/$ID$p");
    is($r->{status}, 401, "an Administrator's token on internal/{id}$p: 401");

    $r = $ng->req(GET => "/api/customers/internal/$ID$p",
        auth => CT::customer_token($SUB));
    is($r->{status}, 401, "the Customer's own token on internal/{id}$p: 401");

    $r = $ng->req(GET => "/api/customers/internal/$ID$p",
        auth => 'service:wrong-key');
    is($r->{status}, 401, "a wrong service key on internal/{id}$p: 401");
}

{
    my $r = $ng->req(POST => "/api/customers/internal/$ID", auth => 'service',
        json => {});
    is($r->{status}, 405, 'POST internal/{id}: 405');
    is($r->{headers}{allow}, 'GET, HEAD', '... Allow: GET, HEAD');

    $r = $ng->req(PUT => "/api/customers/internal/$ID/credit-status",
        auth => 'service', json => { creditScore => 720 });
    is($r->{status}, 200, 'PUT internal/{id}/credit-status still answers');

    $r = $ng->req(DELETE => "/api/customers/internal/$ID/credit-status",
        auth => 'service');
    is($r->{headers}{allow}, 'GET, HEAD, PUT',
        '... and its Allow names GET and PUT');

    # the literal internal routes are not taken for an id
    $r = $ng->req(GET => '/api/customers/internal/create', auth => 'service');
    is($r->{status}, 405, 'GET internal/create: 405, not a customer id');
    is($r->{headers}{allow}, 'POST', '... Allow: POST');

    my $u = CT::uniq('partner-new');
    $r = $ng->req(POST => '/api/customers/internal/create',
        auth => 'service',
        json => { userId => $u, email => "$u\@example.com",
            fullName => 'Partner New' });
    is($r->{status}, 201, 'POST internal/create still creates');
}

done_testing();
