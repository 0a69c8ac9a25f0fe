#!/usr/bin/env perl
# Writes the seed corpora fuzz/corpus/<target>/ (core Perl; openssl for
# the RS256 and ES256 signatures, with the fixed test keys in fuzz/keys).
# The seeds are requests like those the tests in t/ send, valid and not,
# one file each, named after what they are. Run it again after changing
# a list below; the files it writes are committed (ES256 signatures come
# out different each time: ECDSA signs with a random nonce).
#
# Usage: perl fuzz/seeds.pl
#
# The keys in fuzz/keys are test data for the fuzz targets only, made
# once with:
#   openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
#       -out rs256.key.pem
#   openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
#       -out es256.key.pem
#   openssl pkey -in <key> -pubout -out <pub>

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use Digest::SHA ();
use MIME::Base64 ();

my $DIR = dirname(__FILE__);
my $UUID = '3fa85f64-5717-4562-b3fc-2c963f66afa6';
my $UUID2 = 'a1b2c3d4-e5f6-4a5b-8c9d-0e1f2a3b4c5d';
my $FAR = 4102444800;    # 2100-01-01: the seeds' tokens stay valid

sub put {
    my ($target, $name, $bytes) = @_;
    make_path("$DIR/corpus/$target");
    open my $fh, '>:raw', "$DIR/corpus/$target/$name" or die "$name: $!\n";
    print $fh $bytes;
    close $fh;
}

sub b64url {
    my $s = MIME::Base64::encode_base64($_[0], '');
    $s =~ tr{+/}{-_};
    $s =~ s/=+$//;
    return $s;
}

sub slurp {
    open my $fh, '<:raw', $_[0] or die "$_[0]: $!\n";
    local $/;
    return scalar <$fh>;
}

# --- json: bodies and answers, valid and broken ------------------------

my %json = (
    'object' => '{"a":1,"b":"two","c":[true,false,null],"d":{"e":-1.5e3}}',
    'empty-object' => '{}',
    'empty-array' => '[]',
    'nested' => '{"a":{"b":{"c":{"d":[[[{"e":[]}]]]}}}}',
    'unicode' => '{"name":"Ren\u00e9e \u4e2d\u6587 \ud83d\ude00","x":"é"}',
    'escapes' => '{"s":"\"\\\\\/\b\f\n\r\t\u0000\u001f"}',
    'numbers' => '[0,-0,1.0,1e10,1E-10,123456789012345678901234567890]',
    'duplicate' => '{"a":1,"a":2}',
    'deep' => ('[' x 17) . (']' x 17),
    'truncated' => '{"a":[1,2',
    'trailing' => '{"a":1} x',
    'overlong-utf8' => "{\"a\":\"\xc0\xaf\"}",
    'surrogate-utf8' => "{\"a\":\"\xed\xa0\x80\"}",
    'lone-surrogate-escape' => '{"a":"\ud800"}',
    'scalar' => '"just a string"',
    'customer' => '{"userId":"auth-user-1","email":"jane@example.com",'
        . '"fullName":"Jane Doe","contactNumber":"+919876543210",'
        . '"tags":["vip","early"]}',
);
# at the parser's depth limit; its size limits (1,000 members, 20,000
# values) take inputs of 10 to 40 KB, which would slow every run down:
# t/91-json-limits.t sends those
$json{'depth-16'} = ('[' x 16) . (']' x 16);
put('json', $_, $json{$_}) for keys %json;

# --- body: a route byte, then the body (see fuzz_body.c's table) -------

my @body = (
    [0, 'customer-create', '{"userId":"auth-user-1","email":"jane@example.com",'
        . '"fullName":"Jane Doe","contactNumber":"+919876543210",'
        . '"dateOfBirth":"1990-05-17","nationalId":"ABCDE1234F",'
        . '"addresses":[{"label":"Home","line1":"12 MG Road","city":"Pune",'
        . '"postalCode":"411001","country":"IN","isDefault":true},'
        . '{"line1":"1 Main St","line2":null,"city":"Austin","state":"TX",'
        . '"country":"US","isDefault":false}],'
        . '"emergencyContact":{"name":"John Doe","relationship":"Spouse",'
        . '"phone":"+14155550100","email":"john@example.com"},'
        . '"business":{"companyName":"Acme","taxId":"GST123"},'
        . '"customerStatus":"Active","customerType":"Premium",'
        . '"isVerified":false,"totalOrders":3,"totalOrderValue":1250.50,'
        . '"totalComplaints":0,"openComplaints":0,'
        . '"lastOrderDate":"2026-01-20T14:30:00.000Z",'
        . '"customerSince":"2024-02-29T00:00:00+05:30","notes":"Line\nTwo",'
        . '"tags":["vip","b2b"],"preferences":{"newsletter":true,'
        . '"language":"en-IN"}}'],
    [0, 'customer-bad', '{"userId":"a/b","email":"not-an-email",'
        . '"fullName":" ","contactNumber":"12345","dateOfBirth":"2023-02-29",'
        . '"addresses":[{"isDefault":true},{"isDefault":true}],'
        . '"tags":["x","x",""],"version":3,"unknown":1}'],
    [1, 'customer-put', '{"email":"jane@example.org","fullName":"Jane Q Doe",'
        . '"customerStatus":"Suspended","emergencyContact":null}'],
    [2, 'me-patch', '{"fullName":"Me Myself","contactNumber":"+447700900123"}'],
    [3, 'internal-create', '{"userId":"u-42","email":"u42@example.com",'
        . '"fullName":"User Forty-Two","contactNumber":null}'],
    [4, 'statistics', '{"totalOrders":10,"totalOrderValue":99.9,'
        . '"lastOrderDate":"2026-01-20T14:30:00Z","increment":'
        . '{"totalOrders":-1,"totalOrderValue":-10.25,"openComplaints":1}}'],
    [5, 'type', '{"type":"VIP"}'],
    [6, 'credit-score', '{"creditScore":720,"source":"Experian"}'],
    [7, 'credit-read', '{"read":true}'],
    [8, 'financial', '{"annualIncome":120000.5,"monthlyDebts":2500,'
        . '"totalAssets":500000,"totalLiabilities":100000,'
        . '"employmentStatus":"Employed","employer":"Acme Corp",'
        . '"currency":"INR"}'],
    [9, 'loyalty', '{"points":150,"reason":"Order #1234",'
        . '"reference":"ORD-1234"}'],
    [10, 'note', '{"content":"Called about the invoice.","noteType":"Call",'
        . '"isPrivate":false,"isImportant":true}'],
    [11, 'preferences', '{"communication":{"email":true,"sms":false,'
        . '"push":true},"newsletter":false,"notifications":true,'
        . '"language":"en","theme":"dark","preferredServiceDays":["Monday",'
        . '"Friday"],"preferredServiceTimes":[{"start":"09:00",'
        . '"end":"12:30"},{"start":"14:00","end":"13:00"}],'
        . '"dietaryRestrictions":["vegetarian"],"marketingOptIn":false,'
        . '"privacy":{"dataSharing":false,"analyticsConsent":true}}'],
    [12, 'status', '{"status":"Suspended","reason":"Fraud review"}'],
    [13, 'deactivate', '{"reason":null}'],
    [14, 'vehicle', '{"make":"Honda","model":"City","year":2021,'
        . '"vin":"1M8GDM9AXKP042788","licensePlate":"MH12AB1234",'
        . '"color":"Silver","mileage":15000,"lastServiceDate":"2025-06-01",'
        . '"lastServiceMileage":12000,"serviceIntervalKm":10000,'
        . '"serviceIntervalMonths":12,"insuranceExpiry":"2026-12-31",'
        . '"registrationExpiry":null,"warrantyExpiry":"2027-01-01"}'],
    [15, 'vehicle-patch', '{"vin":"1m8gdm9axkp042788","color":null}'],
    [16, 'mileage', '{"mileage":16000}'],
    [17, 'service-record', '{"serviceDate":"2025-06-01","mileage":12000,'
        . '"description":"Oil change","cost":49.99,"performedBy":"Shop"}'],
    [18, 'vehicle-new', '{"customerId":"3f1c2a9e-8b7d-4c61-9a0e-2d5b7f4e1a10",'
        . '"make":"Fiat","model":"Uno","year":1999,'
        . '"vin":"ZFA22300005556777"}'],
    [19, 'record-edit', '{"mileage":12500,"cost":null,"performedBy":null}'],
    [20, 'note-new', '{"customerId":"3f1c2a9e-8b7d-4c61-9a0e-2d5b7f4e1a10",'
        . '"content":"Asked for a loan car","noteType":"service"}'],
    [21, 'note-edit', '{"isPrivate":true,"content":" edited "}'],
    [22, 'document-edit', '{"title":"Policy","expiresAt":null,'
        . '"vehicleId":"7c9e6679-7425-40de-944b-e07fc1f90ae7",'
        . '"filename":"a/b"}'],
);
put('body', $_->[1], chr($_->[0]) . $_->[2]) for @body;

# --- router: a method byte (0 GET 1 HEAD 2 POST 3 PUT 4 PATCH 5 DELETE
# 6 OPTIONS 7 TRACE), then the path --------------------------------------

my @paths = qw(/health /api/customers /api/customers/search
    /api/customers/analytics/summary /api/customers/me
    /api/customers/me/preferences /api/customers/me/dashboard
    /api/customers/internal/create /api/customers/internal/outbox
    /api/documents/expiring-soon /api/vehicles);
my @with_id = qw(/api/customers/{} /api/customers/{}/notes
    /api/customers/{}/orders /api/customers/{}/complaints
    /api/customers/{}/status-history /api/customers/{}/loyalty/earn
    /api/customers/{}/alerts/{} /api/customers/{}/vehicles
    /api/customers/internal/user/{} /api/customers/internal/{}/statistics
    /api/documents/{}/content /api/vehicles/{}/service-records
    /api/vehicles/{}/update-mileage);
my $n = 0;
for my $p (@paths, @with_id) {
    (my $path = $p) =~ s/\{\}/$UUID/;
    $path =~ s/\{\}/$UUID2/;
    put('router', sprintf('path-%02d', $n++), chr($n % 6) . $path);
}
put('router', 'trailing-slash', "\0/api/customers/$UUID/");
put('router', 'not-a-uuid', "\3/api/customers/not-a-uuid");
put('router', 'empty-segment', "\0/api/customers//notes");
put('router', 'method-not-allowed', "\5/api/customers/search");
put('router', 'unknown', "\0/api/nothing/here");

# --- args: the query string, then "Name: value" lines ------------------

my @args = (
    'page=2&limit=50',
    'page=0&limit=1000',
    'page=-1&limit=abc',
    'q=jane+doe&limit=20',
    'q=%E4%B8%AD%E6%96%87%20name',
    'q=%C0%AF&status=Active',
    'q=a%00b',
    'status=Suspended&type=VIP&customerId=' . $UUID,
    'status=unknown&customerId=nope',
    'from=2026-01-20&since=2026-01-20T14:30:00.000Z',
    'from=2023-02-29&since=2026-13-01T00:00:00Z',
    'searchTerm=jane&tag=vip&verified=true'
        . '&createdFrom=2025-01-01T00:00:00Z'
        . '&createdTo=2026-01-01T00:00:00%2B05:30'
        . '&lastOrderFrom=2025-06-01T00:00:00Z'
        . '&lastOrderTo=2026-01-01T00:00:00Z',
    'verified=yes&searchTerm=&tag=' . ('x' x 101),
    'cursor=' . b64url("01:2026-01-20 14:30:00.123456+00|$UUID"),
    'cursor=bogus',
    'vin=1M8GDM9AXKP042788&type=Invoice',
    "type=Insurance&title=Policy+2026&filename=policy.pdf"
        . "&expiresAt=2026-12-31&vehicleId=$UUID\nIf-Match: \"3\"",
    "page=1\nX-Document-Type: Registration\nX-Document-Title: RC book\n"
        . "X-Document-Filename: rc.pdf\nX-Document-Expires-At: 2027-01-01\n"
        . "If-Match: W/\"12\"",
    "\nX-Document-Type: Invoice\nX-Document-Type: Invoice\n"
        . "X-Document-Title: a/b\nIf-Match: *",
    "title=%20%20spaced%20%20&filename=..%2Fetc%2Fpasswd\nIf-Match: \"abc\"",
);
$n = 0;
put('args', sprintf('args-%02d', $n++), $_) for @args;

# --- cursor: a byte (bits 0-2 sort, bit 3 desc, bit 7 raw), then the
# cursor's plain text (or the raw argument) -------------------------------

my @cursors = (
    [0x08, "01:2026-01-20 14:30:00.123456+00|$UUID"],
    [0x00, "00:2026-01-20 14:30:00+00|$UUID"],
    [0x09, "11:42|$UUID"],
    [0x0a, "21:1250.50|$UUID"],
    [0x0b, "31:\1|$UUID"],
    [0x03, "30:2025-12-31 23:59:59+00|$UUID"],
    [0x0c, "41:Jane Doe|$UUID"],
    [0x04, "40:Ren\xc3\xa9e \xe4\xb8\xad|$UUID"],
    [0x08, "01:short|x"],
    [0x08, "11:42|$UUID"],
    [0x08, "01:\xc0\xaf|$UUID"],
    [0x88, b64url("01:2026-01-20 14:30:00+00|$UUID")],
    [0x88, 'bogus'],
    [0x88, '%2B%2F' . b64url("01:x|$UUID")],
);
$n = 0;
put('cursor', sprintf('cursor-%02d', $n++), chr($_->[0]) . $_->[1])
    for @cursors;

# --- vin -----------------------------------------------------------------

my @vins = qw(1M8GDM9AXKP042788 1m8gdm9axkp042788 11111111111111111
    1HGCM82633A004352 JH4KA7561PC008269 5YJSA1E26HF000337
    1M8GDM9AXKP042789 1M8GDM9AIKP042788 1M8GDM9AXKP04278
    1M8GDM9AXKP0427888 WVWZZZ3CZWE123456 LSVAM4187C2184847
    LSVAM4180C2184847 ZFA22300005556777 MA3FB31S2B0123456);
$n = 0;
put('vin', sprintf('vin-%02d', $n++), $_) for @vins;

# --- disposition: file names --------------------------------------------

my @names = ('policy.pdf', 'RC book (2026).jpg',
    "Ren\xc3\xa9e \xe4\xb8\xad.pdf",
    'a"b\\c.txt', "line\r\nbreak.txt", "tab\there", 'per%cent;semi,comma',
    '..\\..\\windows', '../../etc/passwd', "\xff\xfe\x00bin", ' ', '',
    "emoji \xf0\x9f\x98\x80.png");
$n = 0;
put('disposition', sprintf('name-%02d', $n++), $_) for @names;

# --- peer: service answers ----------------------------------------------

my $order = '{"id":"o-1","customerId":"' . $UUID . '","status":"active",'
    . '"total":99.5,"items":[{"sku":"A1","qty":2}]}';
my @answers = (
    '{"success":true,"data":{"orders":[' . $order . ',' . $order . '],'
        . '"pagination":{"currentPage":1,"totalPages":3,"totalItems":25,'
        . '"itemsPerPage":10}}}',
    '{"orders":[' . $order . '],"pagination":{"totalItems":"many"}}',
    '{"data":[' . $order . ']}',
    '[' . $order . ']',
    '{"success":true,"data":{"complaints":[{"id":"c-1","status":"open"}],'
        . '"pagination":{"currentPage":2,"totalPages":2,"totalItems":11}}}',
    '{"data":{"orders":{"not":"a list"}}}',
    '{"data":null}',
    '{"data":{"orders":[],"pagination":{"totalItems":99999999999999999999}}}',
    'not json',
    "{\"data\":[\"\xc0\xaf\"]}",
    '',
);
$n = 0;
put('peer', sprintf('answer-%02d', $n++), $_) for @answers;

# --- jwt: a byte (bits 0-1 alg HS256/RS256/ES256, bit 2 signed by the
# target, bit 3 iss and aud configured), then a token or header\0claims --

my $secret = slurp("$DIR/keys/hs256.secret");
$secret =~ s/[\r\n]+$//;
my $tmp = tempdir(CLEANUP => 1);

sub sign_openssl {
    my ($key, $input) = @_;
    open my $fh, '>:raw', "$tmp/in" or die;
    print $fh $input;
    close $fh;
    system('openssl', 'dgst', '-sha256', '-sign', $key, '-out', "$tmp/sig",
        "$tmp/in") == 0 or die "openssl failed\n";
    return slurp("$tmp/sig");
}

# DER ECDSA-Sig-Value to JWS r || s
sub der_to_rs {
    my ($der) = @_;
    my @b = unpack('C*', $der);
    my $i = 2;
    my @out;
    for (1 .. 2) {
        $i++;                       # INTEGER
        my $len = $b[$i++];
        my $int = pack('C*', @b[$i .. $i + $len - 1]);
        $i += $len;
        $int =~ s/^\x00+//;
        push @out, ("\0" x (32 - length $int)) . $int;
    }
    return join '', @out;
}

sub token {
    my ($alg, $header, $claims) = @_;
    my $input = b64url($header) . '.' . b64url($claims);
    my $sig = $alg eq 'HS256' ? Digest::SHA::hmac_sha256($input, $secret)
        : $alg eq 'RS256' ? sign_openssl("$DIR/keys/rs256.key.pem", $input)
        : der_to_rs(sign_openssl("$DIR/keys/es256.key.pem", $input));
    return "$input." . b64url($sig);
}

my %ALG = (HS256 => 0, RS256 => 1, ES256 => 2);
my $admin = qq({"sub":"admin-user","role":"Administrator","exp":$FAR});
my $cust = qq({"sub":"auth-user-1","roles":["Customer"],"exp":$FAR,)
    . qq("nbf":1700000000,"iat":1700000000});
my $full = qq({"sub":"svc","role":["Customer","Administrator"],"exp":$FAR,)
    . qq("iss":"https://auth.example.com","aud":["other","customer-service"]});
my @claims = (
    [admin => $admin],
    [customer => $cust],
    ['iss-aud' => $full],
    [expired => '{"sub":"a","role":"Customer","exp":1600000000}'],
    ['exp-huge' => '{"sub":"a","role":"Customer","exp":1e400}'],
    ['no-role' => qq({"sub":"a","exp":$FAR})],
    ['sub-nul' => qq({"sub":"a\\u0000b","role":"Customer","exp":$FAR})],
    ['nbf-future' => qq({"sub":"a","role":"Customer","exp":$FAR,)
        . qq("nbf":4000000000})],
);
for my $alg (sort keys %ALG) {
    my $header = qq({"alg":"$alg","typ":"JWT"});
    for my $c (@claims) {
        my $iss = $c->[0] eq 'iss-aud' ? 8 : 0;
        put('jwt', "$alg-$c->[0]",
            chr($ALG{$alg} | $iss) . token($alg, $header, $c->[1]));
        put('jwt', "$alg-signed-$c->[0]",
            chr($ALG{$alg} | 4 | $iss) . "$header\0$c->[1]")
            unless $alg eq 'RS256';
    }
}
put('jwt', 'alg-none', "\0" . b64url('{"alg":"none"}') . '.'
    . b64url($admin) . '.');
put('jwt', 'crit', "\4" . qq({"alg":"HS256","crit":["b64"]}\0$admin));
put('jwt', 'four-parts', "\0a.b.c.d");
put('jwt', 'not-base64', "\0a!.b.c");
put('jwt', 'confusion', "\1" . token('HS256', '{"alg":"RS256"}', $admin));
