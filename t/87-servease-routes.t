# The ServEase service's routes that have no customer in their path:
# POST /api/vehicles (the owner's customerId in the body), GET|POST
# /api/documents (administrators across customers, a Customer its own;
# the upload's customerId in the query or a header), PATCH
# /api/documents/{documentId}, GET|POST /api/notes (administrators, with
# filters), GET|PATCH|DELETE /api/notes/{noteId} (editor and time kept),
# PATCH|DELETE of a service record, and the dashboard's recent documents.
# Every refusal is a 4xx in the error envelope and writes nothing; every
# write takes an Idempotency-Key.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db, workers => 2);

my ($CID, $SUB) = CT::make_customer($ng, 'serv');
my ($OID, $OSUB) = CT::make_customer($ng, 'other');
my $OWN = CT::customer_token($SUB);
my $OTHER = CT::customer_token($OSUB);
my $EDITOR = CT::admin_token('editor-7');

sub count_of { scalar CT::sql($db, "SELECT count(*) FROM $_[0]") }

sub day {
    return scalar CT::sql($db, q{SELECT ((now() AT TIME ZONE 'UTC')::date
        + :'p1'::int)::text}, $_[0]);
}

sub vehicle_body {
    return { make => 'Skoda', model => 'Octavia', year => 2019,
        vin => CT::new_vin('TMBJJ7NE0J'), @_ };
}

sub upload {
    my ($path, $body, %o) = @_;
    return $ng->req(POST => $path, body => $body,
        headers => { 'Content-Type' => 'text/plain', %{ $o{headers} // {} } },
        defined $o{auth} ? (auth => $o{auth}) : ());
}

sub replayed { ($_[0]{headers}{'idempotent-replayed'} // '') eq 'true' }


# --- POST /api/vehicles ----------------------------------------------------

my ($V1, $V2);
{
    my $r = $ng->req(POST => '/api/vehicles',
        json => vehicle_body(customerId => $CID, mileage => 100));
    is($r->{status}, 201, 'POST /api/vehicles: 201') or diag($r->{body});
    my $d = $r->{json}{data} // {};
    $V1 = $d->{vehicleId} // $CT::MISSING;
    like($V1, $UUID, 'POST /api/vehicles: a vehicleId');
    is($d->{customerId}, $CID, 'POST /api/vehicles: for that customer');
    ok(!exists $d->{id}, 'POST /api/vehicles: no bare id');
    like($r->{headers}{etag} // '', qr/^"1"$/, 'POST /api/vehicles: ETag');
    is(CT::sql($db, q{SELECT customer_id FROM vehicles WHERE id = :'p1'},
        $V1), $CID, 'POST /api/vehicles: stored for it');

    $r = $ng->req(POST => '/api/vehicles', auth => $OWN,
        json => vehicle_body(customerId => $CID));
    is($r->{status}, 201, 'POST /api/vehicles as the Customer: its own');
    $V2 = $r->{json}{data}{vehicleId} // $CT::MISSING;

    my $before = count_of('vehicles');
    is_error($ng->req(POST => '/api/vehicles', auth => $OTHER,
        json => vehicle_body(customerId => $CID)), 422,
        'Customer not found', ['customerId'],
        "POST /api/vehicles for another's customerId as a Customer");
    is_error($ng->req(POST => '/api/vehicles',
        json => vehicle_body(customerId => $CT::MISSING)), 422,
        'Customer not found', ['customerId'],
        'POST /api/vehicles for an unknown customer');
    is_error($ng->req(POST => '/api/vehicles', json => vehicle_body()), 400,
        'Validation failed', ['customerId'],
        'POST /api/vehicles without customerId');
    is_error($ng->req(POST => '/api/vehicles',
        json => vehicle_body(customerId => 'nope', vin => '1HGCM82643A004352',
            year => 1800, bogus => 1)), 400, 'Validation failed',
        [qw(customerId vin year bogus)],
        'POST /api/vehicles: every bad member named');
    is_error($ng->req(POST => '/api/vehicles', json => vehicle_body(
        customerId => $CID, vin => CT::sql($db, q{SELECT vin FROM vehicles
            WHERE id = :'p1'}, $V1))), 409, 'Vehicle already exists', ['vin'],
        'POST /api/vehicles with a VIN taken');
    is(count_of('vehicles'), $before, 'refused vehicles: nothing written');

    # a retry with its key is answered, not run again
    my $body = vehicle_body(customerId => $OID);
    my %k = (headers => { 'Idempotency-Key' => "veh-$$" });
    my $a = $ng->req(POST => '/api/vehicles', json => $body, %k);
    my $b = $ng->req(POST => '/api/vehicles', json => $body, %k);
    is($a->{status}, 201, 'POST /api/vehicles with a key: 201');
    ok(replayed($b) && $b->{body} eq $a->{body},
        'POST /api/vehicles again with the key: the first answer replayed');
    is(count_of('vehicles'), $before + 1, 'the keyed POST wrote once');
}


# --- POST /api/documents, GET /api/documents ---------------------------------

my ($D1, $D2, $D3);
{
    my $r = upload("/api/documents?customerId=$CID&type=insurance"
        . "&title=Policy&vehicleId=$V1&expiresAt=" . day(20), 'policy');
    is($r->{status}, 201, 'POST /api/documents: 201') or diag($r->{body});
    my $d = $r->{json}{data} // {};
    $D1 = $d->{documentId} // $CT::MISSING;
    is_deeply([@$d{qw(customerId vehicleId type title size)}],
        [$CID, $V1, 'insurance', 'Policy', 6],
        'POST /api/documents: its metadata');
    ok(exists $d->{updatedAt} && !defined $d->{updatedAt}
        && exists $d->{updatedBy} && !defined $d->{updatedBy},
        'POST /api/documents: updatedAt and updatedBy null');

    $r = upload('/api/documents', 'registration', headers => {
        'X-Document-Customer-Id' => $CID, 'X-Document-Type' => 'registration',
        'X-Document-Title' => 'RC' }, auth => $OWN);
    is($r->{status}, 201, 'POST /api/documents, customerId in a header, '
        . 'as the Customer') or diag($r->{body});
    $D2 = $r->{json}{data}{documentId} // $CT::MISSING;
    $r = upload("/api/documents?customerId=$OID&type=identity&title=ID",
        'passport');
    $D3 = $r->{json}{data}{documentId} // $CT::MISSING;
    is($r->{status}, 201, "POST /api/documents for the other customer");

    my $before = count_of('documents') . '/'
        . count_of('document_contents');
    is_error(upload('/api/documents?type=other&title=x', 'x'), 400,
        'Validation failed', ['customerId'],
        'POST /api/documents without customerId');
    is_error(upload('/api/documents?customerId=bad&type=bogus', 'x'), 400,
        'Validation failed', [qw(customerId type title)],
        'POST /api/documents: every bad argument named');
    is_error(upload("/api/documents?customerId=$CT::MISSING&type=other"
        . '&title=x', 'x'), 422, 'Customer not found', ['customerId'],
        'POST /api/documents for an unknown customer');
    is_error(upload("/api/documents?customerId=$CID&type=other&title=x", 'x',
        auth => $OTHER), 422, 'Customer not found', ['customerId'],
        "POST /api/documents for another's customer as a Customer");
    is_error(upload("/api/documents?customerId=$OID&type=other&title=x"
        . "&vehicleId=$V1", 'x'), 422, 'Vehicle not found', ['vehicleId'],
        "POST /api/documents with another customer's vehicle");
    is(count_of('documents') . '/' . count_of('document_contents'),
        $before, 'refused uploads: nothing written');

    my $ids = sub { [ map { $_->{documentId} }
        @{ $_[0]{json}{data}{documents} // [] } ] };
    $r = $ng->req(GET => '/api/documents');
    is($r->{status}, 200, 'GET /api/documents: 200');
    is_deeply($ids->($r), [$D3, $D2, $D1], 'GET /api/documents: all, newest '
        . 'first');
    is($r->{json}{data}{pagination}{totalItems}, 3, '... totalItems 3');
    is_deeply($ids->($ng->req(GET => "/api/documents?customerId=$CID")),
        [$D2, $D1], 'GET /api/documents?customerId=');
    is_deeply($ids->($ng->req(GET => '/api/documents?type=identity')),
        [$D3], 'GET /api/documents?type=');
    is_deeply($ids->($ng->req(GET => "/api/documents?vehicleId=$V1")),
        [$D1], 'GET /api/documents?vehicleId=');
    is_deeply($ids->($ng->req(GET => '/api/documents?limit=1&page=2')),
        [$D2], 'GET /api/documents: pages');
    is_deeply($ids->($ng->req(GET => '/api/documents', auth => $OWN)),
        [$D2, $D1], 'GET /api/documents as a Customer: its own only');
    is_deeply($ids->($ng->req(GET => "/api/documents?customerId=$OID",
        auth => $OWN)), [], "... another's customerId: nothing");
    is_deeply($ids->($ng->req(GET => '/api/documents',
        auth => CT::customer_token('nobody-here'))), [],
        'GET /api/documents as a Customer without a record: empty');
    is_error($ng->req(GET => '/api/documents?customerId=x&type=bad&limit=0'),
        400, 'Validation failed', [qw(customerId type limit)],
        'GET /api/documents: bad filters named');
}


# --- PATCH /api/documents/{documentId} -------------------------------------

{
    my $p = "/api/documents/$D2";
    my $r = $ng->req(PATCH => $p, auth => $EDITOR, json => {
        title => '  Registration  ', type => 'registration',
        expiresAt => day(100), vehicleId => $V2 });
    is($r->{status}, 200, 'PATCH document: 200') or diag($r->{body});
    my $d = $r->{json}{data} // {};
    is_deeply([@$d{qw(documentId title vehicleId expiresAt updatedBy)}],
        [$D2, 'Registration', $V2, day(100), 'editor-7'],
        'PATCH document: title (trimmed), vehicle, expiry, editor');
    like($d->{updatedAt} // '', $TS, 'PATCH document: updatedAt');
    is($d->{createdBy}, $SUB, 'PATCH document: createdBy kept');
    is(CT::sql($db, q{SELECT concat_ws('|', title, vehicle_id, expires_at,
        updated_by) FROM documents WHERE id = :'p1'}, $D2),
        join('|', 'Registration', $V2, day(100), 'editor-7'),
        'PATCH document: stored');
    $r = $ng->req(PATCH => $p, json => { expiresAt => undef,
        vehicleId => undef });
    is_deeply([@{ $r->{json}{data} // {} }{qw(expiresAt vehicleId)}],
        [undef, undef], 'PATCH document: null clears expiry and vehicle');
    is($ng->req(GET => "$p/content")->{body}, 'registration',
        'PATCH document: the content untouched');

    my $row = CT::row_of($db, 'documents', $D2);
    is_error($ng->req(PATCH => $p, json => { vehicleId => $CT::MISSING }),
        422, 'Vehicle not found', ['vehicleId'],
        'PATCH document: an unknown vehicle');
    my $ov = $ng->req(POST => '/api/vehicles',
        json => vehicle_body(customerId => $OID))->{json}{data}{vehicleId};
    is_error($ng->req(PATCH => $p, json => { vehicleId => $ov }), 422,
        'Vehicle not found', ['vehicleId'],
        "PATCH document: another customer's vehicle");
    is_error($ng->req(PATCH => $p, json => {}), 400, 'Validation failed',
        ['body'], 'PATCH document: {}');
    is_error($ng->req(PATCH => $p, json => { type => 'bogus', title => '',
        size => 5 }), 400, 'Validation failed', [qw(type title size)],
        'PATCH document: bad members named');
    is_error($ng->req(PATCH => "/api/documents/$CT::MISSING",
        json => { title => 'x' }), 404, 'Document not found',
        ['documentId'], 'PATCH an unknown document');
    is_error($ng->req(PATCH => $p, auth => $OWN, json => { title => 'x' }),
        403, undef, undef, 'PATCH document as a Customer: 403');
    is(CT::row_of($db, 'documents', $D2), $row,
        'refused PATCHes: the document unchanged');

    my %k = (headers => { 'Idempotency-Key' => "doc-$$" });
    my $a = $ng->req(PATCH => $p, json => { title => 'Keyed' }, %k);
    my $b = $ng->req(PATCH => $p, json => { title => 'Keyed' }, %k);
    ok($a->{status} == 200 && replayed($b) && $b->{body} eq $a->{body},
        'PATCH document with a key: replayed');

    # If-Match: the version the GET's ETag gives
    my $g = $ng->req(GET => $p);
    my ($etag, $v) = ($g->{headers}{etag} // '', $g->{json}{data}{version});
    is($etag, qq{"$v"}, 'GET document: ETag is its version');
    my $snap = CT::row_of($db, 'documents', $D2);
    is_error($ng->req(PATCH => $p, json => { title => 'Stale' },
        headers => { 'If-Match' => '"' . ($v - 1) . '"' }), 412,
        'Precondition failed', ['If-Match'], 'PATCH document, stale If-Match');
    is(CT::row_of($db, 'documents', $D2), $snap,
        'stale If-Match: the document unchanged');
    $r = $ng->req(PATCH => $p, json => { title => 'Current' },
        headers => { 'If-Match' => $etag });
    is($r->{status}, 200, 'PATCH document, current If-Match: 200');
    is($r->{json}{data}{version}, $v + 1, '... version + 1');
    is($r->{headers}{etag}, '"' . ($v + 1) . '"', '... and its ETag');
}


# --- notes across customers ------------------------------------------------

my (%N);
{
    my $add = sub {
        my ($name, $cid, %f) = @_;
        my $r = $ng->req(POST => '/api/notes', auth => $f{auth} // undef,
            json => { customerId => $cid, content => $name,
                map { $_ eq 'auth' ? () : ($_ => $f{$_}) } keys %f });
        is($r->{status}, 201, "POST /api/notes $name: 201")
            or diag($r->{body});
        $N{$name} = $r->{json}{data} // {};
        return $r;
    };
    $add->('first', $CID, noteType => 'service', isImportant => $T);
    $add->('second', $CID, noteType => 'billing', auth => $EDITOR);
    $add->('secret', $CID, isPrivate => $T, isImportant => $T);
    $add->('elsewhere', $OID, noteType => 'complaint');
    is($N{first}{customerId}, $CID, 'POST /api/notes: for its customer');
    ok(exists $N{first}{updatedAt} && !defined $N{first}{updatedAt},
        'POST /api/notes: updatedAt null');
    is(CT::sql($db, q{SELECT notes FROM customers WHERE id = :'p1'}, $CID),
        'second', "the customer's notes: the newest public note");

    my $before = count_of('customer_notes');
    is_error($ng->req(POST => '/api/notes', json => { customerId => $CT::MISSING,
        content => 'x' }), 422, 'Customer not found', ['customerId'],
        'POST /api/notes for an unknown customer');
    is_error($ng->req(POST => '/api/notes', json => { content => '' }), 400,
        'Validation failed', [qw(customerId content)],
        'POST /api/notes: the bad members');
    is_error($ng->req(POST => '/api/notes', auth => $OWN,
        json => { customerId => $CID, content => 'x' }), 403, undef, undef,
        'POST /api/notes as a Customer: 403');
    is(count_of('customer_notes'), $before, 'refused notes: none written');

    my $list = sub {
        my $r = $ng->req(GET => "/api/notes$_[0]");
        is($r->{status}, 200, "GET /api/notes$_[0]: 200")
            or diag($r->{body});
        return [ map { $_->{content} } @{ $r->{json}{data}{notes} // [] } ];
    };
    is_deeply($list->(''), [qw(elsewhere secret second first)],
        'GET /api/notes: every customer\'s, newest first');
    is_deeply($list->("?customerId=$CID"), [qw(secret second first)],
        'GET /api/notes?customerId=');
    is_deeply($list->('?noteType=billing'), ['second'], '?noteType=');
    is_deeply($list->('?isImportant=true'), [qw(secret first)],
        '?isImportant=true');
    is_deeply($list->('?isPrivate=false&customerId=' . $CID),
        [qw(second first)], '?isPrivate=false');
    is_deeply($list->('?authorId=editor-7'), ['second'], '?authorId=');
    is_deeply($list->('?limit=2&page=2'), [qw(second first)], 'pages');
    is_error($ng->req(GET => '/api/notes?customerId=1&noteType=x'
        . '&isImportant=yes&authorId=' . ('a' x 129)), 400,
        'Validation failed', [qw(customerId noteType isImportant authorId)],
        'GET /api/notes: bad filters named');
    is_error($ng->req(GET => '/api/notes', auth => $OWN), 403, undef, undef,
        'GET /api/notes as a Customer: 403');

    my $id = $N{first}{noteId};
    my $r = $ng->req(GET => "/api/notes/$id");
    is_deeply($r->{json}{data}, $N{first}, 'GET /api/notes/{noteId}');
    is($ng->req(GET => "/api/notes/$id", auth => $OWN)->{status}, 200,
        'GET a public note as its Customer: 200');
    is($ng->req(GET => "/api/notes/$N{secret}{noteId}",
        auth => $OWN)->{status}, 404, 'GET a private note as its Customer: 404');
    is($ng->req(GET => "/api/notes/$id", auth => $OTHER)->{status}, 404,
        "GET another's note as a Customer: 404");
    is_error($ng->req(GET => "/api/notes/$CT::MISSING"), 404,
        'Note not found', ['noteId'], 'GET an unknown note');
}


# --- PATCH and DELETE /api/notes/{noteId} ----------------------------------

{
    my $notes = sub { scalar CT::sql($db,
        q{SELECT concat_ws('|', notes, version) FROM customers
          WHERE id = :'p1'}, $CID) };
    my $p = "/api/notes/$N{first}{noteId}";
    my $v0 = CT::sql($db, q{SELECT version FROM customers WHERE id = :'p1'},
        $CID);

    # an older note edited: the record still mirrors the newest one
    my $r = $ng->req(PATCH => $p, auth => $EDITOR,
        json => { content => 'first, edited', isImportant => $F });
    is($r->{status}, 200, 'PATCH note: 200') or diag($r->{body});
    my $d = $r->{json}{data} // {};
    is_deeply([@$d{qw(noteId content isImportant noteType authorId
        updatedBy createdAt)}], [$N{first}{noteId}, 'first, edited', $F,
        'service', 'admin-user', 'editor-7', $N{first}{createdAt}],
        'PATCH note: content and flag changed, author and time kept, editor');
    like($d->{updatedAt} // '', $TS, 'PATCH note: updatedAt');
    is($notes->(), "second|$v0", "PATCH an older note: the record's notes "
        . 'and version untouched');

    # the mirrored note edited: the record follows it
    my $s = "/api/notes/$N{second}{noteId}";
    $r = $ng->req(PATCH => $s, json => { content => 'second, edited' });
    is($r->{status}, 200, 'PATCH the newest public note: 200');
    is($notes->(), 'second, edited|' . ($v0 + 1),
        "... the record's notes follow it, version + 1");
    # made private: the record falls back to the newest public one left
    $r = $ng->req(PATCH => $s, json => { isPrivate => $T });
    is($notes->(), 'first, edited|' . ($v0 + 2),
        "PATCH it private: the record's notes fall back to the next one");

    my $row = CT::row_of($db, 'customer_notes', $N{first}{noteId});
    is_error($ng->req(PATCH => $p, json => {}), 400, 'Validation failed',
        ['body'], 'PATCH note: {}');
    is_error($ng->req(PATCH => $p, json => { content => '', noteType => 'x',
        authorId => 'me' }), 400, 'Validation failed',
        [qw(content noteType authorId)], 'PATCH note: bad members named');
    is_error($ng->req(PATCH => "/api/notes/$CT::MISSING",
        json => { content => 'x' }), 404, 'Note not found', ['noteId'],
        'PATCH an unknown note');
    is_error($ng->req(PATCH => $p, auth => $OWN, json => { content => 'x' }),
        403, undef, undef, 'PATCH note as a Customer: 403');
    is(CT::row_of($db, 'customer_notes', $N{first}{noteId}), $row,
        'refused PATCHes: the note unchanged');
    my %k = (headers => { 'Idempotency-Key' => "note-$$" });
    my $a = $ng->req(PATCH => "/api/notes/$N{elsewhere}{noteId}",
        json => { noteType => 'other' }, %k);
    my $b = $ng->req(PATCH => "/api/notes/$N{elsewhere}{noteId}",
        json => { noteType => 'other' }, %k);
    ok($a->{status} == 200 && replayed($b) && $b->{body} eq $a->{body},
        'PATCH note with a key: replayed');
    is_error($ng->req(PATCH => "/api/notes/$N{elsewhere}{noteId}",
        json => { noteType => 'general' }, %k), 409, undef, undef,
        'the key with another body: 409');

    my $e = "/api/notes/$N{elsewhere}{noteId}";
    my $g = $ng->req(GET => $e);
    my $v = $g->{json}{data}{version};
    is($g->{headers}{etag}, qq{"$v"}, 'GET note: ETag is its version');
    my $snap = CT::row_of($db, 'customer_notes', $N{elsewhere}{noteId})
        . CT::row_of($db, 'customers', $OID);
    is_error($ng->req(PATCH => $e, json => { content => 'stale' },
        headers => { 'If-Match' => '"' . ($v + 5) . '"' }), 412,
        'Precondition failed', ['If-Match'], 'PATCH note, stale If-Match');
    is(CT::row_of($db, 'customer_notes', $N{elsewhere}{noteId})
        . CT::row_of($db, 'customers', $OID), $snap,
        "stale If-Match: the note and the record's notes unchanged");
    my $ok = $ng->req(PATCH => $e, json => { content => 'current' },
        headers => { 'If-Match' => qq{"$v"} });
    is($ok->{status}, 200, 'PATCH note, current If-Match: 200');
    is($ok->{headers}{etag}, '"' . ($v + 1) . '"', '... the new ETag');

    # the mirrored note deleted: the record falls back (here: none left)
    is_error($ng->req(DELETE => $p, auth => $OWN), 403, undef, undef,
        'DELETE note as a Customer: 403');
    $r = $ng->req(DELETE => $p);
    is($r->{status}, 200, 'DELETE note: 200') or diag($r->{body});
    is_deeply([sort keys %{ $r->{json}{data} // {} }], [qw(deletedAt noteId)],
        'DELETE note: {noteId, deletedAt}');
    is($r->{json}{data}{noteId}, $N{first}{noteId}, 'DELETE note: its id');
    is(CT::sql($db, q{SELECT count(*) FROM customer_notes WHERE id = :'p1'},
        $N{first}{noteId}), 0, 'DELETE note: gone');
    is($notes->(), '' . ($v0 + 3),
        "DELETE the mirrored note: the record's notes null (none public)");
    is_error($ng->req(DELETE => $p), 404, 'Note not found', ['noteId'],
        'DELETE it again: 404');
    # deleting a note the record does not mirror leaves it alone
    CT::sql($db, q{UPDATE customers SET notes = 'typed by hand'
        WHERE id = :'p1'}, $CID);
    $ng->req(DELETE => "/api/notes/$N{secret}{noteId}");
    is(CT::sql($db, q{SELECT notes FROM customers WHERE id = :'p1'}, $CID),
        'typed by hand', "DELETE another note: the record's notes kept");
}


# --- service records: PATCH and DELETE -------------------------------------

{
    my $vp = "/api/vehicles/$V1/service-records";
    my $svc = sub { scalar CT::sql($db, q{SELECT concat_ws('|',
        last_service_date, last_service_mileage, mileage) FROM vehicles
        WHERE id = :'p1'}, $V1) };
    my @rec;
    for my $c ([-300, 1000, 'Oil'], [-100, 5000, 'Brakes']) {
        my $r = $ng->req(POST => $vp, json => { serviceDate => day($c->[0]),
            mileage => $c->[1], description => $c->[2] });
        is($r->{status}, 201, "service record $c->[2]") or diag($r->{body});
        push @rec, $r->{json}{data}{serviceRecordId} // $CT::MISSING;
    }
    is($svc->(), join('|', day(-100), 5000, 5000), 'last service: Brakes');

    # the newest record edited: the vehicle follows
    my $r = $ng->req(PATCH => "$vp/$rec[1]", auth => $OWN,
        json => { mileage => 6000, cost => 120.5 });
    is($r->{status}, 200, 'PATCH record as its Customer: 200')
        or diag($r->{body});
    is_deeply([@{ $r->{json}{data} // {} }{qw(serviceRecordId mileage
        description)}], [$rec[1], 6000, 'Brakes'], 'PATCH record: changed');
    cmp_ok($r->{json}{data}{cost} // 0, '==', 120.5, 'PATCH record: cost');
    is($svc->(), join('|', day(-100), 6000, 6000),
        'PATCH the last service: the vehicle follows, mileage raised');

    # an older record edited, still older: the vehicle keeps its last
    $r = $ng->req(PATCH => "$vp/$rec[0]", json => { description => 'Oil+' });
    is($r->{status}, 200, 'PATCH an older record: 200');
    is($svc->(), join('|', day(-100), 6000, 6000),
        'PATCH an older record: the last service kept');

    my $snap = CT::row_of($db, 'service_records', $rec[0]);
    my $vsnap = CT::row_of($db, 'vehicles', $V1);
    is_error($ng->req(PATCH => "$vp/$rec[0]", json => {}), 400,
        'Validation failed', ['body'], 'PATCH record: {}');
    is_error($ng->req(PATCH => "$vp/$rec[0]", json => { mileage => -1,
        serviceDate => day(5), cost => 'x' }), 400, 'Validation failed',
        [qw(mileage serviceDate cost)], 'PATCH record: bad members named');
    is_error($ng->req(PATCH => "/api/vehicles/$V1/service-records/x",
        json => { mileage => 1 }), 400, 'Validation failed',
        ['serviceRecordId'], 'PATCH record: a bad id');
    is_error($ng->req(PATCH => "/api/vehicles/$V2/service-records/$rec[0]",
        json => { mileage => 1 }), 404, 'Service record not found',
        ['serviceRecordId'], "PATCH a record through another vehicle");
    is_error($ng->req(PATCH => "$vp/$rec[0]", auth => $OTHER,
        json => { mileage => 1 }), 404, undef, undef,
        "PATCH another's record as a Customer: 404");
    is_error($ng->req(PATCH => "$vp/$rec[0]", json => { mileage => 900 },
        headers => { 'If-Match' => '"7"' }), 412, 'Precondition failed',
        ['If-Match'], 'PATCH record, stale If-Match');
    is(CT::row_of($db, 'service_records', $rec[0]) . CT::row_of($db,
        'vehicles', $V1), $snap . $vsnap,
        'refused PATCHes: record and vehicle unchanged');
    my $cur = CT::sql($db, q{SELECT version FROM service_records
        WHERE id = :'p1'}, $rec[0]);
    $r = $ng->req(PATCH => "$vp/$rec[0]", json => { performedBy => 'Shop' },
        headers => { 'If-Match' => qq{"$cur"} });
    is($r->{status}, 200, 'PATCH record, current If-Match: 200');
    is($r->{headers}{etag}, '"' . ($cur + 1) . '"', '... the new ETag');

    # the last service deleted: the vehicle falls back to the one left
    is_error($ng->req(DELETE => "$vp/$rec[1]", auth => $OTHER), 404, undef,
        undef, "DELETE another's record as a Customer: 404");
    $r = $ng->req(DELETE => "$vp/$rec[1]");
    is($r->{status}, 200, 'DELETE record: 200') or diag($r->{body});
    is($r->{json}{data}{serviceRecordId}, $rec[1],
        'DELETE record: {serviceRecordId, deletedAt}');
    like($r->{json}{data}{deletedAt} // '', $TS, 'DELETE record: deletedAt');
    is($svc->(), join('|', day(-300), 1000, 6000),
        'DELETE the last service: the one left, the mileage kept');
    is_error($ng->req(DELETE => "$vp/$rec[1]"), 404,
        'Service record not found', ['serviceRecordId'],
        'DELETE it again: 404');
    $r = $ng->req(DELETE => "$vp/$rec[0]",
        headers => { 'Idempotency-Key' => "rec-$$" });
    my $again = $ng->req(DELETE => "$vp/$rec[0]",
        headers => { 'Idempotency-Key' => "rec-$$" });
    ok($r->{status} == 200 && replayed($again),
        'DELETE record with a key: replayed');
    is($svc->(), '6000', 'DELETE the last one: no last service left');
}


# --- the dashboard's recent documents ----------------------------------------

{
    my @ids;
    for my $n (1 .. 6) {
        my $r = upload("/api/customers/$OID/documents?type=other&title=r$n",
            "r$n");
        push @ids, $r->{json}{data}{documentId};
    }
    my $d = $ng->req(GET => "/api/customers/$OID/dashboard")->{json}{data}
        // {};
    is_deeply([map { $_->{documentId} } @{ $d->{recentDocuments} // [] }],
        [reverse @ids[1 .. 5]], 'recentDocuments: the latest 5, newest first');
    is_deeply([sort keys %{ $d->{recentDocuments}[0] // {} }],
        [sort qw(documentId type title vehicleId expiresAt createdAt)],
        'recentDocuments: the fields');
    is($ng->req(GET => '/api/customers/me/dashboard',
        auth => $OTHER)->{json}{data}{recentDocuments}[0]{documentId},
        $ids[5], 'recentDocuments in /me/dashboard too');
}

# --- emergency contacts as a list, the business flag ------------------------

{
    my @five = map { { name => "Contact $_", relationship => 'Friend',
        phone => "+1415555010$_", email => "c$_\@example.com" } } 1 .. 5;
    my $u = CT::uniq('ec');
    my $r = $ng->req(POST => '/api/customers', json => { userId => $u,
        email => "$u\@example.com", fullName => 'Emergency Contacts',
        emergencyContacts => \@five,
        business => { companyName => 'Garage Ltd', taxId => 'GB123' } });
    is($r->{status}, 201, 'POST customer with 5 emergency contacts: 201')
        or diag($r->{body});
    my $d = $r->{json}{data} // {};
    my $eid = $d->{customerId} // $CT::MISSING;
    is_deeply($d->{emergencyContacts}, \@five, 'emergencyContacts: all 5');
    is_deeply($d->{emergencyContact}, $five[0],
        'emergencyContact: the first of them');
    is($d->{isBusiness}, $T, 'isBusiness: true with business details');
    is(CT::sql($db, q{SELECT jsonb_array_length(emergency_contacts)
        FROM customers WHERE id = :'p1'}, $eid), 5, 'stored: 5 contacts');

    # the single contact written: the list becomes it
    $r = $ng->req(PATCH => "/api/customers/$eid",
        json => { emergencyContact => $five[2] });
    is_deeply($r->{json}{data}{emergencyContacts}, [$five[2]],
        'PATCH emergencyContact: the list is that contact');
    $r = $ng->req(PATCH => "/api/customers/$eid",
        json => { emergencyContacts => [@five[3, 4]] });
    is_deeply([@{ $r->{json}{data} // {} }{qw(emergencyContact
        emergencyContacts)}], [$five[3], [@five[3, 4]]],
        'PATCH emergencyContacts: the list, its first the single one');
    $r = $ng->req(PUT => "/api/customers/$eid",
        json => { emergencyContact => undef, business => undef });
    is_deeply([@{ $r->{json}{data} // {} }{qw(emergencyContact
        emergencyContacts isBusiness)}], [undef, [], $F],
        'PUT emergencyContact null, business null: no contacts, not a '
        . 'business');

    # refused: six contacts, a bad one; nothing written
    my $row = CT::row_of($db, 'customers', $eid);
    is_error($ng->req(PATCH => "/api/customers/$eid",
        json => { emergencyContacts => [@five, $five[0]] }), 400,
        'Validation failed', ['emergencyContacts'], 'six contacts: 400');
    is_error($ng->req(PATCH => "/api/customers/$eid",
        json => { emergencyContacts => [{ name => 'X', phone => '123' }] }),
        400, 'Validation failed',
        ['emergencyContacts[0].name', 'emergencyContacts[0].phone'],
        'a bad contact: 400 naming its members');
    is_error($ng->req(PATCH => "/api/customers/$eid",
        json => { emergencyContacts => undef }), 400, 'Validation failed',
        ['emergencyContacts'], 'emergencyContacts null: 400');
    is(CT::row_of($db, 'customers', $eid), $row,
        'refused contacts: the record unchanged');

    # the admin list filters on the flag, with every count kind
    $ng->req(PATCH => "/api/customers/$eid",
        json => { business => { companyName => 'Garage Ltd' } });
    my $want_biz = CT::sql($db,
        'SELECT count(*) FROM customers WHERE business IS NOT NULL');
    my $want_not = CT::sql($db,
        'SELECT count(*) FROM customers WHERE business IS NULL');
    cmp_ok($want_biz, '>=', 1, 'a business customer exists');
    for my $prefer (undef, 'count=planned', 'count=estimated') {
        my %h = $prefer ? (headers => { Prefer => $prefer }) : ();
        my $b = $ng->req(GET => '/api/customers?isBusiness=true&limit=100',
            %h);
        is($b->{status}, 200, 'list ?isBusiness=true: 200')
            or diag($b->{body});
        is_deeply([map { $_->{customerId} }
            @{ $b->{json}{data}{customers} // [] }], [$eid],
            'list ?isBusiness=true: the business customer only'
            . ($prefer ? " ($prefer)" : ''));
        my $n = $ng->req(GET => '/api/customers?isBusiness=false&limit=100',
            %h);
        is(scalar @{ $n->{json}{data}{customers} // [] }, $want_not,
            'list ?isBusiness=false: the others'
            . ($prefer ? " ($prefer)" : ''));
        ok(!grep({ $_->{customerId} eq $eid }
            @{ $n->{json}{data}{customers} // [] }),
            '... without the business customer');
    }
    is($ng->req(GET => '/api/customers?isBusiness=true')->{json}{data}
        {pagination}{totalItems}, $want_biz, 'isBusiness: exact totalItems');
    is_error($ng->req(GET => '/api/customers?isBusiness=yes'), 400,
        'Validation failed', ['isBusiness'], 'list ?isBusiness=yes: 400');
    my $c = $ng->req(GET => '/api/customers?isBusiness=false&limit=1');
    my $next = $c->{json}{data}{pagination}{nextCursor};
    my $c2 = $ng->req(GET => "/api/customers?isBusiness=false&limit=1"
        . "&cursor=$next");
    is($c2->{status}, 200, 'isBusiness with a cursor: 200')
        or diag($c2->{body});
    isnt($c2->{json}{data}{customers}[0]{customerId},
        $c->{json}{data}{customers}[0]{customerId},
        'isBusiness with a cursor: the next page');
}

done_testing();
