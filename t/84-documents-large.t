# Large documents: an 8 MB file goes to PostgreSQL as one binary
# parameter (libpq flushes it on write events, never blocking the worker)
# and comes back as a binary result, byte for byte; the worker goes on
# answering afterwards; one byte over the limit is 413 with nothing
# stored. A document survives a restart of nginx and of PostgreSQL.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;
use Digest::SHA qw(sha256_hex);

my $LIMIT = 8 * 1024 * 1024;

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db, documents => '8m');

my $r = $ng->req(POST => '/api/customers', json => { userId => "big-$$",
    email => "big$$\@example.com", fullName => 'Large Documents' });
die "create failed: $r->{body}" unless $r->{status} == 201;
my $ID = $r->{json}{data}{customerId};

# every byte value, in an order that does not repeat within 8 MB
my $seed = 12345;
my $body = pack 'C*', map {
    $seed = ($seed * 1103515245 + 12345) % 2**31; $seed >> 16 & 0xff
} 1 .. $LIMIT;

$r = $ng->req(POST => "/api/customers/$ID/documents?type=other&title=big",
    body => $body, headers => { 'Content-Type' => 'application/pdf' });
is($r->{status}, 201, '8 MB at the limit: 201') or diag($r->{body});
my $doc = $r->{json}{data} // {};
is($doc->{size}, $LIMIT, 'size is 8 MB');
is($doc->{sha256}, sha256_hex($body), 'sha256 of the bytes');

is(CT::sql($db, q{SELECT octet_length(content) FROM document_contents
    WHERE document_id = :'p1'}, $doc->{documentId} // ''), $LIMIT,
    'the database holds all 8 MB');

$r = $ng->req(GET => "/api/documents/$doc->{documentId}/content");
is($r->{status}, 200, 'content: 200');
is(length $r->{body}, $LIMIT, 'content: 8 MB back');
ok($r->{body} eq $body, 'content: the same bytes');
is($r->{headers}{'content-type'}, 'application/pdf', 'content: the type');

$r = $ng->req(GET => '/health');
is($r->{status}, 200, '/health still answers');

my $before = CT::sql($db, 'SELECT count(*) FROM documents');
$r = $ng->req(POST => "/api/customers/$ID/documents?type=other&title=over",
    body => $body . 'x', headers => { 'Content-Type' => 'application/pdf' });
is($r->{status}, 413, 'one byte over: 413');
is($r->{json} && $r->{json}{success}, JSON::PP::false,
    'one byte over: the error envelope');
is(CT::sql($db, 'SELECT count(*) FROM documents'), $before,
    'one byte over: nothing stored');

# across restarts: a private cluster, stopped and started under the
# document, and a new nginx
{
    my $pg = CT::private_pg();
    my $n1 = CT::nginx_start(conninfo => $pg->conninfo);
    my $c = $n1->req(POST => '/api/customers', json => { userId => "rs-$$",
        email => "rs$$\@example.com", fullName => 'Restart Survivor' });
    my $cid = $c->{json}{data}{customerId} // '';
    my $part = substr $body, 0, 60_000;    # under the 64k default
    my $up = $n1->req(POST => "/api/customers/$cid/documents"
        . '?type=registration&title=kept', body => $part,
        headers => { 'Content-Type' => 'image/png' });
    is($up->{status}, 201, 'restart: uploaded') or diag($up->{body});
    $n1->stop;
    $pg->stop('fast');
    $pg->start;

    my $n2 = CT::nginx_start(conninfo => $pg->conninfo);
    my $id = ($up->{json}{data} // {})->{documentId} // '';
    my $got = $n2->req(GET => "/api/documents/$id/content");
    is($got->{status}, 200, 'after restarting both: content 200');
    ok($got->{body} eq $part, 'after restarting both: the same bytes');
    is($got->{headers}{'content-type'}, 'image/png',
        'after restarting both: the same type');
    $n2->stop;
    $pg->stop('fast');
}

CT::done_testing();
