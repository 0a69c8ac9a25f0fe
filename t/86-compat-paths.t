# The paths of the older services' clients: the ServEase service's
# /api/v1/.../ (trailing slashes included) and the loyalty service's
# /customers/..., mapped onto /api by conf/compat/servease.conf and
# conf/compat/loyalty.conf, which conf/nginx.conf includes. Every path the
# two services list is called through them and must answer as its /api
# path does (the same status and resource, the write in the database);
# the 10 MB document limit of conf/nginx.conf applies to an upload sent
# to the old path too.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $ROOT = CT::root();

# what conf/nginx.conf puts in its server{}: the compat includes (made
# absolute) and the document upload location(s), as written there
sub conf_parts {
    open my $fh, '<', "$ROOT/conf/nginx.conf" or die "conf/nginx.conf: $!";
    my $conf = do { local $/; <$fh> };
    my @inc = $conf =~ /^[ \t]*include\s+(compat\/\S+);/mg;
    my @loc = $conf =~ /^([ \t]*location\s+~\s+\S*documents\S*\s*\{[^}]*\})/mg;
    return (\@inc, \@loc);
}

my ($inc, $loc) = conf_parts();
is_deeply([sort @$inc], ['compat/loyalty.conf', 'compat/servease.conf'],
    'conf/nginx.conf includes both compat files');
ok(scalar @$loc, 'conf/nginx.conf has a documents location');
like(join('', @$loc), qr/client_max_body_size\s+10m;/,
    'conf/nginx.conf: the documents location allows 10 MB');

my $extra = join '', map { "        include $ROOT/conf/$_;\n" } @$inc;
$extra .= "$_\n" for @$loc;

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db, server_extra => $extra);

my $n = 0;

# call(METHOD, OLD PATH, STATUS, %req): the request through the old path
sub call {
    my ($method, $path, $status, %o) = @_;
    my $r = $ng->req($method => $path, %o);
    is($r->{status}, $status, "$method $path: $status")
        or diag($r->{body});
    ok(ref $r->{json} eq 'HASH'
        && ($r->{json}{success} ? 1 : 0) == ($status < 300 ? 1 : 0),
        "$method $path: the envelope") or diag($r->{body});
    return $r;
}

sub customer_body {
    my $u = CT::uniq('compat');
    return { userId => $u, email => "$u\@example.com",
        fullName => 'Compat Paths', contactNumber => '+14155550100' };
}

# --- the ServEase service's paths -----------------------------------------

my $r = call(POST => '/api/v1/customers/', 201, json => customer_body());
my $ID = $r->{json}{data}{customerId} // '';
like($ID, $UUID, 'POST /api/v1/customers/: a customerId');
is(CT::sql($db, q{SELECT count(*) FROM customers WHERE id = :'p1'}, $ID),
    1, 'POST /api/v1/customers/: stored');

$r = call(GET => '/api/v1/customers/', 200);
is($r->{json}{data}{pagination}{totalItems}, 1,
    'GET /api/v1/customers/: the list');
$r = call(GET => '/api/v1/customers/?limit=1&status=Active', 200);
is(scalar @{ $r->{json}{data}{customers} // [] }, 1,
    'GET /api/v1/customers/?...: the query string is kept');
$r = call(GET => '/api/v1/customers/?status=Bogus', 400);

$r = call(GET => "/api/v1/customers/$ID/", 200);
is($r->{json}{data}{customerId}, $ID, "GET /api/v1/customers/{id}/: it");
my $api = $ng->req(GET => "/api/customers/$ID");
is_deeply($r->{json}{data}, $api->{json}{data},
    'GET /api/v1/customers/{id}/ answers as GET /api/customers/{id}');

$r = call(PUT => "/api/v1/customers/$ID/", 200,
    json => { fullName => 'Compat Put' });
is(CT::sql($db, q{SELECT full_name FROM customers WHERE id = :'p1'}, $ID),
    'Compat Put', 'PUT /api/v1/customers/{id}/: stored');
$r = call(PATCH => "/api/v1/customers/$ID/", 200,
    json => { tags => ['compat'] });
is_deeply($r->{json}{data}{tags}, ['compat'],
    'PATCH /api/v1/customers/{id}/: the tags');

$r = call(GET => "/api/v1/customers/$ID/dashboard/", 200);
is($r->{json}{data}{customer}{customerId}, $ID,
    'GET /api/v1/customers/{id}/dashboard/: its dashboard');
$r = call(GET => "/api/v1/customers/$ID/preferences/", 200);
$r = call(PUT => "/api/v1/customers/$ID/preferences/", 200,
    json => { language => 'de' });
is($r->{json}{data}{preferences}{language}, 'de',
    'PUT /api/v1/customers/{id}/preferences/: the language');

# a vehicle, so that the vehicle paths have one
my $VIN = CT::new_vin('1HGCM82600');
$r = $ng->req(POST => "/api/customers/$ID/vehicles", json => {
    make => 'Honda', model => 'Accord', year => 2003, vin => $VIN });
is($r->{status}, 201, 'a vehicle') or diag($r->{body});
my $VID = $r->{json}{data}{vehicleId} // '';

$r = call(GET => "/api/v1/customers/$ID/vehicles/", 200);
is($r->{json}{data}{vehicles}[0]{vehicleId}, $VID,
    'GET /api/v1/customers/{id}/vehicles/: the vehicle');

$r = call(GET => '/api/v1/vehicles/', 200);
is($r->{json}{data}{pagination}{totalItems}, 1, 'GET /api/v1/vehicles/');
$r = call(POST => '/api/v1/vehicles/', 201, json => { customerId => $ID,
    make => 'Honda', model => 'Civic', year => 2010,
    vin => CT::new_vin('1HGCM82600') });
my $VID2 = $r->{json}{data}{vehicleId} // '';
is(CT::sql($db, q{SELECT customer_id FROM vehicles WHERE id = :'p1'},
    $VID2), $ID, 'POST /api/v1/vehicles/: stored for its customer');
$r = call(GET => "/api/v1/vehicles/$VID/", 200);
is($r->{json}{data}{vin}, $VIN, 'GET /api/v1/vehicles/{id}/: it');
$r = call(PUT => "/api/v1/vehicles/$VID/", 200, json => { make => 'Honda',
    model => 'Accord', year => 2003, vin => $VIN, color => 'blue' });
is($r->{json}{data}{color}, 'blue', 'PUT /api/v1/vehicles/{id}/: stored');
$r = call(POST => "/api/v1/vehicles/$VID/update-mileage/", 200,
    json => { mileage => 1234 });
is(CT::sql($db, q{SELECT mileage FROM vehicles WHERE id = :'p1'}, $VID),
    1234, 'POST /api/v1/vehicles/{id}/update-mileage/: stored');
$r = call(POST => "/api/v1/vehicles/$VID/update-mileage/", 422,
    json => { mileage => 1 });
$r = call(GET => "/api/v1/vehicles/$VID/service-status/", 200);
is($r->{json}{data}{vehicleId}, $VID,
    'GET /api/v1/vehicles/{id}/service-status/: its status');

$r = $ng->req(POST => "/api/vehicles/$VID/service-records", json => {
    serviceDate => '2024-01-02', mileage => 1300,
    description => 'Oil change' });
is($r->{status}, 201, 'a service record') or diag($r->{body});
$r = call(GET => "/api/v1/customers/$ID/service-history/", 200);
is($r->{json}{data}{pagination}{totalItems}, 1,
    'GET /api/v1/customers/{id}/service-history/: the record');

# documents: the upload through the old path, with its trailing slash
my $day = CT::sql($db, q{SELECT ((now() AT TIME ZONE 'UTC')::date + 10)::text});
$r = call(POST => "/api/v1/customers/$ID/documents/?type=insurance"
    . "&title=Policy&expiresAt=$day", 201, body => 'policy bytes',
    headers => { 'Content-Type' => 'text/plain' });
my $DOC = $r->{json}{data}{documentId} // '';
$r = call(GET => "/api/v1/customers/$ID/documents/", 200);
is($r->{json}{data}{documents}[0]{documentId}, $DOC,
    'GET /api/v1/customers/{id}/documents/: the document');
$r = call(GET => '/api/v1/documents/', 200);
is($r->{json}{data}{documents}[0]{documentId}, $DOC,
    'GET /api/v1/documents/: the document');
$r = call(POST => "/api/v1/documents/?customerId=$ID&type=other"
    . '&title=Receipt', 201, body => 'receipt',
    headers => { 'Content-Type' => 'text/plain' });
is($r->{json}{data}{customerId}, $ID, 'POST /api/v1/documents/: for it');
$r = call(GET => '/api/v1/documents/expiring-soon/', 200);
is($r->{json}{data}{documents}[0]{documentId}, $DOC,
    'GET /api/v1/documents/expiring-soon/: the policy');

$r = call(POST => '/api/v1/notes/', 201, json => { customerId => $ID,
    content => 'Called about the Accord', noteType => 'service' });
my $NOTE = $r->{json}{data}{noteId} // '';
$r = call(GET => '/api/v1/notes/', 200);
is($r->{json}{data}{notes}[0]{noteId}, $NOTE, 'GET /api/v1/notes/: it');

$r = call(GET => '/api/v1/customers/stats/', 200);
is($r->{json}{data}{totalCustomers},
    1, 'GET /api/v1/customers/stats/: one customer')
    or diag($r->{body});

$r = call(POST => "/api/v1/customers/$ID/verify/", 200);
is(CT::sql($db, q{SELECT is_verified FROM customers WHERE id = :'p1'}, $ID),
    't', 'POST /api/v1/customers/{id}/verify/: stored');
$r = call(POST => "/api/v1/customers/$ID/deactivate/", 200);
is(CT::sql($db, q{SELECT customer_status FROM customers WHERE id = :'p1'},
    $ID), 'Inactive', 'POST /api/v1/customers/{id}/deactivate/: stored');

# the 10 MB limit of conf/nginx.conf's documents location, on old paths
{
    my $ten = 'd' x (10 * 1024 * 1024);
    my $before = CT::sql($db, 'SELECT count(*) FROM documents');
    for my $path ("/api/v1/customers/$ID/documents/",
        "/api/v1/documents/?customerId=$ID&")
    {
        my $sep = $path =~ /\?/ ? '' : '?';
        $r = $ng->req(POST => "$path${sep}type=other&title=big",
            body => $ten, headers => { 'Content-Type' => 'text/plain' });
        is($r->{status}, 201, "POST $path: 10 MB accepted")
            or diag(substr $r->{body}, 0, 300);
        is($r->{json}{data}{size}, length $ten, "POST $path: all stored");
        $r = $ng->req(POST => "$path${sep}type=other&title=over",
            body => "$ten+", headers => { 'Content-Type' => 'text/plain' });
        is($r->{status}, 413, "POST $path: one byte more is 413");
        is(ref $r->{json} eq 'HASH' && $r->{json}{success}, $F,
            "POST $path: 413 in the envelope");
    }
    is(CT::sql($db, 'SELECT count(*) FROM documents'), $before + 2,
        'two 10 MB documents stored, the larger ones not');
    # a JSON route keeps its own limit (64k in the test nginx)
    $r = $ng->req(POST => '/api/v1/notes/', body => 'x' x 70000,
        headers => { 'Content-Type' => 'application/json' });
    is($r->{status}, 413, 'POST /api/v1/notes/ over 64k: 413');
}

$r = call(DELETE => "/api/v1/customers/$ID/", 200);
is(CT::sql($db, q{SELECT count(*) FROM customers WHERE id = :'p1'}, $ID),
    0, 'DELETE /api/v1/customers/{id}/: gone');

# --- the loyalty service's paths ---------------------------------------------

$r = call(POST => '/customers', 201, json => customer_body());
my $LID = $r->{json}{data}{customerId} // '';
like($LID, $UUID, 'POST /customers: a customerId');
$r = call(GET => "/customers/$LID", 200);
is($r->{json}{data}{customerId}, $LID, 'GET /customers/{id}: it');
$r = call(GET => "/customers/$LID/", 200);
is($r->{json}{data}{customerId}, $LID, 'GET /customers/{id}/: it');
$r = call(GET => '/customers?status=Active', 200);
is($r->{json}{data}{pagination}{totalItems}, 1, 'GET /customers: the list');
$r = call(PUT => "/customers/$LID", 200,
    json => { fullName => 'Loyal Customer' });
is(CT::sql($db, q{SELECT full_name FROM customers WHERE id = :'p1'}, $LID),
    'Loyal Customer', 'PUT /customers/{id}: stored');
$r = call(POST => "/customers/$LID/loyalty/earn", 201,
    json => { points => 150, reason => 'purchase' });
is($r->{json}{data}{balance}, 150, 'POST /customers/{id}/loyalty/earn');
$r = call(POST => "/customers/$LID/loyalty/redeem", 201,
    json => { points => 50 });
is($r->{json}{data}{balance}, 100, 'POST /customers/{id}/loyalty/redeem');
$r = call(POST => "/customers/$LID/loyalty/redeem", 422,
    json => { points => 500 });
$r = call(GET => "/customers/$LID/loyalty/transactions", 200);
is(scalar @{ $r->{json}{data}{transactions} // [] }, 2,
    'GET /customers/{id}/loyalty/transactions: both');
is(CT::sql($db, q{SELECT balance FROM loyalty_accounts
    WHERE customer_id = :'p1'}, $LID), 100, 'the balance stored');
$r = call(GET => '/customers/analytics/summary', 200);
$r = $ng->req(GET => '/health');
is($r->{status}, 200, 'GET /health');

# not mapped: other prefixes stay unknown, and credentials still count
$r = $ng->req(GET => '/api/v1/health/');
is($r->{status}, 404, '/api/v1/health/ is not mapped');
$r = $ng->req(GET => '/customersx');
is($r->{status}, 404, '/customersx is not mapped');
$r = $ng->req(GET => '/api/v1/customers/', auth => 'none');
is($r->{status}, 401, 'GET /api/v1/customers/ without a token: 401');
$r = $ng->req(GET => '/customers', auth => CT::customer_token('someone'));
is($r->{status}, 403, 'GET /customers as a Customer: 403');
$r = $ng->req(DELETE => '/customers/a%2Fb');
is($r->{status}, 400, 'an encoded / in an old path: 400');

done_testing();
