# A Customer whose record is Inactive or Suspended is refused on every
# route at once (403 in the error envelope, nothing written), with the
# token it already holds; set back to Active it is served again. Admins
# and services are not affected, and a Customer without a record yet is
# not refused by this check.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db);

my $u = "acct-$$";
my $c = $ng->req(POST => '/api/customers', json => { userId => $u,
    email => "$u\@example.com", fullName => 'Account Holder' });
is($c->{status}, 201, 'a customer') or diag($c->{body});
my $id = $c->{json}{data}{customerId};
my $tok = CT::customer_token($u);

my @routes = (
    [GET => '/api/customers/me'],
    [GET => '/api/customers/me/statistics'],
    [GET => '/api/customers/me/preferences'],
    [GET => "/api/customers/$id/vehicles"],
    [GET => "/api/customers/$id/loyalty"],
    [GET => "/api/customers/$id/notes"],
    [PATCH => '/api/customers/me', { contactNumber => '+15550111' }],
    [PUT => '/api/customers/me/preferences', { theme => 'dark' }],
    [POST => "/api/customers/$id/vehicles", { vin => '1HGCM82633A004352',
        make => 'Honda', model => 'Accord', year => 2003 }],
);

sub call {
    my ($m, $path, $json) = @_;
    return $ng->req($m => $path, auth => $tok,
        defined $json ? (json => $json) : ());
}

for my $rt (@routes[0 .. 5]) {
    my $r = call(@$rt);
    is($r->{status}, 200, "Active: $rt->[0] $rt->[1] 200") or diag($r->{body});
}

sub state_of {
    CT::sql($db, q{SELECT coalesce(contact_number, '-') || ' '
        || version || ' ' || (SELECT count(*) FROM vehicles)
        FROM customers WHERE id = :'p1'}, $id);
}

for my $status (qw(Suspended Inactive)) {
    CT::sql($db, q{UPDATE customers SET customer_status = :'p1'
        WHERE id = :'p2'}, $status, $id);
    my $before = state_of();
    for my $rt (@routes) {
        my $r = call(@$rt);
        is($r->{status}, 403, "$status: $rt->[0] $rt->[1] 403")
            or diag($r->{body});
        is($r->{json} && $r->{json}{success}, JSON::PP::false(),
            "$status: in the envelope");
        is($r->{json} && $r->{json}{errors}[0]{message},
            "This customer account is $status", "$status: saying why");
    }
    is(state_of(), $before, "$status: nothing written");
    my $a = $ng->req(GET => "/api/customers/$id");
    is($a->{status}, 200, "$status: an admin still reads the record");
    my $s = $ng->req(GET => "/api/customers/internal/user/$u",
        auth => 'service');
    is($s->{status}, 200, "$status: a service too") or diag($s->{body});
}

# through the API as well: a status change takes effect on the next request
{
    CT::sql($db, q{UPDATE customers SET customer_status = 'Active'
        WHERE id = :'p1'}, $id);
    is(call(GET => '/api/customers/me')->{status}, 200, 'Active again: 200');
    my $p = $ng->req(PATCH => "/api/customers/$id/status",
        json => { status => 'Suspended', reason => 'fraud check' });
    is($p->{status}, 200, 'an admin suspends it') or diag($p->{body});
    is(call(GET => '/api/customers/me')->{status}, 403,
        'the next request with the same token: 403');
    $p = $ng->req(PATCH => "/api/customers/$id/status",
        json => { status => 'Active', reason => 'cleared' });
    is(call(GET => '/api/customers/me')->{status}, 200,
        'reactivated: 200');
}

# a Customer with no record is not refused by the check
{
    my $r = $ng->req(GET => '/api/customers/me',
        auth => CT::customer_token("nobody-$$"));
    is($r->{status}, 404, 'no record: 404, not 403') or diag($r->{body});
}

$ng->stop;
CT::done_testing();
