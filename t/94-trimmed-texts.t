# Texts are trimmed before they are stored and before they are passed on:
# the reason of PATCH /api/customers/{id}/status and of POST .../deactivate
# lands in customer_status_history and the Auth Service's event row, and
# in the Auth Service call (a recording peer), without the white space
# around it;
# so do a note's content, a loyalty reason, a credit source, a customer's
# fullName and a vehicle's make. White space only, for the nullable
# reason, is an empty reason, never one with blanks.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $T = JSON::PP::true;
my $F = JSON::PP::false;
my $PEER_KEY = 'peer-key-trim-0123456789abcdef';

my $auth = CT::peer_start(handler =>
    sub { [200, {}, { success => $T, message => 'ok' }] });
my $db = CT::db_create();
my ($http, $server) = CT::peer_conf(auth => $auth, key => $PEER_KEY);
my $ng = CT::nginx_start(db => $db, http_extra => $http,
    server_extra => $server);

my $SEQ = 0;

sub customer {
    my $user = "trim-$$-" . ++$SEQ;
    my $r = $ng->req(POST => '/api/customers', json => { userId => $user,
        email => "$user\@example.com", fullName => "  Trim Test\t \n" });
    is($r->{status}, 201, "customer $user: 201") or diag($r->{body});
    return (($r->{json}{data} // {})->{customerId}, $user);
}

sub one {
    my ($sql, @bind) = @_;
    return scalar CT::sql($db, $sql, @bind);
}

sub auth_reason {
    my ($user) = @_;
    my @calls = grep { $_->{path} eq "/api/auth/user/$user/status" }
        $auth->requests;
    is(scalar @calls, 1, "$user: one Auth Service call");
    return ($calls[-1] // {})->{json};
}


# --- status reasons --------------------------------------------------------

for my $c (["  chargebacks  ", 'chargebacks'],
    ["\n\t fraud review \r\n", 'fraud review'],
    ["  two  words  ", 'two  words'])
{
    my ($reason, $want) = @$c;
    my ($id, $user) = customer();
    (my $shown = $reason) =~ s/([\t\r\n])/sprintf '\\x%02x', ord $1/ge;

    my $r = $ng->req(PATCH => "/api/customers/$id/status",
        json => { status => 'Suspended', reason => $reason });
    is($r->{status}, 200, "status, reason \"$shown\": 200")
        or diag($r->{body});
    is(one(q{SELECT reason FROM customer_status_history
        WHERE customer_id = :'p1'}, $id), $want,
        "status, reason \"$shown\": history holds \"$want\"");
    is(one(q{SELECT data->>'reason' FROM events WHERE destination = 'auth'
        AND customer_id = :'p1'}, $id), $want, "status, reason \"$shown\": outbox holds \"$want\"");
    my $call = auth_reason($user);
    is(($call // {})->{reason}, $want,
        "status, reason \"$shown\": the Auth Service is told \"$want\"");
    is(($call // {})->{isActive}, $F, '... and isActive false');
}

{
    my ($id, $user) = customer();
    my $r = $ng->req(POST => "/api/customers/$id/deactivate",
        json => { reason => "   left the country   " });
    is($r->{status}, 200, 'deactivate: 200') or diag($r->{body});
    is(one(q{SELECT reason FROM customer_status_history
        WHERE customer_id = :'p1'}, $id), 'left the country',
        'deactivate: history holds the trimmed reason');
    is(one(q{SELECT data->>'reason' FROM events WHERE destination = 'auth'
        AND customer_id = :'p1'}, $id), 'left the country', 'deactivate: outbox holds the trimmed reason');
    is((auth_reason($user) // {})->{reason}, 'left the country',
        'deactivate: the Auth Service is told the trimmed reason');
}

{
    my ($id, $user) = customer();
    my $r = $ng->req(PATCH => "/api/customers/$id/status",
        json => { status => 'Inactive', reason => "  \t " });
    is($r->{status}, 200, 'status, reason of blanks: 200')
        or diag($r->{body});
    is(one(q{SELECT quote_nullable(reason) FROM customer_status_history
        WHERE customer_id = :'p1'}, $id), q{''},
        'status, reason of blanks: stored empty');
}


# --- other texts -------------------------------------------------------

{
    my ($id, $user) = customer();
    is(one(q{SELECT full_name FROM customers WHERE id = :'p1'}, $id),
        'Trim Test', 'fullName stored trimmed');

    my $r = $ng->req(POST => "/api/customers/$id/notes",
        json => { content => "  a note \n" });
    is($r->{status}, 201, 'note: 201') or diag($r->{body});
    is(one(q{SELECT content FROM customer_notes WHERE customer_id = :'p1'},
        $id), 'a note', 'note content stored trimmed');

    $r = $ng->req(POST => "/api/customers/$id/loyalty/earn",
        json => { points => 10, reason => "  welcome  " });
    is($r->{status}, 201, 'loyalty earn: 201') or diag($r->{body});
    is(one(q{SELECT reason FROM loyalty_transactions
        WHERE customer_id = :'p1'}, $id), 'welcome',
        'loyalty reason stored trimmed');

    $r = $ng->req(PUT => "/api/customers/$id/credit-status",
        json => { creditScore => 700, source => "  bureau  " });
    is($r->{status}, 200, 'credit status: 200') or diag($r->{body});
    is(one(q{SELECT source FROM credit_status WHERE customer_id = :'p1'},
        $id), 'bureau', 'credit source stored trimmed');

    $r = $ng->req(POST => "/api/customers/$id/vehicles", json => {
        make => "  Honda ", model => " Accord", year => 2003,
        vin => '1HGCM82633A004352' });
    is($r->{status}, 201, 'vehicle: 201') or diag($r->{body});
    is(one(q{SELECT make || '|' || model FROM vehicles
        WHERE customer_id = :'p1'}, $id), 'Honda|Accord',
        'vehicle make and model stored trimmed');
}

done_testing();
