# Documents: the upload is the request body itself (any bytes,
# 0 allowed, up to nginx's client_max_body_size: 64k in the test nginx),
# its metadata in the query; the content comes back byte for byte with
# its Content-Type, Content-Disposition and ETag; lists, metadata,
# DELETE, the admin's expiring-soon list; a Customer may read its own
# documents except the content of identity ones; another customer's
# documents do not exist for it (404). Every refusal writes nothing.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use Digest::SHA qw(sha256_hex);
use List::Util qw(shuffle);

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db, workers => 2);

my $LIMIT = 65536;
my $EMPTY_SHA = sha256_hex('');

my @DOC_KEYS = sort qw(documentId customerId vehicleId type title filename
    contentType size sha256 expiresAt createdAt createdBy updatedAt
    updatedBy version);
my @PAGE_KEYS = sort qw(currentPage totalPages totalItems itemsPerPage
    hasNextPage hasPreviousPage);


# --- helpers -------------------------------------------------------------

sub make_customer { CT::make_customer($ng, 'docs') }

sub make_vehicle {
    CT::make_vehicle($ng, $db, $_[0], '1HGCM82600', make => 'Toyota',
        model => 'Corolla', year => 2018);
}

sub day { CT::day($db, @_) }
sub pct { CT::pct(@_) }
sub qs { CT::qs(@_) }

# upload($customerId, $query, $bytes, type => CONTENT_TYPE, auth => ...)
sub upload {
    my ($cid, $query, $body, %o) = @_;
    return $ng->req(POST => "/api/customers/$cid/documents"
        . (length $query ? "?$query" : ''), body => $body,
        headers => { 'Content-Type' => $o{type} // 'text/plain' },
        defined $o{auth} ? (auth => $o{auth}) : ());
}

# a document that must be created; its metadata
sub add_doc {
    my ($cid, $query, $body, %o) = @_;
    my $r = upload($cid, $query, $body, %o);
    die "upload failed ($r->{status}): $r->{body}" unless $r->{status} == 201;
    return $r->{json}{data};
}

sub counts {
    return scalar CT::sql($db, q{SELECT (SELECT count(*) FROM documents)
        || ',' || (SELECT count(*) FROM document_contents)});
}

# status, the error envelope, and (when given) the fields it names
# parse a raw HTTP response: {status, headers, body, json}
sub parse_http {
    my ($raw) = @_;
    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    $head //= '';
    $body //= '';
    my ($status) = $head =~ m{^HTTP/1\.\d (\d{3})};
    my %h;
    for (split /\r\n/, $head) {
        $h{ lc $1 } = $2 if /^([^:\s]+):\s*(.*?)\s*\z/;
    }
    if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
        my $out = '';
        while ($body =~ s/\A([0-9a-fA-F]+)[^\r\n]*\r\n//) {
            my $n = hex $1;
            last unless $n;
            $out .= substr($body, 0, $n, '');
            $body =~ s/\A\r\n//;
        }
        $body = $out;
    }
    my $json = length $body
        ? eval { JSON::PP->new->utf8->decode($body) } : undef;
    return { status => $status // 0, headers => \%h, body => $body,
        json => $json };
}

# raw_req(METHOD, PATH, headers => [[name, value], ...], body => BYTES,
#     chunked => [chunk, ...], auth => TOKEN): over a socket of its own,
# for what HTTP::Tiny will not send
sub raw_req {
    my ($method, $path, %o) = @_;
    my $req = "$method $path HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        . "Connection: close\r\n"
        . 'Authorization: Bearer ' . ($o{auth} // CT::admin_token())
        . "\r\n";
    $req .= "$_->[0]: $_->[1]\r\n" for @{ $o{headers} // [] };
    if ($o{chunked}) {
        $req .= "Transfer-Encoding: chunked\r\n\r\n";
        $req .= sprintf("%x\r\n%s\r\n", length $_, $_) for @{ $o{chunked} };
        $req .= "0\r\n\r\n";
    } else {
        my $body = $o{body} // '';
        $req .= 'Content-Length: ' . length($body) . "\r\n\r\n$body";
    }
    return parse_http($ng->raw($req, timeout => 10));
}

sub get_doc {
    my ($id, %o) = @_;
    return $ng->req(GET => "/api/documents/$id", %o);
}

sub get_content {
    my ($id, %o) = @_;
    return $ng->req(GET => "/api/documents/$id/content", %o);
}

sub del_doc {
    my ($id, %o) = @_;
    return $ng->req(DELETE => "/api/documents/$id", %o);
}

sub list {
    my ($cid, $query, %o) = @_;
    return $ng->req(GET => CT::with_query("/api/customers/$cid/documents",
        $query), %o);
}

sub titles { CT::pluck($_[0], 'documents', 'title') }

sub stored_content {
    my ($id) = @_;
    return scalar CT::sql($db, q{SELECT length(content) || ' '
        || encode(sha256(content), 'hex') FROM document_contents
        WHERE document_id = :'p1'}, $id);
}

# the percent-decoded bytes of a filename*=UTF-8''... value
sub undo_pct {
    my ($s) = @_;
    $s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    return $s;
}

# Content-Disposition: attachment; filename="ascii"; filename*=UTF-8''...
# $ascii: the expected quoted name (a string or a regex); $name: the full
# file name (characters)
sub disposition_ok {
    my ($r, $ascii, $full, $what) = @_;
    my $cd = $r->{headers}{'content-disposition'} // '';
    my ($q, $ext) = $cd =~ /^attachment;[ ]filename="([^"\\]*)";
        [ ]filename\*=UTF-8''(\S+)\z/x;
    ok(defined $q, "$what: Content-Disposition attachment with filename"
        . ' and filename*') or diag($cd);
    if (ref $ascii) {
        like($q // '', $ascii, "$what: filename, ASCII only");
    } else {
        is($q, $ascii, "$what: filename");
    }
    ok(defined $q && $q =~ /^[\x20-\x7e]*\z/, "$what: filename printable"
        . ' ASCII');
    like($ext // '', qr/^(?:[A-Za-z0-9!#\$&+.^_`|~-]|%[0-9A-Fa-f]{2})+\z/,
        "$what: filename* only attr-chars and %XX");
    my $bytes = $full;
    utf8::encode($bytes);
    is(undo_pct($ext // ''), $bytes, "$what: filename* is the UTF-8 name");
}


my ($ID, $SUB) = make_customer();
my ($OTHER, $OTHER_SUB) = make_customer();
my $CUSTOMER = CT::customer_token($SUB);
my $OTHER_CUSTOMER = CT::customer_token($OTHER_SUB);
my $VEHICLE = make_vehicle($ID);
my $OTHER_VEHICLE = make_vehicle($OTHER);


# --- a binary round trip -------------------------------------------------

{
    my $bytes = join '', map { chr } shuffle((0 .. 255) x 4);
    my $sha = sha256_hex($bytes);
    my $before = counts();
    my $r = upload($ID, qs(type => 'other', title => 'Binary blob',
        filename => 'blob.bin'), $bytes, type => 'application/x-custom');
    my $d = CT::is_success($r, 201, 'Document uploaded successfully',
        \@DOC_KEYS, 'binary upload');
    like($d->{documentId} // '', $UUID, 'binary upload: id');
    is($d->{customerId}, $ID, 'binary upload: customerId');
    ok(exists $d->{vehicleId} && !defined $d->{vehicleId},
        'binary upload: vehicleId null');
    is($d->{type}, 'other', 'binary upload: type');
    is($d->{title}, 'Binary blob', 'binary upload: title');
    is($d->{filename}, 'blob.bin', 'binary upload: filename');
    is($d->{contentType}, 'application/x-custom',
        'binary upload: contentType as sent');
    is($d->{size}, 1024, 'binary upload: size 1024');
    like($r->{body}, qr/"size":1024[,}]/, 'binary upload: size a number');
    is($d->{sha256}, $sha, 'binary upload: sha256 of the bytes');
    ok(exists $d->{expiresAt} && !defined $d->{expiresAt},
        'binary upload: expiresAt null');
    like($d->{createdAt} // '', $TS, 'binary upload: createdAt');
    is($d->{createdBy}, 'admin-user', "binary upload: createdBy the sub");
    my ($nd, $nc) = split /,/, $before;
    is(counts(), ($nd + 1) . ',' . ($nc + 1),
        'binary upload: one document and one content row');
    is(stored_content($d->{documentId}), "1024 $sha",
        'binary upload: the stored bytes');

    my $c = get_content($d->{documentId});
    is($c->{status}, 200, 'binary content: 200') or diag($c->{body});
    ok($c->{body} eq $bytes, 'binary content: exactly the bytes sent');
    is(length $c->{body}, 1024, 'binary content: 1024 bytes');
    is($c->{headers}{'content-type'}, 'application/x-custom',
        'binary content: the Content-Type stored');
    is($c->{headers}{'content-length'}, 1024,
        'binary content: Content-Length');
    is($c->{headers}{etag}, qq{"$sha"}, 'binary content: ETag "<sha256>"');
    is($c->{headers}{'x-content-type-options'}, 'nosniff',
        'binary content: X-Content-Type-Options nosniff');
    disposition_ok($c, 'blob.bin', 'blob.bin', 'binary content');

    my $m = get_doc($d->{documentId});
    is($m->{status}, 200, 'GET metadata: 200') or diag($m->{body});
    is_deeply($m->{json}{data}, $d, 'GET metadata: as the upload answered');
    is($m->{json}{data}{size}, length $bytes, 'GET metadata: size');
    is($m->{json}{data}{sha256}, sha256_hex($c->{body}),
        'GET metadata: sha256 of the content served');
}


# --- sizes: 0 bytes, the limit, one over ---------------------------------

{
    my $r = upload($ID, qs(type => 'other', title => 'Empty'), '',
        type => 'text/plain');
    is($r->{status}, 201, '0 bytes: 201') or diag($r->{body});
    my $d = $r->{json}{data} // {};
    is($d->{size}, 0, '0 bytes: size 0');
    is($d->{sha256}, $EMPTY_SHA, '0 bytes: sha256 of the empty string');
    is(stored_content($d->{documentId} // $MISSING), "0 $EMPTY_SHA",
        '0 bytes: an empty content row');
    my $c = get_content($d->{documentId} // $MISSING);
    is($c->{status}, 200, '0 bytes: content 200');
    is($c->{body}, '', '0 bytes: an empty body');
    is($c->{headers}{'content-length'}, 0, '0 bytes: Content-Length 0');
    is($c->{headers}{etag}, qq{"$EMPTY_SHA"}, '0 bytes: ETag');
    is($c->{headers}{'content-type'}, 'text/plain', '0 bytes: Content-Type');

    my $bytes = join '', map { chr int rand 256 } 1 .. $LIMIT;
    $r = upload($ID, qs(type => 'service', title => 'At the limit'), $bytes,
        type => 'application/pdf');
    is($r->{status}, 201, "$LIMIT bytes: 201") or diag($r->{body});
    $d = $r->{json}{data} // {};
    is($d->{size}, $LIMIT, "$LIMIT bytes: size");
    is($d->{sha256}, sha256_hex($bytes), "$LIMIT bytes: sha256");
    $c = get_content($d->{documentId} // $MISSING);
    ok($c->{body} eq $bytes, "$LIMIT bytes: the content round trips");
    is($c->{headers}{'content-length'}, $LIMIT,
        "$LIMIT bytes: Content-Length");

    my $before = counts();
    my $over = raw_req(POST => "/api/customers/$ID/documents?"
        . qs(type => 'other', title => 'Too big'),
        headers => [['Content-Type', 'application/octet-stream']],
        body => 'x' x ($LIMIT + 1));
    is_error($over, 413, undef, undef, ($LIMIT + 1) . ' bytes');
    like($over->{headers}{'content-type'} // '', qr{^application/json},
        ($LIMIT + 1) . ' bytes: a JSON answer');
    is(counts(), $before, ($LIMIT + 1) . ' bytes: nothing stored');

    # chunked: within the limit accepted, over it refused
    my @parts = ('a' x 1000, join('', map { chr } 0 .. 255), 'z' x 7);
    my $all = join '', @parts;
    my @send = @parts;
    $r = $ng->req(POST => "/api/customers/$ID/documents?"
        . qs(type => 'other', title => 'Chunked'),
        body => sub { shift(@send) // '' },
        headers => { 'Content-Type' => 'application/x-chunked' });
    is($r->{status}, 201, 'chunked upload: 201') or diag($r->{body});
    is($r->{json}{data}{size}, length $all, 'chunked upload: size');
    is($r->{json}{data}{sha256}, sha256_hex($all), 'chunked upload: sha256');
    ok(get_content($r->{json}{data}{documentId} // $MISSING)->{body} eq $all,
        'chunked upload: the content round trips');

    $before = counts();
    $over = raw_req(POST => "/api/customers/$ID/documents?"
        . qs(type => 'other', title => 'Too big, chunked'),
        headers => [['Content-Type', 'application/octet-stream']],
        chunked => [('c' x 10000) x 7]);
    is_error($over, 413, undef, undef, 'chunked 70000 bytes');
    is(counts(), $before, 'chunked 70000 bytes: nothing stored');
}


# --- the query: what is stored -------------------------------------------

{
    # every parameter
    my $exp = day(1000);
    my $r = upload($ID, qs(type => 'insurance', title => 'Policy 2027',
        expiresAt => $exp, vehicleId => $VEHICLE,
        filename => 'policy.pdf'), '%PDF-1.4', type => 'application/pdf');
    is($r->{status}, 201, 'every parameter: 201') or diag($r->{body});
    my $d = $r->{json}{data} // {};
    is_deeply([@$d{qw(type title expiresAt vehicleId filename
        contentType)}], ['insurance', 'Policy 2027', $exp, $VEHICLE,
        'policy.pdf', 'application/pdf'], 'every parameter: stored');

    for my $type (qw(insurance registration service identity other)) {
        $r = upload($ID, qs(type => $type, title => "a $type"), $type);
        is($r->{status}, 201, "type $type: 201") or diag($r->{body});
        is($r->{json}{data}{type}, $type, "type $type: stored");
    }

    # percent-decoding, '+' as a space, non-ASCII titles
    $r = upload($ID, 'type=other&title=Car+insurance+2026', 'x');
    is($r->{json}{data}{title}, 'Car insurance 2026', "title: '+' a space");
    is($r->{json}{data}{filename}, 'Car insurance 2026',
        'filename: the title when not given');
    $r = upload($ID, 'type=other&title=1%2B1%3D2', 'x');
    is($r->{json}{data}{title}, '1+1=2', "title: %2B is '+'");

    my $title = "\x{dc}bersicht \x{20ac} 2026";
    $r = upload($ID, qs(type => 'other', title => $title), 'x');
    is($r->{status}, 201, 'non-ASCII title: 201') or diag($r->{body});
    $d = $r->{json}{data} // {};
    is($d->{title}, $title, 'non-ASCII title: decoded as UTF-8');
    is($d->{filename}, $title, 'non-ASCII title: the default filename');
    my $m = get_doc($d->{documentId} // $MISSING);
    is($m->{json}{data}{title}, $title, 'non-ASCII title: GET round trip');
    is(titles(list($ID, 'limit=1'))->[0], $title,
        'non-ASCII title: in the list');
    my $c = get_content($d->{documentId} // $MISSING);
    disposition_ok($c, qr/^_+bersicht _+ 2026\z/, $title,
        'non-ASCII filename');

    $r = upload($ID, qs(type => 'other', title => 'Quotes',
        filename => 'say "hi".txt'), 'x');
    is($r->{json}{data}{filename}, 'say "hi".txt', 'filename with quotes');
    disposition_ok(get_content($r->{json}{data}{documentId} // $MISSING),
        'say _hi_.txt', 'say "hi".txt', 'filename with quotes');

    # lengths at the limit: characters, not bytes
    for my $t ('a' x 200, "\x{e9}" x 200) {
        $r = upload($ID, qs(type => 'other', title => $t), 'x');
        is($r->{status}, 201, 'title of 200 characters ('
            . (ord $t > 127 ? 'non-ASCII' : 'ASCII') . '): 201')
            or diag($r->{body});
        is($r->{json}{data}{title}, $t, '... stored whole');
    }
    $r = upload($ID, qs(type => 'other', title => 'f',
        filename => 'n' x 251 . '.txt'), 'x');
    is($r->{status}, 201, 'filename of 255: 201') or diag($r->{body});

    # Content-Type stored as sent, or application/octet-stream
    $r = upload($ID, qs(type => 'other', title => 'utf8 text'), 'x',
        type => 'text/plain; charset=utf-8');
    is($r->{json}{data}{contentType}, 'text/plain; charset=utf-8',
        'Content-Type with parameters: stored as sent');
    is(get_content($r->{json}{data}{documentId} // $MISSING)->{headers}
        {'content-type'}, 'text/plain; charset=utf-8',
        '... and served as stored');
    my $ct = 'application/' . 'x' x 243;
    $r = upload($ID, qs(type => 'other', title => 'long type'), 'x',
        type => $ct);
    is($r->{status}, 201, 'Content-Type of 255 characters: 201')
        or diag($r->{body});
    is($r->{json}{data}{contentType}, $ct, '... stored');

    my $raw = raw_req(POST => "/api/customers/$ID/documents?"
        . qs(type => 'other', title => 'No type'), body => "\x00\x01raw");
    is($raw->{status}, 201, 'no Content-Type: 201') or diag($raw->{body});
    is($raw->{json} && $raw->{json}{data}{contentType},
        'application/octet-stream',
        'no Content-Type: application/octet-stream');
    $c = get_content($raw->{json} ? $raw->{json}{data}{documentId} : $MISSING);
    is($c->{headers}{'content-type'}, 'application/octet-stream',
        'no Content-Type: served as application/octet-stream');
    is($c->{body}, "\x00\x01raw", 'no Content-Type: the bytes');
}


# --- the query: refusals store nothing -----------------------------------

{
    my $ok = sub { qs(type => 'other', title => 'T', @_) };
    my @cases = (
        ['title=T', ['type'], 'type missing'],
        [qs(type => 'passport', title => 'T'), ['type'], 'type unknown'],
        [qs(type => 'Insurance', title => 'T'), ['type'],
            'type is case-sensitive'],
        [qs(type => '', title => 'T'), ['type'], 'type empty'],
        ['type=other', ['title'], 'title missing'],
        ['type=other&title=', ['title'], 'title empty'],
        [qs(type => 'other', title => 'a' x 201), ['title'],
            'title of 201 characters'],
        [qs(type => 'other', title => "\x{e9}" x 201), ['title'],
            'title of 201 non-ASCII characters'],
        [$ok->(expiresAt => '2026-02-30'), ['expiresAt'],
            'expiresAt not a day'],
        [$ok->(expiresAt => '2026-1-5'), ['expiresAt'],
            'expiresAt not YYYY-MM-DD'],
        [$ok->(expiresAt => 'soon'), ['expiresAt'], 'expiresAt a word'],
        [$ok->(vehicleId => 'not-a-uuid'), ['vehicleId'],
            'vehicleId not a UUID'],
        [$ok->(filename => 'a/b.txt'), ['filename'], "filename with '/'"],
        [$ok->(filename => 'a\\b.txt'), ['filename'], "filename with '\\'"],
        [$ok->(filename => "a\nb.txt"), ['filename'],
            'filename with a newline'],
        [$ok->(filename => "a\x01b.txt"), ['filename'],
            'filename with a control character'],
        [$ok->(filename => ''), ['filename'], 'filename empty'],
        [$ok->(filename => 'n' x 256), ['filename'], 'filename of 256'],
        [qs(type => 'x', expiresAt => 'x', vehicleId => 'x',
            filename => '/'), [qw(type title expiresAt vehicleId filename)],
            'every bad parameter at once'],
    );
    for my $c (@cases) {
        my ($q, $fields, $name) = @$c;
        my $before = counts();
        my $r = upload($ID, $q, 'content');
        is_error($r, 400, 'Validation failed', $fields, "upload, $name");
        is(counts(), $before, "upload, $name: nothing stored");
    }

    for my $c ([$MISSING, 'an unknown vehicle'],
        [$OTHER_VEHICLE, "another customer's vehicle"])
    {
        my ($v, $name) = @$c;
        my $before = counts();
        my $r = upload($ID, $ok->(vehicleId => $v), 'content');
        is_error($r, 422, undef, ['vehicleId'], "upload, $name");
        is(counts(), $before, "upload, $name: nothing stored");
    }

    for my $c (['application/' . 'x' x 244, 'Content-Type of 256'],
        ["text/pl\x01ain", 'Content-Type with a control character'],
        ["text/plain\x7f", 'Content-Type with DEL'])
    {
        my ($ct, $name) = @$c;
        my $before = counts();
        my $r = raw_req(POST => "/api/customers/$ID/documents?" . $ok->(),
            headers => [['Content-Type', $ct]], body => 'content');
        is_error($r, 400, undef, undef, "upload, $name");
        is(counts(), $before, "upload, $name: nothing stored");
    }

    my $before = counts();
    is_error(upload('not-a-uuid', $ok->(), 'x'), 400, undef, ['customerId'],
        'upload to a bad customer id');
    is_error(upload($MISSING, $ok->(), 'x'), 404, undef, undef,
        'upload to an unknown customer');
    is(counts(), $before, 'bad customers: nothing stored');
}


# --- the metadata in X-Document-* headers instead of the query ------------
# (the metadata may come in the query or in headers); the query wins when both

{
    my ($cid) = make_customer();
    my $vid = make_vehicle($cid);
    my $exp = day(12);
    my $r = raw_req(POST => "/api/customers/$cid/documents", body => 'hdr',
        headers => [['Content-Type', 'text/plain'],
            ['X-Document-Type', 'registration'],
            ['X-Document-Title', "Carte grise \xc3\xa9t\xc3\xa9"],
            ['X-Document-Filename', 'carte.pdf'],
            ['X-Document-Expires-At', $exp],
            ['X-Document-Vehicle-Id', $vid]]);
    is($r->{status}, 201, 'headers: 201') or diag($r->{body});
    my $d = $r->{json}{data} // {};
    is($d->{type}, 'registration', 'headers: type');
    is($d->{title}, "Carte grise \x{e9}t\x{e9}", 'headers: a UTF-8 title');
    is($d->{filename}, 'carte.pdf', 'headers: filename');
    is($d->{expiresAt}, $exp, 'headers: expiresAt');
    is($d->{vehicleId}, $vid, 'headers: vehicleId');

    $r = raw_req(POST => "/api/customers/$cid/documents?type=other&title=q",
        body => 'both', headers => [['Content-Type', 'text/plain'],
            ['X-Document-Type', 'insurance'], ['X-Document-Title', 'h']]);
    is($r->{status}, 201, 'query and headers: 201') or diag($r->{body});
    is(($r->{json}{data} // {})->{type}, 'other', 'the query wins: type');
    is(($r->{json}{data} // {})->{title}, 'q', 'the query wins: title');

    my $before = counts();
    $r = raw_req(POST => "/api/customers/$cid/documents", body => 'bad',
        headers => [['Content-Type', 'text/plain'],
            ['X-Document-Type', 'passport'], ['X-Document-Title', ''],
            ['X-Document-Expires-At', '2026-02-30'],
            ['X-Document-Vehicle-Id', 'not-a-uuid'],
            ['X-Document-Filename', 'a/b']]);
    is_error($r, 400, 'Validation failed', [qw(type title expiresAt vehicleId filename)],
        'bad headers');
    $r = raw_req(POST => "/api/customers/$cid/documents", body => 'twice',
        headers => [['Content-Type', 'text/plain'],
            ['X-Document-Type', 'other'], ['X-Document-Title', 'one'],
            ['X-Document-Title', 'two']]);
    is_error($r, 400, undef, ['X-Document-Title'], 'a header given twice');
    $r = raw_req(POST => "/api/customers/$cid/documents", body => 'none',
        headers => [['Content-Type', 'text/plain']]);
    is_error($r, 400, undef, [qw(type title)], 'neither query nor headers');
    is(counts(), $before, 'refused header uploads: nothing stored');
}

# --- the list ------------------------------------------------------------

{
    my ($lid, $lsub) = make_customer();
    my @docs = map { add_doc($lid, qs(type => $_->[0], title => $_->[1]),
        $_->[1]) } (['insurance', 'd1'], ['other', 'd2'],
        ['insurance', 'd3'], ['service', 'd4'], ['registration', 'd5']);

    my $r = list($lid);
    is($r->{status}, 200, 'list: 200') or diag($r->{body});
    is($r->{json}{success}, $T, 'list: success');
    is_deeply([sort keys %{ $r->{json}{data} // {} }],
        ['documents', 'pagination'], 'list: documents and pagination');
    is_deeply(titles($r), [qw(d5 d4 d3 d2 d1)], 'list: newest first');
    is_deeply($r->{json}{data}{documents}[0], $docs[4],
        'list: an item is the metadata as uploaded');
    is_deeply($r->{json}{data}{pagination}, { currentPage => 1,
        totalPages => 1, totalItems => 5, itemsPerPage => 20,
        hasNextPage => $F, hasPreviousPage => $F },
        'list: pagination, limit 20 by default');

    $r = list($lid, 'type=insurance');
    is_deeply(titles($r), [qw(d3 d1)], 'list: type=insurance');
    is($r->{json}{data}{pagination}{totalItems}, 2, '... counts 2');
    $r = list($lid, 'type=identity');
    is_deeply(titles($r), [], 'list: a type with no documents');
    is($r->{json}{data}{pagination}{totalItems}, 0, '... counts 0');

    $r = list($lid, 'limit=2&page=2');
    is_deeply(titles($r), [qw(d3 d2)], 'list: page 2 of 3');
    is_deeply($r->{json}{data}{pagination}, { currentPage => 2,
        totalPages => 3, totalItems => 5, itemsPerPage => 2,
        hasNextPage => $T, hasPreviousPage => $T }, '... its pagination');
    $r = list($lid, 'limit=2&page=3');
    is_deeply(titles($r), ['d1'], 'list: the last page');
    is($r->{json}{data}{pagination}{hasNextPage}, $F,
        '... hasNextPage false');
    $r = list($lid, 'type=insurance&limit=1&page=2');
    is_deeply(titles($r), ['d1'], 'list: type and paging');
    $r = list($lid, 'page=9');
    is($r->{status}, 200, 'list: a page past the end: 200');
    is_deeply(titles($r), [], '... empty');

    my ($empty) = make_customer();
    $r = list($empty);
    is_deeply($r->{json}{data}{documents}, [],
        'list: a customer without documents');
    is_deeply([sort keys %{ $r->{json}{data}{pagination} // {} }],
        \@PAGE_KEYS, '... with pagination');

    for my $c (['type=bogus', ['type']], ['type=Insurance', ['type']],
        ['limit=0', ['limit']], ['limit=101', ['limit']],
        ['page=0', ['page']], ['page=x', ['page']])
    {
        my ($q, $fields) = @$c;
        is_error(list($lid, $q), 400, 'Validation failed', $fields, "list ?$q");
    }
    is_error(list('nope'), 400, undef, ['customerId'], 'list: bad customer id');
    is_error(list($MISSING), 404, undef, undef, 'list: unknown customer');
}


# --- metadata, DELETE ----------------------------------------------------

{
    my $d = add_doc($ID, qs(type => 'service', title => 'To delete'),
        'delete me', type => 'text/plain');
    my $id = $d->{documentId};
    is(CT::sql($db, q{SELECT count(*) FROM document_contents
        WHERE document_id = :'p1'}, $id), 1, 'before DELETE: content stored');
    CT::is_deleted(del_doc($id), documentId => $id, 'DELETE');

    is_error(get_doc($id), 404, undef, undef, 'GET after DELETE');
    is_error(get_content($id), 404, undef, undef, 'GET content after DELETE');
    is_error(del_doc($id), 404, undef, undef, 'DELETE again');
    is(CT::sql($db, q{SELECT (SELECT count(*) FROM documents WHERE id =
        :'p1') + (SELECT count(*) FROM document_contents WHERE document_id
        = :'p1')}, $id), 0, 'after DELETE: the row and the content gone');
    ok(!grep({ $_ eq 'To delete' } @{ titles(list($ID, 'limit=100')) }),
        'after DELETE: not in the list');

    for my $path ('/api/documents/not-a-uuid',
        '/api/documents/not-a-uuid/content')
    {
        is_error($ng->req(GET => $path), 400, undef, ['documentId'], "GET $path");
    }
    is_error(del_doc('not-a-uuid'), 400, undef, ['documentId'],
        'DELETE a bad document id');
    is_error(get_doc($MISSING), 404, undef, undef, 'GET an unknown document');
    is_error(get_content($MISSING), 404, undef, undef,
        'GET the content of an unknown document');
    is_error(del_doc($MISSING), 404, undef, undef, 'DELETE an unknown document');

    # deleting the vehicle keeps its documents, without the vehicle
    my $v = make_vehicle($ID);
    my $vd = add_doc($ID, qs(type => 'registration', title => 'RC',
        vehicleId => $v), 'rc');
    is($vd->{vehicleId}, $v, 'a document of a vehicle');
    my $r = $ng->req(DELETE => "/api/vehicles/$v");
    is($r->{status}, 200, 'DELETE its vehicle: 200') or diag($r->{body});
    $r = get_doc($vd->{documentId});
    is($r->{status}, 200, '... the document stays');
    ok(exists $r->{json}{data}{vehicleId}
        && !defined $r->{json}{data}{vehicleId}, '... with vehicleId null');
    is(get_content($vd->{documentId})->{body}, 'rc', '... and its content');

    # deleting the customer takes its documents along
    my ($gone) = make_customer();
    my $gd = add_doc($gone, qs(type => 'other', title => 'bye'), 'bye');
    $r = $ng->req(DELETE => "/api/customers/$gone");
    is($r->{status}, 200, 'DELETE a customer with documents: 200')
        or diag($r->{body});
    is(CT::sql($db, q{SELECT (SELECT count(*) FROM documents WHERE
        customer_id = :'p1') + (SELECT count(*) FROM document_contents
        WHERE document_id = :'p2')}, $gone, $gd->{documentId}), 0,
        '... its documents and contents are gone');
}


# --- expiring soon -------------------------------------------------------

{
    my ($eid) = make_customer();
    my %want;
    for my $c (['yesterday', -1], ['today', 0], ['in 10', 10],
        ['in 30', 30], ['in 31', 31], ['in 365', 365], ['in 366', 366])
    {
        my ($t, $n) = @$c;
        my $d = add_doc($eid, qs(type => 'insurance', title => $t,
            expiresAt => day($n)), $t);
        $want{$t} = $d;
    }
    add_doc($eid, qs(type => 'insurance', title => 'never'), 'never');

    my $soon = sub {
        my ($q, %o) = @_;
        return $ng->req(GET => '/api/documents/expiring-soon'
            . (defined $q ? "?$q" : ''), %o);
    };
    my $mine = sub {
        my ($r) = @_;
        return [ map { "$_->{title}:$_->{daysRemaining}" }
            grep { $_->{customerId} eq $eid }
            @{ $r->{json}{data}{documents} // [] } ];
    };
    # the DB's own count of documents expiring within N days
    my $count = sub {
        return scalar CT::sql($db, q{SELECT count(*) FROM documents WHERE
            expires_at BETWEEN (now() AT TIME ZONE 'UTC')::date AND
            (now() AT TIME ZONE 'UTC')::date + :'p1'::int}, $_[0]);
    };

    my $r = $soon->('limit=100');
    is($r->{status}, 200, 'expiring-soon: 200') or diag($r->{body});
    is_deeply([sort keys %{ $r->{json}{data} // {} }],
        ['documents', 'pagination'], 'expiring-soon: documents, pagination');
    is_deeply($mine->($r), ['today:0', 'in 10:10', 'in 30:30'],
        'expiring-soon: 30 days by default, both ends in, soonest first');
    my $item = (grep { $_->{title} eq 'in 10' && $_->{customerId} eq $eid }
        @{ $r->{json}{data}{documents} // [] })[0] // {};
    is_deeply([sort keys %$item], [sort @DOC_KEYS, 'daysRemaining'],
        'expiring-soon: metadata plus daysRemaining');
    my %meta = %$item;
    delete $meta{daysRemaining};
    is_deeply(\%meta, $want{'in 10'}, 'expiring-soon: the metadata');
    is($r->{json}{data}{pagination}{totalItems}, $count->(30),
        'expiring-soon: totalItems as the database counts');
    my @all = @{ $r->{json}{data}{documents} // [] };
    is_deeply([map { $_->{expiresAt} } @all],
        [sort map { $_->{expiresAt} } @all],
        'expiring-soon: every item in expiresAt order');
    ok(!grep({ $_->{daysRemaining} < 0 || $_->{daysRemaining} > 30 } @all),
        'expiring-soon: every item within 0..30 days');

    is_deeply($mine->($soon->('days=30&limit=100')),
        ['today:0', 'in 10:10', 'in 30:30'], 'expiring-soon: days=30');
    is_deeply($mine->($soon->('days=10&limit=100')),
        ['today:0', 'in 10:10'], 'expiring-soon: days=10');
    is_deeply($mine->($soon->('days=1&limit=100')), ['today:0'],
        'expiring-soon: days=1');
    is_deeply($mine->($soon->('days=31&limit=100')),
        ['today:0', 'in 10:10', 'in 30:30', 'in 31:31'],
        'expiring-soon: days=31');
    $r = $soon->('days=365&limit=100');
    is_deeply($mine->($r), ['today:0', 'in 10:10', 'in 30:30', 'in 31:31',
        'in 365:365'], 'expiring-soon: days=365, not 366, not yesterday');
    is($r->{json}{data}{pagination}{totalItems}, $count->(365),
        'expiring-soon: days=365 totalItems as the database counts');

    my $p1 = $soon->('days=365&limit=2&page=1');
    my $p2 = $soon->('days=365&limit=2&page=2');
    is_deeply([map { $_->{documentId} } @{ $p1->{json}{data}{documents} // [] },
        @{ $p2->{json}{data}{documents} // [] }],
        [map { $_->{documentId} } @{ $r->{json}{data}{documents} // [] }[0 .. 3]],
        'expiring-soon: pages 1 and 2 of 2 are the first 4');
    is($p2->{json}{data}{pagination}{currentPage}, 2,
        'expiring-soon: currentPage 2');
    is($p2->{json}{data}{pagination}{itemsPerPage}, 2,
        'expiring-soon: itemsPerPage 2');

    for my $q ('days=0', 'days=366', 'days=-1', 'days=x', 'days=',
        'days=1.5')
    {
        is_error($soon->($q), 400, 'Validation failed', ['days'], "expiring-soon ?$q");
    }
    is_error($soon->('limit=0'), 400, undef, ['limit'], 'expiring-soon ?limit=0');
    is_error($soon->(undef, auth => $CUSTOMER), 403, undef, undef,
        'expiring-soon by a Customer');
    is_error($soon->(undef, auth => 'none'), 401, undef, undef,
        'expiring-soon without a token');
}


# --- identity documents --------------------------------------------------

{
    my ($iid, $isub) = make_customer();
    my $tok = CT::customer_token($isub);
    my $bytes = "passport scan \x00\xff";
    my $r = upload($iid, qs(type => 'identity', title => 'Passport'),
        $bytes, type => 'image/png', auth => $tok);
    is($r->{status}, 201, 'Customer uploads its identity document: 201')
        or diag($r->{body});
    my $d = $r->{json}{data} // {};
    is($d->{createdBy}, $isub, "... createdBy is the Customer's sub");
    is($d->{type}, 'identity', '... type identity');

    my $m = get_doc($d->{documentId} // $MISSING, auth => $tok);
    is($m->{status}, 200, 'Customer GET identity metadata: 200');
    is_deeply($m->{json}{data}, $d, '... the metadata');
    ok(grep({ $_->{documentId} eq ($d->{documentId} // '') }
        @{ list($iid, undef, auth => $tok)->{json}{data}{documents} // [] }),
        'Customer lists its identity document');
    my $c = get_content($d->{documentId} // $MISSING, auth => $tok);
    is_error($c, 403, undef, undef, 'Customer GET identity content');
    ok(index($c->{body}, 'passport scan') < 0, '... no bytes leak');

    $c = get_content($d->{documentId} // $MISSING);
    is($c->{status}, 200, 'admin GET identity content: 200');
    ok($c->{body} eq $bytes, '... the bytes');
    is($c->{headers}{'content-type'}, 'image/png', '... the Content-Type');

    # uploaded by the admin: the same
    my $ad = add_doc($iid, qs(type => 'identity', title => 'ID card'), 'id');
    is_error(get_content($ad->{documentId}, auth => $tok), 403, undef, undef,
        "Customer GET the admin's identity upload content");
    is(get_doc($ad->{documentId}, auth => $tok)->{status}, 200,
        '... its metadata 200');
}


# --- who may do what -----------------------------------------------------

{
    my ($oid, $osub) = make_customer();
    my $owner = CT::customer_token($osub);
    my $stranger = $OTHER_CUSTOMER;
    my $nobody = CT::customer_token("docs-nobody-$$");
    my $doc = add_doc($oid, qs(type => 'other', title => 'Mine'), 'mine');
    my $D = $doc->{documentId};

    # POST
    my $before = counts();
    my $r = upload($oid, qs(type => 'other', title => 'by owner'), 'o',
        auth => $owner);
    is($r->{status}, 201, 'owner POST: 201') or diag($r->{body});
    is($r->{json}{data}{createdBy}, $osub, 'owner POST: createdBy');
    $r = upload($oid, qs(type => 'other', title => 'by admin'), 'a');
    is($r->{status}, 201, 'admin POST: 201') or diag($r->{body});
    my ($nd, $nc) = split /,/, $before;
    is(counts(), ($nd + 2) . ',' . ($nc + 2), 'two uploads: two documents');

    $before = counts();
    is_error(upload($oid, qs(type => 'other', title => 'intruder'), 'x',
        auth => $stranger), 404, undef, undef, 'another customer POST');
    is_error(upload($oid, qs(type => 'other', title => 'intruder'), 'x',
        auth => $nobody), 404, undef, undef, 'a Customer without a record POST');
    is_error(upload($oid, qs(type => 'other', title => 'anon'), 'x',
        auth => 'none'), 401, undef, undef, 'POST without a token');
    is(counts(), $before, 'refused POSTs: nothing stored');

    # GET the list
    is(list($oid, undef, auth => $owner)->{status}, 200, 'owner list: 200');
    ok(grep({ $_->{documentId} eq $D } @{ list($oid, undef, auth => $owner)
        ->{json}{data}{documents} // [] }), 'owner list: has the document');
    is(list($oid)->{status}, 200, 'admin list: 200');
    is_error(list($oid, undef, auth => $stranger), 404, undef, undef,
        'another customer list');
    is_error(list($oid, undef, auth => $nobody), 404, undef, undef,
        'a Customer without a record list');
    is_error(list($oid, undef, auth => 'none'), 401, undef, undef,
        'list without a token');

    # GET metadata and content; the callers refused, and their status
    my @refused = ([$stranger, 404, 'another customer'],
        [$nobody, 404, 'a Customer without a record'],
        ['none', 401, 'no token']);
    $r = get_doc($D, auth => $owner);
    is($r->{status}, 200, 'owner GET metadata: 200');
    is_deeply($r->{json}{data}, $doc, 'owner GET metadata: the document');
    is(get_doc($D)->{status}, 200, 'admin GET metadata: 200');
    for my $c (@refused) {
        my ($auth, $status, $name) = @$c;
        is_error(get_doc($D, auth => $auth), $status, undef, undef,
            "$name GET metadata");
    }

    $r = get_content($D, auth => $owner);
    is($r->{status}, 200, 'owner GET content: 200');
    is($r->{body}, 'mine', 'owner GET content: the bytes');
    is(get_content($D)->{body}, 'mine', 'admin GET content: the bytes');
    for my $c (@refused) {
        my ($auth, $status, $name) = @$c;
        $r = get_content($D, auth => $auth);
        is_error($r, $status, undef, undef, "$name GET content");
        ok(index($r->{body}, 'mine') < 0, "$name GET content: no bytes");
        unlike($r->{headers}{'content-disposition'} // '', qr/attachment/,
            "$name GET content: no attachment");
    }

    # DELETE
    $before = counts();
    for my $c (@refused) {
        my ($auth, $status, $name) = @$c;
        is_error(del_doc($D, auth => $auth), $status, undef, undef,
            "$name DELETE");
    }
    is(counts(), $before, 'refused DELETEs: nothing deleted');
    is(get_doc($D)->{status}, 200, 'refused DELETEs: the document is there');

    $r = del_doc($D, auth => $owner);
    is($r->{status}, 200, 'owner DELETE: 200') or diag($r->{body});
    is(get_doc($D)->{status}, 404, 'owner DELETE: gone');
    my $other = add_doc($oid, qs(type => 'other', title => 'admin del'), 'z');
    $r = del_doc($other->{documentId});
    is($r->{status}, 200, 'admin DELETE: 200') or diag($r->{body});
    is(get_doc($other->{documentId}, auth => $owner)->{status}, 404,
        'admin DELETE: gone');
    my ($nd2, $nc2) = split /,/, $before;
    is(counts(), ($nd2 - 1) . ',' . ($nc2 - 1),
        'two uploads and two deletes later: one document less');
}

# --- client_body_buffer_size below client_max_body_size -------------------
# the module never reads a body from a temp file: a declared length over
# the buffer is 413 before reading, a chunked body that spills over it
# is 413 after; at the buffer size it is stored

{
    my $ng2 = CT::nginx_start(db => $db, documents => ['1m', '16k']);
    my $main = $ng;
    $ng = $ng2;
    my ($cid) = make_customer();
    my $path = "/api/customers/$cid/documents?type=other&title=buffer";
    my $before = counts();

    my $r = upload($cid, 'type=other&title=buffer', 'b' x 16384);
    is($r->{status}, 201, 'buffer: 16k, the buffer size, stored')
        or diag($r->{body});
    is(counts(), join(',', map { $_ + 1 } split /,/, $before),
        'buffer: one document');
    $before = counts();

    $r = upload($cid, 'type=other&title=buffer', 'b' x 16385);
    is_error($r, 413, 'Payload too large', ['body'], 'buffer: 16k + 1 with Content-Length');
    like($r->{json}{errors}[0]{message} // '', qr/client_body_buffer_size/,
        'buffer: the message names client_body_buffer_size');

    $r = raw_req(POST => $path, chunked => [('c' x 4096) x 6],
        headers => [['Content-Type', 'application/x-chunked']]);
    is($r->{status}, 413, 'buffer: 24k chunked, spilled to a file: 413')
        or diag($r->{body});
    is($r->{json} && $r->{json}{success}, JSON::PP::false,
        'buffer: chunked: the error envelope');
    is(counts(), $before, 'buffer: nothing stored for either');

    $ng = $main;
    $ng2->stop;
}

done_testing();
