# The survey and the credit score estimate: an Administrator keeps the
# questions (/api/survey/questions); a Customer reads the active ones
# without weights (GET /api/survey) and answers them (PUT
# .../survey/answers, every submission kept); POST
# .../credit-score/estimate computes the documented formula of
# credit_score_estimate() (sql/028) from the financial profile and the
# latest answers with the weights of score_weights, clamped to 300..850,
# and stores it through the credit status with source "estimate".
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use IO::Socket::INET;
use POSIX ();

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db, workers => 2);

my ($ID, $SUB) = CT::make_customer($ng, 'survey');
my ($OTHER) = CT::make_customer($ng, 'surveyother');
my $TOKEN = CT::customer_token($SUB);

sub questions { scalar CT::sql($db, 'SELECT count(*) FROM survey_questions') }
sub submissions {
    scalar CT::sql($db, 'SELECT count(*) FROM survey_submissions');
}

sub question {
    my (%q) = @_;
    my $r = $ng->req(POST => '/api/survey/questions', json => \%q);
    die "question: $r->{body}" unless $r->{status} == 201;
    return $r->{json}{data}{questionId};
}


# --- the questions ---------------------------------------------------------

my ($HOUSING, $ACCOUNTS, $YEARS, $DEFAULTED, $OLD);
{
    my $r = $ng->req(POST => '/api/survey/questions', json => {
        text => 'Where do you live?', kind => 'single', position => 1,
        options => [{ value => 'own', label => 'Own home', weight => 30 },
            { value => 'rent', label => 'Rent', weight => 0 },
            { value => 'other', label => 'Other', weight => -40 }] });
    is($r->{status}, 201, 'POST a single choice question: 201')
        or diag($r->{body});
    my $d = $r->{json}{data};
    $HOUSING = $d->{questionId};
    like($HOUSING, $UUID, '... questionId');
    is_deeply([sort keys %$d], [sort qw(questionId text kind options weight
        min max isActive position createdAt updatedAt version)],
        '... its members');
    is($d->{isActive}, $T, '... active by default');
    is($d->{options}[2]{weight}, -40, '... options with their weights');

    $ACCOUNTS = question(text => 'Which accounts do you have?',
        kind => 'multiple', position => 2,
        options => [{ value => 'savings', weight => 10 },
            { value => 'checking', weight => 15 },
            { value => 'loans', weight => -5 }]);
    $YEARS = question(text => 'Years in your job?', kind => 'number',
        weight => 2, min => 0, max => 20, position => 3);
    $DEFAULTED = question(text => 'Ever defaulted?', kind => 'boolean',
        weight => -50, position => 4);
    $OLD = question(text => 'Old question', kind => 'boolean', weight => 99,
        isActive => $F, position => 5);
}

{
    my $before = questions();
    for my $c (
        [{ text => 'x', kind => 'single',
           options => [{ value => 'a', weight => 1 }] }, ['options'],
         'one option'],
        [{ text => 'x', kind => 'number', options => [{ value => 'a',
           weight => 1 }, { value => 'b', weight => 1 }] }, ['options'],
         'options on a number question'],
        [{ text => 'x', kind => 'multiple', options => [{ value => 'a',
           weight => 1 }, { value => 'a', weight => 2 }] }, ['options'],
         'duplicate option values'],
        [{ text => 'x', kind => 'single', min => 1, options => [
           { value => 'a', weight => 1 }, { value => 'b', weight => 1 }] },
         ['min'], 'bounds on a choice question'],
        [{ text => 'x', kind => 'number', min => 5, max => -1 }, ['max'],
         'min above max'],
        [{ text => 'x', kind => 'essay' }, ['kind'], 'an unknown kind'],
        [{ kind => 'boolean' }, ['text'], 'no text'],
        [{ text => 'x', kind => 'boolean', colour => 'red' }, ['colour'],
         'an unknown field'],
        [{ text => 'x', kind => 'single', options => [{ value => 'a' },
           { value => 'b', weight => 'heavy' }] },
         ['options[0].weight', 'options[1].weight'], 'option weights'],
        [{ text => 'x' x 501, kind => 'boolean' }, ['text'],
         'a text over 500'],
    ) {
        my ($body, $fields, $name) = @$c;
        my $r = $ng->req(POST => '/api/survey/questions', json => $body);
        is_error($r, 400, 'Validation failed', $fields, "question: $name");
    }
    is(questions(), $before, '... none was written');

    my $r = $ng->req(GET => '/api/survey/questions');
    is($r->{status}, 200, 'GET /api/survey/questions: 200');
    is_deeply([map { $_->{questionId} } @{ $r->{json}{data}{questions} }],
        [$HOUSING, $ACCOUNTS, $YEARS, $DEFAULTED, $OLD],
        '... every question, in position order');

    $r = $ng->req(GET => "/api/survey/questions/$YEARS");
    is($r->{json}{data}{max}, 20, 'GET a question: its bounds');
    is_error($ng->req(GET => "/api/survey/questions/$CT::MISSING"), 404,
        'Question not found', ['questionId'], 'GET a missing question');
    is_error($ng->req(GET => '/api/survey/questions/nope'), 400,
        'Validation failed', ['questionId'], 'GET a non-UUID question');

    my $tmp = question(text => 'Temporary', kind => 'boolean');
    $r = $ng->req(PUT => "/api/survey/questions/$tmp", json => {
        text => 'Temporary, renamed', kind => 'number', min => 1, max => 3,
        weight => 1.5 });
    is($r->{status}, 200, 'PUT a question: 200') or diag($r->{body});
    is($r->{json}{data}{version}, 2, '... version 2');
    is($r->{json}{data}{kind}, 'number', '... its new kind');
    is_error($ng->req(PUT => "/api/survey/questions/$CT::MISSING",
        json => { text => 'x', kind => 'boolean' }), 404,
        'Question not found', ['questionId'], 'PUT a missing question');
    $r = $ng->req(DELETE => "/api/survey/questions/$tmp");
    is($r->{status}, 200, 'DELETE a question: 200');
    is($ng->req(GET => "/api/survey/questions/$tmp")->{status}, 404,
        '... gone');

    for my $m ([GET => '/api/survey/questions'],
        [POST => '/api/survey/questions'],
        [DELETE => "/api/survey/questions/$OLD"])
    {
        $r = $ng->req(@$m, auth => $TOKEN,
            $m->[0] eq 'POST' ? (json => { text => 'x', kind => 'boolean' })
                              : ());
        is($r->{status}, 403, "$m->[0] $m->[1] as a Customer: 403");
    }
}


# --- what a Customer sees and answers ---------------------------------------

{
    my $r = $ng->req(GET => '/api/survey', auth => $TOKEN);
    is($r->{status}, 200, 'GET /api/survey as a Customer: 200')
        or diag($r->{body});
    is_deeply([map { $_->{questionId} } @{ $r->{json}{data}{questions} }],
        [$HOUSING, $ACCOUNTS, $YEARS, $DEFAULTED],
        '... the active questions');
    unlike($r->{body}, qr/weight/, '... without any weight');
    is_deeply($r->{json}{data}{questions}[0]{options}[0],
        { value => 'own', label => 'Own home' }, '... options: value, label');
}

{
    my $before = submissions();
    my $r = $ng->req(PUT => "/api/customers/$ID/survey/answers",
        auth => $TOKEN, json => { answers => {
            $HOUSING => 'castle', $ACCOUNTS => ['savings', 'savings'],
            $YEARS => 21, $DEFAULTED => 'no', $OLD => $T,
            $CT::MISSING => 1 } });
    is_error($r, 400, 'Validation failed',
        [map { "answers.$_" } $HOUSING, $ACCOUNTS, $YEARS, $DEFAULTED, $OLD,
            $CT::MISSING], 'answers that fit no question');
    my %msg = map { ($_->{field} => $_->{message}) } @{ $r->{json}{errors} };
    is($msg{"answers.$YEARS"}, 'Must be a number from 0.00 to 20.00',
        '... the number bounds named');
    is($msg{"answers.$OLD"}, 'Unknown or inactive question',
        '... an inactive question');

    for my $c ([{}, ['answers'], 'no answers'],
        [{ answers => {} }, ['answers'], 'empty answers'],
        [{ answers => [] }, ['answers'], 'answers not an object'],
        [{ answers => { $HOUSING => 'own' }, extra => 1 }, ['extra'],
         'an unknown field'])
    {
        $r = $ng->req(PUT => "/api/customers/$ID/survey/answers",
            auth => $TOKEN, json => $c->[0]);
        is_error($r, 400, 'Validation failed', $c->[1], "answers: $c->[2]");
    }
    is(submissions(), $before, '... nothing written');

    $r = $ng->req(PUT => "/api/customers/$OTHER/survey/answers",
        auth => $TOKEN, json => { answers => { $HOUSING => 'own' } });
    is_error($r, 404, 'Customer not found', ['customerId'],
        "answers for another customer");

    $r = $ng->req(PUT => "/api/customers/$ID/survey/answers",
        auth => $TOKEN, json => { answers => { $HOUSING => 'rent' } });
    is($r->{status}, 200, 'a first submission: 200') or diag($r->{body});
    is($r->{json}{data}{version}, 1, '... version 1');
    is($r->{json}{data}{submittedBy}, $SUB, '... by the Customer');

    $r = $ng->req(PUT => '/api/customers/me/survey/answers', auth => $TOKEN,
        json => { answers => { $HOUSING => 'own',
            $ACCOUNTS => ['savings', 'checking'], $YEARS => 8,
            $DEFAULTED => $F } });
    is($r->{status}, 200, 'a second one through /me: 200')
        or diag($r->{body});
    is($r->{json}{data}{version}, 2, '... version 2');

    $r = $ng->req(GET => '/api/customers/me/survey/answers', auth => $TOKEN);
    is($r->{status}, 200, 'GET /me/survey/answers: 200');
    is_deeply([map { $_->{submission}{version} }
        @{ $r->{json}{data}{submissions} }], [2, 1],
        '... both submissions, newest first');
    is($r->{json}{data}{submissions}[1]{submission}{answers}{$HOUSING},
        'rent', '... the first kept as it was');
    is_deeply($r->{json}, $ng->req(GET =>
        "/api/customers/$ID/survey/answers")->{json},
        '... as an Administrator reads them');
}


# --- the estimate -------------------------------------------------------------

# the formula of sql/028 with its default weights
my %EMPLOYMENT = (employed => 40, 'self-employed' => 20, retired => 10,
    student => 0, unemployed => -80);

sub clamp { my ($lo, $hi, $v) = @_; $v < $lo ? $lo : $v > $hi ? $hi : $v }

sub expected {
    my ($p, $survey) = @_;
    my $dti = $p->{annualIncome} > 0
        ? clamp(0, 1.5, $p->{monthlyDebts} * 12 / $p->{annualIncome}) : 1.5;
    my $nw = $p->{totalAssets} - $p->{totalLiabilities};
    my %c = (debtToIncome => 250 * (0.36 - $dti),
        netWorth => clamp(-100, 100, ($nw <=> 0) * 20
            * log(1 + abs($nw) / 10000)),
        employment => $EMPLOYMENT{ $p->{employmentStatus} },
        survey => clamp(-100, 100, $survey));
    my $sum = 600;
    $sum += $_ for values %c;
    my $unclamped = $sum < 0 ? -POSIX::floor(-$sum + 0.5)
                             : POSIX::floor($sum + 0.5);
    return (clamp(300, 850, $unclamped), $unclamped, \%c);
}

sub profile {
    my ($id, %p) = @_;
    my $r = $ng->req(PUT => "/api/customers/$id/financial-profile",
        json => { currency => 'INR', employmentStatus => 'employed', %p });
    die "profile: $r->{body}" unless $r->{status} =~ /^20[01]$/;
}

sub check_estimate {
    my ($r, $p, $survey, $name) = @_;
    my ($score, $unclamped, $c) = expected($p, $survey);
    is($r->{status}, 200, "$name: 200") or diag($r->{body});
    my $e = $r->{json}{data}{estimate};
    is($r->{json}{data}{creditScore}, $score, "$name: creditScore $score");
    is($e->{score}, $score, "$name: estimate.score $score");
    is($e->{unclamped}, $unclamped, "$name: unclamped $unclamped");
    is($e->{base}, 600, "$name: base 600");
    is_deeply([map { $_->{factor} } @{ $e->{factors} }],
        [qw(debtToIncome netWorth employment survey)], "$name: the factors");
    for my $f (@{ $e->{factors} }) {
        ok(abs($f->{contribution} - $c->{ $f->{factor} }) < 0.006,
            "$name: $f->{factor} contributes $c->{ $f->{factor} }")
            or diag("got $f->{contribution}");
    }
    is($r->{json}{data}{source}, 'estimate', "$name: source estimate");
}

{
    my $r = $ng->req(POST => "/api/customers/$ID/credit-score/estimate");
    is_error($r, 422, 'Financial profile required', ['financialProfile'],
        'an estimate without a financial profile');
    is(CT::sql($db, q{SELECT count(*) FROM credit_history
        WHERE customer_id = :'p1'}, $ID), 0, '... nothing stored');

    $r = $ng->req(PUT => "/api/customers/$ID/credit-status",
        json => { creditScore => 600, source => 'bureau' });
    is($r->{status}, 200, 'a bureau score of 600 first');

    my %p = (annualIncome => 1000000, monthlyDebts => 25000,
        totalAssets => 5000000, totalLiabilities => 1500000);
    profile($ID, %p);
    $r = $ng->req(POST => "/api/customers/$ID/credit-score/estimate",
        headers => { 'Idempotency-Key' => 'est-1' });
    # own 30 + savings 10 + checking 15 + 8 years * 2 + not defaulted 0
    check_estimate($r, { %p, employmentStatus => 'employed' }, 71,
        'the estimate');
    is($r->{json}{data}{previousScore}, 600, '... previousScore 600');
    is_deeply([sort map { $_->{kind} } @{ $r->{json}{data}{alerts} }],
        ['milestone', 'rise'], '... a rise and a milestone, as any score');
    my $first = $r->{body};

    my $cs = $ng->req(GET => "/api/customers/$ID/credit-status")
        ->{json}{data};
    is($cs->{creditScore}, 826, 'stored: creditScore 826');
    is($cs->{source}, 'estimate', '... source estimate');
    is($cs->{band}, 'Exceptional', '... its band');
    my $h = $ng->req(GET => "/api/customers/$ID/credit-status/history")
        ->{json}{data};
    is($h->{pagination}{totalItems}, 2, '... a history row');
    is($h->{history}[0]{changedBy}, 'admin-user', '... by the admin');

    $r = $ng->req(POST => "/api/customers/$ID/credit-score/estimate",
        headers => { 'Idempotency-Key' => 'est-1' });
    is($r->{headers}{'idempotent-replayed'}, 'true',
        'the same key again: replayed');
    is($r->{body}, $first, '... the same answer');
    is(CT::sql($db, q{SELECT count(*) FROM credit_history
        WHERE customer_id = :'p1'}, $ID), 2, '... no other history row');

    # operators tune the weights
    CT::sql($db, q{UPDATE score_weights SET value = 500 WHERE key = 'base'});
    $r = $ng->req(POST => "/api/customers/$ID/credit-score/estimate");
    is($r->{json}{data}{creditScore}, 726, 'base 500: 100 less');
    CT::sql($db, q{UPDATE score_weights SET value = 600 WHERE key = 'base'});

    # a question made inactive no longer counts
    $ng->req(PUT => "/api/survey/questions/$YEARS", json => {
        text => 'Years in your job?', kind => 'number', weight => 2,
        min => 0, max => 20, isActive => $F });
    $r = $ng->req(POST => "/api/customers/$ID/credit-score/estimate");
    is($r->{json}{data}{creditScore}, 810, 'an inactive question: 16 less');
    $ng->req(PUT => "/api/survey/questions/$YEARS", json => {
        text => 'Years in your job?', kind => 'number', weight => 2,
        min => 0, max => 20, isActive => $T });

    $r = $ng->req(POST => '/api/customers/me/credit-score/estimate',
        auth => $TOKEN);
    is($r->{status}, 200, 'the Customer estimates its own through /me');
    is($r->{json}{data}{customerId}, $ID, '... its record');
    is($ng->req(GET => "/api/customers/$ID/credit-status/history?limit=1")
        ->{json}{data}{history}[0]{changedBy}, $SUB, '... changedBy its sub');
    $r = $ng->req(POST => "/api/customers/$ID/credit-score/estimate",
        auth => $TOKEN);
    is($r->{status}, 403, 'the {id} estimate as the Customer: 403');
    $r = $ng->req(POST => "/api/customers/internal/$ID/credit-score/estimate",
        auth => 'service');
    is($r->{status}, 200, 'a service estimates through internal/');
    is($ng->req(GET => "/api/customers/$ID/credit-status/history?limit=1")
        ->{json}{data}{history}[0]{changedBy}, 'service',
        '... changedBy service');

    is_error($ng->req(POST =>
        "/api/customers/$CT::MISSING/credit-score/estimate"), 404,
        'Customer not found', ['customerId'], 'estimate of a missing customer');
    is_error($ng->req(POST => '/api/customers/nope/credit-score/estimate'),
        400, 'Validation failed', ['customerId'], 'estimate of a non-UUID');
}

# the clamps
{
    my ($hi) = CT::make_customer($ng, 'scorehigh');
    my %p = (annualIncome => 10000000, monthlyDebts => 0,
        totalAssets => 900000000, totalLiabilities => 0);
    profile($hi, %p);
    $ng->req(PUT => "/api/customers/$hi/survey/answers", json => { answers => {
        $HOUSING => 'own', $ACCOUNTS => ['savings', 'checking'],
        $YEARS => 20, $DEFAULTED => $F } });
    my $r = $ng->req(POST => "/api/customers/$hi/credit-score/estimate");
    check_estimate($r, { %p, employmentStatus => 'employed' }, 95,
        'the best case');
    is($r->{json}{data}{creditScore}, 850, '... clamped to 850');

    my ($lo) = CT::make_customer($ng, 'scorelow');
    %p = (annualIncome => 0, monthlyDebts => 90000, totalAssets => 0,
        totalLiabilities => 1000000, employmentStatus => 'unemployed');
    profile($lo, %p);
    $ng->req(PUT => "/api/customers/$lo/survey/answers", json => { answers => {
        $HOUSING => 'other', $ACCOUNTS => ['loans'], $YEARS => 0,
        $DEFAULTED => $T } });
    $r = $ng->req(POST => "/api/customers/$lo/credit-score/estimate");
    check_estimate($r, \%p, -95, 'the worst case');
    is($r->{json}{data}{creditScore}, 300, '... clamped to 300');
}

# A client that goes away while its estimate waits to be stored: the
# retry with its key stores one score.
{
    my $before = CT::sql($db, q{SELECT count(*) FROM credit_history
        WHERE customer_id = :'p1'}, $ID);
    my $s = CT::psql_session($db);
    $s->run('BEGIN');
    $s->run("SELECT 1 FROM customers WHERE id = '$ID' FOR UPDATE");
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $ng->port, Proto => 'tcp') or die "connect: $!";
    print $sock "POST /api/customers/$ID/credit-score/estimate HTTP/1.1\r\n"
        . 'Host: t' . "\r\nAuthorization: Bearer " . CT::admin_token()
        . "\r\nIdempotency-Key: est-abort\r\nContent-Length: 0\r\n\r\n";
    ok(CT::wait_for(sub { CT::lock_waiters($db) >= 1 }),
        'an estimate waits to be stored');
    close $sock;
    $s->run('COMMIT');
    $s->close;
    ok(CT::wait_for(sub {
            my $x = $ng->req(POST => "/api/customers/$ID/credit-score/estimate",
                headers => { 'Idempotency-Key' => 'est-abort' });
            $x->{status} == 200 || ($x->{status} == 409
                && $x->{json}{message} eq 'Request already applied') }),
        'its retry with the key answers');
    is(CT::sql($db, q{SELECT count(*) FROM credit_history
        WHERE customer_id = :'p1'}, $ID), $before + 1,
        '... one score stored');
}

# The same for a submission of answers and for a new question: the
# retry with the key writes once.
sub abort_then_retry {
    my ($lock, $method, $path, $json, $key, $count, $name) = @_;
    my $before = $count->();
    my $s = CT::psql_session($db);
    $s->run('BEGIN');
    $s->run($lock);
    my $body = JSON::PP->new->canonical->encode($json);
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $ng->port, Proto => 'tcp') or die "connect: $!";
    print $sock "$method $path HTTP/1.1\r\nHost: t\r\n"
        . 'Authorization: Bearer ' . CT::admin_token() . "\r\n"
        . "Idempotency-Key: $key\r\nContent-Type: application/json\r\n"
        . 'Content-Length: ' . length($body) . "\r\n\r\n$body";
    ok(CT::wait_for(sub { CT::lock_waiters($db) >= 1 }), "$name waits");
    close $sock;
    $s->run('COMMIT');
    $s->close;
    ok(CT::wait_for(sub {
            my $x = $ng->req($method => $path, body => $body,
                headers => { 'Idempotency-Key' => $key,
                    'Content-Type' => 'application/json' });
            $x->{status} =~ /^20[01]$/ || ($x->{status} == 409
                && $x->{json}{message} eq 'Request already applied') }),
        "... its retry with the key answers");
    is($count->(), $before + 1, '... written once');
}

abort_then_retry("SELECT 1 FROM customers WHERE id = '$ID' FOR UPDATE",
    PUT => "/api/customers/$ID/survey/answers",
    { answers => { $HOUSING => 'rent' } }, 'answers-abort', \&submissions,
    'a submission whose client goes away');
abort_then_retry('LOCK TABLE survey_questions IN SHARE MODE',
    POST => '/api/survey/questions', { text => 'Abort?', kind => 'boolean' },
    'question-abort', \&questions, 'a new question whose client goes away');

done_testing();
