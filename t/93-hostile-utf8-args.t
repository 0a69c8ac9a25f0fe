# Query arguments and X-Document-* headers that are not UTF-8: a
# continuation byte where a lead byte's second byte should be ("%C3%C3"),
# overlong forms ("%C0%AF", "%E0%80%AF"), a surrogate ("%ED%A0%80"), a
# code point above U+10FFFF ("%F4%90%80%80"), a lone continuation byte
# and a truncated sequence. Each is a 400 whose errors name the argument
# (or the field the header gives), and nothing is stored; the same
# arguments in valid UTF-8 ("%C3%A9") are accepted.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db);

my @BAD = ('%C3%C3', '%C0%AF', '%E0%80%AF', '%ED%A0%80', '%F4%90%80%80',
    '%80', 'ab%E2%82', '%F8%88%80%80%80');

my $USER = "utf8-args-$$";
my $CID = CT::sql($db, q{INSERT INTO customers (user_id, email, full_name)
    VALUES (:'p1', :'p2', 'Caf' || chr(233)) RETURNING id}, $USER,
    "$USER\@example.com");

sub refused {
    my ($r, $fields, $name) = @_;
    is($r->{status}, 400, "$name: 400") or diag($r->{body});
    is(($r->{headers}{'content-type'} // ''), 'application/json',
        "$name: JSON");
    is_deeply(field_set($r), $fields, "$name: the errors name @$fields")
        or diag($r->{body});
}

# a POST with header values as bytes (HTTP::Tiny sends only ASCII ones)
sub raw_post {
    my ($path, $body, %headers) = @_;
    my $req = "POST $path HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        . 'Authorization: Bearer ' . CT::admin_token() . "\r\n"
        . 'Content-Length: ' . length($body) . "\r\n"
        . join('', map { "$_: $headers{$_}\r\n" } sort keys %headers)
        . "\r\n$body";
    my $raw = $ng->raw($req);
    my ($head, $content) = split /\r\n\r\n/, $raw, 2;
    my ($status) = $head =~ m{\AHTTP/1\.1 (\d{3})};
    my %h = map { /^([^:]+):\s*(.*)$/ ? (lc $1 => $2) : () }
        split /\r\n/, $head;
    return { status => $status // 0, headers => \%h, body => $content,
        json => eval { JSON::PP->new->utf8->decode($content // '') } };
}

sub counts {
    return scalar CT::sql($db, q{SELECT (SELECT count(*) FROM documents)
        || '/' || (SELECT count(*) FROM vehicles) || '/'
        || (SELECT count(*) FROM customers)});
}

my $before = counts();

for my $bad (@BAD) {
    refused($ng->req(GET => "/api/customers?searchTerm=$bad"),
        ['searchTerm'], "list searchTerm=$bad");
    refused($ng->req(GET => "/api/customers/search?q=ab$bad"), ['q'],
        "search q=ab$bad");
    refused($ng->req(GET => "/api/vehicles?make=$bad"), ['make'],
        "vehicles make=$bad");
    refused($ng->req(GET => "/api/vehicles?model=x$bad"), ['model'],
        "vehicles model=x$bad");
    refused($ng->req(POST => "/api/customers/$CID/documents"
            . "?type=other&title=T$bad", body => 'doc',
            headers => { 'Content-Type' => 'text/plain' }),
        ['title'], "documents title=T$bad");
    refused($ng->req(POST => "/api/customers/$CID/documents"
            . "?type=other&title=ok&filename=f$bad.pdf", body => 'doc',
            headers => { 'Content-Type' => 'text/plain' }),
        ['filename'], "documents filename=f$bad.pdf");

    # the same bytes, undecoded, in the header
    (my $bytes = $bad) =~ s/%([0-9A-F]{2})/chr hex $1/ge;
    refused(raw_post("/api/customers/$CID/documents?type=other", 'doc',
            'Content-Type' => 'text/plain', 'X-Document-Title' => "T$bytes"),
        ['title'], "X-Document-Title: T$bad (as bytes)");
}

is(counts(), $before, 'nothing stored by any refused request');

# valid UTF-8 is still welcome
my $r = $ng->req(GET => '/api/customers?searchTerm=Caf%C3%A9');
is($r->{status}, 200, 'searchTerm=Caf%C3%A9: 200') or diag($r->{body});
is(($r->{json}{data}{pagination} // {})->{totalItems}, 1,
    'searchTerm=Caf%C3%A9 finds the customer');
$r = $ng->req(GET => '/api/customers/search?q=Caf%C3%A9');
is($r->{status}, 200, 'search q=Caf%C3%A9: 200') or diag($r->{body});
$r = $ng->req(GET => '/api/vehicles?make=%C5%A0koda%F0%9F%9A%97');
is($r->{status}, 200, 'make with 2- and 4-byte sequences: 200')
    or diag($r->{body});
$r = $ng->req(POST => "/api/customers/$CID/documents"
        . "?type=other&title=Re%C3%A7u%20%E2%82%AC", body => 'doc',
    headers => { 'Content-Type' => 'text/plain' });
is($r->{status}, 201, 'title "Reçu €": 201') or diag($r->{body});
is(($r->{json}{data} // {})->{title}, "Re\x{e7}u \x{20ac}",
    'title stored as sent');
$r = raw_post("/api/customers/$CID/documents?type=other", 'doc',
    'Content-Type' => 'text/plain', 'X-Document-Title' => "Caf\xc3\xa9");
is($r->{status}, 201, 'X-Document-Title: Caf\\xc3\\xa9 (bytes): 201')
    or diag($r->{body});
is(($r->{json}{data} // {})->{title}, "Caf\x{e9}", 'that title stored');

done_testing();
