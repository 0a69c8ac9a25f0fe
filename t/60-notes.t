# Notes on a customer: POST /api/customers/{id}/notes by an
# Administrator (the note, and customers.notes kept in sync in the same
# statement), GET of the paged list with its filters; a Customer lists
# the notes of its own record only, never the private ones; every bad
# input is a 400 that names each bad field and writes nothing.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;


my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db, workers => 2);


my @NOTE_KEYS = sort qw(noteId customerId content noteType isPrivate
    isImportant authorId createdAt updatedAt updatedBy version);
my @PAGE_KEYS = sort qw(currentPage totalPages totalItems itemsPerPage
    hasNextPage hasPreviousPage);


# --- helpers -------------------------------------------------------------

sub make_customer { CT::make_customer($ng, 'notes') }

sub record {
    my ($id) = @_;
    my $j = CT::sql($db, q{SELECT json_build_object('notes', notes,
        'version', version, 'updated_at', api_ts(updated_at),
        'updated_by', updated_by) FROM customers WHERE id = :'p1'}, $id);
    return length $j ? JSON::PP->new->decode($j) : undef;
}

sub note_count {
    return scalar CT::sql($db, 'SELECT count(*) FROM customer_notes');
}

sub add_note { CT::add_note($ng, @_) }

sub list {
    my ($id, $query, %o) = @_;
    return $ng->req(GET => CT::with_query("/api/customers/$id/notes", $query),
        %o);
}

sub contents { CT::pluck($_[0], 'notes', 'content') }


my ($ID, $SUB) = make_customer();
my ($OTHER, $OTHER_SUB) = make_customer();
my $CUSTOMER = CT::customer_token($SUB);


# --- POST: the note and customers.notes ------------------------------------

{
    my $before = record($ID);
    my $r = $ng->req(POST => "/api/customers/$ID/notes",
        json => { content => "  Called about the invoice.\n  " });
    my $n = CT::is_success($r, 201, 'Note added successfully', \@NOTE_KEYS,
        'POST note');
    like($n->{noteId} // '', $UUID, 'POST note: noteId is a UUID');
    is($n->{customerId}, $ID, 'POST note: customerId');
    is($n->{content}, 'Called about the invoice.', 'POST note: trimmed');
    is($n->{noteType}, 'general', 'POST note: noteType defaults to general');
    is($n->{isPrivate}, $F, 'POST note: isPrivate defaults to false');
    is($n->{isImportant}, $F, 'POST note: isImportant defaults to false');
    is($n->{authorId}, 'admin-user', "POST note: authorId is the token's sub");
    like($n->{createdAt} // '', $TS, 'POST note: createdAt');

    my $row = CT::sql($db, q{SELECT json_build_object('customer_id',
        customer_id, 'content', content, 'note_type', note_type,
        'is_private', is_private, 'is_important', is_important,
        'author_id', author_id, 'created_at', api_ts(created_at))
        FROM customer_notes WHERE id = :'p1'}, $n->{noteId});
    is_deeply(JSON::PP->new->decode($row), { customer_id => $ID,
        content => 'Called about the invoice.', note_type => 'general',
        is_private => $F, is_important => $F, author_id => 'admin-user',
        created_at => $n->{createdAt} }, 'POST note: the row stored');

    my $after = record($ID);
    is($after->{notes}, 'Called about the invoice.',
        'POST note: customers.notes holds its content');
    is($after->{version}, $before->{version} + 1,
        'POST note: the record version + 1');
    is($after->{updated_by}, 'admin-user', 'POST note: updated_by');
    cmp_ok($after->{updated_at}, 'ge', $before->{updated_at},
        'POST note: updated_at moved');
    my $get = $ng->req(GET => "/api/customers/$ID");
    is($get->{json}{data}{notes}, 'Called about the invoice.',
        'GET /api/customers/{id}: notes is the newest note');
    is($get->{headers}{etag}, '"' . $after->{version} . '"',
        'GET /api/customers/{id}: ETag is the new version');

    $r = $ng->req(POST => "/api/customers/$ID/notes", json => {
        content => 'Refund promised', noteType => 'billing',
        isPrivate => $T, isImportant => $T });
    is($r->{status}, 201, 'POST note with every field: 201')
        or diag($r->{body});
    is_deeply([@{ $r->{json}{data} // {} }{qw(content noteType isPrivate
        isImportant)}], ['Refund promised', 'billing', $T, $T],
        'POST note with every field: stored as sent');
    is(record($ID)->{notes}, 'Called about the invoice.',
        'a private note: customers.notes keeps the newest public one');
    is(record($ID)->{version}, $before->{version} + 1,
        'a private note: the record version unchanged');
    is(record($ID)->{updated_at}, $after->{updated_at},
        'a private note: updatedAt unchanged');

    for my $type (qw(general service billing complaint other)) {
        $r = $ng->req(POST => "/api/customers/$OTHER/notes",
            json => { content => "a $type note", noteType => $type });
        is($r->{status}, 201, "noteType $type: 201") or diag($r->{body});
    }

    # 1000 characters (not bytes) is the limit
    my $long = "\x{e9}" x 1000;
    $r = $ng->req(POST => "/api/customers/$OTHER/notes",
        json => { content => $long });
    is($r->{status}, 201, 'content of 1000 characters: 201')
        or diag($r->{body});
    is(CT::sql($db, q{SELECT char_length(notes) FROM customers
        WHERE id = :'p1'}, $OTHER), 1000,
        'content of 1000 characters: customers.notes has all of it');
    CT::sql($db, q{DELETE FROM customer_notes WHERE customer_id = :'p1'
        AND char_length(content) = 1000}, $OTHER);
}


# --- POST: refusals write nothing ------------------------------------------

{
    my $count = note_count();
    my $rec = record($ID);

    my @cases = (
        [{}, ['content'], 'content missing'],
        [{ content => '' }, ['content'], 'content empty'],
        [{ content => "  \n\t " }, ['content'], 'content only white space'],
        [{ content => 'x' x 1001 }, ['content'], 'content of 1001'],
        [{ content => 42 }, ['content'], 'content a number'],
        [{ content => undef }, ['content'], 'content null'],
        [{ content => "bell\x07" }, ['content'], 'content with a control'],
        [{ content => 'ok', noteType => 'urgent' }, ['noteType'],
            'noteType outside the enum'],
        [{ content => 'ok', noteType => 'General' }, ['noteType'],
            'noteType is case-sensitive'],
        [{ content => 'ok', noteType => undef }, ['noteType'],
            'noteType null'],
        [{ content => 'ok', isPrivate => 'yes' }, ['isPrivate'],
            'isPrivate a string'],
        [{ content => 'ok', isImportant => 1 }, ['isImportant'],
            'isImportant a number'],
        [{ content => 'ok', nickname => 'x' }, ['nickname'],
            'an unknown field'],
        [{ content => 'ok', authorId => 'x' }, ['authorId'],
            'authorId is not settable'],
        [{ noteType => 'bogus', isPrivate => 'no', isImportant => 'no',
            extra => 1 },
            [qw(content noteType isPrivate isImportant extra)],
            'every bad field at once'],
    );
    for my $c (@cases) {
        my ($body, $fields, $name) = @$c;
        my $r = $ng->req(POST => "/api/customers/$ID/notes", json => $body);
        is_error($r, 400, 'Validation failed', $fields, "POST: $name");
    }

    my $r = $ng->req(POST => '/api/customers/not-a-uuid/notes',
        json => { noteType => 'bogus' });
    is_error($r, 400, 'Validation failed',
        [qw(customerId content noteType)], 'POST: a bad id and a bad body');

    $r = $ng->req(POST => "/api/customers/$ID/notes",
        json => { noteType => 'bogus' });
    is($r->{json}{errors}
        && (grep { $_->{field} eq 'noteType' } @{ $r->{json}{errors} })[0]
            {message},
        'Must be one of: general, service, billing, complaint, other',
        'POST: the enum message lists the note types');

    $r = $ng->req(POST => "/api/customers/$ID/notes", body => '{"content":',
        headers => { 'Content-Type' => 'application/json' });
    is($r->{status}, 400, 'POST: malformed JSON: 400');
    is($r->{json}{message}, 'Malformed JSON', 'POST: malformed JSON message');

    $r = $ng->req(POST => "/api/customers/$ID/notes", body => 'content=x',
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded' });
    is($r->{status}, 415, 'POST: not JSON: 415');

    $r = $ng->req(POST => "/api/customers/$MISSING/notes",
        json => { content => 'nobody' });
    is_error($r, 404, 'Customer not found', ['customerId'],
        'POST: unknown customer');

    $r = $ng->req(POST => "/api/customers/$ID/notes", auth => $CUSTOMER,
        json => { content => 'my own note' });
    is_error($r, 403, 'Access denied', ['authorization'],
        'POST by a Customer, on its own record');

    $r = $ng->req(POST => "/api/customers/$ID/notes", auth => 'none',
        json => { content => 'anonymous' });
    is_error($r, 401, undef, ['authorization'], 'POST without a token');
    like($r->{headers}{'www-authenticate'} // '', qr/^Bearer\b/,
        'POST without a token: WWW-Authenticate Bearer');

    $r = $ng->req(POST => "/api/customers/$ID/notes", auth => 'service',
        json => { content => 'from a service' });
    is($r->{status}, 401, 'POST with a service key: 401');

    is(note_count(), $count, 'refusals: no note written');
    is_deeply(record($ID), $rec, 'refusals: the customer record unchanged');
}


# --- GET: the list ----------------------------------------------------------

my ($LID, $LSUB) = make_customer();
my $LCUSTOMER = CT::customer_token($LSUB);
my @NOTES = (
    # content, type, private, important (oldest first)
    ['n1', 'general', 0, 0],
    ['n2', 'billing', 1, 0],
    ['n3', 'service', 0, 1],
    ['n4', 'billing', 0, 0],
    ['n5', 'complaint', 1, 1],
    ['n6', 'billing', 0, 1],
    ['n7', 'other', 0, 0],
);
my %NOTE;
for my $n (@NOTES) {
    $NOTE{ $n->[0] } = add_note($LID, content => $n->[0], noteType => $n->[1],
        isPrivate => $n->[2] ? $T : $F, isImportant => $n->[3] ? $T : $F);
}
my @NEWEST = reverse map { $_->[0] } @NOTES;
my @PUBLIC = grep { my $c = $_; !(grep { $_->[0] eq $c && $_->[2] } @NOTES) }
    @NEWEST;

{
    my $r = list($LID);
    is($r->{status}, 200, 'GET notes: 200') or diag($r->{body});
    is($r->{json}{success}, $T, 'GET notes: success');
    is($r->{json}{message}, 'Notes retrieved successfully',
        'GET notes: message');
    is_deeply([sort keys %{ $r->{json}{data} // {} }],
        ['notes', 'pagination'], 'GET notes: notes and pagination');
    is_deeply(contents($r), \@NEWEST,
        'GET notes: an Administrator sees all, newest first');
    is_deeply($r->{json}{data}{notes}[0], $NOTE{n7},
        'GET notes: an item is the note as POST answered it');
    is_deeply([sort keys %{ $r->{json}{data}{notes}[1] }], \@NOTE_KEYS,
        'GET notes: item fields');
    is_deeply($r->{json}{data}{pagination}, { currentPage => 1,
        totalPages => 1, totalItems => 7, itemsPerPage => 20,
        hasNextPage => $F, hasPreviousPage => $F },
        'GET notes: pagination, limit 20 by default');

    $r = $ng->req(HEAD => "/api/customers/$LID/notes");
    is($r->{status}, 200, 'HEAD notes: 200');
    is($r->{body}, '', 'HEAD notes: no body');

    $r = list($LID, 'noteType=billing');
    is_deeply(contents($r), [qw(n6 n4 n2)], 'GET notes: noteType=billing');
    is($r->{json}{data}{pagination}{totalItems}, 3,
        'GET notes: noteType=billing counts 3');
    $r = list($LID, 'isImportant=true');
    is_deeply(contents($r), [qw(n6 n5 n3)], 'GET notes: isImportant=true');
    $r = list($LID, 'isImportant=false');
    is_deeply(contents($r), [qw(n7 n4 n2 n1)],
        'GET notes: isImportant=false');
    $r = list($LID, 'noteType=billing&isImportant=true');
    is_deeply(contents($r), ['n6'], 'GET notes: both filters');
    $r = list($LID, 'noteType=other&isImportant=true');
    is_deeply(contents($r), [], 'GET notes: filters matching nothing');
    is($r->{json}{data}{pagination}{totalItems}, 0,
        '... totalItems 0');
    is($r->{json}{data}{pagination}{totalPages}, 0, '... totalPages 0');

    $r = list($LID, 'limit=3&page=2');
    is_deeply(contents($r), [@NEWEST[3 .. 5]], 'GET notes: page 2 of 3');
    is_deeply($r->{json}{data}{pagination}, { currentPage => 2,
        totalPages => 3, totalItems => 7, itemsPerPage => 3,
        hasNextPage => $T, hasPreviousPage => $T },
        'GET notes: pagination of page 2');
    $r = list($LID, 'limit=3&page=3');
    is_deeply(contents($r), [$NEWEST[6]], 'GET notes: the last page');
    is($r->{json}{data}{pagination}{hasNextPage}, $F,
        '... hasNextPage false');
    $r = list($LID, 'limit=3&page=9');
    is($r->{status}, 200, 'GET notes: a page past the end: 200');
    is_deeply(contents($r), [], '... no notes');
    is($r->{json}{data}{pagination}{totalItems}, 7, '... totals kept');
    $r = list($LID, 'limit=100&page=1000000');
    is($r->{status}, 200, 'GET notes: the largest page and limit: 200');

    my ($empty) = make_customer();
    $r = list($empty);
    is($r->{status}, 200, 'GET notes of a customer without notes: 200');
    is_deeply(contents($r), [], '... an empty list');
    is_deeply([sort keys %{ $r->{json}{data}{pagination} }], \@PAGE_KEYS,
        '... with pagination');

    # two notes in one millisecond still come newest first
    my ($fast) = make_customer();
    add_note($fast, content => "fast $_") for 1 .. 5;
    $r = list($fast);
    is_deeply(contents($r), [map { "fast $_" } reverse 1 .. 5],
        'GET notes: quick successive notes newest first');
}


# --- GET: bad input ---------------------------------------------------------

{
    for my $c (['page=0', ['page']], ['page=1000001', ['page']],
        ['page=x', ['page']], ['limit=0', ['limit']],
        ['limit=101', ['limit']], ['limit=-1', ['limit']],
        ['noteType=bogus', ['noteType']], ['noteType=Billing', ['noteType']],
        ['isImportant=yes', ['isImportant']],
        ['isImportant=1', ['isImportant']],
        ['isImportant=', ['isImportant']])
    {
        my ($q, $fields) = @$c;
        is_error(list($LID, $q), 400, 'Validation failed', $fields,
            "GET notes?$q");
    }
    is_error($ng->req(GET => '/api/customers/nope/notes?page=0&limit=500'
        . '&noteType=x&isImportant=maybe'), 400, 'Validation failed',
        [qw(customerId page limit noteType isImportant)],
        'GET notes: every bad parameter at once');
    is_error(list($MISSING), 404, 'Customer not found', ['customerId'],
        'GET notes of an unknown customer');
    is_error(list($LID, undef, auth => 'none'), 401, undef,
        ['authorization'], 'GET notes without a token');
}


# --- GET by a Customer: its own record, never private notes -----------------

{
    my $r = list($LID, undef, auth => $LCUSTOMER);
    is($r->{status}, 200, 'Customer GET own notes: 200') or diag($r->{body});
    is_deeply(contents($r), \@PUBLIC,
        'Customer GET own notes: the non-private ones, newest first');
    is($r->{json}{data}{pagination}{totalItems}, scalar @PUBLIC,
        'Customer GET own notes: totalItems counts no private note');
    ok(!(grep { $_->{isPrivate} } @{ $r->{json}{data}{notes} }),
        'Customer GET own notes: no item is private');

    $r = list($LID, 'isImportant=true', auth => $LCUSTOMER);
    is_deeply(contents($r), [qw(n6 n3)],
        'Customer, isImportant=true: the private n5 left out');
    $r = list($LID, 'noteType=complaint', auth => $LCUSTOMER);
    is_deeply(contents($r), [], 'Customer, noteType=complaint: only private');
    is($r->{json}{data}{pagination}{totalItems}, 0, '... counted 0');
    $r = list($LID, 'limit=2&page=2', auth => $LCUSTOMER);
    is_deeply(contents($r), [@PUBLIC[2, 3]], 'Customer: paging');
    is($r->{json}{data}{pagination}{totalPages}, 3, '... 3 pages of 2');

    # another customer's record does not exist for this caller
    for my $id ($ID, $OTHER) {
        is_error(list($id, undef, auth => $LCUSTOMER), 404,
            'Customer not found', ['customerId'],
            "Customer GET another customer's notes");
    }
    is_error(list($LID, undef, auth => CT::customer_token($OTHER_SUB)), 404,
        'Customer not found', ['customerId'],
        "another Customer GET this customer's notes");
    is_error(list($LID, undef, auth => CT::customer_token('notes-nobody')),
        404, 'Customer not found', ['customerId'],
        'a Customer without a record');
    is_error(list($MISSING, undef, auth => $LCUSTOMER), 404,
        'Customer not found', ['customerId'], 'Customer, unknown id');
    is_error(list($LID, 'limit=0', auth => $LCUSTOMER), 400,
        'Validation failed', ['limit'], 'Customer, bad limit');

    # a private note added later never shows either
    add_note($LID, content => 'secret', isPrivate => $T);
    $r = list($LID, 'limit=100', auth => $LCUSTOMER);
    ok(!(grep { $_ eq 'secret' } @{ contents($r) }),
        'Customer: a new private note does not appear');
    is_deeply(contents($r), \@PUBLIC, '... the list unchanged');
    is(contents(list($LID))->[0], 'secret',
        '... while an Administrator sees it first');
}


# --- a private note is seen through no route a Customer can call ------------

{
    my ($cid, $sub) = make_customer();
    my $tok = CT::customer_token($sub);
    add_note($cid, content => 'public one', isImportant => $T);
    my $me0 = $ng->req(GET => '/api/customers/me', auth => $tok);
    is($me0->{status}, 200, 'Customer GET /me: 200') or diag($me0->{body});
    is($me0->{json}{data}{notes}, 'public one', '/me shows the public note');

    my $secret = "private-marker-$$";
    my $d = add_note($cid, content => $secret, isPrivate => $T,
        isImportant => $T, noteType => 'billing');
    is($d->{isPrivate}, $T, 'private note added');

    my @routes = ('/api/customers/me', "/api/customers/$cid",
        '/api/customers/me/dashboard', "/api/customers/$cid/dashboard",
        "/api/customers/$cid/notes?limit=100",
        "/api/customers/$cid/notes?isImportant=true",
        "/api/customers/$cid/notes?noteType=billing",
        '/api/customers/me/statistics', '/api/customers?limit=100',
        "/api/customers/search?q=$sub", '/api/customers/me/preferences',
        "/api/customers/$cid/documents", "/api/customers/$cid/vehicles",
        # filters and spellings that must not open the private ones
        "/api/customers/$cid/notes?isPrivate=true",
        "/api/customers/$cid/notes?includePrivate=true&limit=100",
        "/api/customers/$cid/notes?noteType=billing&isImportant=true",
        '/api/customers/' . uc($cid) . '/notes?limit=100',
        "/api/customers/$cid/notes/?limit=100",
        '/api/customers/me/dashboard?includePrivate=true',
        "/api/customers/search?q=$secret", "/api/customers/search?q=private",
        "/api/customers?searchTerm=$secret&limit=100",
        '/api/customers/analytics');
    # the same token with the role as an array, and one with a
    # role that is no role (seen as a Customer, or refused)
    my @toks = ($tok, CT::jwt(sub => $sub, roles => ['Customer']),
        CT::jwt(sub => $sub, role => 'customer'));
    for my $t (@toks) {
        for my $path (@routes) {
            for my $m (qw(GET HEAD)) {
                my $g = $ng->req($m => $path, auth => $t);
                ok($g->{status} < 500, "Customer $m $path: $g->{status}");
                unlike($g->{body}, qr/\Q$secret\E/,
                    "Customer $m $path: the private note is not in it");
                my $d = ($g->{json} // {})->{data};
                my @items = map { ref $_ eq 'ARRAY' ? @$_ : () }
                    ref $d eq 'HASH' ? @$d{qw(notes importantNotes)} : ();
                ok(!(grep { ref $_ eq 'HASH' && $_->{isPrivate} } @items),
                    "Customer $m $path: no item is private");
            }
        }
    }
    my $me = $ng->req(GET => '/api/customers/me', auth => $tok);
    is($me->{json}{data}{notes}, 'public one',
        '/me: notes is still the public one');
    is($me->{headers}{etag}, $me0->{headers}{etag},
        '/me: ETag unchanged by a private note');
    is($me->{json}{data}{updatedAt}, $me0->{json}{data}{updatedAt},
        '/me: updatedAt unchanged by a private note');
    my $n = $ng->req(GET => '/api/customers/me', auth => $tok,
        headers => { 'If-None-Match' => $me0->{headers}{etag} });
    ok($n->{status} == 304 || $n->{status} == 200,
        '/me with the old ETag: ' . $n->{status});

    # the Administrator still sees it, in the list and the dashboard
    like(list($cid)->{body}, qr/\Q$secret\E/, 'admin: the list shows it');
    like($ng->req(GET => "/api/customers/$cid/dashboard")->{body},
        qr/\Q$secret\E/, 'admin: the dashboard shows it');
}


# --- records that got a private note's content before are put right --------

{
    my ($cid, $sub) = make_customer();
    add_note($cid, content => 'older public');
    add_note($cid, content => 'leaked private', isPrivate => $T);
    my ($c2) = make_customer();
    add_note($c2, content => 'same text', isPrivate => $T);
    add_note($c2, content => 'same text');
    # the state the old statement left: the private content in the record
    CT::sql($db, q{UPDATE customers SET notes = 'leaked private'
        WHERE id = :'p1'}, $cid);
    my $v = record($cid)->{version};
    my $file = CT::root() . '/sql/016_private_notes_out_of_records.sql';
    open my $fh, '<', $file or die "$file: $!";
    my $migration = do { local $/; <$fh> };
    CT::sql($db, $migration);
    is(record($cid)->{notes}, 'older public',
        'migration: the newest public note replaces the leaked one');
    is(record($cid)->{version}, $v + 1, 'migration: version bumped');
    is(record($c2)->{notes}, 'same text',
        'migration: a text that is also public is left alone');
}


# --- concurrent notes: customers.notes is the newest one's ------------------

{
    my ($cid) = make_customer();
    my $v0 = record($cid)->{version};
    my $ok = CT::in_parallel(10, sub {
        my ($i) = @_;
        my $r = $ng->req(POST => "/api/customers/$cid/notes",
            json => { content => "parallel $i" });
        return $r->{status} == 201;
    });
    is($ok, 10, '10 concurrent notes: all 201');
    my $newest = CT::sql($db, q{SELECT content FROM customer_notes
        WHERE customer_id = :'p1' ORDER BY created_at DESC, id DESC
        LIMIT 1}, $cid);
    is(record($cid)->{notes}, $newest,
        '10 concurrent notes: customers.notes is the newest note');
    is(record($cid)->{version}, $v0 + 10,
        '10 concurrent notes: version + 10');
    is(contents(list($cid))->[0], $newest,
        '10 concurrent notes: the list starts with it');
}


# --- deleting a customer deletes its notes ----------------------------------

{
    my ($cid) = make_customer();
    add_note($cid, content => 'to be deleted');
    my $r = $ng->req(DELETE => "/api/customers/$cid");
    is($r->{status}, 200, 'DELETE customer with notes: 200')
        or diag($r->{body});
    is(CT::sql($db, q{SELECT count(*) FROM customer_notes
        WHERE customer_id = :'p1'}, $cid), 0,
        'DELETE customer: its notes are gone');
}

done_testing();
