# Search through the customers' words (sql/024): among thousands of
# customers who share a name or a prefix, the one asked for is found,
# misspelt or not; every answer is ranked; the words follow creates,
# changes of name, e-mail and phone, and deletes; and the list's
# searchTerm needs three characters (a 400 below that).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $db = CT::db_create();

# 3,000 customers whose words begin alike (the 2- and 3-letter fragments
# of a common first name match all of them), and a few unique ones among
# them: before, such fragments made search walk most of its index
CT::sql($db, q{INSERT INTO customers (user_id, email, full_name,
        contact_number)
    SELECT 'crowd-' || i, 'crowd' || i || '@example.org',
        (ARRAY['Jonathan', 'Jonas', 'Marlow', 'Marla'])[1 + i % 4] || ' '
        || (ARRAY['Smith', 'Whitaker', 'Mercer'])[1 + i % 3] || ' ' || i,
        '+4479' || lpad(i::text, 8, '0')
    FROM generate_series(1, 3000) AS i});

my %who = CT::insert_named($db,
    ['Jonathan Whitfield', 'jw.first@example.com', '+14155550101'],
    ["Ma\x{eb}lle Quintard", 'mq@example.fr', '+33612345678'],
    ['Ngozi Okonkwo-Adebayo', 'ngozi.oa@example.ng', '+2348031234567']);

my $ng = CT::nginx_start(db => $db);

sub search {
    my ($q, %o) = @_;
    my $enc = CT::pct($q);
    my $r = $ng->req(GET => "/api/customers/search?q=$enc"
        . ($o{limit} ? "&limit=$o{limit}" : ''));
    is($r->{status}, 200, "search '$q': 200") or diag($r->{body});
    return @{ ($r->{json}{data} // {})->{results} // [] };
}

# --- the one asked for, among thousands alike -------------------------------

for my $case (
    ['Jonathan Whitfield', 'jonathan whitfield'],   # 750 other Jonathans
    ['Jonathan Whitfield', 'whitfield'],            # 1,000 Whitakers
    ['Jonathan Whitfield', 'whitfeld'],             # misspelt
    ['Jonathan Whitfield', 'jw.first'],             # e-mail
    ['Jonathan Whitfield', '+1415555'],             # phone prefix
    ['Jonathan Whitfield', '14155550101'],          # phone without '+'
    ["Ma\x{eb}lle Quintard", 'maelle'],             # accent folded
    ["Ma\x{eb}lle Quintard", 'quintrad'],           # misspelt
    ['Ngozi Okonkwo-Adebayo', 'adebayo'],           # part of a hyphenated
    ['Ngozi Okonkwo-Adebayo', 'okonkwoadebayo'],    # without the hyphen
    ['Ngozi Okonkwo-Adebayo', 'okonkwo adebayo'],
) {
    my ($name, $q) = @$case;
    my @res = search($q, limit => 5);
    is(($res[0] // {})->{customerId}, $who{$name},
        "search '$q': finds $name first among the crowd")
        or diag(explain(\@res));
}

# --- fragments that thousands match: a full, ranked answer ----------------

# word similarity as the answer's order: each result's distance from the
# term, computed here over the same folded text
sub distances {
    my ($q, @res) = @_;
    return () unless @res;
    my $ids = join ',', map { "'$_->{customerId}'" } @res;
    my %d = map { split /\|/ } CT::sql($db, qq{SELECT id,
        round((customer_fold(:'p1') <<-> search_text)::numeric, 6)
        FROM customers WHERE id IN ($ids)}, $q);
    return map { $d{ $_->{customerId} } } @res;
}

for my $q (qw(jo mar marl jonat whit smi crowd 4479)) {
    my @res = search($q, limit => 50);
    is(scalar @res, 50, "search '$q': a full page of 50");
    my @d = distances($q, @res);
    ok(!(grep { $_ > 0.7 } @d), "search '$q': every result within a word "
        . 'similarity of 0.3');
    is_deeply(\@d, [ sort { $a <=> $b } @d ],
        "search '$q': nearest first") or diag("@d");
    my $f = CT::sql($db, q{SELECT customer_fold(:'p1')}, $q);
    is(scalar(grep { my $t = CT::sql($db, q{SELECT search_text FROM
            customers WHERE id = :'p1'}, $_->{customerId});
            $t =~ /(?:^|[^[:alnum:]])\Q$f\E/ } @res), 50,
        "search '$q': each result has a word that starts with it");
}

is(scalar(search('zzqx')), 0, "search 'zzqx': nothing near, nothing found");

# --- the words follow the customer ----------------------------------------

sub words {
    my ($id) = @_;
    return join ' ', CT::sql($db, q{SELECT word FROM customer_search_words
        WHERE customer_id = :'p1' ORDER BY word}, $id);
}

{
    my $r = $ng->req(POST => '/api/customers', json => {
        userId => 'words-1', email => 'Ophelia.Brandt@Example.com',
        fullName => "Oph\x{e9}lia Brandt-Lindqvist",
        contactNumber => '+4915112345678' });
    is($r->{status}, 201, 'create: 201') or diag($r->{body});
    my $id = $r->{json}{data}{customerId};

    is(words($id), join(' ', sort qw(ophelia brandt-lindqvist brandt
        lindqvist brandtlindqvist ophelia.brandt@example.com example com +4915112345678 4915112345678)),
        'create: its words, folded');
    is(CT::sql($db, q{SELECT string_agg(word, ' ' ORDER BY word)
        FROM customer_search_vocab WHERE word IN ('ophelia', 'lindqvist',
        'brandtlindqvist', 'com', '4915112345678', 'ophelia.brandt')}),
        'brandtlindqvist com lindqvist ophelia',
        'create: its words of letters are in the vocabulary, numbers and '
        . 'addresses are not');
    is((search('lindqvist'))[0]{customerId}, $id,
        'create: found at once by a part of the name');

    my $etag = $ng->req(GET => "/api/customers/$id")->{headers}{etag};
    $r = $ng->req(PATCH => "/api/customers/$id",
        json => { fullName => 'Ophelia Castellanos' },
        headers => { 'If-Match' => $etag });
    is($r->{status}, 200, 'rename: 200') or diag($r->{body});
    like(words($id), qr/\bcastellanos\b/, 'rename: the new name is a word');
    unlike(words($id), qr/lindqvist/, 'rename: the old name is not');
    ok(!(grep { $_->{customerId} eq $id } search('lindqvist')),
        'rename: the old name finds it no more');
    is((search('castellanos'))[0]{customerId}, $id,
        'rename: the new name finds it');

    $etag = $ng->req(GET => "/api/customers/$id")->{headers}{etag};
    $r = $ng->req(PATCH => "/api/customers/$id",
        json => { email => 'oc@example.net', contactNumber => '+4930999888' },
        headers => { 'If-Match' => $etag });
    is($r->{status}, 200, 'new e-mail and phone: 200') or diag($r->{body});
    is(words($id), join(' ', sort qw(ophelia castellanos oc@example.net oc
        example net +4930999888 4930999888)),
        'new e-mail and phone: the words follow');
    is((search('+4930999'))[0]{customerId}, $id,
        'new phone: found by it');

    $r = $ng->req(DELETE => "/api/customers/$id");
    is($r->{status}, 200, 'delete: 200') or diag($r->{body});
    is(words($id), '', 'delete: its words are gone');
    ok(!(grep { $_->{customerId} eq $id } search('castellanos')),
        'delete: not found');
}

# every customer's words are the ones its text gives, no more, no less
is(CT::sql($db, q{SELECT count(*) FROM (
        (SELECT word, customer_id FROM customer_search_words
         EXCEPT SELECT w, id FROM customers,
             unnest(customer_search_words(search_text)) w)
        UNION ALL
        (SELECT w, id FROM customers,
             unnest(customer_search_words(search_text)) w
         EXCEPT SELECT word, customer_id FROM customer_search_words)) x}),
    0, 'the words table holds exactly every customer\'s words');

# --- the list's searchTerm: three characters at least ----------------------

for my $bad ('ab', 'J', "%C3%A9%C3%A9") {
    my $r = $ng->req(GET => "/api/customers?searchTerm=$bad");
    is($r->{status}, 400, "list searchTerm=$bad: 400");
    is_deeply([ map { $_->{field} } @{ $r->{json}{errors} // [] } ],
        ['searchTerm'], "list searchTerm=$bad: the error names searchTerm");
    like($r->{body}, qr/3 to 100 characters/,
        "list searchTerm=$bad: says how long it must be");
}

{
    my $r = $ng->req(GET => '/api/customers?searchTerm=%C3%A9l%C3%B6&limit=5');
    is($r->{status}, 200, 'list searchTerm of 3 characters (6 bytes): 200')
        or diag($r->{body});
    $r = $ng->req(GET => '/api/customers?searchTerm=jonas&limit=100',
        headers => { Prefer => 'count=estimated' });
    is($r->{status}, 200, 'list searchTerm=jonas: 200');
    is($r->{json}{data}{pagination}{totalItems}, 750,
        'list searchTerm=jonas, count=estimated: 750 (under 1,000), exact');
}

done_testing();
