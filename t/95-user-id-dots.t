# A userId is one path segment of the Auth Service calls
# (/api/auth/user/{userId}/status): "." and ".." (also once trimmed, or
# sent percent-encoded in a path) are refused with a 400 naming userId
# (or the path) wherever a userId is taken: POST /api/customers, POST
# /api/customers/internal/create and GET /api/customers/internal/user/{}.
# Nothing is written. The table refuses them too
# (sql/019_user_id_not_dot.sql), and that migration does not fail on a
# database that already holds such a row: the check is then NOT VALID,
# and that row's outbox entry is never sent to the Auth Service.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;


my $auth = CT::peer_start(handler =>
    sub { [200, {}, { success => $T, message => 'ok' }] });
my $db = CT::db_create();
my ($http, $server) = CT::peer_conf(auth => $auth, key => 'peer-key-dots');
my $ng = CT::nginx_start(db => $db, http_extra => $http,
    server_extra => $server);

sub refused {
    my ($r, $field, $name) = @_;
    is($r->{status}, 400, "$name: 400") or diag($r->{body});
    is_deeply(field_set($r), [$field], "$name: the error names $field")
        or diag($r->{body});
}

sub count { scalar CT::sql($db, 'SELECT count(*) FROM customers') }

my $before = count();
my $n = 0;

for my $id ('.', '..', ' .. ', "\t.\n", '  .') {
    (my $shown = $id) =~ s/([\t\n])/sprintf '\\x%02x', ord $1/ge;
    $n++;
    my %body = (userId => $id, email => "dots$n\@example.com",
        fullName => 'Dot Test');
    refused($ng->req(POST => '/api/customers', json => \%body), 'userId',
        "admin create, userId \"$shown\"");
    refused($ng->req(POST => '/api/customers/internal/create',
            json => \%body, auth => 'service'),
        'userId', "internal create, userId \"$shown\"");
}
is(count(), $before, 'no customer was created');
is(scalar CT::sql($db,
    q{SELECT count(*) FROM events WHERE destination = 'auth'}), 0,
    'nothing in the outbox');

# still fine: dots inside an id
my $r = $ng->req(POST => '/api/customers', json => { userId => '...',
    email => 'three@example.com', fullName => 'Three Dots' });
is($r->{status}, 201, 'userId "..." (not a dot segment): 201')
    or diag($r->{body});
$r = $ng->req(POST => '/api/customers/internal/create', auth => 'service',
    json => { userId => 'a..b', email => 'ab@example.com',
        fullName => 'A B' });
is($r->{status}, 201, 'userId "a..b": 201') or diag($r->{body});
$before = count();

# the internal lookup by userId
for my $c (['..', 'path'], ['%2E%2E', 'path'], ['.%2E', 'path'],
    ['%2E', 'path'], ['%20..%20', 'userId'], ['%09.', 'userId'],
    ['a' x 200, 'userId'], ['a%C3%C3', 'path'])
{
    my ($seg, $field) = @$c;
    refused($ng->req(GET => "/api/customers/internal/user/$seg",
            auth => 'service'),
        $field, 'internal user/' . substr($seg, 0, 20));
}
$r = $ng->req(GET => '/api/customers/internal/user/...', auth => 'service');
is($r->{status}, 200, 'internal user/...: 200') or diag($r->{body});
is(count(), $before, 'the lookups wrote nothing');


# --- the table refuses them too ---------------------------------------------

for my $id ('.', '..') {
    ok(!eval { CT::sql($db, q{INSERT INTO customers (user_id, email,
        full_name) VALUES (:'p1', 'x@example.com', 'Xavier')}, $id); 1 },
        "INSERT user_id '$id': refused by a CHECK");
    like($@, qr/customers_user_id_not_dot/, '... customers_user_id_not_dot');
}
is(scalar CT::sql($db, q{SELECT convalidated FROM pg_constraint
    WHERE conname = 'customers_user_id_not_dot'}), 't',
    'on a clean database the check is validated');


# --- the migration on a database that holds such a row ------------------------

my $old = CT::db_create();
CT::sql($old, q{ALTER TABLE customers
    DROP CONSTRAINT customers_user_id_not_dot;
    DELETE FROM schema_migrations WHERE version = '019_user_id_not_dot'});
my $bad = CT::sql($old, q{INSERT INTO customers (user_id, email, full_name)
    VALUES ('..', 'old@example.com', 'Old Row') RETURNING id});
CT::sql($old, q{INSERT INTO events (destination, type, customer_id, subject,
    data, channels) VALUES ('auth', 'customer.status_changed', :'p1',
    'customers/' || :'p1', jsonb_build_object('customerId', :'p1',
    'userId', '..', 'isActive', false, 'reason', 'old'), '{}')}, $bad);

my $file = CT::root() . '/sql/019_user_id_not_dot.sql';
my ($rc, $out) = CT::_capture(["$ENV{CT_PG_BIN}/psql", '-X', '-q',
    '-v', 'ON_ERROR_STOP=1', '-h', $ENV{CT_PGHOST}, '-p', $ENV{CT_PGPORT},
    '-U', $ENV{CT_PGUSER}, '-d', $old, '-f', $file], merge => 1);
is($rc, 0, 'the migration passes on a database with a ".." row')
    or diag($out);
like($out, qr/WARNING:.*1 customers have a userId of/,
    '... and warns about it');
is(scalar CT::sql($old, q{SELECT convalidated FROM pg_constraint
    WHERE conname = 'customers_user_id_not_dot'}), 'f',
    '... the check is there, NOT VALID');
is(scalar CT::sql($old, q{SELECT user_id FROM customers WHERE id = :'p1'},
    $bad), '..', '... the row is kept as it was');
ok(!eval { CT::sql($old, q{INSERT INTO customers (user_id, email,
    full_name) VALUES ('.', 'y@example.com', 'Yvonne')}); 1 },
    '... and a new "." is refused');
like($@, qr/customers_user_id_not_dot/, '... by that check');

# that row's outbox entry is never sent
my $ng2 = CT::nginx_start(db => $old, http_extra => $http,
    server_extra => $server);
$auth->clear;
$r = $ng2->req(POST => '/api/customers/internal/outbox', auth => 'service');
is($r->{status}, 200, 'outbox run: 200') or diag($r->{body});
is(scalar(grep { $_->{path} =~ m{/api/auth/} } $auth->requests), 0,
    'the Auth Service got no call for the ".." row');
like(scalar CT::sql($old, q{SELECT last_error FROM events
    WHERE destination = 'auth' AND data->>'userId' = '..'}),
    qr/not one path segment/,
    'the row is kept as failed, with the reason');

done_testing();
