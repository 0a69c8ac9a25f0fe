# Who may call what: every route of the module called by every kind of
# caller (anonymous, Customer on its own record, Customer without a record,
# Administrator, service keys during rotation, a wrong key), table-driven;
# refused calls change nothing. Then the edges of the two credential kinds
# (a token on an internal route even with a valid key, a key on a token
# route), customer_auth off, and createdBy/updatedBy taken from the sub.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db);

my $SUB_A = 'roles-user-a';
my $SUB_NONE = 'roles-user-without-record';
my $SUB_ADMIN = 'roles-admin';
my $THIRD_KEY = 'test-service-key-not-configured-0000';


# --- helpers -------------------------------------------------------------

my $SEQ = 0;
sub uniq { return "roles-$$-" . ++$SEQ }

# Every row, to show that a refused call changed nothing; but the
# caller's own lastActivityDate, which any request of a Customer may
# write first (customer_activity_interval).
sub state_of {
    return scalar CT::sql($db, q{SELECT coalesce(md5(string_agg(
        (to_jsonb(c) #- '{metadata,lastActivityDate}')::text, ','
        ORDER BY id)), '') FROM customers c});
}

sub insert_customer {
    my ($user) = @_;
    my $n = ++$SEQ;
    return scalar CT::sql($db, q{INSERT INTO customers (user_id, email,
        full_name) VALUES (:'p1', :'p2', 'Roles Test') RETURNING id},
        $user, "roles$n\@example.com");
}

sub row_by {
    my ($col, $val) = @_;
    my $j = CT::sql($db, "SELECT row_to_json(c) FROM customers c"
        . " WHERE $col = :'p1'", $val);
    return length $j ? JSON::PP->new->decode($j) : undef;
}

my $ID_A = insert_customer($SUB_A);
my $ID_B = insert_customer('roles-user-b');


# --- the matrix ----------------------------------------------------------

# callers: name => req auth argument
my @CALLERS = (
    [ anonymous => 'none' ],
    [ customer => CT::customer_token($SUB_A) ],
    [ customer_roles_array => CT::jwt(sub => $SUB_A, roles => ['Customer']) ],
    [ customer_no_record => CT::customer_token($SUB_NONE) ],
    [ admin => CT::admin_token($SUB_ADMIN) ],
    [ admin_with_record => CT::jwt(sub => $SUB_A,
        roles => ['Customer', 'Administrator']) ],
    [ service_key_1 => "service:$CT::SERVICE_KEYS[0]" ],
    [ service_key_2 => "service:$CT::SERVICE_KEYS[1]" ],
    [ service_key_unknown => "service:$THIRD_KEY" ],
);

# access class => caller => expected status ('ok': the route's success)
my %EXPECT = (
    public => { map { $_->[0] => 'ok' } @CALLERS },
    admin => { anonymous => 401, customer => 403, customer_roles_array => 403,
        customer_no_record => 403, admin => 'ok', admin_with_record => 'ok',
        service_key_1 => 401, service_key_2 => 401,
        service_key_unknown => 401 },
    self => { anonymous => 401, customer => 'ok', customer_roles_array => 'ok',
        customer_no_record => 404, admin => 404, admin_with_record => 'ok',
        service_key_1 => 401, service_key_2 => 401,
        service_key_unknown => 401 },
    # GET /api/customers/{id}: any record to an Administrator, the own
    # one to a Customer, others 404
    own => { anonymous => 401, customer => 'ok', customer_roles_array => 'ok',
        customer_no_record => 404, admin => 'ok', admin_with_record => 'ok',
        service_key_1 => 401, service_key_2 => 401,
        service_key_unknown => 401 },
    own_other => { anonymous => 401, customer => 404,
        customer_roles_array => 404, customer_no_record => 404,
        admin => 'ok', admin_with_record => 'ok', service_key_1 => 401,
        service_key_2 => 401, service_key_unknown => 401 },
    internal => { anonymous => 401, customer => 401,
        customer_roles_array => 401, customer_no_record => 401, admin => 401,
        admin_with_record => 401, service_key_1 => 'ok',
        service_key_2 => 'ok', service_key_unknown => 401 },
);

# routes: [method, path (or code making one), body code or undef, class,
# success status]
my @ROUTES = (
    [ GET => '/health', undef, 'public', 200 ],
    [ GET => '/api/customers', undef, 'admin', 200 ],
    [ POST => '/api/customers', sub { my $u = uniq();
        { userId => $u, email => "$u\@example.com", fullName => 'New One' } },
        'admin', 201 ],
    [ GET => "/api/customers/$ID_B", undef, 'own_other', 200 ],
    [ GET => "/api/customers/$ID_A", undef, 'own', 200 ],
    [ PUT => "/api/customers/$ID_B", sub { { email => 'b@example.com',
        fullName => 'Bee ' . ++$SEQ } }, 'admin', 200 ],
    [ PATCH => "/api/customers/$ID_B", sub { { notes => 'note ' . ++$SEQ } },
        'admin', 200 ],
    [ DELETE => sub { '/api/customers/' . insert_customer(uniq()) }, undef,
        'admin', 200 ],
    [ GET => '/api/customers/me', undef, 'self', 200 ],
    [ PATCH => '/api/customers/me', sub { { contactNumber =>
        '+91987654' . sprintf('%04d', ++$SEQ) } }, 'self', 200 ],
    [ GET => '/api/customers/me/statistics', undef, 'self', 200 ],
    [ POST => '/api/customers/internal/create', sub { my $u = uniq();
        { userId => $u, email => "$u\@example.com", fullName => 'Svc New' } },
        'internal', 201 ],
    [ PATCH => "/api/customers/internal/$ID_A/statistics",
        sub { { increment => { totalOrders => 1 } } }, 'internal', 200 ],
    [ GET => "/api/customers/internal/user/$SUB_A", undef, 'internal', 200 ],
);

for my $route (@ROUTES) {
    my ($method, $path, $body, $class, $ok) = @$route;

    for my $caller (@CALLERS) {
        my ($who, $auth) = @$caller;
        my $p = ref $path ? $path->() : $path;
        my $shown = ref $path ? $p =~ s/[0-9a-f-]{36}/{id}/r : $p;
        my $name = "$method $shown as $who";
        my $want = $EXPECT{$class}{$who};
        $want = $ok if $want eq 'ok';

        my $before = state_of();
        my $r = $ng->req($method => $p, auth => $auth,
            $body ? (json => $body->()) : ());

        is($r->{status}, $want, "$name: $want") or diag($r->{body});
        if ($want < 300) {
            ok($r->{json} && $r->{json}{success}, "$name: success");
            next;
        }

        is(state_of(), $before, "$name: nothing changed in the database");
        ok($r->{json} && !$r->{json}{success}, "$name: success false");

        if ($want == 401 && $class eq 'internal') {
            is($r->{json}{message}, 'Unauthorized', "$name: message");
            is_deeply(fields_of($r), ['X-Service-API-Key'],
                "$name: error names X-Service-API-Key");
            is($r->{headers}{'www-authenticate'},
                'ApiKey header="X-Service-API-Key"',
                "$name: WWW-Authenticate ApiKey");
        } elsif ($want == 401) {
            is($r->{json}{message}, 'Unauthorized', "$name: message");
            is_deeply($r->{json}{errors}, [ { field => 'authorization',
                message => 'A valid bearer token is required' } ],
                "$name: error names authorization");
            is($r->{headers}{'www-authenticate'}, $auth eq 'none'
                ? 'Bearer realm="customer-api"'
                : 'Bearer realm="customer-api", error="invalid_token"',
                "$name: WWW-Authenticate Bearer");
        } elsif ($want == 403) {
            is_deeply({ message => $r->{json}{message},
                errors => $r->{json}{errors} },
                { message => 'Access denied', errors => [ {
                    field => 'authorization', message => 'This operation'
                        . ' requires administrator privileges' } ] },
                "$name: 403 envelope");
            ok(!exists $r->{headers}{'www-authenticate'},
                "$name: no WWW-Authenticate on 403");
        } elsif ($want == 404) {
            is($r->{json}{message}, 'Customer not found', "$name: message");
            my $f = $class =~ /^own/ ? 'customerId' : 'userId';
            is_deeply(fields_of($r), [$f], "$name: error names $f");
        }
    }
}

# What the Customer saw was its own record, and the internal lookup found A.
{
    my $r = $ng->req(GET => '/api/customers/me',
        auth => CT::customer_token($SUB_A));
    is($r->{json}{data}{customerId}, $ID_A, '/me is the record of the sub');
    $r = $ng->req(GET => "/api/customers/internal/user/$SUB_A",
        auth => 'service');
    is($r->{json}{data}{customerId}, $ID_A, 'internal lookup by userId');
    is(CT::sql($db, q{SELECT total_orders FROM customers WHERE id = :'p1'},
        $ID_A), 2, 'both service keys incremented totalOrders (1 + 1)');
}


# --- credential edges ----------------------------------------------------

{
    my $before = state_of();
    my $off = -s ($ng->dir . '/error.log');
    my $u = uniq();
    my $r = $ng->req(POST => '/api/customers/internal/create',
        json => { userId => $u, email => "$u\@example.com", fullName => 'X Y' },
        auth => 'service', headers => {
            Authorization => 'Bearer ' . CT::admin_token(),
            'X-Service-API-Key' => $CT::SERVICE_KEYS[0] });
    is($r->{status}, 401, 'internal route: valid key plus a bearer token: 401');
    is_deeply(fields_of($r), ['X-Service-API-Key'],
        'internal route with a token: error names X-Service-API-Key');
    is(state_of(), $before, 'internal route with a token: nothing written');

    $r = $ng->req(GET => "/api/customers/internal/user/$SUB_A",
        headers => { 'X-Service-API-Key' => $CT::SERVICE_KEYS[1],
            Authorization => 'Bearer ' . CT::admin_token() });
    is($r->{status}, 401, 'internal lookup with key 2 and a token: 401');

    for my $case (['a prefix of key 1', substr($CT::SERVICE_KEYS[0], 0, 20)],
        ['key 1 and one more character', "$CT::SERVICE_KEYS[0]x"],
        ['key 1 in upper case', uc $CT::SERVICE_KEYS[0]],
        ['both keys joined', join(',', @CT::SERVICE_KEYS)],
        ['the JWT secret', $CT::JWT_SECRET])
    {
        my ($name, $key) = @$case;
        my $r = $ng->req(GET => "/api/customers/internal/user/$SUB_A",
            auth => "service:$key");
        is($r->{status}, 401, "service key: $name: 401");
    }

    $r = $ng->req(GET => "/api/customers/internal/user/$SUB_A",
        headers => { Authorization => "ApiKey $CT::SERVICE_KEYS[0]" });
    is($r->{status}, 401, 'service key sent as Authorization: ApiKey: 401');

    $r = $ng->req(GET => '/api/customers', auth => 'service');
    is($r->{status}, 401, 'service key on an admin route: 401');
    is($r->{headers}{'www-authenticate'},
        'Bearer realm="customer-api", error="invalid_token"',
        'service key on an admin route: WWW-Authenticate invalid_token');
    my $log = substr($ng->error_log, $off);
    like($log,
        qr/\[info\] .*customer: 401: a service key is not accepted here/,
        'service key on an admin route: reason logged');
    like($log,
        qr/\[info\] .*customer: 401: a bearer token is not accepted on/,
        'token on an internal route: reason logged');

    $r = $ng->req(GET => '/api/customers', auth => 'service',
        headers => { Authorization => 'Bearer ' . CT::admin_token(),
            'X-Service-API-Key' => $CT::SERVICE_KEYS[0] });
    is($r->{status}, 200, 'admin route: a valid token with a stray key: 200');

    $r = $ng->req(GET => '/api/customers',
        headers => { Authorization => 'bearer ' . CT::admin_token() });
    is($r->{status}, 200, 'scheme "bearer" in lower case: 200');
}


# --- createdBy / updatedBy from the sub ----------------------------------

{
    my $u = uniq();
    my $r = $ng->req(POST => '/api/customers', auth =>
        CT::admin_token('admin-creator'),
        json => { userId => $u, email => "$u\@example.com",
            fullName => 'Audit Trail' });
    is($r->{status}, 201, 'admin POST: 201') or diag($r->{body});
    my $id = $r->{json}{data}{customerId};
    is($r->{json}{data}{createdBy}, 'admin-creator', 'POST: createdBy = sub');
    is($r->{json}{data}{updatedBy}, 'admin-creator', 'POST: updatedBy = sub');
    my $row = row_by(id => $id);
    is($row->{created_by}, 'admin-creator', 'POST: created_by in the row');
    is($row->{updated_by}, 'admin-creator', 'POST: updated_by in the row');

    $r = $ng->req(PUT => "/api/customers/$id",
        auth => CT::admin_token('admin-editor'),
        json => { email => "$u\@example.com", fullName => 'Audit Trail 2' });
    is($r->{status}, 200, 'admin PUT: 200') or diag($r->{body});
    is($r->{json}{data}{updatedBy}, 'admin-editor', 'PUT: updatedBy = sub');
    $row = row_by(id => $id);
    is($row->{created_by}, 'admin-creator', 'PUT: created_by kept');
    is($row->{updated_by}, 'admin-editor', 'PUT: updated_by in the row');

    $r = $ng->req(PATCH => "/api/customers/$id",
        auth => CT::jwt(sub => 'admin-patcher', roles => ['Administrator']),
        json => { notes => 'patched' });
    is($r->{status}, 200, 'admin PATCH: 200') or diag($r->{body});
    is(row_by(id => $id)->{updated_by}, 'admin-patcher',
        'PATCH: updated_by in the row');

    # the customer changes its own record
    my $cu = uniq();
    my $cid = insert_customer($cu);
    $r = $ng->req(PATCH => '/api/customers/me',
        auth => CT::customer_token($cu),
        json => { contactNumber => '+14155550123' });
    is($r->{status}, 200, 'customer PATCH /me: 200') or diag($r->{body});
    is($r->{json}{data}{updatedBy}, $cu, 'PATCH /me: updatedBy = sub');
    $row = row_by(id => $cid);
    is($row->{updated_by}, $cu, 'PATCH /me: updated_by in the row');
    is($row->{contact_number}, '+14155550123', 'PATCH /me: the change');

    # service writes
    my $su = uniq();
    $r = $ng->req(POST => '/api/customers/internal/create', auth => 'service',
        json => { userId => $su, email => "$su\@example.com",
            fullName => 'From Auth' });
    is($r->{status}, 201, 'internal create: 201') or diag($r->{body});
    $row = row_by(user_id => $su);
    is($row->{created_by}, 'service', 'internal create: created_by service');
    is($row->{updated_by}, 'service', 'internal create: updated_by service');

    $r = $ng->req(PATCH => "/api/customers/$row->{id}", auth =>
        CT::admin_token('admin-after-service'), json => { notes => 'x' });
    is($r->{status}, 200, 'admin PATCH of the service-made record: 200');
    $r = $ng->req(PATCH => "/api/customers/internal/$row->{id}/statistics",
        auth => "service:$CT::SERVICE_KEYS[1]",
        json => { totalOrders => 3 });
    is($r->{status}, 200, 'internal statistics: 200') or diag($r->{body});
    $row = row_by(user_id => $su);
    is($row->{updated_by}, 'service',
        'internal statistics: updated_by service');
    is($row->{created_by}, 'service', 'internal statistics: created_by kept');
}


# --- customer_auth off ---------------------------------------------------

{
    my $db2 = CT::db_create();
    my $ng2 = CT::nginx_start(db => $db2, server_extra => <<'CONF');
        location /api/customers/internal/ {
            customer_auth off;
            customer_api;
        }
CONF
    my $u = uniq();
    my $r = $ng2->req(POST => '/api/customers/internal/create', auth => 'none',
        json => { userId => $u, email => "$u\@example.com",
            fullName => 'No Auth' });
    is($r->{status}, 201, 'customer_auth off: internal create with no key: 201')
        or diag($r->{body});
    $r = $ng2->req(GET => "/api/customers/internal/user/$u", auth => 'none');
    is($r->{status}, 200, 'customer_auth off: lookup with no key: 200');
    is($r->{json}{data}{userId}, $u, 'customer_auth off: the record');
    $r = $ng2->req(GET => "/api/customers/internal/user/$u",
        auth => 'service:wrong-but-ignored-key');
    is($r->{status}, 200, 'customer_auth off: a wrong key is not looked at');

    $r = $ng2->req(GET => '/api/customers', auth => 'none');
    is($r->{status}, 401, 'customer_auth off elsewhere: /api/customers 401');
    $r = $ng2->req(GET => '/api/customers/me', auth => 'none');
    is($r->{status}, 401, 'customer_auth off elsewhere: /me 401');
    $r = $ng2->req(GET => '/api/customers');
    is($r->{status}, 200, 'customer_auth off elsewhere: admin token 200');
}

done_testing();
