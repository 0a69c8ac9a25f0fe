# Scoped service keys: a line of the service keys file may name the route
# classes its key may use (internal:read, internal:write, loyalty,
# credit) and a name for the log. A key without classes may use every
# internal route, as before; a key outside its classes gets 403 in the
# error envelope, nothing is written, and the error log names the key and
# the class. Bad files fail nginx -t.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use File::Path qw(make_path);

my $DIR = "$ENV{CT_RUN_DIR}/t/scopes-$$";
make_path($DIR);
chmod 0755, $DIR;
END { unlink glob("$DIR/*"); rmdir $DIR if $DIR }

sub spew {
    my ($file, $text) = @_;
    open my $fh, '>', $file or die "$file: $!\n";
    print $fh $text;
    close $fh or die "$file: $!\n";
    chmod 0644, $file;
}

my %KEY = (
    full    => 'full-key-0123456789abcdef',
    risk    => 'risk-key-0123456789abcdef',
    points  => 'points-key-0123456789abcdef',
    writer  => 'writer-key-0123456789abcdef',
    both    => 'both-key-0123456789abcdef',
);

# line 1 is a comment, line 2 blank: the writer key is on line 7
spew("$DIR/service.keys", <<"KEYS");
# key                          classes                  name
\t
$KEY{full}
$KEY{risk}\tinternal:read credit    name=risk-assessment
  $KEY{points}  loyalty   # the loyalty partner
$KEY{both} internal:read internal:write name=crm
$KEY{writer} internal:write
KEYS

# the test credentials, the service keys file replaced by ours
(my $auth = CT::jwt_conf())
    =~ s{customer_service_keys [^;]+;}{customer_service_keys $DIR/service.keys;};

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db, auth_conf => $auth);

sub as {
    my ($who, $method, $path, $json) = @_;
    return $ng->req($method => $path, auth => "service:$KEY{$who}",
        defined $json ? (json => $json) : ());
}

sub count {
    my ($table, $id) = @_;
    return CT::sql($db, "SELECT count(*) FROM $table"
        . (defined $id ? " WHERE customer_id = :'p1'" : ''),
        defined $id ? ($id) : ());
}

sub create {
    my ($who) = @_;
    my $u = CT::uniq('scope');
    return (as($who, POST => '/api/customers/internal/create',
        { userId => $u, email => "$u\@example.com",
          fullName => 'Scope Test' }), $u);
}


# --- a key without classes: every internal route, as before ---------------

my ($r, $U) = create('full');
is($r->{status}, 201, 'unscoped key: internal create 201')
    or diag($r->{body});
my $ID = $r->{json}{data}{customerId};
is(as('full', GET => "/api/customers/internal/user/$U")->{status}, 200,
    'unscoped key: lookup by userId 200');
is(as('full', POST => "/api/customers/internal/$ID/loyalty/earn",
    { points => 10 })->{status}, 201, 'unscoped key: loyalty earn 201');
is(as('full', PUT => "/api/customers/internal/$ID/credit-status",
    { creditScore => 600 })->{status}, 200,
    'unscoped key: credit-status 200');
is(as('full', PATCH => "/api/customers/internal/$ID/statistics",
    { totalOrders => 1 })->{status}, 200, 'unscoped key: statistics 200');

# the keys of the test harness (no classes) still work too
is($ng->req(GET => "/api/customers/internal/user/$U",
    auth => 'service')->{status}, 401,
    "the harness's key is not in this file: 401");


# --- the Risk Assessment key: internal:read and credit ---------------------

$r = as('risk', GET => "/api/customers/internal/user/$U");
is($r->{status}, 200, 'internal:read key: lookup by userId 200')
    or diag($r->{body});
is($r->{json}{data}{customerId}, $ID, '... the customer');

$r = as('risk', PUT => "/api/customers/internal/$ID/credit-status",
    { creditScore => 720, source => 'risk' });
is($r->{status}, 200, 'credit key: credit-status 200') or diag($r->{body});
is(CT::sql($db, q{SELECT credit_score FROM credit_status
    WHERE customer_id = :'p1'}, $ID), 720, '... stored');

{
    my $tx = count('loyalty_transactions', $ID);
    $r = as('risk', POST => "/api/customers/internal/$ID/loyalty/earn",
        { points => 500 });
    is_error($r, 403, 'Access denied', ['X-Service-API-Key'],
        'risk key earns points');
    is($r->{json}{errors}[0]{message},
        'This service key may not use this route', '... says why');
    ok(!$r->{headers}{'www-authenticate'}, '... no WWW-Authenticate: the '
        . 'key is known');
    is(count('loyalty_transactions', $ID), $tx, '... nothing written');
    is(as('risk', POST => "/api/customers/internal/$ID/loyalty/redeem",
        { points => 1 })->{status}, 403, 'risk key redeems points: 403');

    my $customers = count('customers');
    is_error((create('risk'))[0], 403, 'Access denied', ['X-Service-API-Key'],
        'risk key creates a customer (internal:write)');
    is(count('customers'), $customers, '... nothing written');

    my $before = CT::sql($db, q{SELECT total_orders FROM customers
        WHERE id = :'p1'}, $ID);
    is(as('risk', PATCH => "/api/customers/internal/$ID/statistics",
        { totalOrders => 99 })->{status}, 403,
        'risk key updates statistics: 403');
    is(CT::sql($db, q{SELECT total_orders FROM customers WHERE id = :'p1'},
        $ID), $before, '... nothing written');
}


# --- the loyalty key: loyalty only ----------------------------------------

$r = as('points', POST => "/api/customers/internal/$ID/loyalty/earn",
    { points => 5 });
is($r->{status}, 201, 'loyalty key: earn 201') or diag($r->{body});
is(as('points', POST => "/api/customers/internal/$ID/loyalty/redeem",
    { points => 5 })->{status}, 201, 'loyalty key: redeem 201');
is_error(as('points', GET => "/api/customers/internal/user/$U"), 403,
    'Access denied', ['X-Service-API-Key'], 'loyalty key reads a customer');
is(as('points', PUT => "/api/customers/internal/$ID/credit-status",
    { creditScore => 800 })->{status}, 403,
    'loyalty key sets a credit score: 403');
is(CT::sql($db, q{SELECT credit_score FROM credit_status
    WHERE customer_id = :'p1'}, $ID), 720, '... the score is unchanged');


# --- internal:write does not imply internal:read, nor the others ----------

($r) = create('writer');
is($r->{status}, 201, 'internal:write key: create 201') or diag($r->{body});
is(as('writer', GET => "/api/customers/internal/user/$U")->{status}, 403,
    'internal:write key reads: 403');
is(as('writer', POST => "/api/customers/internal/$ID/loyalty/earn",
    { points => 1 })->{status}, 403, 'internal:write key earns: 403');
is(as('writer', PUT => "/api/customers/internal/$ID/credit-status",
    { creditScore => 700 })->{status}, 403,
    'internal:write key sets credit: 403');

($r) = create('both');
is($r->{status}, 201, 'read+write key: create 201');
is(as('both', GET => "/api/customers/internal/user/$U")->{status}, 200,
    'read+write key: read 200');
is(as('both', POST => "/api/customers/internal/$ID/loyalty/earn",
    { points => 1 })->{status}, 403, 'read+write key earns: 403');

# a scoped key is still only a service key: not a bearer anywhere else
is($ng->req(GET => "/api/customers/$ID",
    headers => { 'X-Service-API-Key' => $KEY{risk} })->{status}, 401,
    'scoped key on an admin route: 401');
is($ng->req(GET => "/api/customers/internal/user/$U",
    auth => 'service:risk-key-0123456789abcdeX')->{status}, 401,
    '... a key one character off: 401');


# --- the error log names the key and the class ----------------------------

my $log = CT::wait_for(sub {
    my $l = $ng->error_log;
    $l =~ /service key "line 7"/ ? $l : undef;
}) // $ng->error_log;
like($log, qr/\[warn\].*customer: 403: service key "risk-assessment"/,
    'log: a [warn] naming the key');
for (['service key "risk-assessment" may not use loyalty routes '
      . '(POST /api/customers/internal/{}/loyalty/earn)',
      'log: the named key, its class and the route'],
    ['service key "risk-assessment" may not use internal:write routes '
      . '(POST /api/customers/internal/create)',
      'log: internal:write, by method'],
    ['service key "line 5" may not use internal:read routes '
      . '(GET /api/customers/internal/user/{})',
      'log: a key without a name is named by its line'])
{
    like($log, qr/\Q$_->[0]\E/, $_->[1]);
}
like($log, qr{service key "line 5" may not use credit routes},
    'log: credit');
like($log, qr{service key "line 7" may not use internal:read routes},
    'log: the last line');
unlike($log, qr/\Q$KEY{risk}\E|\Q$KEY{points}\E|\Q$KEY{writer}\E/,
    'log: no key itself');


# --- nginx -t -----------------------------------------------------------------

my $PORT = CT::free_port();

sub conf_with {
    my ($keys, $extra) = @_;
    spew("$DIR/bad.keys", $keys);
    (my $a = CT::jwt_conf())
        =~ s{customer_service_keys [^;]+;}{customer_service_keys $DIR/bad.keys;};
    return CT::nginx_test_conf(qq{    customer_db "host=127.0.0.1 dbname=x";
    $a
    ${\ ($extra // '')}
    server { listen 127.0.0.1:$PORT; location / { customer_api; } }
});
}

sub refused {
    my ($name, $keys, $re, $extra) = @_;
    my ($rc, $out) = conf_with($keys, $extra);
    ok($rc != 0, "$name: nginx -t fails") or diag($out);
    like($out, $re, "$name: the [emerg] says why") or diag($out);
}

{
    my ($rc, $out) = conf_with("k-0123456789abcdef internal:read credit "
        . "loyalty internal:write name=all # every class\n");
    is($rc, 0, 'every class named: nginx -t passes') or diag($out);
}
refused('an unknown class', "# keys\nk-0123456789abcdef internal:read "
    . "points\n", qr/\[emerg\].*unknown route class "points" on line 2 of /);
refused('a class in another case', "k-0123456789abcdef Credit\n",
    qr/unknown route class "Credit" on line 1/);
refused('the same key twice', "k-0123456789abcdef credit\n\n"
    . "k-0123456789abcdef loyalty name=x\n",
    qr/the key on line 3 of "[^"]+" is there twice \(line 1\)/);
refused('a short key', "k-0123456789abcdef\nshort credit\n",
    qr/a key in "[^"]+" is shorter than 16 characters \(line 2\)/);
refused('only comments', "# k-0123456789abcdef\n   # none\n",
    qr/no key in/);
refused('the outbox trigger with a read-only first key',
    "k-0123456789abcdef internal:read\nk-0123456789abcdeg\n",
    qr/"customer_outbox_trigger" calls an internal:write route with the first key .* \(line 1\) may not use internal:write/,
    "customer_outbox_trigger 127.0.0.1:1;");
{
    my ($rc, $out) = conf_with("k-0123456789abcdef internal:write credit\n",
        "customer_outbox_trigger 127.0.0.1:1;");
    is($rc, 0, 'the outbox trigger with a first key that may write: passes')
        or diag($out);
}

done_testing();
