# Hostile JSON bodies: one worker, 1 MB bodies built to be expensive (many
# keys in one object, many objects, a long array, many unknown fields) are
# refused quickly with a 400 naming the limit, the error list stays short,
# and the worker keeps answering /health and a GET (9 in 10 within 300 ms,
# none over a second) while such bodies arrive back to back. Nothing is
# written.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use POSIX ();
use Time::HiRes qw(time);

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db, workers => 1, server_extra => <<'EXTRA');
        location = /api/customers/me {
            customer_api;
            client_max_body_size 2m;
            client_body_buffer_size 2m;
        }
EXTRA

my $u = "limits-$$";
my $r = $ng->req(POST => '/api/customers/internal/create', auth => 'service',
    json => { userId => $u, email => "$u\@example.com", fullName => 'Lim It' });
is($r->{status}, 201, 'customer created') or diag $r->{body};
my $id = $r->{json}{data}{customerId};
my $tok = CT::customer_token($u);
my $before = CT::sql($db, q{SELECT (to_jsonb(c)
    #- '{metadata,lastActivityDate}')::text FROM customers c
    WHERE id = :'p1'}, $id);

sub patch_me {
    my ($body) = @_;
    return $ng->req(PATCH => '/api/customers/me', auth => $tok, body => $body,
        headers => { 'Content-Type' => 'application/json' });
}

sub keys_object {
    my ($n, $val) = @_;
    return '{' . join(',', map { sprintf '"k%07d":%s', $_, $val } 1 .. $n)
        . '}';
}

my $MB = 1024 * 1024;

# one object of 81,000 members
my $flat = keys_object(81_000, 1);
# 100 objects of 999 members each (within the member limit, past the
# value limit), nested in a known field
my $nested = '{"addresses":[' . join(',', (keys_object(999, 1)) x 100) . ']}';
# 19 objects of 999 members: under both limits, parsed whole and refused
# by the validator
my $wide = '{"addresses":[' . join(',', (keys_object(999, 1)) x 19) . ']}';
# an array of 150,000 numbers
my $array = '{"tags":[' . join(',', (1) x 150_000) . ']}';
# 1000 unknown members: every one is an error, the answer lists 50
my $unknown = keys_object(1000, '"x"');
# 999 distinct members then a duplicate of the first: caught at the end
my $dup = keys_object(999, 1);
$dup =~ s/\}\z/,"k0000001":2}/;

cmp_ok(length $flat, '>=', $MB, 'flat body is 1 MB');

my %want = (
    flat => [$flat, qr/more than 1000 members/],
    nested => [$nested, qr/more than 20000 values/],
    wide => [$wide, qr/.+/],
    array => [$array, qr/more than 20000 values/],
    unknown => [$unknown, qr/.+/],
    dup => [$dup, qr/duplicate member name/],
);

for my $name (sort keys %want) {
    my ($body, $msg) = @{ $want{$name} };
    my $r = patch_me($body);
    is($r->{status}, 400, "$name: 400") or diag substr($r->{body}, 0, 300);
    is($r->{headers}{'content-type'}, 'application/json',
        "$name: JSON envelope");
    is($r->{json}{success}, JSON::PP::false, "$name: success false");
    my @e = @{ $r->{json}{errors} // [] };
    ok(@e >= 1 && @e <= 51, "$name: 1..51 errors listed (" . @e . ')');
    like(join(' ', map { $_->{message} } @e), $msg, "$name: names the cause");
    cmp_ok($r->{elapsed}, '<', 1, "$name: answered in under 1 s")
        or diag $r->{elapsed};
    cmp_ok(length $r->{body}, '<', 16384, "$name: the answer is small");
}

{
    my $r = patch_me($unknown);
    my @e = @{ $r->{json}{errors} // [] };
    is(scalar @e, 51, 'unknown: 50 errors and a count of the rest');
    is($e[-1]{field}, 'body', 'the count is under body');
    is($e[-1]{message}, '950 more errors not listed', 'the count is right');
    is($e[0]{field}, 'k0000001', 'errors in body order');
}

# a body at the member limit exactly is parsed (and refused by the
# validator for its unknown fields, not by the parser)
{
    my $r = patch_me(keys_object(1000, 1));
    is($r->{status}, 400, '1000 members: 400');
    unlike($r->{body}, qr/more than 1000 members/, '1000 members is allowed');
}

# the worker stays responsive while the bodies keep arriving back to back
# (requests built once and written raw, so that the sender itself costs
# little CPU on a small machine)
my @raw = map {
    "PATCH /api/customers/me HTTP/1.1\r\nHost: t\r\n"
    . "Authorization: Bearer $tok\r\nContent-Type: application/json\r\n"
    . 'Content-Length: ' . length($_) . "\r\nConnection: close\r\n\r\n$_"
} ($flat, $nested, $wide, $array);
my @kids;
{
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        my $end = time + 4;
        while (time < $end) {
            $ng->raw($_, timeout => 10) for @raw;
        }
        POSIX::_exit(0);
    }
    push @kids, $pid;
}

my (@health, @get);
my $end = time + 3;
while (time < $end) {
    my $h = $ng->req(GET => '/health', auth => 'none');
    push @health, $h->{status} == 200 ? $h->{elapsed} : 99;
    my $g = $ng->req(GET => '/api/customers/me', auth => $tok);
    push @get, $g->{status} == 200 ? $g->{elapsed} : 99;
}
waitpid $_, 0 for @kids;

# The worker must never be held up by a body (the quadratic parser held
# it for seconds, every probe with it): 9 in 10 probes answer within
# 300 ms and none takes a second. The bound is well above an answer's
# own time because the probes share two cores with the sender and with
# other test files (a loaded run once saw a p90 of 125 ms): a scheduling
# delay is not a stalled worker.
# Under make test-asan everything runs about three times slower.
my $SLOW = $ENV{ASAN_OPTIONS} ? 3 : 1;

sub spread {
    my ($name, @t) = @_;
    @t = sort { $a <=> $b } @t;
    my $p90 = $t[int(0.9 * $#t)];
    my $max = $t[-1];
    cmp_ok($p90, '<', 0.3 * $SLOW, "$name: 9 in 10 under"
        . " ${\ (300 * $SLOW)} ms while hostile bodies arrive"
        . " (p90 ${\ sprintf '%.3f', $p90} s)");
    cmp_ok($max, '<', $SLOW, "$name: none over $SLOW s (max"
        . " ${\ sprintf '%.3f', $max} s)");
}
cmp_ok(scalar @health, '>=', 5, 'several probes ran (' . @health . ')');
spread('/health', @health);
spread('GET /api/customers/me', @get);

is(CT::sql($db, q{SELECT (to_jsonb(c) #- '{metadata,lastActivityDate}')::text
    FROM customers c WHERE id = :'p1'}, $id), $before,
    'the record is unchanged (but the lastActivityDate of its reads)');

$ng->stop;
CT::done_testing();
