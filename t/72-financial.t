# Financial profile of a customer: GET/POST/PUT
# /api/customers/{id}/financial-profile by an Administrator (POST creates,
# 409 when one exists; PUT creates or replaces, If-Match against the
# profile's version), GET /api/customers/me/financial-profile for the
# caller's own (read-only). Money is a JSON number with two decimals; the
# debt-to-income ratio and the net worth are derived; every bad field is
# listed in one 400 and nothing is written.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db, workers => 2);


my @KEYS = sort qw(customerId annualIncome monthlyDebts totalAssets
    totalLiabilities employmentStatus employer currency debtToIncomeRatio
    netWorth createdAt updatedAt version);


# --- helpers -------------------------------------------------------------

sub make_customer { CT::make_customer($ng, 'fin') }

# the stored row as text, or '' when there is none
sub stored {
    my ($id) = @_;
    return scalar CT::sql($db, q{SELECT row_to_json(f)::text
        FROM financial_profiles f WHERE customer_id = :'p1'}, $id);
}

sub path { "/api/customers/$_[0]/financial-profile" }

# the raw text of a member of data in the body: numbers as sent
sub raw {
    my ($r, $name) = @_;
    return $r->{body} =~ /"\Q$name\E":(-?[0-9.]+|null)/ ? $1 : undef;
}

my %GOOD = (annualIncome => 120000.5, monthlyDebts => 2500,
    totalAssets => 300000.25, totalLiabilities => 350000,
    employmentStatus => 'employed', employer => '  Acme Corp ',
    currency => 'EUR');


my ($ID, $SUB) = make_customer();
my ($BARE, $BARE_SUB) = make_customer();
my $CUSTOMER = CT::customer_token($SUB);
my $BARE_CUSTOMER = CT::customer_token($BARE_SUB);


# --- before any profile --------------------------------------------------

is_error($ng->req(GET => path($ID)), 404, 'Financial profile not found',
    ['financialProfile'], 'GET without a profile');
is_error($ng->req(GET => path($MISSING)), 404, 'Customer not found',
    ['customerId'], 'GET of an unknown customer');
is_error($ng->req(GET => path('not-a-uuid')), 400, 'Validation failed',
    ['customerId'], 'GET with a bad id');


# --- POST: create ----------------------------------------------------------

my $etag;
{
    my $r = $ng->req(POST => path($ID), json => \%GOOD);
    my $d = CT::is_success($r, 201, 'Financial profile created successfully',
        \@KEYS, 'POST');
    is($d->{customerId}, $ID, 'POST: customerId');
    is(raw($r, 'annualIncome'), '120000.50', 'POST: annualIncome, 2 decimals');
    is(raw($r, 'monthlyDebts'), '2500.00', 'POST: monthlyDebts');
    is(raw($r, 'totalAssets'), '300000.25', 'POST: totalAssets');
    is(raw($r, 'totalLiabilities'), '350000.00', 'POST: totalLiabilities');
    is(raw($r, 'debtToIncomeRatio'), '0.2500',
        'POST: debtToIncomeRatio = 2500 * 12 / 120000.50, 4 decimals');
    is(raw($r, 'netWorth'), '-49999.75', 'POST: netWorth = assets - debts');
    is($d->{employmentStatus}, 'employed', 'POST: employmentStatus');
    is($d->{employer}, 'Acme Corp', 'POST: employer trimmed');
    is($d->{currency}, 'EUR', 'POST: currency');
    like($d->{createdAt} // '', $TS, 'POST: createdAt');
    like($d->{updatedAt} // '', $TS, 'POST: updatedAt');
    is($d->{version}, 1, 'POST: version 1');
    is($r->{headers}{etag}, '"1"', 'POST: ETag "1"');

    my $row = JSON::PP->new->decode(stored($ID));
    is($row->{annual_income}, 120000.5, 'POST: the row stored');
    is($row->{updated_by}, 'admin-user', "POST: updated_by is the sub");

    $r = $ng->req(GET => path($ID));
    is($r->{status}, 200, 'GET: 200') or diag($r->{body});
    is($r->{json}{message}, 'Financial profile retrieved successfully',
        'GET: message');
    is_deeply($r->{json}{data}, $d, 'GET: the profile as created');
    is($r->{headers}{etag}, '"1"', 'GET: ETag');
    $etag = $r->{headers}{etag};

    is($ng->req(HEAD => path($ID))->{status}, 200, 'HEAD: 200');
}

{
    my $before = stored($ID);
    is_error($ng->req(POST => path($ID), json => { %GOOD,
        annualIncome => 1 }), 409, 'Financial profile already exists',
        ['financialProfile'], 'second POST');
    is(stored($ID), $before, 'second POST: nothing written');

    is_error($ng->req(POST => path($MISSING), json => \%GOOD), 404,
        'Customer not found', ['customerId'], 'POST for an unknown customer');
    is_error($ng->req(PUT => path($MISSING), json => \%GOOD), 404,
        'Customer not found', ['customerId'], 'PUT for an unknown customer');
    is(scalar CT::sql($db, q{SELECT count(*) FROM financial_profiles
        WHERE customer_id = :'p1'}, $MISSING), 0,
        'unknown customer: nothing written');
}


# --- PUT: replace, If-Match --------------------------------------------------

{
    my %new = (annualIncome => 60000, monthlyDebts => 1000.1,
        totalAssets => 10, totalLiabilities => 0.99,
        employmentStatus => 'self-employed', currency => 'USD');
    my $r = $ng->req(PUT => path($ID), json => \%new,
        headers => { 'If-Match' => $etag });
    is($r->{status}, 200, 'PUT with If-Match: 200') or diag($r->{body});
    is($r->{json}{message}, 'Financial profile updated successfully',
        'PUT: message');
    my $d = $r->{json}{data} // {};
    is($d->{version}, 2, 'PUT: version 2');
    is($r->{headers}{etag}, '"2"', 'PUT: ETag "2"');
    is($d->{employer}, undef, 'PUT: employer replaced (absent: null)');
    is($d->{employmentStatus}, 'self-employed', 'PUT: employmentStatus');
    is($d->{currency}, 'USD', 'PUT: currency');
    is(raw($r, 'monthlyDebts'), '1000.10', 'PUT: monthlyDebts');
    is(raw($r, 'debtToIncomeRatio'), '0.2000', 'PUT: ratio 12001.2/60000');
    is(raw($r, 'netWorth'), '9.01', 'PUT: netWorth');
    like($d->{updatedAt} // '', $TS, 'PUT: updatedAt');

    my $before = stored($ID);
    is_error($ng->req(PUT => path($ID), json => \%GOOD,
        headers => { 'If-Match' => '"1"' }), 412, 'Precondition failed',
        ['If-Match'], 'PUT with a stale If-Match');
    is(stored($ID), $before, 'stale If-Match: nothing written');

    $r = $ng->req(PUT => path($ID), json => { %new, annualIncome => 0 });
    is($r->{status}, 200, 'PUT without If-Match: 200') or diag($r->{body});
    is($r->{json}{data}{version}, 3, '... version 3');
    is(raw($r, 'debtToIncomeRatio'), 'null', 'income 0: ratio null');
    is(raw($r, 'annualIncome'), '0.00', 'income 0: annualIncome 0.00');
}

# PUT creates when there is no profile: 201; If-Match then fails
{
    my ($id) = make_customer();
    is_error($ng->req(PUT => path($id), json => \%GOOD,
        headers => { 'If-Match' => '"1"' }), 412, 'Precondition failed',
        ['If-Match'], 'PUT with If-Match and no profile');
    is(stored($id), '', '... nothing written');

    my $r = $ng->req(PUT => path($id), json => \%GOOD);
    is($r->{status}, 201, 'PUT without a profile: 201') or diag($r->{body});
    is($r->{json}{message}, 'Financial profile created successfully',
        '... created');
    is($r->{json}{data}{version}, 1, '... version 1');
    is($r->{headers}{etag}, '"1"', '... ETag "1"');
}


# --- validation: every bad field, nothing written ---------------------------

{
    my $before = stored($ID);
    my @cases = (
        [{ annualIncome => -1 }, ['annualIncome'], 'negative annualIncome'],
        [{ monthlyDebts => -0.01 }, ['monthlyDebts'], 'negative debts'],
        [{ totalAssets => 1.005 }, ['totalAssets'], 'three decimals'],
        [{ totalLiabilities => '100' }, ['totalLiabilities'],
            'an amount as a string'],
        [{ employmentStatus => 'Employed' }, ['employmentStatus'],
            'bad employmentStatus'],
        [{ employer => 'x' x 201 }, ['employer'], 'employer of 201'],
        [{ currency => 'usd' }, ['currency'], 'currency usd'],
        [{ currency => 'US' }, ['currency'], 'currency US'],
        [{ currency => 'USDX' }, ['currency'], 'currency USDX'],
        [{ nickname => 'x' }, ['nickname'], 'an unknown field'],
        [{ currency => undef }, ['currency'], 'currency null'],
        [{ annualIncome => -1, totalAssets => 1.001, currency => 'eu',
            employmentStatus => 'retiree', extra => 1 },
            [qw(annualIncome totalAssets currency employmentStatus extra)],
            'every bad field listed'],
    );
    for my $c (@cases) {
        my ($patch, $fields, $name) = @$c;
        my %body = (%GOOD, %$patch);
        for my $m (qw(POST PUT)) {
            is_error($ng->req($m => path($ID), json => \%body), 400,
                'Validation failed', $fields, "$m $name");
        }
    }
    for my $f (qw(annualIncome monthlyDebts totalAssets totalLiabilities
        employmentStatus currency))
    {
        my %body = %GOOD;
        delete $body{$f};
        is_error($ng->req(PUT => path($ID), json => \%body), 400,
            'Validation failed', [$f], "PUT without $f");
    }
    is_error($ng->req(POST => path($ID), json => {}), 400,
        'Validation failed', [qw(annualIncome monthlyDebts totalAssets
        totalLiabilities employmentStatus currency)], 'POST of {}');
    is(stored($ID), $before, 'validation failures: nothing written');

    my ($id) = make_customer();
    is_error($ng->req(POST => path($id), json => { %GOOD,
        currency => 'usd' }), 400, 'Validation failed', ['currency'],
        'POST with a bad field for a customer without a profile');
    is(stored($id), '', '... nothing written');

    my $r = $ng->req(POST => path($id), json => { %GOOD, employer => 'x' x 200,
        annualIncome => 999999999999.99 });
    is($r->{status}, 201, 'the bounds themselves: 201') or diag($r->{body});
}


# --- roles -------------------------------------------------------------------

{
    for my $m (qw(GET POST PUT)) {
        my $r = $ng->req($m => path($ID), auth => $CUSTOMER,
            ($m eq 'GET' ? () : (json => \%GOOD)));
        is($r->{status}, 403, "Customer $m {id}: 403") or diag($r->{body});
        $r = $ng->req($m => path($ID), auth => 'none',
            ($m eq 'GET' ? () : (json => \%GOOD)));
        is($r->{status}, 401, "anonymous $m {id}: 401");
    }

    my $r = $ng->req(GET => '/api/customers/me/financial-profile',
        auth => $CUSTOMER);
    is($r->{status}, 200, 'Customer GET /me: 200') or diag($r->{body});
    is($r->{json}{data}{customerId}, $ID, '... its own profile');
    is($r->{headers}{etag}, '"3"', '... ETag');
    is(raw($r, 'debtToIncomeRatio'), 'null', '... ratio null');

    is_error($ng->req(GET => '/api/customers/me/financial-profile',
        auth => $BARE_CUSTOMER), 404, 'Financial profile not found',
        ['financialProfile'], 'Customer GET /me without a profile');
    is_error($ng->req(GET => '/api/customers/me/financial-profile',
        auth => CT::customer_token("nobody-$$")), 404, 'Customer not found',
        ['userId'], 'Customer GET /me without a record');
    is($ng->req(GET => '/api/customers/me/financial-profile',
        auth => 'none')->{status}, 401, 'anonymous GET /me: 401');

    my $before = stored($ID);
    for my $m (qw(PUT POST)) {
        $r = $ng->req($m => '/api/customers/me/financial-profile',
            auth => $CUSTOMER, json => \%GOOD);
        is($r->{status}, 405, "Customer $m /me: 405");
        is($r->{headers}{allow}, 'GET, HEAD', '... Allow: GET, HEAD');
    }
    is(stored($ID), $before, '/me writes: nothing written');
}


done_testing();
