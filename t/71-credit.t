# Credit status of a customer: PUT by an Administrator or a
# service sets the score; in one statement the band, a history row and
# the alerts (drop, rise, milestone; threshold credit_settings
# alert_points = 50).  GET of the status, the paged history and alerts by
# an Administrator or the Customer itself; PATCH marks an alert read.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use POSIX ();

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db, workers => 2);

my $ARROW = "\x{2192}";

my @STATUS_KEYS = sort qw(customerId creditScore band source lastUpdated);
my @PUT_KEYS = sort qw(customerId creditScore band previousScore
    previousBand source lastUpdated alerts);
my @ALERT_KEYS = sort qw(alertId customerId kind message creditScore
    previousScore band isRead readAt createdAt);
my @HISTORY_KEYS = sort qw(historyId creditScore previousScore band
    previousBand source changedBy changedAt);


# --- helpers -------------------------------------------------------------

sub make_customer { CT::make_customer($ng, 'credit') }

sub counts {
    return CT::sql($db, q{SELECT (SELECT count(*) FROM credit_status) || ','
        || (SELECT count(*) FROM credit_history) || ','
        || (SELECT count(*) FROM credit_alerts)});
}

sub put {
    my ($id, $body, %o) = @_;
    return $ng->req(PUT => "/api/customers/$id/credit-status",
        json => $body, %o);
}

sub set_score {
    my ($id, $score) = @_;
    my $r = put($id, { creditScore => $score, source => 'bureau' });
    die "PUT failed: $r->{body}" unless $r->{status} == 200;
    return $r->{json}{data};
}


my ($ID, $SUB) = make_customer();
my ($OTHER, $OTHER_SUB) = make_customer();
my $CUSTOMER = CT::customer_token($SUB);


# --- no score yet ----------------------------------------------------------

{
    my $r = $ng->req(GET => "/api/customers/$ID/credit-status");
    is_error($r, 404, 'Credit status not found', ['creditScore'],
        'GET before any score');
    $r = $ng->req(GET => '/api/customers/me/credit-status',
        auth => $CUSTOMER);
    is_error($r, 404, 'Credit status not found', ['creditScore'],
        'GET me before any score');
    $r = $ng->req(GET => "/api/customers/$MISSING/credit-status");
    is_error($r, 404, 'Customer not found', ['customerId'],
        'GET of an unknown customer');
    $r = $ng->req(GET => '/api/customers/me/credit-status',
        auth => CT::customer_token('credit-nobody'));
    is_error($r, 404, 'Customer not found', ['userId'],
        'GET me without a record');
}


# --- a sequence of scores --------------------------------------------------

# an alert as the table writes it: moved(rise|drop, FROM, TO, BANDS) and
# milestone(BAND, SCORE)
sub moved {
    my ($kind, $from, $to, $bands) = @_;
    return [$kind, 'Credit score ' . ($kind eq 'rise' ? 'rose' : 'dropped')
        . " from $from to $to ($bands)"];
}

sub milestone {
    my ($band, $score) = @_;
    return ['milestone',
        "Credit score reached the $band band for the first time ($score)"];
}

my @SEQUENCE = (
    # score, band, alerts [kind, message]
    [560, 'Poor', []],
    [600, 'Fair', [moved(rise => 560, 600, "Poor $ARROW Fair"),
        milestone('Fair', 600)]],
    [690, 'Good', [moved(rise => 600, 690, "Fair $ARROW Good"),
        milestone('Good', 690)]],
    [650, 'Fair', [moved(drop => 690, 650, "Good $ARROW Fair")]],
    [760, 'Very Good', [moved(rise => 650, 760, "Fair $ARROW Very Good"),
        milestone('Very Good', 760)]],
    [700, 'Good', [moved(drop => 760, 700, "Very Good $ARROW Good")]],
    [810, 'Exceptional', [moved(rise => 700, 810, "Good $ARROW Exceptional"),
        milestone('Exceptional', 810)]],
    # same band, under the threshold: nothing
    [850, 'Exceptional', []],
    # same band, exactly the threshold
    [800, 'Exceptional', [moved(drop => 850, 800, 'Exceptional')]],
    # unchanged
    [800, 'Exceptional', []],
    [720, 'Good', [moved(drop => 800, 720, "Exceptional $ARROW Good")]],
    # Very Good again: a rise, no second milestone
    [769, 'Very Good', [moved(rise => 720, 769, "Good $ARROW Very Good")]],
    [739, 'Good', [moved(drop => 769, 739, "Very Good $ARROW Good")]],
    [300, 'Poor', [moved(drop => 739, 300, "Good $ARROW Poor")]],
    # same band, over the threshold
    [579, 'Poor', [moved(rise => 300, 579, 'Poor')]],
    # a band by one point, below the threshold; Fair is not new
    [580, 'Fair', [moved(rise => 579, 580, "Poor $ARROW Fair")]],
);

{
    my ($prev, $pband);
    my @all_alerts;
    for my $s (@SEQUENCE) {
        my ($score, $band, $alerts) = @$s;
        my $r = put($ID, { creditScore => $score, source => 'bureau' });
        is($r->{status}, 200, "PUT $score: 200") or diag($r->{body});
        is($r->{json}{message}, 'Credit status updated successfully',
            "PUT $score: message");
        my $d = $r->{json}{data} // {};
        is_deeply([sort keys %$d], \@PUT_KEYS, "PUT $score: fields");
        is_deeply([@$d{qw(customerId creditScore band previousScore
            previousBand source)}], [$ID, $score, $band, $prev, $pband,
            'bureau'], "PUT $score: $band, previous "
            . ($prev // 'none'));
        like($d->{lastUpdated} // '', $TS, "PUT $score: lastUpdated");
        is_deeply([map { [$_->{kind}, $_->{message}] } @{ $d->{alerts} }],
            $alerts, "PUT $score: alerts " . join(',',
            map { $_->[0] } @$alerts)) or diag($r->{body});
        for my $a (@{ $d->{alerts} }) {
            is_deeply([sort keys %$a], \@ALERT_KEYS, "PUT $score: alert keys");
            like($a->{alertId}, $UUID, "PUT $score: alertId");
            is_deeply([@$a{qw(customerId creditScore previousScore band
                isRead readAt)}], [$ID, $score, $prev, $band, $F, undef],
                "PUT $score: alert $a->{kind}");
            unshift @all_alerts, $a;
        }
        ($prev, $pband) = ($score, $band);
    }

    # the history: one row per PUT, newest first
    my $r = $ng->req(GET => "/api/customers/$ID/credit-status/history"
        . '?limit=100');
    is($r->{status}, 200, 'GET history: 200') or diag($r->{body});
    is($r->{json}{message}, 'Credit history retrieved successfully',
        'GET history: message');
    my $h = $r->{json}{data}{history} // [];
    is(scalar @$h, scalar @SEQUENCE, 'GET history: one row per PUT');
    my @exp;
    my ($p, $pb);
    for my $s (@SEQUENCE) {
        unshift @exp, [$s->[0], $p, $s->[1], $pb, 'bureau', 'admin-user'];
        ($p, $pb) = @$s[0, 1];
    }
    is_deeply([map { [@$_{qw(creditScore previousScore band previousBand
        source changedBy)}] } @$h], \@exp,
        'GET history: scores and bands, newest first');
    is_deeply([sort keys %{ $h->[0] // {} }], \@HISTORY_KEYS,
        'GET history: item fields');
    like($h->[0]{changedAt} // '', $TS, 'GET history: changedAt');
    is($r->{json}{data}{pagination}{totalItems}, scalar @SEQUENCE,
        'GET history: totalItems');

    $r = $ng->req(GET => "/api/customers/$ID/credit-status/history"
        . '?limit=3&page=2');
    is_deeply([map { $_->{creditScore} } @{ $r->{json}{data}{history} }],
        [map { $_->[0] } @exp[3 .. 5]], 'GET history: page 2 of limit 3');
    is_deeply($r->{json}{data}{pagination}, { currentPage => 2,
        totalPages => POSIX::ceil(@SEQUENCE / 3), totalItems => scalar
        @SEQUENCE, itemsPerPage => 3, hasNextPage => $T,
        hasPreviousPage => $T }, 'GET history: pagination');
    $r = $ng->req(GET => "/api/customers/$ID/credit-status/history");
    is($r->{json}{data}{pagination}{itemsPerPage}, 20,
        'GET history: limit 20 by default');

    # the status
    $r = $ng->req(GET => "/api/customers/$ID/credit-status");
    is($r->{status}, 200, 'GET status: 200') or diag($r->{body});
    is($r->{json}{message}, 'Credit status retrieved successfully',
        'GET status: message');
    my $d = $r->{json}{data} // {};
    is_deeply([sort keys %$d], \@STATUS_KEYS, 'GET status: fields');
    is_deeply([@$d{qw(customerId creditScore band source)}],
        [$ID, 580, 'Fair', 'bureau'], 'GET status: the last score');
    like($d->{lastUpdated} // '', $TS, 'GET status: lastUpdated');
    my $me = $ng->req(GET => '/api/customers/me/credit-status',
        auth => $CUSTOMER);
    is($me->{status}, 200, 'GET me/credit-status: 200') or diag($me->{body});
    is_deeply($me->{json}{data}, $d, 'GET me/credit-status: the same');

    # the alerts, newest first
    $r = $ng->req(GET => "/api/customers/$ID/alerts?limit=100");
    is($r->{status}, 200, 'GET alerts: 200') or diag($r->{body});
    is($r->{json}{message}, 'Alerts retrieved successfully',
        'GET alerts: message');
    my $got = $r->{json}{data}{alerts} // [];
    is(scalar @$got, scalar @all_alerts, 'GET alerts: every alert');
    is_deeply([sort map { $_->{alertId} } @$got],
        [sort map { $_->{alertId} } @all_alerts],
        'GET alerts: the ones PUT answered');
    my @created = map { $_->{createdAt} } @$got;
    is_deeply(\@created, [sort { $b cmp $a } @created],
        'GET alerts: newest first');
    is(scalar(grep { $_->{kind} eq 'milestone' } @$got), 4,
        'GET alerts: 4 milestones');
    is(CT::sql($db, q{SELECT count(*) FROM credit_alerts
        WHERE customer_id = :'p1'}, $ID), scalar @all_alerts,
        'alerts stored: as many as answered');
}


# --- alerts: read, unread ----------------------------------------------------

{
    my $r = $ng->req(GET => "/api/customers/$ID/alerts?limit=100");
    my @alerts = @{ $r->{json}{data}{alerts} };
    my $n = @alerts;
    my ($a1, $a2) = @alerts[0, 1];

    $r = $ng->req(PATCH => "/api/customers/$ID/alerts/$a1->{alertId}",
        json => { read => $T });
    is($r->{status}, 200, 'PATCH alert read: 200') or diag($r->{body});
    is($r->{json}{message}, 'Alert updated successfully',
        'PATCH alert: message');
    is_deeply([sort keys %{ $r->{json}{data} // {} }], \@ALERT_KEYS,
        'PATCH alert: the alert');
    is($r->{json}{data}{isRead}, $T, 'PATCH alert: isRead');
    like($r->{json}{data}{readAt} // '', $TS, 'PATCH alert: readAt');

    $r = $ng->req(PATCH => "/api/customers/$ID/alerts/$a2->{alertId}",
        auth => $CUSTOMER, json => { read => $T });
    is($r->{status}, 200, 'PATCH own alert by the Customer: 200')
        or diag($r->{body});

    $r = $ng->req(GET => "/api/customers/$ID/alerts?unread=true&limit=100");
    is($r->{json}{data}{pagination}{totalItems}, $n - 2,
        'GET alerts?unread=true: two fewer');
    ok(!(grep { $_->{isRead} } @{ $r->{json}{data}{alerts} }),
        '... none read');
    $r = $ng->req(GET => "/api/customers/$ID/alerts?unread=false");
    is_deeply([sort map { $_->{alertId} } @{ $r->{json}{data}{alerts} }],
        [sort $a1->{alertId}, $a2->{alertId}], 'GET alerts?unread=false');

    $r = $ng->req(PATCH => "/api/customers/$ID/alerts/$a1->{alertId}",
        json => { read => $F });
    is($r->{status}, 200, 'PATCH alert unread: 200');
    is($r->{json}{data}{isRead}, $F, '... isRead false');
    is($r->{json}{data}{readAt}, undef, '... readAt null');
    $r = $ng->req(GET => "/api/customers/$ID/alerts?unread=false",
        auth => $CUSTOMER);
    is($r->{status}, 200, 'Customer GET own alerts: 200');
    is_deeply([map { $_->{alertId} } @{ $r->{json}{data}{alerts} }],
        [$a2->{alertId}], '... one read now');

    is_error($ng->req(PATCH => "/api/customers/$OTHER/alerts/$a1->{alertId}",
        json => { read => $T }), 404, 'Alert not found', ['alertId'],
        "PATCH an alert under another customer");
    is_error($ng->req(PATCH => "/api/customers/$ID/alerts/$MISSING",
        json => { read => $T }), 404, 'Alert not found', ['alertId'],
        'PATCH an unknown alert');
    is_error($ng->req(PATCH => "/api/customers/$ID/alerts/$a1->{alertId}",
        auth => CT::customer_token($OTHER_SUB), json => { read => $T }),
        404, 'Alert not found', ['alertId'],
        "PATCH by another Customer");
    is_error($ng->req(PATCH => "/api/customers/$ID/alerts/nope",
        json => { read => 'yes' }), 400, 'Validation failed',
        [qw(alertId read)], 'PATCH: bad id and body');
    is_error($ng->req(PATCH => "/api/customers/$ID/alerts/$a1->{alertId}",
        json => {}), 400, 'Validation failed', ['read'],
        'PATCH: read missing');
    is_error($ng->req(GET => "/api/customers/$ID/alerts?unread=1&limit=0"),
        400, 'Validation failed', [qw(unread limit)], 'GET alerts: bad args');
    is_error($ng->req(GET => "/api/customers/$MISSING/alerts"), 404,
        'Customer not found', ['customerId'], 'GET alerts: unknown customer');
}


# --- validation writes nothing ----------------------------------------------

{
    my $before = counts();
    my @cases = (
        [{ creditScore => 299 }, ['creditScore'], 'score 299'],
        [{ creditScore => 851 }, ['creditScore'], 'score 851'],
        [{ creditScore => 700.5 }, ['creditScore'], 'score 700.5'],
        [{ creditScore => '700' }, ['creditScore'], 'score a string'],
        [{ creditScore => undef }, ['creditScore'], 'score null'],
        [{ creditScore => -700 }, ['creditScore'], 'score negative'],
        [{}, ['creditScore'], 'score missing'],
        [{ source => 'x' }, ['creditScore'], 'only a source'],
        [{ creditScore => 700, band => 'Good' }, ['band'],
            'an unknown field'],
        [{ creditScore => 700, source => 'x' x 51 }, ['source'],
            'source of 51'],
        [{ creditScore => 1, source => 5, extra => 1 },
            [qw(creditScore source extra)], 'every bad field'],
    );
    for my $c (@cases) {
        my ($body, $fields, $name) = @$c;
        is_error(put($ID, $body), 400, 'Validation failed', $fields,
            "PUT: $name");
    }
    is_error(put('not-a-uuid', { creditScore => 1 }), 400,
        'Validation failed', [qw(customerId creditScore)],
        'PUT: a bad id and a bad body');
    is_error(put($MISSING, { creditScore => 700 }), 404,
        'Customer not found', ['customerId'], 'PUT: unknown customer');
    is(counts(), $before, 'refusals: nothing written');

    my $r = put($OTHER, { creditScore => 700, source => 'x' x 50 });
    is($r->{status}, 200, 'PUT: source of 50: 200') or diag($r->{body});
    is_deeply($r->{json}{data}{alerts}, [], 'PUT: a first score, no alert');
    is($r->{json}{data}{previousScore}, undef, '... previousScore null');
    $r = put($OTHER, { creditScore => 850 });
    is($r->{json}{data}{source}, undef, 'PUT without source: source null');
}


# --- roles ------------------------------------------------------------------

{
    my $before = counts();
    is_error(put($ID, { creditScore => 700 }, auth => $CUSTOMER), 403,
        'Access denied', ['authorization'], 'PUT by a Customer');
    is_error(put($ID, { creditScore => 700 }, auth => 'service'), 401,
        undef, ['authorization'], 'PUT admin route with a service key');
    is_error(put($ID, { creditScore => 700 }, auth => 'none'), 401,
        undef, ['authorization'], 'PUT without a token');
    is_error($ng->req(PUT => "/api/customers/internal/$ID/credit-status",
        json => { creditScore => 700 }), 401, undef, ['X-Service-API-Key'],
        'PUT internal with a bearer token');
    is(counts(), $before, 'refused PUTs: nothing written');

    my $r = $ng->req(PUT => "/api/customers/internal/$ID/credit-status",
        auth => 'service', json => { creditScore => 640,
        source => 'scoring' });
    is($r->{status}, 200, 'PUT internal with a service key: 200')
        or diag($r->{body});
    is_deeply([@{ $r->{json}{data} // {} }{qw(creditScore band
        previousScore previousBand source)}],
        [640, 'Fair', 580, 'Fair', 'scoring'], 'PUT internal: stored');
    is_deeply([map { $_->{kind} } @{ $r->{json}{data}{alerts} }], ['rise'],
        'PUT internal: a rise of 60');
    is(CT::sql($db, q{SELECT changed_by FROM credit_history
        WHERE customer_id = :'p1' ORDER BY id DESC LIMIT 1}, $ID),
        'service', 'PUT internal: changed_by service');
    is_error($ng->req(PUT => "/api/customers/internal/$MISSING/credit-status",
        auth => 'service', json => { creditScore => 640 }), 404,
        'Customer not found', ['customerId'], 'PUT internal: unknown');

    $r = $ng->req(GET => "/api/customers/$ID/credit-status",
        auth => $CUSTOMER);
    is($r->{status}, 200, 'Customer GET own status: 200');
    is($r->{json}{data}{creditScore}, 640, '... the score');
    $r = $ng->req(GET => "/api/customers/$ID/credit-status/history",
        auth => $CUSTOMER);
    is($r->{status}, 200, 'Customer GET own history: 200');

    my $other = CT::customer_token($OTHER_SUB);
    for my $path ("/api/customers/$ID/credit-status",
        "/api/customers/$ID/credit-status/history",
        "/api/customers/$ID/alerts")
    {
        is_error($ng->req(GET => $path, auth => $other), 404,
            'Customer not found', ['customerId'],
            "another Customer GET $path");
    }
    $r = $ng->req(GET => '/api/customers/me/credit-status', auth => $other);
    is($r->{json}{data}{creditScore}, 850, 'me/credit-status: its own');
    is_error($ng->req(GET => "/api/customers/$ID/credit-status",
        auth => 'none'), 401, undef, ['authorization'],
        'GET status without a token');
}


# --- concurrent PUTs: each history row follows the one before ---------------

{
    my ($cid) = make_customer();
    set_score($cid, 600);
    my $ok = CT::in_parallel(10, sub {
        my ($i) = @_;
        my $r = put($cid, { creditScore => 600 + 20 * $i });
        return $r->{status} == 200;
    });
    is($ok, 10, '10 concurrent PUTs: all 200');
    my $rows = JSON::PP->new->decode(CT::sql($db, q{SELECT json_agg(
        json_build_array(credit_score, previous_score, band, previous_band)
        ORDER BY id) FROM credit_history WHERE customer_id = :'p1'}, $cid));
    is(scalar @$rows, 11, '10 concurrent PUTs: 11 history rows');
    my @broken = grep { $rows->[$_][1] != $rows->[$_ - 1][0]
        || $rows->[$_][3] ne $rows->[$_ - 1][2] } 1 .. $#$rows;
    is_deeply(\@broken, [],
        '10 concurrent PUTs: each previous is the row before');
    is(CT::sql($db, q{SELECT credit_score FROM credit_status
        WHERE customer_id = :'p1'}, $cid), $rows->[-1][0],
        '10 concurrent PUTs: the status is the last history row');
}


# --- deleting a customer deletes its credit rows ----------------------------

{
    my ($cid) = make_customer();
    set_score($cid, 500);
    set_score($cid, 700);
    my $r = $ng->req(DELETE => "/api/customers/$cid");
    is($r->{status}, 200, 'DELETE customer with a score: 200')
        or diag($r->{body});
    is(CT::sql($db, q{SELECT (SELECT count(*) FROM credit_status
        WHERE customer_id = :'p1') + (SELECT count(*) FROM credit_history
        WHERE customer_id = :'p1') + (SELECT count(*) FROM credit_alerts
        WHERE customer_id = :'p1')}, $cid), 0,
        'DELETE customer: its credit rows are gone');
}

done_testing();
