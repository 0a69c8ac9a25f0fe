# Idempotency-Key on every write route: the same key and request answer
# the stored response again (Idempotent-Replayed: true) and write nothing;
# the key with another method, path or body is 409; keys are per caller;
# concurrent requests with one key write once; a malformed key is 400 and
# writes nothing; keys older than 24 hours are new requests.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use POSIX ();

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db, pool => 8);

my $SEQ = 0;
sub customer_body {
    my $u = "idem-$$-" . ++$SEQ;
    return { userId => $u, email => "$u\@example.com",
        fullName => 'Idem Potent' };
}

sub count_sql { CT::sql($db, @_) }

sub replayed { ($_[0]{headers}{'idempotent-replayed'} // '') eq 'true' }

# --- a create ------------------------------------------------------------

my $body = customer_body();
my $r1 = $ng->req(POST => '/api/customers', json => $body,
    headers => { 'Idempotency-Key' => "create-$$" });
is($r1->{status}, 201, 'create with a key: 201') or diag($r1->{body});
ok(!replayed($r1), 'the first answer is not marked replayed');
my $id = $r1->{json}{data}{customerId};

my $r2 = $ng->req(POST => '/api/customers', json => $body,
    headers => { 'Idempotency-Key' => "create-$$" });
is($r2->{status}, 201, 'the same request again: 201, not 409')
    or diag($r2->{body});
ok(replayed($r2), 'marked Idempotent-Replayed: true');
is($r2->{body}, $r1->{body}, 'the stored answer, byte for byte');
is($r2->{headers}{'content-type'}, 'application/json', 'as JSON');
ok($r2->{headers}{'x-request-id'}, 'with a request id of its own');
is(count_sql(q{SELECT count(*) FROM customers WHERE user_id = :'p1'},
    $body->{userId}), 1, 'one customer row');

my $other = { %$body, fullName => 'Someone Else' };
my $r3 = $ng->req(POST => '/api/customers', json => $other,
    headers => { 'Idempotency-Key' => "create-$$" });
is($r3->{status}, 409, 'the key with another body: 409') or diag($r3->{body});
is($r3->{json}{success}, JSON::PP::false(), 'in the error envelope');
is($r3->{json}{errors}[0]{field}, 'Idempotency-Key', 'naming the key');
like($r3->{json}{message}, qr/different request/, 'saying why');
is(count_sql(q{SELECT full_name FROM customers WHERE id = :'p1'}, $id),
    'Idem Potent', 'the record is unchanged');

my $r4 = $ng->req(PATCH => "/api/customers/$id",
    json => { fullName => 'Other Route' },
    headers => { 'Idempotency-Key' => "create-$$" });
is($r4->{status}, 409, 'the key on another route: 409');
is(count_sql(q{SELECT full_name FROM customers WHERE id = :'p1'}, $id),
    'Idem Potent', 'and nothing is written');

# --- an update, with its ETag ------------------------------------------------

my $u1 = $ng->req(PATCH => "/api/customers/$id", json => { contactNumber => '+15550101' },
    headers => { 'Idempotency-Key' => "patch-$$" });
is($u1->{status}, 200, 'PATCH with a key: 200') or diag($u1->{body});
CT::sql($db, q{UPDATE customers SET contact_number = '+15550199' WHERE id = :'p1'},
    $id);
my $u2 = $ng->req(PATCH => "/api/customers/$id", json => { contactNumber => '+15550101' },
    headers => { 'Idempotency-Key' => "patch-$$" });
is($u2->{status}, 200, 'the PATCH again: 200');
ok(replayed($u2), 'replayed');
is($u2->{body}, $u1->{body}, 'the first answer');
is($u2->{headers}{etag}, $u1->{headers}{etag}, 'with the first ETag');
is(count_sql(q{SELECT contact_number FROM customers WHERE id = :'p1'}, $id),
    '+15550199', 'not applied again over a later change');

# --- notes: the key is per caller ---------------------------------------------

my $n1 = $ng->req(POST => "/api/customers/$id/notes",
    json => { content => 'keyed note' },
    headers => { 'Idempotency-Key' => "note-$$" });
is($n1->{status}, 201, 'note with a key: 201') or diag($n1->{body});
my $n2 = $ng->req(POST => "/api/customers/$id/notes",
    json => { content => 'keyed note' },
    headers => { 'Idempotency-Key' => "note-$$" });
ok(replayed($n2) && $n2->{status} == 201, 'the note again: replayed 201');
is($n2->{json}{data}{noteId}, $n1->{json}{data}{noteId}, 'the same noteId');
my $n3 = $ng->req(POST => "/api/customers/$id/notes",
    json => { content => 'keyed note' }, auth => CT::admin_token('admin-2'),
    headers => { 'Idempotency-Key' => "note-$$" });
is($n3->{status}, 201, 'another caller with the same key: its own request');
ok(!replayed($n3), 'not a replay');
isnt($n3->{json}{data}{noteId}, $n1->{json}{data}{noteId}, 'a new note');
is(count_sql(q{SELECT count(*) FROM customer_notes WHERE customer_id = :'p1'
    AND content = 'keyed note'}, $id), 2, 'two notes, one per caller');

# --- a Customer's own routes ----------------------------------------------------

{
    my $cb = customer_body();
    my $c = $ng->req(POST => '/api/customers', json => $cb);
    is($c->{status}, 201, 'a customer with a userId');
    my $tok = CT::customer_token($cb->{userId});
    my $m1 = $ng->req(PATCH => '/api/customers/me', auth => $tok,
        json => { contactNumber => '+15550102' },
        headers => { 'Idempotency-Key' => "me-$$" });
    is($m1->{status}, 200, 'PATCH /me with a key: 200') or diag($m1->{body});
    my $m2 = $ng->req(PATCH => '/api/customers/me', auth => $tok,
        json => { contactNumber => '+15550102' },
        headers => { 'Idempotency-Key' => "me-$$" });
    ok(replayed($m2), 'the Customer\'s retry is replayed');
}

# --- a DELETE -----------------------------------------------------------------

{
    my $v = $ng->req(POST => "/api/customers/$id/vehicles",
        json => { vin => '1HGCM82633A004352', make => 'Honda',
            model => 'Accord', year => 2003 });
    is($v->{status}, 201, 'a vehicle to delete') or diag($v->{body});
    my $vid = $v->{json}{data}{vehicleId};
    my $d1 = $ng->req(DELETE => "/api/vehicles/$vid",
        headers => { 'Idempotency-Key' => "del-$$" });
    is($d1->{status}, 200, 'DELETE with a key: 200') or diag($d1->{body});
    my $d2 = $ng->req(DELETE => "/api/vehicles/$vid",
        headers => { 'Idempotency-Key' => "del-$$" });
    is($d2->{status}, 200, 'the DELETE again: 200, not 404')
        or diag($d2->{body});
    ok(replayed($d2), 'replayed');
    is($d2->{body}, $d1->{body}, 'the first answer');
    my $d3 = $ng->req(DELETE => "/api/vehicles/$vid");
    is($d3->{status}, 404, 'without the key: 404, the vehicle is gone');
}

# --- a refusal the write itself made is kept as well -----------------------------

{
    my $miss = '00000000-0000-4000-8000-000000000001';
    my $x1 = $ng->req(POST => "/api/customers/$miss/notes",
        json => { content => 'nobody' },
        headers => { 'Idempotency-Key' => "miss-$$" });
    is($x1->{status}, 404, 'a note for no customer: 404');
    is(count_sql(q{SELECT count(*) FROM customer_notes WHERE customer_id
        = :'p1'}, $miss), 0, 'nothing written');
}

# --- malformed keys: 400 and nothing written --------------------------------------

for my $case (['empty', ''], ['101 characters', 'k' x 101],
    ['a control character', "a\tb"])
{
    my ($name, $key) = @$case;
    my $b = customer_body();
    my $r = $ng->req(POST => '/api/customers', json => $b,
        headers => { 'Idempotency-Key' => $key });
    is($r->{status}, 400, "Idempotency-Key $name: 400") or diag($r->{body});
    is($r->{json}{errors}[0]{field}, 'Idempotency-Key',
        "$name: the error names the key");
    is(count_sql(q{SELECT count(*) FROM customers WHERE user_id = :'p1'},
        $b->{userId}), 0, "$name: nothing written");
}
{
    my $b = customer_body();
    my $r = $ng->req(POST => '/api/customers', json => $b,
        headers => { 'Idempotency-Key' => ['one', 'two'] });
    is($r->{status}, 400, 'two Idempotency-Key headers: 400');
    is(count_sql(q{SELECT count(*) FROM customers WHERE user_id = :'p1'},
        $b->{userId}), 0, 'nothing written');
}

{
    # bytes HTTP::Tiny would not send
    my $b = customer_body();
    my $json = JSON::PP->new->canonical->encode($b);
    my $out = $ng->raw("POST /api/customers HTTP/1.1\r\nHost: t\r\n"
        . 'Authorization: Bearer ' . CT::admin_token() . "\r\n"
        . "Idempotency-Key: cl\xc3\xa9\r\nContent-Type: application/json\r\n"
        . 'Content-Length: ' . length($json) . "\r\nConnection: close\r\n"
        . "\r\n$json");
    like($out, qr{^HTTP/1\.1 400 }, 'a key not in ASCII: 400');
    like($out, qr/"field":"Idempotency-Key"/, 'naming the key');
    is(count_sql(q{SELECT count(*) FROM customers WHERE user_id = :'p1'},
        $b->{userId}), 0, 'nothing written');
}

# --- an expired key is a new request ---------------------------------------------

{
    CT::sql($db, q{UPDATE idempotency_keys SET created_at = now()
        - interval '25 hours' WHERE key = :'p1' AND caller = :'p2'},
        "note-$$", 'user:admin-user');
    my $r = $ng->req(POST => "/api/customers/$id/notes",
        json => { content => 'keyed note' },
        headers => { 'Idempotency-Key' => "note-$$" });
    is($r->{status}, 201, 'a key older than 24 hours: 201');
    ok(!replayed($r), 'not a replay');
    is(count_sql(q{SELECT count(*) FROM customer_notes WHERE customer_id
        = :'p1' AND content = 'keyed note'}, $id), 3, 'a new note');
    is(count_sql(q{SELECT count(*) FROM idempotency_keys WHERE key = :'p1'
        AND created_at > now() - interval '1 hour'}, "note-$$"), 2,
        'the key row replaced in place (the other caller\'s kept)');
}

# --- concurrent requests with one key write once -------------------------------------

{
    my $s = CT::psql_session($db);
    $s->run('BEGIN');
    $s->run("SELECT 1 FROM customers WHERE id = '$id' FOR UPDATE");

    my $dir = CT::_fresh_dir('idem-race', 0777);
    my $key = "race-$$";    # $$ is each child's own after the fork
    my @kids;
    for my $k (1 .. 4) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            my $r = $ng->req(POST => "/api/customers/$id/notes",
                json => { content => 'raced' },
                headers => { 'Idempotency-Key' => $key });
            open my $f, '>', "$dir/$k" or POSIX::_exit(1);
            print $f join("\t", $r->{status},
                $r->{headers}{'idempotent-replayed'} // '',
                $r->{json} && $r->{json}{message} // '',
                $r->{json} && ref $r->{json}{data} eq 'HASH'
                    ? $r->{json}{data}{noteId} // '' : ''), "\n";
            close $f;
            POSIX::_exit(0);
        }
        push @kids, $pid;
    }

    # all four wait: one on the row lock, three on the key's index entry
    ok(CT::wait_for(sub { count_sql(q{SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock'})
        >= 4 }, timeout => 15), 'four requests wait on the lock and the key');
    $s->run('COMMIT');
    $s->close;
    waitpid($_, 0) for @kids;

    my @res = map { [split /\t/, CT::_slurp("$dir/$_") =~ s/\n\z//r, -1] }
        1 .. 4;
    my @made = grep { $_->[0] == 201 && $_->[1] ne 'true' } @res;
    is(scalar @made, 1, 'one request made the note')
        or diag(explain \@res);
    for my $x (grep { $_ != $made[0] } @res) {
        ok(($x->[0] == 201 && $x->[1] eq 'true'
                && $x->[3] eq ($made[0] && $made[0][3]))
            || ($x->[0] == 409 && $x->[2] eq 'Request already applied'),
            "the others: a replay or 409 already applied ($x->[0] $x->[2])");
    }
    is(count_sql(q{SELECT count(*) FROM customer_notes WHERE customer_id
        = :'p1' AND content = 'raced'}, $id), 1, 'one note written');
    my $again = $ng->req(POST => "/api/customers/$id/notes",
        json => { content => 'raced' },
        headers => { 'Idempotency-Key' => "race-$$" });
    ok(replayed($again) && $again->{status} == 201,
        'a later retry: the stored answer');
    is($again->{json}{data}{noteId}, $made[0] && $made[0][3],
        'of the one note');
}

# --- the outbox run expires old keys --------------------------------------------------

{
    CT::sql($db, q{UPDATE idempotency_keys SET created_at = now()
        - interval '25 hours' WHERE key = :'p1'}, "patch-$$");
    my $o = $ng->req(POST => '/api/customers/internal/outbox',
        auth => 'service');
    is($o->{status}, 200, 'an outbox run') or diag($o->{body});
    is(count_sql(q{SELECT count(*) FROM idempotency_keys WHERE key = :'p1'},
        "patch-$$"), 0, 'deleted the expired key');
    ok(count_sql(q{SELECT count(*) FROM idempotency_keys WHERE key = :'p1'},
        "race-$$") == 1, 'and kept a live one');
}

$ng->stop;
CT::done_testing();
