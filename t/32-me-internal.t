# The caller's own record (/me, /me/statistics, PATCH /me with its two
# writable fields) and the service endpoints: internal create, lookup by
# userId, and the statistics update (absolute values, signed increments,
# refusals that write nothing, 50 concurrent increments adding up).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use POSIX ();

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db, workers => 2);


my @RECORD_KEYS = sort qw(customerId userId email fullName contactNumber
    dateOfBirth nationalId addresses emergencyContact business customerStatus
    customerType isVerified totalOrders totalOrderValue totalComplaints
    openComplaints lastOrderDate lastComplaintDate customerSince notes tags
    preferences metadata createdAt updatedAt createdBy updatedBy verifiedAt verifiedBy
    emergencyContacts isBusiness version);
my @STATS_KEYS = sort qw(customerId totalOrders totalOrderValue
    totalComplaints openComplaints lastOrderDate lastComplaintDate
    customerSince updatedAt);


# --- helpers -------------------------------------------------------------

sub uniq { CT::uniq('me') }

sub count_rows { CT::sql($db, 'SELECT count(*) FROM customers') }

sub snapshot {
    my ($id) = @_;
    return scalar CT::sql($db,
        q{SELECT row_to_json(c)::text FROM customers c WHERE id = :'p1'}, $id);
}

sub row {
    my ($id) = @_;
    my $j = CT::sql($db, q{SELECT json_build_object('user_id', user_id,
        'email', email, 'full_name', full_name,
        'contact_number', contact_number, 'customer_status', customer_status,
        'customer_type', customer_type, 'is_verified', is_verified,
        'notes', notes, 'tags', tags, 'preferences', preferences,
        'total_orders', total_orders,
        'total_order_value', total_order_value::text,
        'total_complaints', total_complaints,
        'open_complaints', open_complaints,
        'last_order_date', api_ts(last_order_date),
        'last_complaint_date', api_ts(last_complaint_date),
        'created_by', created_by, 'updated_by', updated_by,
        'version', version)
        FROM customers WHERE id = :'p1'}, $id);
    return length $j ? JSON::PP->new->decode($j) : undef;
}

# an existing customer made through the service endpoint
sub make_customer { CT::make_customer($ng, 'me', via => 'internal', @_) }

sub raw_json {
    my ($method, $path, $body, %o) = @_;
    return $ng->req($method => $path, body => $body,
        headers => { 'Content-Type' => 'application/json',
            %{ $o{headers} // {} } }, auth => $o{auth});
}


# --- GET /me and /me/statistics ------------------------------------------

my ($ID, $SUB) = make_customer(contactNumber => '+919876543210');
my $CT_SUB = CT::customer_token($SUB);

{
    my $r = $ng->req(GET => '/api/customers/me', auth => $CT_SUB);
    is($r->{status}, 200, 'GET /me: 200') or diag($r->{body});
    is($r->{json}{success}, $T, 'GET /me: success');
    is_deeply([sort keys %{ $r->{json}{data} // {} }], \@RECORD_KEYS,
        'GET /me: the full record');
    is($r->{json}{data}{customerId}, $ID, 'GET /me: the record of the sub');
    is($r->{json}{data}{userId}, $SUB, 'GET /me: userId is the sub');
    is($r->{headers}{etag}, '"1"', 'GET /me: ETag is the version');
    my $admin = $ng->req(GET => "/api/customers/$ID");
    is_deeply($r->{json}{data}, $admin->{json}{data},
        'GET /me: the same record an Administrator sees');

    $r = $ng->req(HEAD => '/api/customers/me', auth => $CT_SUB);
    is($r->{status}, 200, 'HEAD /me: 200');
    is($r->{body}, '', 'HEAD /me: no body');

    $r = $ng->req(GET => '/api/customers/me/statistics', auth => $CT_SUB);
    is($r->{status}, 200, 'GET /me/statistics: 200') or diag($r->{body});
    my $s = $r->{json}{data} // {};
    is_deeply([sort keys %$s], \@STATS_KEYS, 'GET /me/statistics: fields');
    is($s->{customerId}, $ID, '/me/statistics: customerId');
    is($s->{$_}, 0, "/me/statistics: $_ is 0")
        for qw(totalOrders totalOrderValue totalComplaints openComplaints);
    like($r->{body}, qr/"totalOrderValue":0\.00[,}]/,
        '/me/statistics: totalOrderValue with two decimals');
    is($s->{lastOrderDate}, undef, '/me/statistics: lastOrderDate null');
    is($s->{lastComplaintDate}, undef,
        '/me/statistics: lastComplaintDate null');
    like($s->{customerSince}, $TS, '/me/statistics: customerSince');
    like($s->{updatedAt}, $TS, '/me/statistics: updatedAt');

    for my $path ('/api/customers/me', '/api/customers/me/statistics') {
        $r = $ng->req(GET => $path,
            auth => CT::customer_token('me-nobody-has-this'));
        is_error($r, 404, 'Customer not found', ['userId'],
            "GET $path without a record");
    }
    $r = $ng->req(GET => '/api/customers/me/', auth => $CT_SUB);
    is($r->{status}, 200, 'GET /me/ (trailing slash): 200');
}


# --- PATCH /me -----------------------------------------------------------

{
    CT::sql($db, q{UPDATE customers SET preferences = preferences
        || '{"language": "hi-IN"}' WHERE id = :'p1'}, $ID);
    my $v0 = row($ID)->{version};

    my $r = $ng->req(PATCH => '/api/customers/me', auth => $CT_SUB,
        json => { contactNumber => '+14155550100' });
    is($r->{status}, 200, 'PATCH /me contactNumber: 200') or diag($r->{body});
    is($r->{json}{data}{contactNumber}, '+14155550100',
        'PATCH /me: the new number in the answer');
    is($r->{json}{data}{updatedBy}, $SUB, 'PATCH /me: updatedBy is the sub');
    is($r->{headers}{etag}, '"' . ($v0 + 1) . '"', 'PATCH /me: new ETag');
    my $row = row($ID);
    is($row->{contact_number}, '+14155550100', 'PATCH /me: stored');
    is($row->{version}, $v0 + 1, 'PATCH /me: version + 1');
    is($row->{updated_by}, $SUB, 'PATCH /me: updated_by is the sub');

    $r = $ng->req(PATCH => '/api/customers/me', auth => $CT_SUB,
        json => { preferences => { newsletter => $T } });
    is($r->{status}, 200, 'PATCH /me preferences: 200') or diag($r->{body});
    my $merged = { newsletter => $T, notifications => $T,
        language => 'hi-IN' };
    is_deeply($r->{json}{data}{preferences}, $merged,
        'PATCH /me: preferences merged, not replaced');
    is_deeply(row($ID)->{preferences}, $merged,
        'PATCH /me: merged preferences stored');

    $r = $ng->req(PATCH => '/api/customers/me', auth => $CT_SUB,
        json => { contactNumber => undef,
            preferences => { notifications => $F, language => 'en-GB' } });
    is($r->{status}, 200, 'PATCH /me both fields, number cleared: 200')
        or diag($r->{body});
    $row = row($ID);
    is($row->{contact_number}, undef, 'PATCH /me: contactNumber null stored');
    is_deeply($row->{preferences},
        { newsletter => $T, notifications => $F, language => 'en-GB' },
        'PATCH /me: second merge');

    # If-Match
    my $v = $row->{version};
    $r = $ng->req(PATCH => '/api/customers/me', auth => $CT_SUB,
        headers => { 'If-Match' => '"' . ($v - 1) . '"' },
        json => { contactNumber => '+14155550111' });
    is_error($r, 412, 'Precondition failed', ['If-Match'],
        'PATCH /me with a stale If-Match');
    is(row($ID)->{contact_number}, undef, 'stale If-Match: nothing written');
    is(row($ID)->{version}, $v, 'stale If-Match: version kept');

    $r = $ng->req(PATCH => '/api/customers/me', auth => $CT_SUB,
        headers => { 'If-Match' => qq{"$v"} },
        json => { contactNumber => '+14155550111' });
    is($r->{status}, 200, 'PATCH /me with the current If-Match: 200')
        or diag($r->{body});
    is($r->{headers}{etag}, '"' . ($v + 1) . '"', 'current If-Match: ETag');
    is(row($ID)->{contact_number}, '+14155550111', 'current If-Match: stored');

    $r = $ng->req(PATCH => '/api/customers/me', auth => $CT_SUB,
        headers => { 'If-Match' => '"not-a-version"' },
        json => { contactNumber => '+14155550122' });
    is($r->{status}, 412, 'PATCH /me with a garbage If-Match: 412');
}

# Every other field is read-only to a Customer, alone or next to an
# allowed one; nothing is written.
{
    my %readonly = (
        userId => 'someone-else', email => 'new@example.com',
        nationalId => 'X123', business => undef, customerStatus => 'Suspended',
        customerType => 'VIP', isVerified => $T, totalOrders => 99,
        totalOrderValue => 1000, totalComplaints => 0, openComplaints => 0,
        lastOrderDate => '2026-01-01T00:00:00Z', lastComplaintDate => undef,
        customerSince => '2020-01-01T00:00:00Z', notes => 'I am VIP',
        tags => ['vip'], customerId => $MISSING, metadata => {},
        createdAt => '2020-01-01T00:00:00Z',
        updatedAt => '2020-01-01T00:00:00Z',
        createdBy => 'x', updatedBy => 'x', version => 1,
    );
    my $before = snapshot($ID);

    for my $field (sort keys %readonly) {
        my $r = $ng->req(PATCH => '/api/customers/me', auth => $CT_SUB,
            json => { $field => $readonly{$field} });
        is_error($r, 400, 'Validation failed', [$field],
            "PATCH /me $field alone");
        is($r->{json}{errors}[0]{message}, 'Field is read-only',
            "PATCH /me $field: read-only");
    }
    my $r = $ng->req(PATCH => '/api/customers/me', auth => $CT_SUB,
        json => { contactNumber => '+14155550199', customerStatus => 'Active',
            notes => 'sneaky', totalOrders => 1000 });
    is_error($r, 400, 'Validation failed',
        ['customerStatus', 'notes', 'totalOrders'],
        'PATCH /me allowed + read-only fields');
    $r = $ng->req(PATCH => '/api/customers/me', auth => $CT_SUB,
        json => { favouriteColour => 'blue' });
    is_error($r, 400, 'Validation failed', ['favouriteColour'],
        'PATCH /me unknown field');
    is($r->{json}{errors}[0]{message}, 'Unknown field',
        'PATCH /me unknown field: message');
    $r = $ng->req(PATCH => '/api/customers/me', auth => $CT_SUB,
        json => { contactNumber => '98765' });
    is_error($r, 400, 'Validation failed', ['contactNumber'],
        'PATCH /me bad contactNumber');
    $r = $ng->req(PATCH => '/api/customers/me', auth => $CT_SUB,
        json => { preferences => { fontSize => 'large' } });
    is_error($r, 400, 'Validation failed', ['preferences.fontSize'],
        'PATCH /me unknown preference');
    $r = $ng->req(PATCH => '/api/customers/me', auth => $CT_SUB, json => {});
    is_error($r, 400, 'Validation failed', ['body'], 'PATCH /me {}');
    $r = raw_json(PATCH => '/api/customers/me', '{"contactNumber":',
        auth => $CT_SUB);
    is_error($r, 400, 'Malformed JSON', ['body'], 'PATCH /me malformed JSON');

    # nor through the other routes
    $r = $ng->req(PATCH => "/api/customers/$ID", auth => $CT_SUB,
        json => { customerStatus => 'Suspended' });
    is($r->{status}, 403, 'Customer PATCH of its own id (admin route): 403');
    $r = $ng->req(PATCH => "/api/customers/internal/$ID/statistics",
        auth => $CT_SUB, json => { totalOrders => 1000 });
    is($r->{status}, 401, 'Customer on internal statistics: 401');

    is(snapshot($ID), $before, 'refused PATCH /me calls wrote nothing');

    $r = $ng->req(PATCH => '/api/customers/me',
        auth => CT::customer_token('me-nobody-has-this'),
        json => { contactNumber => '+14155550100' });
    is_error($r, 404, 'Customer not found', ['userId'],
        'PATCH /me without a record');
}


# --- internal create -----------------------------------------------------

{
    my $n = count_rows();
    my $u = uniq();
    my $r = $ng->req(POST => '/api/customers/internal/create',
        auth => 'service', json => { userId => $u,
            email => 'john.doe@example.com', fullName => 'John Doe',
            contactNumber => '+919876543210' });
    is($r->{status}, 201, 'internal create: 201') or diag($r->{body});
    is($r->{json}{success}, $T, 'internal create: success');
    like($r->{headers}{'content-type'}, qr{^application/json},
        'internal create: JSON');
    my $d = $r->{json}{data} // {};
    is_deeply([sort keys %$d],
        [sort qw(customerId userId customerStatus customerType createdAt)],
        'internal create: data has the keys of the new record');
    like($d->{customerId}, $UUID, 'internal create: customerId');
    is($d->{userId}, $u, 'internal create: userId');
    is($d->{customerStatus}, 'Active', 'internal create: status Active');
    is($d->{customerType}, 'Regular', 'internal create: type Regular');
    like($d->{createdAt}, $TS, 'internal create: createdAt');
    is(count_rows(), $n + 1, 'internal create: one row');

    my $row = row($d->{customerId});
    is($row->{user_id}, $u, 'row: user_id');
    is($row->{email}, 'john.doe@example.com', 'row: email');
    is($row->{full_name}, 'John Doe', 'row: full_name');
    is($row->{contact_number}, '+919876543210', 'row: contact_number');
    is($row->{customer_status}, 'Active', 'row: status default');
    is($row->{customer_type}, 'Regular', 'row: type default');
    is($row->{is_verified}, $F, 'row: not verified');
    is_deeply($row->{preferences}, { newsletter => $F, notifications => $T,
        language => 'en' }, 'row: default preferences');
    is($row->{$_}, 0, "row: $_ 0")
        for qw(total_orders total_complaints open_complaints);
    is($row->{total_order_value}, '0.00', 'row: total_order_value 0.00');
    is($row->{created_by}, 'service', 'row: created_by service');
    is($row->{version}, 1, 'row: version 1');

    my $u2 = uniq();
    $r = $ng->req(POST => '/api/customers/internal/create',
        auth => "service:$CT::SERVICE_KEYS[1]", json => { userId => $u2,
            email => "$u2\@example.com", fullName => 'No Phone' });
    is($r->{status}, 201, 'internal create without contactNumber: 201');
    $r = $ng->req(POST => '/api/customers/internal/create', auth => 'service',
        json => { userId => uniq(), email => 'x@example.com',
            fullName => 'Null Phone', contactNumber => undef });
    is($r->{status}, 201, 'internal create with contactNumber null: 201')
        or diag($r->{body});

    $n = count_rows();
    $r = $ng->req(POST => '/api/customers/internal/create', auth => 'service',
        json => { userId => $u, email => 'other@example.com',
            fullName => 'Same User' });
    is_error($r, 409, 'Customer already exists', ['userId'],
        'internal create with an existing userId');
    is(count_rows(), $n, '409: nothing written');
    is(row($d->{customerId})->{email}, 'john.doe@example.com',
        '409: the existing record is untouched');

    my $ok = sub { my $x = uniq();
        return (userId => $x, email => "$x\@example.com", fullName => 'Ok') };
    for my $case (
        ['empty body', {}, [qw(userId email fullName)]],
        ['no email', { $ok->(), email => undef }, ['email']],
        ['missing fullName', do { my %b = $ok->(); delete $b{fullName}; \%b },
            ['fullName']],
        ['bad email', { $ok->(), email => 'not-an-email' }, ['email']],
        ['fullName too short', { $ok->(), fullName => 'J' }, ['fullName']],
        ['bad contactNumber', { $ok->(), contactNumber => '12345' },
            ['contactNumber']],
        ['userId over 128', { $ok->(), userId => 'u' x 129 }, ['userId']],
        ['userId a number', { $ok->(), userId => 42 }, ['userId']],
        ['customerStatus (not a field here)',
            { $ok->(), customerStatus => 'Active' }, ['customerStatus']],
        ['customerType (not a field here)', { $ok->(), customerType => 'VIP' },
            ['customerType']],
        ['totalOrders (not a field here)', { $ok->(), totalOrders => 5 },
            ['totalOrders']],
        ['unknown field', { $ok->(), password => 'hunter2' }, ['password']],
        ['several errors', { $ok->(), email => 'x', notes => 'n' },
            ['email', 'notes']])
    {
        my ($name, $body, $fields) = @$case;
        $r = $ng->req(POST => '/api/customers/internal/create',
            auth => 'service', json => $body);
        is_error($r, 400, 'Validation failed', $fields,
            "internal create: $name");
    }
    $r = raw_json(POST => '/api/customers/internal/create', '[1,2]',
        auth => 'service');
    is_error($r, 400, 'Malformed JSON', ['body'],
        'internal create: body an array');
    $r = raw_json(POST => '/api/customers/internal/create', '{"userId":',
        auth => 'service');
    is_error($r, 400, 'Malformed JSON', ['body'],
        'internal create: malformed JSON');
    $r = $ng->req(POST => '/api/customers/internal/create', auth => 'service',
        body => '{"userId":"a"}',
        headers => { 'Content-Type' => 'text/plain' });
    is($r->{status}, 415, 'internal create: text/plain: 415');
    is(count_rows(), $n, 'refused internal creates wrote nothing');
}


# --- internal lookup by userId -------------------------------------------

{
    my $r = $ng->req(GET => "/api/customers/internal/user/$SUB",
        auth => 'service');
    is($r->{status}, 200, 'internal lookup: 200') or diag($r->{body});
    is_deeply([sort keys %{ $r->{json}{data} // {} }], \@RECORD_KEYS,
        'internal lookup: the full record');
    is($r->{json}{data}{customerId}, $ID, 'internal lookup: the right one');
    is($r->{headers}{etag}, '"' . row($ID)->{version} . '"',
        'internal lookup: ETag');

    $r = $ng->req(GET => '/api/customers/internal/user/me-no-such-user',
        auth => 'service');
    is_error($r, 404, 'Customer not found', ['userId'],
        'internal lookup of an unknown userId');

    my ($id2, $u2) = make_customer(userId => 'auth0|me.lookup@example',
        email => 'lookup@example.com');
    $r = $ng->req(GET =>
        '/api/customers/internal/user/auth0%7Cme.lookup%40example',
        auth => 'service');
    is($r->{status}, 200, 'internal lookup of a percent-encoded userId: 200')
        or diag($r->{body});
    is($r->{json}{data}{customerId}, $id2, 'percent-encoded: the right one');
}


# --- statistics ------------------------------------------------------------

my ($SID) = make_customer();
my $STATS = "/api/customers/internal/$SID/statistics";

{
    # seed example
    my $r = raw_json(PATCH => $STATS, '{"totalOrders":16,'
        . '"totalOrderValue":49000.00,'
        . '"lastOrderDate":"2026-01-25T13:00:00.000Z"}', auth => 'service');
    is($r->{status}, 200, 'statistics, seed example: 200') or diag($r->{body});
    is($r->{json}{success}, $T, 'statistics: success');
    my $d = $r->{json}{data} // {};
    is_deeply([sort keys %$d], \@STATS_KEYS, 'statistics: data fields');
    is($d->{customerId}, $SID, 'statistics: customerId');
    is($d->{totalOrders}, 16, 'statistics: totalOrders 16');
    like($r->{body}, qr/"totalOrderValue":49000\.00[,}]/,
        'statistics: totalOrderValue 49000.00');
    is($d->{lastOrderDate}, '2026-01-25T13:00:00.000Z',
        'statistics: lastOrderDate');
    is($d->{totalComplaints}, 0, 'statistics: totalComplaints untouched');
    like($d->{updatedAt}, $TS, 'statistics: updatedAt');
    my $row = row($SID);
    is($row->{total_orders}, 16, 'row: total_orders 16');
    is($row->{total_order_value}, '49000.00', 'row: total_order_value');
    is($row->{last_order_date}, '2026-01-25T13:00:00.000Z',
        'row: last_order_date');
    is($row->{updated_by}, 'service', 'row: updated_by service');
    is($row->{version}, 2, 'row: version 2');

    $r = $ng->req(GET => '/api/customers/me/statistics',
        auth => CT::customer_token(row($SID)->{user_id}));
    is_deeply({ map { $_ => $r->{json}{data}{$_} }
        qw(totalOrders totalOrderValue lastOrderDate) },
        { totalOrders => 16, totalOrderValue => 49000,
          lastOrderDate => '2026-01-25T13:00:00.000Z' },
        '/me/statistics shows the update');

    # increments
    $r = $ng->req(PATCH => $STATS, auth => 'service', json => { increment => {
        totalOrders => 2, totalOrderValue => 150.25, totalComplaints => 3,
        openComplaints => 2 } });
    is($r->{status}, 200, 'increments: 200') or diag($r->{body});
    $d = $r->{json}{data};
    is_deeply([ @$d{qw(totalOrders totalComplaints openComplaints)} ],
        [18, 3, 2], 'increments: counts added');
    like($r->{body}, qr/"totalOrderValue":49150\.25[,}]/,
        'increments: value added');
    $row = row($SID);
    is_deeply([ @$row{qw(total_orders total_order_value total_complaints
        open_complaints)} ], [18, '49150.25', 3, 2], 'increments: stored');

    $r = raw_json(PATCH => $STATS, '{"increment":{"openComplaints":-1,'
        . '"totalOrderValue":-0.25},'
        . '"lastComplaintDate":"2026-02-01T10:00:00+05:30"}',
        auth => 'service');
    is($r->{status}, 200, 'negative increments and a date: 200')
        or diag($r->{body});
    $row = row($SID);
    is_deeply([ @$row{qw(open_complaints total_order_value
        last_complaint_date)} ], [1, '49150.00', '2026-02-01T04:30:00.000Z'],
        'negative increments: stored, date in UTC');

    $r = $ng->req(PATCH => $STATS, auth => 'service', json => {
        totalComplaints => 10, increment => { openComplaints => 4 } });
    is($r->{status}, 200, 'absolute and increment of different totals: 200')
        or diag($r->{body});
    $row = row($SID);
    is_deeply([ @$row{qw(total_complaints open_complaints)} ], [10, 5],
        'absolute and increment: stored');

    $r = $ng->req(PATCH => $STATS, auth => 'service',
        json => { lastComplaintDate => undef });
    is($r->{status}, 200, 'lastComplaintDate null: 200');
    is(row($SID)->{last_complaint_date}, undef, 'lastComplaintDate cleared');
}

# refusals: nothing written
{
    my $before = snapshot($SID);
    my $r = $ng->req(PATCH => $STATS, auth => 'service',
        json => { totalOrders => 5, increment => { totalOrders => 1 } });
    is_error($r, 400, 'Validation failed', ['totalOrders'],
        'the same total set and incremented');
    $r = $ng->req(PATCH => $STATS, auth => 'service', json => {
        totalOrderValue => 5, openComplaints => 0,
        increment => { totalOrderValue => 1, openComplaints => 1 } });
    is_error($r, 400, 'Validation failed',
        ['totalOrderValue', 'openComplaints'],
        'two totals set and incremented');

    $r = $ng->req(PATCH => $STATS, auth => 'service',
        json => { increment => { openComplaints => -6 } });
    is_error($r, 422, 'Statistics cannot go below zero', ['increment'],
        'increment below zero');
    is($r->{reason}, 'Unprocessable Entity', '422: reason phrase');
    is(snapshot($SID), $before, '422: the row is unchanged');

    $r = $ng->req(PATCH => $STATS, auth => 'service', json => { increment => {
        totalOrders => 1, totalOrderValue => -49150.01 } });
    is_error($r, 422, 'Statistics cannot go below zero', ['increment'],
        'value below zero next to a valid increment');

    $r = $ng->req(PATCH => $STATS, auth => 'service',
        json => { totalOrders => 0, increment => { openComplaints => -100 } });
    is($r->{status}, 422, 'valid absolute next to a negative result: 422');

    for my $case (
        ['negative absolute', { totalOrders => -1 }, ['totalOrders']],
        ['fractional count', { totalOrders => 1.5 }, ['totalOrders']],
        ['value with 3 decimals', { totalOrderValue => 1.005 },
            ['totalOrderValue']],
        ['count as a string', { totalOrders => '16' }, ['totalOrders']],
        ['bad date', { lastOrderDate => 'yesterday' }, ['lastOrderDate']],
        ['increment not an object', { increment => 5 }, ['increment']],
        ['increment of a date', { increment => { lastOrderDate => 1 } },
            ['increment.lastOrderDate']],
        ['increment too large', { increment => { totalOrders => 1000001 } },
            ['increment.totalOrders']],
        ['unknown field', { customerStatus => 'VIP' }, ['customerStatus']],
        ['empty body', {}, ['body']])
    {
        my ($name, $body, $fields) = @$case;
        $r = $ng->req(PATCH => $STATS, auth => 'service', json => $body);
        is_error($r, 400, 'Validation failed', $fields, "statistics: $name");
    }

    $r = $ng->req(PATCH => "/api/customers/internal/$MISSING/statistics",
        auth => 'service', json => { totalOrders => 1 });
    is_error($r, 404, 'Customer not found', ['customerId'],
        'statistics of an unknown id');
    $r = $ng->req(PATCH => '/api/customers/internal/not-a-uuid/statistics',
        auth => 'service', json => { totalOrders => 1 });
    is_error($r, 400, 'Validation failed', ['customerId'],
        'statistics of a malformed id');

    is(snapshot($SID), $before, 'refused statistics updates wrote nothing');
}

# 50 concurrent increments
{
    my ($cid) = make_customer();
    my $path = "/api/customers/internal/$cid/statistics";
    my $body = '{"increment":{"totalOrders":1,"totalOrderValue":10.50}}';
    my $N = 50;

    pipe(my $go_r, my $go_w) or die "pipe: $!";
    pipe(my $res_r, my $res_w) or die "pipe: $!";
    my @pids;
    for my $i (1 .. $N) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            close $go_w;
            close $res_r;
            my $x = <$go_r>;           # wait for the start (EOF)
            my $r = eval { raw_json(PATCH => $path, $body,
                auth => 'service') } // { status => 0, json => {} };
            my $n = $r->{json} && $r->{json}{data}
                ? $r->{json}{data}{totalOrders} // -1 : -1;
            syswrite $res_w, "$r->{status} $n\n";
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    close $go_r;
    close $res_w;
    close $go_w;                       # all children start at once
    my @lines = <$res_r>;
    close $res_r;
    waitpid($_, 0) for @pids;

    my @status = map { (split ' ')[0] } @lines;
    my @orders = sort { $a <=> $b } map { (split ' ')[1] } @lines;
    is(scalar @lines, $N, "$N concurrent increments answered");
    is(scalar(grep { $_ == 200 } @status), $N, 'every one got 200')
        or diag(join '', @lines);
    is_deeply(\@orders, [1 .. $N],
        'each answer saw its own total: 1 .. 50, none lost or repeated');
    my $row = row($cid);
    is($row->{total_orders}, $N, 'total_orders is exactly 50');
    is($row->{total_order_value}, '525.00', 'total_order_value is 525.00');
    is($row->{version}, 1 + $N, 'version moved once per increment');
}

done_testing();
