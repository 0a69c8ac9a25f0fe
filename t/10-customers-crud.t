# Customers CRUD as a client sees it: create (full and minimal records,
# checked against the row in PostgreSQL), GET, HEAD, PUT and PATCH (replace
# vs merge of preferences, null clearing, If-Match), DELETE (and its refusal
# while complaints are open), 404s, 405 with Allow, X-Request-Id.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db);


my @RECORD_KEYS = sort qw(customerId userId email fullName contactNumber
    dateOfBirth nationalId addresses emergencyContact business customerStatus
    customerType isVerified totalOrders totalOrderValue totalComplaints
    openComplaints lastOrderDate lastComplaintDate customerSince notes tags
    preferences metadata createdAt updatedAt createdBy updatedBy verifiedAt
    verifiedBy emergencyContacts isBusiness version);



# --- helpers -------------------------------------------------------------

sub count_rows { CT::sql($db, 'SELECT count(*) FROM customers') }

# The stored row, as one JSON object with API-style timestamps.
sub row {
    my ($id) = @_;
    my $json = CT::sql($db, <<'SQL', $id);
SELECT json_build_object(
    'user_id', user_id, 'email', email, 'full_name', full_name,
    'contact_number', contact_number, 'date_of_birth', date_of_birth::text,
    'national_id', national_id, 'addresses', addresses,
    'emergency_contact', emergency_contact, 'business', business,
    'customer_status', customer_status, 'customer_type', customer_type,
    'is_verified', is_verified, 'total_orders', total_orders,
    'total_order_value', total_order_value::text,
    'total_complaints', total_complaints, 'open_complaints', open_complaints,
    'last_order_date', api_ts(last_order_date),
    'last_complaint_date', api_ts(last_complaint_date),
    'customer_since', api_ts(customer_since), 'notes', notes, 'tags', tags,
    'preferences', preferences, 'metadata', metadata,
    'created_at', api_ts(created_at), 'updated_at', api_ts(updated_at),
    'version', version)
FROM customers WHERE id = :'p1'
SQL
    return length $json ? JSON::PP->new->decode($json) : undef;
}

# Everything about the row, to show that a refused write changed nothing.
sub snapshot {
    my ($id) = @_;
    return scalar CT::sql($db,
        q{SELECT row_to_json(c)::text FROM customers c WHERE id = :'p1'}, $id);
}

# An error envelope naming one field, in JSON, with an X-Request-Id
sub one_error {
    my ($r, $status, $message, $field, $name) = @_;
    is_error($r, $status, $message, [$field], $name);
    like($r->{headers}{'content-type'} // '', qr{^application/json},
        "$name: JSON content type");
    ok(length($r->{headers}{'x-request-id'} // ''),
        "$name: has X-Request-Id");
}

sub post { $ng->req(POST => '/api/customers', json => $_[0], %{ $_[1] // {} }) }

sub api_ts_now_offset {
    # an RFC 3339 timestamp in the same format the API sends
    return CT::sql($db, "SELECT api_ts(now() + :'p1'::interval)", $_[0]);
}


# --- create: a full record ------------------------------------------------

my $full = {
    userId => 'user-crud-0001',
    email => 'priya.sharma@example.com',
    fullName => '  Priya Sharma  ',
    contactNumber => '+919876543210',
    dateOfBirth => '1990-05-15',
    nationalId => 'ABCDE1234F',
    addresses => [
        { label => 'Home', line1 => '12 MG Road', line2 => 'Flat 4B',
          city => 'Bengaluru', state => 'Karnataka', postalCode => '560001',
          country => 'IN', isDefault => $T },
        { label => 'Work', line1 => '1 Tech Park', city => 'Pune',
          country => 'IN', isDefault => $F },
    ],
    emergencyContact => { name => 'Raj Sharma', relationship => 'Brother',
        phone => '+919812345678', email => 'raj.sharma@example.com' },
    business => { companyName => 'Sharma Traders',
        taxId => '29ABCDE1234F1Z5' },
    customerStatus => 'Active',
    customerType => 'Premium',
    isVerified => $T,
    totalOrders => 42,
    totalOrderValue => 45500.5,
    totalComplaints => 3,
    openComplaints => 1,
    lastOrderDate => '2026-01-20T14:30:00.000Z',
    lastComplaintDate => '2025-12-01T09:15:00+05:30',
    customerSince => '2020-03-01T00:00:00Z',
    notes => 'Prefers email contact',
    tags => ['vip', 'early-adopter'],
    preferences => { newsletter => $T, language => 'hi-IN' },
};

my $r = post($full, { headers => { 'X-Request-Id' => 'crud-create-1' } });
is($r->{status}, 201, 'POST full record: 201') or diag($r->{body});
is($r->{json}{success}, $T, 'POST: success true');
is($r->{json}{message}, 'Customer created successfully', 'POST: message');
is($r->{headers}{etag}, '"1"', 'POST: ETag "1"');
like($r->{headers}{'content-type'}, qr{^application/json}, 'POST: JSON');
is($r->{headers}{'x-request-id'}, 'crud-create-1',
    'POST: the client X-Request-Id is echoed');
like($r->{body}, qr/"totalOrderValue":45500\.50[,}]/,
    'POST: totalOrderValue is sent with two decimals');

my $c = $r->{json}{data} // {};
my $id = $c->{customerId} // '';
like($id, $UUID, 'POST: customerId is a UUID');
is_deeply([sort keys %$c], \@RECORD_KEYS, 'POST: record has every field');

my %expect = (
    userId => 'user-crud-0001', email => 'priya.sharma@example.com',
    fullName => 'Priya Sharma', contactNumber => '+919876543210',
    dateOfBirth => '1990-05-15', nationalId => 'ABCDE1234F',
    customerStatus => 'Active', customerType => 'Premium',
    totalOrders => 42, totalComplaints => 3, openComplaints => 1,
    lastOrderDate => '2026-01-20T14:30:00.000Z',
    lastComplaintDate => '2025-12-01T03:45:00.000Z',
    customerSince => '2020-03-01T00:00:00.000Z',
    notes => 'Prefers email contact', version => 1,
);
for my $k (sort keys %expect) {
    is($c->{$k}, $expect{$k}, "POST: $k");
}
is($c->{isVerified}, $T, 'POST: isVerified true');
cmp_ok($c->{totalOrderValue}, '==', 45500.5, 'POST: totalOrderValue');
is_deeply($c->{addresses}, $full->{addresses}, 'POST: addresses');
is_deeply($c->{emergencyContact}, $full->{emergencyContact},
    'POST: emergencyContact');
is_deeply($c->{business}, $full->{business}, 'POST: business');
is_deeply($c->{tags}, ['vip', 'early-adopter'], 'POST: tags');
is_deeply($c->{preferences},
    { newsletter => $T, notifications => $T, language => 'hi-IN' },
    'POST: preferences with the missing default filled in');
is_deeply($c->{metadata},
    { lastLoginDate => undef, loginCount => 0, lastActivityDate => undef },
    'POST: metadata defaults');
like($c->{createdAt} // '', $TS, 'POST: createdAt is RFC 3339 UTC with ms');
like($c->{updatedAt} // '', $TS, 'POST: updatedAt is RFC 3339 UTC with ms');
is($c->{updatedAt}, $c->{createdAt}, 'POST: updatedAt equals createdAt');
ok(exists $c->{createdBy} && exists $c->{updatedBy},
    'POST: createdBy/updatedBy present');

my $row = row($id);
ok($row, 'POST: the row exists');
is_deeply($row, {
    user_id => 'user-crud-0001', email => 'priya.sharma@example.com',
    full_name => 'Priya Sharma', contact_number => '+919876543210',
    date_of_birth => '1990-05-15', national_id => 'ABCDE1234F',
    addresses => $full->{addresses},
    emergency_contact => $full->{emergencyContact},
    business => $full->{business},
    customer_status => 'Active', customer_type => 'Premium',
    is_verified => $T, total_orders => 42, total_order_value => '45500.50',
    total_complaints => 3, open_complaints => 1,
    last_order_date => '2026-01-20T14:30:00.000Z',
    last_complaint_date => '2025-12-01T03:45:00.000Z',
    customer_since => '2020-03-01T00:00:00.000Z',
    notes => 'Prefers email contact', tags => ['vip', 'early-adopter'],
    preferences => { newsletter => $T, notifications => $T,
        language => 'hi-IN' },
    metadata => { lastLoginDate => undef, loginCount => 0,
        lastActivityDate => undef },
    created_at => $c->{createdAt}, updated_at => $c->{updatedAt},
    version => 1,
}, 'POST: the stored row has every value (name trimmed, times in UTC)');


# --- create: a minimal record gets the defaults ---------------------------

$r = post({ userId => 'user-crud-0002', email => 'min@example.com',
    fullName => 'Mo' });
is($r->{status}, 201, 'POST minimal record: 201') or diag($r->{body});
my $m = $r->{json}{data} // {};
my $mid = $m->{customerId} // '';
is_deeply([sort keys %$m], \@RECORD_KEYS, 'POST minimal: every field');
is_deeply({ map { $_ => $m->{$_} } qw(contactNumber dateOfBirth nationalId
        emergencyContact business lastOrderDate lastComplaintDate notes
        customerStatus customerType isVerified totalOrders totalComplaints
        openComplaints addresses tags preferences version) },
    { contactNumber => undef, dateOfBirth => undef, nationalId => undef,
      emergencyContact => undef, business => undef, lastOrderDate => undef,
      lastComplaintDate => undef, notes => undef, customerStatus => 'Active',
      customerType => 'Regular', isVerified => $F, totalOrders => 0,
      totalComplaints => 0, openComplaints => 0, addresses => [], tags => [],
      preferences => { newsletter => $F, notifications => $T,
          language => 'en' },
      version => 1 },
    'POST minimal: defaults');
like($r->{body}, qr/"totalOrderValue":0\.00[,}]/,
    'POST minimal: totalOrderValue 0.00');
like($m->{customerSince} // '', $TS, 'POST minimal: customerSince defaults');
like($r->{headers}{'x-request-id'} // '', qr/^[0-9a-f]{32}\z/,
    'POST minimal: without a client id, nginx makes one');
is(CT::sql($db, q{SELECT customer_type || '/' || total_order_value
    || '/' || (preferences->>'language') FROM customers WHERE id = :'p1'},
    $mid), 'Regular/0.00/en', 'POST minimal: defaults stored');


# --- create: duplicate userId ----------------------------------------------

my $n = count_rows();
$r = post({ userId => 'user-crud-0001', email => 'other@example.com',
    fullName => 'Someone Else' });
one_error($r, 409, 'Customer already exists', 'userId', 'duplicate userId');
is(count_rows(), $n, 'duplicate userId: nothing written');


# --- GET and HEAD ----------------------------------------------------------

$r = $ng->req(GET => "/api/customers/$id");
is($r->{status}, 200, 'GET: 200') or diag($r->{body});
is($r->{json}{success}, $T, 'GET: success');
is($r->{json}{message}, 'Customer retrieved successfully', 'GET: message');
is($r->{headers}{etag}, '"1"', 'GET: ETag');
is_deeply($r->{json}{data}, $c, 'GET: the same record POST returned');
my $get_len = length $r->{body};

$r = $ng->req(GET => '/api/customers/' . uc $id);
is($r->{status}, 200, 'GET with an upper-case UUID: 200');
is($r->{json} && $r->{json}{data}{customerId}, $id,
    'GET upper-case: same customer');

$r = $ng->req(HEAD => "/api/customers/$id");
is($r->{status}, 200, 'HEAD: 200');
is($r->{body}, '', 'HEAD: no body');
is($r->{headers}{etag}, '"1"', 'HEAD: ETag');
like($r->{headers}{'content-type'} // '', qr{^application/json},
    'HEAD: JSON content type');
is($r->{headers}{'content-length'}, $get_len,
    'HEAD: Content-Length of the GET body');
ok(length($r->{headers}{'x-request-id'} // ''), 'HEAD: X-Request-Id');

$r = $ng->req(HEAD => "/api/customers/$MISSING");
is($r->{status}, 404, 'HEAD unknown: 404');
is($r->{body}, '', 'HEAD unknown: no body');

$r = $ng->req(GET => "/api/customers/$MISSING");
one_error($r, 404, 'Customer not found', 'customerId', 'GET unknown');
ok(!exists $r->{headers}{etag}, 'GET unknown: no ETag');

for my $bad ('12345', 'not-a-uuid', substr($id, 0, 35),
    $id . 'a', 'g' . substr($id, 1))
{
    $r = $ng->req(GET => "/api/customers/$bad");
    one_error($r, 400, 'Validation failed', 'customerId', "GET id '$bad'");
    is($r->{json}{errors}[0]{message}, 'Must be a UUID',
        "GET id '$bad': Must be a UUID");
}


# --- PUT --------------------------------------------------------------------

# push the times back so that a new updatedAt is surely later
CT::sql($db, q{UPDATE customers SET created_at = created_at - interval '1 day',
    updated_at = updated_at - interval '1 day' WHERE id = :'p1'}, $id);
my $before = row($id);

$r = $ng->req(PUT => "/api/customers/$id", headers => { 'If-Match' => '"1"' },
    json => { fullName => ' Priya S. Sharma ', customerType => 'VIP',
        notes => 'Moved to VIP', tags => ['vip'] });
is($r->{status}, 200, 'PUT with the current If-Match: 200')
    or diag($r->{body});
is($r->{json}{message}, 'Customer updated successfully', 'PUT: message');
is($r->{headers}{etag}, '"2"', 'PUT: ETag "2"');
my $u = $r->{json}{data} // {};
is_deeply([sort keys %$u], \@RECORD_KEYS, 'PUT: the full record');
is($u->{version}, 2, 'PUT: version 2');
is($u->{fullName}, 'Priya S. Sharma', 'PUT: fullName (trimmed)');
is($u->{customerType}, 'VIP', 'PUT: customerType');
is($u->{notes}, 'Moved to VIP', 'PUT: notes');
is_deeply($u->{tags}, ['vip'], 'PUT: tags replaced');
is($u->{email}, $c->{email}, 'PUT: unnamed email unchanged');
is_deeply($u->{addresses}, $c->{addresses}, 'PUT: unnamed addresses kept');
is_deeply($u->{preferences}, $c->{preferences},
    'PUT: preferences untouched when not named');
is($u->{createdAt}, $before->{created_at}, 'PUT: createdAt unchanged');
like($u->{updatedAt} // '', $TS, 'PUT: updatedAt format');
ok(($u->{updatedAt} // '') gt $before->{updated_at},
    'PUT: updatedAt moved forward');
$row = row($id);
is_deeply([@$row{qw(full_name customer_type notes version updated_at)}],
    ['Priya S. Sharma', 'VIP', 'Moved to VIP', 2, $u->{updatedAt}],
    'PUT: row updated');
is_deeply($row->{tags}, ['vip'], 'PUT: tags stored');

# PUT replaces preferences: unnamed keys go back to the defaults
$r = $ng->req(PUT => "/api/customers/$id",
    json => { preferences => { notifications => $F } });
is($r->{status}, 200, 'PUT preferences without If-Match: 200')
    or diag($r->{body});
is($r->{headers}{etag}, '"3"', 'PUT preferences: ETag "3"');
my $replaced = { newsletter => $F, notifications => $F, language => 'en' };
is_deeply($r->{json}{data}{preferences}, $replaced,
    'PUT replaces preferences (newsletter and language back to defaults)');
is_deeply(row($id)->{preferences}, $replaced, 'PUT preferences: stored');


# --- PATCH --------------------------------------------------------------------

$r = $ng->req(PATCH => "/api/customers/$id",
    headers => { 'If-Match' => '"3"' },
    json => { preferences => { language => 'fr-CA' } });
is($r->{status}, 200, 'PATCH preferences: 200') or diag($r->{body});
is($r->{json}{message}, 'Customer updated successfully', 'PATCH: message');
is($r->{headers}{etag}, '"4"', 'PATCH: ETag "4"');
is_deeply($r->{json}{data}{preferences},
    { newsletter => $F, notifications => $F, language => 'fr-CA' },
    'PATCH merges preferences (notifications stays false)');

$r = $ng->req(PATCH => "/api/customers/$id",
    json => { preferences => { newsletter => $T }, isVerified => $F,
        customerStatus => 'Inactive', email => 'priya@example.org' });
is($r->{status}, 200, 'PATCH several fields: 200') or diag($r->{body});
is_deeply($r->{json}{data}{preferences},
    { newsletter => $T, notifications => $F, language => 'fr-CA' },
    'PATCH merges preferences again');
is_deeply([@{ $r->{json}{data} }{qw(isVerified customerStatus email version)}],
    [$F, 'Inactive', 'priya@example.org', 5], 'PATCH: fields and version 5');
$row = row($id);
is_deeply([@$row{qw(is_verified customer_status email version)}],
    [$F, 'Inactive', 'priya@example.org', 5], 'PATCH: row updated');
is_deeply($row->{preferences},
    { newsletter => $T, notifications => $F, language => 'fr-CA' },
    'PATCH: merged preferences stored');
is($row->{user_id}, 'user-crud-0001', 'PATCH: userId untouched');
is($row->{total_order_value}, '45500.50', 'PATCH: totals untouched');

# replacing nested objects and the address list
$r = $ng->req(PATCH => "/api/customers/$id", json => {
    addresses => [{ line1 => '9 Park Street', city => 'Kolkata',
        country => 'IN', isDefault => $T }],
    emergencyContact => { name => 'Anita Sharma', phone => '+14155550123' },
    business => { companyName => 'Sharma Exports' } });
is($r->{status}, 200, 'PATCH nested objects: 200') or diag($r->{body});
is_deeply($r->{json}{data}{addresses}, [{ line1 => '9 Park Street',
    city => 'Kolkata', country => 'IN', isDefault => $T }],
    'PATCH: address list replaced');
is_deeply($r->{json}{data}{emergencyContact},
    { name => 'Anita Sharma', phone => '+14155550123' },
    'PATCH: emergencyContact replaced');
is_deeply(row($id)->{business}, { companyName => 'Sharma Exports' },
    'PATCH: business stored');


# --- null clears nullable fields ------------------------------------------------

$r = $ng->req(PATCH => "/api/customers/$id", json => {
    contactNumber => undef, dateOfBirth => undef, nationalId => undef,
    emergencyContact => undef, business => undef, notes => undef,
    addresses => [], tags => [] });
is($r->{status}, 200, 'PATCH nulls: 200') or diag($r->{body});
my $d = $r->{json}{data} // {};
is_deeply([@$d{qw(contactNumber dateOfBirth nationalId emergencyContact
    business notes)}], [(undef) x 6], 'PATCH nulls: cleared in the response');
is_deeply([@$d{qw(addresses tags)}], [[], []], 'PATCH: empty lists');
$row = row($id);
is_deeply([@$row{qw(contact_number date_of_birth national_id
    emergency_contact business notes)}], [(undef) x 6],
    'PATCH nulls: columns are NULL');
is_deeply([@$row{qw(addresses tags)}], [[], []], 'PATCH: lists emptied');
is($row->{full_name}, 'Priya S. Sharma', 'PATCH nulls: fullName kept');

$r = $ng->req(PUT => "/api/customers/$id",
    json => { contactNumber => '+447911123456', dateOfBirth => '1985-02-28',
        notes => undef });
is($r->{status}, 200, 'PUT sets values again: 200');
is_deeply([@{ $r->{json}{data} }{qw(contactNumber dateOfBirth notes)}],
    ['+447911123456', '1985-02-28', undef], 'PUT: values and null');
my $version = $r->{json}{data}{version};
is($version, 8, 'version counted every write');
is($r->{headers}{etag}, qq{"$version"}, 'ETag is the version');


# --- If-Match ---------------------------------------------------------------

my $snap = snapshot($id);
for my $method (qw(PUT PATCH)) {
    for my $tag ('"1"', '"' . ($version - 1) . '"', '"' . ($version + 1) . '"',
        '"abc"')
    {
        $r = $ng->req($method => "/api/customers/$id",
            headers => { 'If-Match' => $tag },
            json => { fullName => 'Stale Writer' });
        one_error($r, 412, 'Precondition failed', 'If-Match',
            "$method If-Match $tag (current \"$version\")");
        ok(!exists $r->{headers}{etag}, "$method If-Match $tag: no ETag");
    }
}
is(snapshot($id), $snap, 'stale If-Match: the row is unchanged');

$r = $ng->req(PATCH => "/api/customers/$id",
    headers => { 'If-Match' => qq{"$version"} },
    json => { fullName => 'Current Writer' });
is($r->{status}, 200, 'PATCH with the current If-Match: 200');
is($r->{headers}{etag}, '"' . ($version + 1) . '"', 'ETag moved on');
is(row($id)->{full_name}, 'Current Writer', 'current If-Match: written');

# the ETag of a GET works as If-Match; after a write it is stale
$r = $ng->req(GET => "/api/customers/$id");
my $etag = $r->{headers}{etag};
$r = $ng->req(PATCH => "/api/customers/$id", headers => { 'If-Match' => $etag },
    json => { notes => 'first' });
is($r->{status}, 200, 'PATCH with the ETag from GET: 200');
$r = $ng->req(PATCH => "/api/customers/$id", headers => { 'If-Match' => $etag },
    json => { notes => 'second' });
is($r->{status}, 412, 'PATCH with the same ETag again: 412');
is(row($id)->{notes}, 'first', 'the second write did not happen');


# --- updates of unknown and malformed ids --------------------------------------

for my $method (qw(PUT PATCH)) {
    $r = $ng->req($method => "/api/customers/$MISSING",
        json => { fullName => 'Nobody Here' });
    one_error($r, 404, 'Customer not found', 'customerId', "$method unknown");
    $r = $ng->req($method => "/api/customers/$MISSING",
        headers => { 'If-Match' => '"1"' },
        json => { fullName => 'Nobody Here' });
    is($r->{status}, 404, "$method unknown with If-Match: 404");
    $r = $ng->req($method => '/api/customers/42',
        json => { fullName => 'Nobody Here' });
    one_error($r, 400, 'Validation failed', 'customerId', "$method bad id");
}
is(count_rows(), 2, 'no update created a row');


# --- DELETE ---------------------------------------------------------------------

CT::sql($db, q{UPDATE customers SET open_complaints = 2 WHERE id = :'p1'},
    $id);
$snap = snapshot($id);
$r = $ng->req(DELETE => "/api/customers/$id");
one_error($r, 400, 'Cannot delete customer with active orders or complaints',
    'customer', 'DELETE with open complaints');
is(snapshot($id), $snap, 'DELETE refused: the row stays as it was');

CT::sql($db, q{UPDATE customers SET open_complaints = 0 WHERE id = :'p1'},
    $id);
$r = $ng->req(DELETE => "/api/customers/$id",
    headers => { 'X-Request-Id' => 'crud-delete-1' });
is($r->{status}, 200, 'DELETE: 200') or diag($r->{body});
is($r->{json}{success}, $T, 'DELETE: success');
is($r->{json}{message}, 'Customer deleted successfully', 'DELETE: message');
is_deeply([sort keys %{ $r->{json}{data} // {} }],
    [qw(customerId deletedAt)], 'DELETE: data has customerId, deletedAt');
is($r->{json}{data}{customerId}, $id, 'DELETE: customerId');
like($r->{json}{data}{deletedAt} // '', $TS, 'DELETE: deletedAt format');
is($r->{headers}{'x-request-id'}, 'crud-delete-1', 'DELETE: request id');
is(CT::sql($db, q{SELECT count(*) FROM customers WHERE id = :'p1'}, $id), 0,
    'DELETE: the row is gone');
is(count_rows(), 1, 'DELETE: the other customer stays');

$r = $ng->req(GET => "/api/customers/$id");
is($r->{status}, 404, 'GET after DELETE: 404');
$r = $ng->req(DELETE => "/api/customers/$id");
one_error($r, 404, 'Customer not found', 'customerId', 'DELETE again');
$r = $ng->req(DELETE => '/api/customers/nope');
one_error($r, 400, 'Validation failed', 'customerId', 'DELETE bad id');
is(count_rows(), 1, 'failed DELETEs removed nothing');

# a customer created with open complaints cannot be deleted either
$r = post({ userId => 'user-crud-0003', email => 'c3@example.com',
    fullName => 'Open Case', openComplaints => 1, totalComplaints => 1 });
is($r->{status}, 201, 'POST with openComplaints 1: 201');
my $oid = $r->{json}{data}{customerId};
$r = $ng->req(DELETE => "/api/customers/$oid");
is($r->{status}, 400, 'DELETE of a customer created with open complaints: 400');
is(CT::sql($db, q{SELECT count(*) FROM customers WHERE id = :'p1'}, $oid), 1,
    'that row stays');


# --- X-Request-Id -------------------------------------------------------------------

$r = $ng->req(GET => "/api/customers/$mid",
    headers => { 'X-Request-Id' => 'abc-123_XYZ.7' });
is($r->{headers}{'x-request-id'}, 'abc-123_XYZ.7', 'GET echoes X-Request-Id');
$r = $ng->req(GET => "/api/customers/$MISSING",
    headers => { 'X-Request-Id' => 'err-req-9' });
is($r->{headers}{'x-request-id'}, 'err-req-9', '404 echoes X-Request-Id');
$r = $ng->req(POST => '/api/customers', body => '{',
    headers => { 'Content-Type' => 'application/json',
        'X-Request-Id' => 'bad-json-1' });
is($r->{headers}{'x-request-id'}, 'bad-json-1', '400 echoes X-Request-Id');

my %seen;
for my $i (1 .. 3) {
    $r = $ng->req(GET => "/api/customers/$mid");
    my $rid = $r->{headers}{'x-request-id'} // '';
    like($rid, qr/^[0-9a-f]{32}\z/, "generated X-Request-Id $i");
    $seen{$rid}++;
}
is(scalar keys %seen, 3, 'generated request ids differ');

for my $case (['x' x 129, 'too long'], ['has space', 'a space'],
    ['quote"d', 'a quote'], ['back\\slash', 'a backslash'],
    ["caf\xc3\xa9", 'non-ASCII'])
{
    # raw, since HTTP::Tiny refuses to send some of these
    my $resp = $ng->raw("GET /api/customers/$mid HTTP/1.1\r\nHost: t\r\n"
        . "Authorization: Bearer " . CT::admin_token() . "\r\n"
        . "X-Request-Id: $case->[0]\r\nConnection: close\r\n\r\n");
    like($resp, qr{^HTTP/1\.1 200 }, "X-Request-Id with $case->[1]: 200");
    my ($rid) = $resp =~ /^X-Request-Id: ([^\r\n]*)\r?$/mi;
    like($rid // '', qr/^[0-9a-f]{32}\z/,
        "X-Request-Id with $case->[1] is replaced by a generated one");
}
$r = $ng->req(GET => "/api/customers/$mid",
    headers => { 'X-Request-Id' => 'y' x 128 });
is($r->{headers}{'x-request-id'}, 'y' x 128, '128-char X-Request-Id kept');


# --- wrong method, unknown path ----------------------------------------------------

for my $case (
    [DELETE => '/api/customers', 'GET, HEAD, POST'],
    [PUT => '/api/customers', 'GET, HEAD, POST'],
    [PATCH => '/api/customers', 'GET, HEAD, POST'],
    [POST => "/api/customers/$mid", 'GET, HEAD, PUT, PATCH, DELETE'])
{
    my ($method, $path, $allow) = @$case;
    $r = $ng->req($method => $path, json => { fullName => 'Wrong Method' });
    is($r->{status}, 405, "$method $path: 405") or diag($r->{body});
    is($r->{headers}{allow}, $allow, "$method $path: Allow: $allow");
    ok($r->{json} && !$r->{json}{success}, "$method $path: error envelope");
    ok(length($r->{headers}{'x-request-id'} // ''),
        "$method $path: X-Request-Id");
}
is(count_rows(), 2, '405s wrote nothing');

for my $path ('/api/unknown', '/api/customer', "/api/customers/$mid/wishlist",
    '/api/customers/a/b/c')
{
    $r = $ng->req(GET => $path);
    one_error($r, 404, 'Not found', 'path', "GET $path");
}
$r = $ng->req(POST => '/api/nothing-here', json => { a => 1 });
one_error($r, 404, 'Not found', 'path', 'POST to an unknown path');

done_testing();
