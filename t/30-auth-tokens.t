# Bearer tokens under attack: every malformed, forged, expired or
# misaddressed token gets the same 401 envelope (reason only in error.log,
# at info level) and writes nothing; the tokens that should pass (leeway,
# aud arrays, RS256 and ES256 signatures made with openssl) do. Also the
# `nginx -t` failures of customer_jwt and customer_service_keys.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use Digest::SHA ();
use File::Temp qw(tempdir);
use JSON::PP ();
use MIME::Base64 ();
use POSIX ();

my $ENC = JSON::PP->new->canonical;
my $HS_HEADER = $ENC->encode({ alg => 'HS256', typ => 'JWT' });

my $EXPECT_401 = {
    success => 'false',
    message => 'Unauthorized',
    errors => [ { field => 'authorization',
        message => 'A valid bearer token is required' } ],
};
my $WWW_INVALID = 'Bearer realm="customer-api", error="invalid_token"';
my $WWW_NONE = 'Bearer realm="customer-api"';

# Words of the logged reasons; none may ever reach a response body.
my $REASON_WORDS = qr/expired|signature|alg\b|base64|three parts|not yet
    |issuer|audience|\biss\b|\baud\b|\bsub\b|role is|critical|too long
    |not a JSON|not Bearer|no credentials|customer: 401/x;


# --- helpers -------------------------------------------------------------

my $KEYDIR = tempdir('ct-auth-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $KEYDIR;

sub slurp {
    my ($f) = @_;
    open my $fh, '<:raw', $f or die "$f: $!";
    local $/;
    return scalar <$fh>;
}

sub spew {
    my ($f, $data) = @_;
    open my $fh, '>:raw', $f or die "$f: $!";
    print $fh $data;
    close $fh;
    chmod 0644, $f;
    return $f;
}

sub openssl {
    my @cmd = ('openssl', @_);
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        exec @cmd or POSIX::_exit(127);
    }
    waitpid($pid, 0);
    die "openssl @_ failed: $?\n" if $?;
}

# keypair($name, @genpkey options): (private key file, public PEM file)
sub keypair {
    my ($name, @opt) = @_;
    my ($key, $pub) = ("$KEYDIR/$name.key", "$KEYDIR/$name.pub");
    openssl('genpkey', @opt, '-out', $key);
    openssl('pkey', '-in', $key, '-pubout', '-out', $pub);
    chmod 0644, $key, $pub;
    return ($key, $pub);
}

# sign_with($keyfile, $input): the DER/PKCS#1 signature openssl makes
my $NSIG = 0;
sub sign_with {
    my ($key, $input) = @_;
    my $n = ++$NSIG;
    my $in = spew("$KEYDIR/in$n", $input);
    openssl('dgst', '-sha256', '-sign', $key, '-out', "$KEYDIR/sig$n", $in);
    return slurp("$KEYDIR/sig$n");
}

# ECDSA-Sig-Value DER (SEQUENCE { INTEGER r, INTEGER s }) to JWS r || s
sub der_to_raw {
    my ($der) = @_;
    my @b = unpack 'C*', $der;
    my $i = 0;
    my $len = sub {
        my $l = $b[$i++];
        return $l if $l < 0x80;
        my $n = $l & 0x7f;
        $l = 0;
        $l = ($l << 8) | $b[$i++] for 1 .. $n;
        return $l;
    };
    die "not a DER SEQUENCE\n" unless $b[$i++] == 0x30;
    $len->();
    my $out = '';
    for (1 .. 2) {
        die "not a DER INTEGER\n" unless $b[$i++] == 0x02;
        my $l = $len->();
        my $int = pack 'C*', @b[$i .. $i + $l - 1];
        $i += $l;
        $int =~ s/^\x00+//;
        die "integer longer than 32 bytes\n" if length $int > 32;
        $out .= ("\x00" x (32 - length $int)) . $int;
    }
    return $out;
}

# token($alg_header, \%claims, $signer): header.claims.signature where
# $signer gets the signing input and returns the raw signature bytes
sub token {
    my ($header, $claims, $signer) = @_;
    $claims->{exp} //= time + 3600;
    my $input = CT::b64url(ref $header ? $ENC->encode($header) : $header)
        . '.' . CT::b64url($ENC->encode($claims));
    return $input . '.' . CT::b64url($signer->($input));
}

sub b64url_decode {
    my ($s) = @_;
    $s =~ tr{-_}{+/};
    $s .= '=' x ((4 - length($s) % 4) % 4);
    return MIME::Base64::decode_base64($s);
}

sub hs { my ($secret) = @_; sub { Digest::SHA::hmac_sha256($_[0], $secret) } }

sub admin_claims { return { sub => 'admin-attack', role => 'Administrator',
    @_ } }

my $SEQ = 0;
sub new_body {
    my $n = ++$SEQ;
    return { userId => "auth-$$-$n", email => "auth$n\@example.com",
        fullName => 'Auth Test' };
}

sub rows { my ($db) = @_; CT::sql($db, 'SELECT count(*) FROM customers') }

sub log_size { -s ($_[0]->dir . '/error.log') // 0 }

sub log_since {
    my ($ng, $off) = @_;
    open my $fh, '<', $ng->dir . '/error.log' or return '';
    seek $fh, $off, 0;
    local $/;
    return scalar(<$fh>) // '';
}

sub json_bool {
    my ($j) = @_;
    return $j unless ref $j eq 'HASH';
    return { %$j, success => $j->{success} ? 'true' : 'false' };
}

# refused($ng, $db, $name, \%headers, $reason_re, $www): POST a valid
# record with these headers; 401 envelope, WWW-Authenticate, the reason
# in error.log (info) and not in the body, no row written.
sub refused {
    my ($ng, $db, $name, $headers, $reason, $www) = @_;
    my $before = rows($db);
    my $off = log_size($ng);
    my $r = $ng->req(POST => '/api/customers', json => new_body(),
        auth => 'none', headers => $headers);

    is($r->{status}, 401, "$name: 401") or diag($r->{body});
    is_deeply(json_bool($r->{json}), $EXPECT_401, "$name: 401 envelope")
        or diag($r->{body});
    like($r->{headers}{'content-type'} // '', qr{^application/json},
        "$name: JSON content type");
    is($r->{headers}{'www-authenticate'}, $www // $WWW_INVALID,
        "$name: WWW-Authenticate");
    unlike($r->{body}, $REASON_WORDS, "$name: no reason in the body");
    is(rows($db), $before, "$name: nothing written");
    my $log = log_since($ng, $off);
    like($log, qr/\[info\] .*customer: 401: $reason/,
        "$name: reason logged at info") or diag($log);
}

sub refused_token {
    my ($ng, $db, $name, $token, $reason) = @_;
    refused($ng, $db, $name, { Authorization => "Bearer $token" }, $reason);
}

# accepted($ng, $db, $name, $token): the same POST is 201 and writes
sub accepted {
    my ($ng, $db, $name, $token) = @_;
    my $before = rows($db);
    my $body = new_body();
    my $r = $ng->req(POST => '/api/customers', json => $body, auth => $token);
    is($r->{status}, 201, "$name: 201") or diag($r->{body});
    is(rows($db), $before + 1, "$name: one row written");
    is(CT::sql($db, q{SELECT created_by FROM customers WHERE user_id = :'p1'},
        $body->{userId}), 'admin-attack', "$name: createdBy is the sub");
}


# --- HS256 server: malformed and forged tokens ---------------------------

my $db = CT::db_create();
# large header buffers: the 16 KB token reaches the module, not nginx's 494
my $ng = CT::nginx_start(db => $db,
    server_extra => '        large_client_header_buffers 4 32k;');

{
    my $before = rows($db);
    my $off = log_size($ng);
    my $r = $ng->req(POST => '/api/customers', json => new_body(),
        auth => 'none');
    is($r->{status}, 401, 'no Authorization: 401');
    is_deeply(json_bool($r->{json}), $EXPECT_401, 'no Authorization: envelope');
    is($r->{headers}{'www-authenticate'}, $WWW_NONE,
        'no Authorization: WWW-Authenticate without error=');
    is(rows($db), $before, 'no Authorization: nothing written');
    like(log_since($ng, $off), qr/\[info\] .*customer: 401: no credentials/,
        'no Authorization: logged as no credentials');
}

my $good = CT::jwt(%{ admin_claims() });
my ($gh, $gc, $gs) = split /\./, $good;

refused($ng, $db, 'Basic scheme',
    { Authorization => 'Basic ' . MIME::Base64::encode_base64('a:b', '') },
    qr/authorization is not Bearer/);
refused($ng, $db, 'Bearer with nothing', { Authorization => 'Bearer' },
    qr/authorization is not Bearer/);
refused($ng, $db, 'Bearer and spaces', { Authorization => 'Bearer    ' },
    qr/authorization is not Bearer|token is empty/);
refused($ng, $db, 'token alone, no scheme', { Authorization => $good },
    qr/authorization is not Bearer/);
refused_token($ng, $db, 'two parts (one dot)', "$gh.$gc",
    qr/token does not have three parts/);
refused_token($ng, $db, 'one part (no dot)', "$gh$gc$gs",
    qr/token does not have three parts/);
refused_token($ng, $db, 'four parts', "$good.$gs",
    qr/token has more than three parts/);
refused_token($ng, $db, 'base64 "+" and "/"', "$gh.$gc+/.$gs",
    qr/token has a character outside base64url/);
refused_token($ng, $db, 'base64 padding "="', "$gh.$gc==.$gs",
    qr/token has a character outside base64url/);
refused_token($ng, $db, 'part of impossible length (4n+1)',
    "$gh.A.$gs", qr/token part is not base64url/);
refused_token($ng, $db, 'header not JSON',
    CT::jwt_raw('{"alg":"HS256",', $ENC->encode(admin_claims(
        exp => time + 3600))), qr/token header is not a JSON object/);
refused_token($ng, $db, 'header a JSON array',
    CT::jwt_raw('["HS256"]', $ENC->encode(admin_claims(exp => time + 3600))),
    qr/token header is not a JSON object/);
refused_token($ng, $db, 'claims not JSON (signed)',
    CT::jwt_raw($HS_HEADER, 'sub=admin-attack;role=Administrator'),
    qr/token claims are not a JSON object/);
refused_token($ng, $db, 'claims a JSON string (signed)',
    CT::jwt_raw($HS_HEADER, '"Administrator"'),
    qr/token claims are not a JSON object/);

# alg none: unsigned, empty signature
{
    my $t = CT::b64url('{"alg":"none","typ":"JWT"}') . '.'
        . CT::b64url($ENC->encode(admin_claims(exp => time + 3600))) . '.';
    refused_token($ng, $db, 'alg none, empty signature', $t,
        qr/token alg is not the configured one/);
    $t = CT::b64url('{"alg":"none"}') . ".$gc.$gs";
    refused_token($ng, $db, 'alg none with the HS256 signature', $t,
        qr/token alg is not the configured one/);
    refused_token($ng, $db, 'alg "hs256" (case)',
        token({ alg => 'hs256' }, admin_claims(), hs($CT::JWT_SECRET)),
        qr/token alg is not the configured one/);
    refused_token($ng, $db, 'no alg',
        token({ typ => 'JWT' }, admin_claims(), hs($CT::JWT_SECRET)),
        qr/token alg is not the configured one/);
    refused_token($ng, $db, 'crit header',
        token({ alg => 'HS256', crit => ['exp'] }, admin_claims(),
            hs($CT::JWT_SECRET)),
        qr/token has critical header extensions/);
}

refused_token($ng, $db, 'wrong secret',
    token({ alg => 'HS256' }, admin_claims(),
        hs('another-secret-0123456789abcdef0123456789abcdef')),
    qr/token signature does not verify/);
refused_token($ng, $db, 'claims changed after signing',
    "$gh." . CT::b64url($ENC->encode(admin_claims(sub => 'someone-else',
        exp => time + 3600))) . ".$gs",
    qr/token signature does not verify/);
refused_token($ng, $db, 'truncated signature', "$gh.$gc." . substr($gs, 0, 20),
    qr/token signature does not verify/);
refused_token($ng, $db, 'empty signature', "$gh.$gc.",
    qr/token signature does not verify/);

# time claims (leeway 30 s by default)
refused_token($ng, $db, 'expired beyond the leeway',
    CT::jwt(%{ admin_claims() }, exp => time - 120), qr/token expired/);
accepted($ng, $db, 'expired within the leeway',
    CT::jwt(%{ admin_claims() }, exp => time - 10));
refused_token($ng, $db, 'nbf beyond the leeway',
    CT::jwt(%{ admin_claims() }, nbf => time + 120),
    qr/token not yet valid/);
accepted($ng, $db, 'nbf within the leeway',
    CT::jwt(%{ admin_claims() }, nbf => time + 10));
refused_token($ng, $db, 'no exp',
    CT::jwt_raw($HS_HEADER, $ENC->encode(admin_claims())),
    qr/token has no numeric exp/);
refused_token($ng, $db, 'exp a string',
    CT::jwt(%{ admin_claims() }, exp => '' . (time + 3600)),
    qr/token has no numeric exp/);
refused_token($ng, $db, 'nbf a string',
    CT::jwt(%{ admin_claims() }, nbf => 'yesterday'),
    qr/token nbf is not a number/);

# subject and roles
refused_token($ng, $db, 'missing sub',
    CT::jwt(role => 'Administrator'), qr/token sub is missing/);
refused_token($ng, $db, 'sub a number',
    CT::jwt(sub => 42, role => 'Administrator'), qr/token sub is missing/);
refused_token($ng, $db, 'sub empty',
    CT::jwt(sub => '', role => 'Administrator'), qr/token sub is missing/);
refused_token($ng, $db, 'sub over 128 characters',
    CT::jwt(sub => 'u' x 129, role => 'Administrator'),
    qr/token sub is missing/);
refused_token($ng, $db, 'sub with a NUL (\u0000)',
    CT::jwt_raw($HS_HEADER, '{"exp":' . (time + 3600)
        . ',"role":"Administrator","sub":"admin-attack\u0000evil"}'),
    qr/token sub is missing or not a plain string/);
# A signed sub that is not valid UTF-8 (an overlong "/", which the body
# parser refuses as "not valid UTF-8") is not a string: 401, not a
# database error blamed on the body.
{
    my $t = CT::jwt_raw($HS_HEADER, '{"exp":' . (time + 3600)
        . ',"role":"Administrator","sub":"admin' . "\xc0\xaf" . 'attack"}');
    my $before = rows($db);
    my $r = $ng->req(POST => '/api/customers', json => new_body(),
        auth => $t);
    is($r->{status}, 401, 'sub with an overlong UTF-8 sequence: 401')
        or diag($r->{body});
    is(rows($db), $before, 'sub with an overlong UTF-8 sequence: no row');
    $r = $ng->req(GET => '/api/customers/me', auth => $t);
    is($r->{status}, 401, 'sub with an overlong UTF-8 sequence: GET /me 401')
        or diag($r->{body});
}

refused_token($ng, $db, 'no role',
    CT::jwt(sub => 'admin-attack'), qr/token role is missing or unknown/);
refused_token($ng, $db, 'unknown role',
    CT::jwt(sub => 'admin-attack', role => 'Superuser'),
    qr/token role is missing or unknown/);
refused_token($ng, $db, 'role in the wrong case',
    CT::jwt(sub => 'admin-attack', role => 'administrator'),
    qr/token role is missing or unknown/);
refused_token($ng, $db, 'roles with an unknown one',
    CT::jwt(sub => 'admin-attack', roles => ['Administrator', 'Root']),
    qr/token role is missing or unknown/);
refused_token($ng, $db, 'roles empty',
    CT::jwt(sub => 'admin-attack', roles => []),
    qr/token role is missing or unknown/);
refused_token($ng, $db, 'role known, roles with an unknown one',
    CT::jwt(sub => 'admin-attack', role => 'Administrator',
        roles => ['Customer', 'Auditor']),
    qr/token role is missing or unknown/);
accepted($ng, $db, 'roles array with Administrator',
    CT::jwt(sub => 'admin-attack', roles => ['Customer', 'Administrator']));

# size
{
    my $big = CT::jwt(%{ admin_claims() }, pad => 'x' x 12000);
    cmp_ok(length $big, '>=', 16000, '16 KB token built');
    refused_token($ng, $db, '16 KB token', $big,
        qr/token is empty or too long/);
}

# raw_post(AUTHORIZATION, HEADERS, AFTER): the answer bytes of a POST of
# a new customer written by hand with that Authorization value, the
# header lines HEADERS, and AFTER sent behind the body
sub raw_post {
    my ($authz, $headers, $after) = @_;
    my $body = $ENC->encode(new_body());
    return $ng->raw("POST /api/customers HTTP/1.1\r\nHost: t\r\n"
        . "Authorization: $authz\r\nContent-Type: application/json\r\n"
        . 'Content-Length: ' . length($body) . "\r\n$headers\r\n$body"
        . $after);
}

# A raw NUL in the header: nginx may refuse the line itself (400), the
# module must never see a truncated token as valid.
for my $case (['NUL inside the token', "Bearer $good\0x"],
    ['NUL after "Bearer"', "Bearer \0$good"])
{
    my ($name, $value) = @$case;
    my $before = rows($db);
    my $resp = raw_post($value, "Connection: close\r\n", '');
    my ($status) = $resp =~ m{^HTTP/1\.1 (\d{3})};
    ok(defined $status && ($status == 400 || $status == 401),
        "$name: 400 or 401") or diag($resp);
    is(rows($db), $before, "$name: nothing written");
}

# A refused POST's body is discarded: the next request on the same
# keep-alive connection is answered normally.
{
    my $before = rows($db);
    my $resp = raw_post('Bearer x.y.z', '',
        "GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    my @status = $resp =~ m{HTTP/1\.1 (\d{3}) }g;
    is_deeply(\@status, [401, 200],
        'keep-alive: 401 for the POST, then 200 for the next request')
        or diag($resp);
    is(rows($db), $before, 'keep-alive: nothing written');
}

{
    my $log = $ng->error_log;
    for my $reason ('token expired', 'token signature does not verify',
        'token alg is not the configured one', 'no credentials')
    {
        like($log, qr/\[info\] .*customer: 401: \Q$reason\E/,
            "error.log has \"customer: 401: $reason\" at info");
    }
}


# --- issuer and audience -------------------------------------------------

{
    my $db2 = CT::db_create();
    my $ng2 = CT::nginx_start(db => $db2, auth_conf => CT::jwt_conf()
        . "    customer_jwt_issuer https://auth.example.test;\n"
        . "    customer_jwt_audience customer-api;\n");
    my %ok = (iss => 'https://auth.example.test', aud => 'customer-api');

    accepted($ng2, $db2, 'iss and aud right',
        CT::jwt(%{ admin_claims() }, %ok));
    accepted($ng2, $db2, 'aud an array with the right one',
        CT::jwt(%{ admin_claims() }, %ok, aud => ['billing', 'customer-api']));
    refused_token($ng2, $db2, 'wrong iss',
        CT::jwt(%{ admin_claims() }, %ok, iss => 'https://evil.example.test'),
        qr/token iss is not the configured issuer/);
    refused_token($ng2, $db2, 'no iss',
        CT::jwt(%{ admin_claims() }, aud => 'customer-api'),
        qr/token iss is not the configured issuer/);
    refused_token($ng2, $db2, 'iss an array',
        CT::jwt(%{ admin_claims() }, %ok, iss => [$ok{iss}]),
        qr/token iss is not the configured issuer/);
    refused_token($ng2, $db2, 'wrong aud',
        CT::jwt(%{ admin_claims() }, %ok, aud => 'billing'),
        qr/token aud does not name the configured audience/);
    refused_token($ng2, $db2, 'no aud',
        CT::jwt(%{ admin_claims() }, iss => $ok{iss}),
        qr/token aud does not name the configured audience/);
    refused_token($ng2, $db2, 'aud an array without it',
        CT::jwt(%{ admin_claims() }, %ok, aud => ['billing', 'orders']),
        qr/token aud does not name the configured audience/);
    refused_token($ng2, $db2, 'aud an empty array',
        CT::jwt(%{ admin_claims() }, %ok, aud => []),
        qr/token aud does not name the configured audience/);
    refused_token($ng2, $db2, 'aud a prefix of it',
        CT::jwt(%{ admin_claims() }, %ok, aud => 'customer'),
        qr/token aud does not name the configured audience/);
}


# --- RS256 ---------------------------------------------------------------

my ($rsa_key, $rsa_pub) = keypair('rsa', '-algorithm', 'RSA',
    '-pkeyopt', 'rsa_keygen_bits:2048');
my ($rsa2_key) = keypair('rsa2', '-algorithm', 'RSA',
    '-pkeyopt', 'rsa_keygen_bits:2048');
my ($ec_key, $ec_pub) = keypair('ec', '-algorithm', 'EC',
    '-pkeyopt', 'ec_paramgen_curve:P-256');
my ($ec2_key) = keypair('ec2', '-algorithm', 'EC',
    '-pkeyopt', 'ec_paramgen_curve:P-256');
my ($p384_key, $p384_pub) = keypair('p384', '-algorithm', 'EC',
    '-pkeyopt', 'ec_paramgen_curve:P-384');

sub rs { my ($key) = @_; sub { sign_with($key, $_[0]) } }
sub es { my ($key) = @_; sub { der_to_raw(sign_with($key, $_[0])) } }

{
    my $dbr = CT::db_create();
    my $iss = 'https://auth.example.test';
    my $ngr = CT::nginx_start(db => $dbr,
        auth_conf => "customer_jwt RS256 $rsa_pub;\n"
            . "    customer_jwt_issuer $iss;\n");
    my $pem = slurp($rsa_pub);

    accepted($ngr, $dbr, 'RS256: valid token',
        token({ alg => 'RS256', typ => 'JWT' }, admin_claims(iss => $iss),
            rs($rsa_key)));
    refused_token($ngr, $dbr, 'RS256: valid signature, no iss',
        token({ alg => 'RS256' }, admin_claims(), rs($rsa_key)),
        qr/token iss is not the configured issuer/);
    refused_token($ngr, $dbr,
        'RS256 server: HS256 token keyed with the public PEM (confusion)',
        token({ alg => 'HS256', typ => 'JWT' }, admin_claims(iss => $iss),
            hs($pem)),
        qr/token alg is not the configured one/);
    refused_token($ngr, $dbr,
        'RS256 server: alg RS256 but HMAC with the public PEM',
        token({ alg => 'RS256', typ => 'JWT' }, admin_claims(iss => $iss),
            hs($pem)),
        qr/token signature does not verify/);
    refused_token($ngr, $dbr, 'RS256 server: the harness HS256 token',
        CT::jwt(%{ admin_claims() }, iss => $iss),
        qr/token alg is not the configured one/);
    refused_token($ngr, $dbr, 'RS256: signed by another RSA key',
        token({ alg => 'RS256' }, admin_claims(iss => $iss), rs($rsa2_key)),
        qr/token signature does not verify/);
    refused_token($ngr, $dbr, 'RS256: alg none',
        CT::b64url('{"alg":"none"}') . '.'
            . CT::b64url($ENC->encode(admin_claims(iss => $iss,
                exp => time + 3600))) . '.',
        qr/token alg is not the configured one/);
    refused_token($ngr, $dbr, 'RS256: expired',
        token({ alg => 'RS256' }, admin_claims(iss => $iss,
            exp => time - 3600), rs($rsa_key)),
        qr/token expired/);
}


# --- ES256 ---------------------------------------------------------------

{
    my $dbe = CT::db_create();
    my $nge = CT::nginx_start(db => $dbe,
        auth_conf => "customer_jwt ES256 $ec_pub;\n");

    my $t = token({ alg => 'ES256', typ => 'JWT' }, admin_claims(),
        es($ec_key));
    is(length(b64url_decode((split /\./, $t)[2])), 64,
        'ES256: JWS signature is r || s, 64 bytes');
    accepted($nge, $dbe, 'ES256: valid token', $t);
    accepted($nge, $dbe, 'ES256: another valid token (fresh signature)',
        token({ alg => 'ES256' }, admin_claims(), es($ec_key)));
    refused_token($nge, $dbe, 'ES256 server: RS256-signed token',
        token({ alg => 'RS256', typ => 'JWT' }, admin_claims(), rs($rsa_key)),
        qr/token alg is not the configured one/);
    refused_token($nge, $dbe, 'ES256 server: RSA signature under alg ES256',
        token({ alg => 'ES256' }, admin_claims(), rs($rsa_key)),
        qr/token signature does not verify/);
    refused_token($nge, $dbe, 'ES256: DER signature instead of r || s',
        token({ alg => 'ES256' }, admin_claims(), rs($ec_key)),
        qr/token signature does not verify/);
    refused_token($nge, $dbe, 'ES256: signed by another P-256 key',
        token({ alg => 'ES256' }, admin_claims(), es($ec2_key)),
        qr/token signature does not verify/);
    refused_token($nge, $dbe, 'ES256: zero signature',
        token({ alg => 'ES256' }, admin_claims(), sub { "\0" x 64 }),
        qr/token signature does not verify/);
    {
        my ($h, $c, $s) = split /\./, $t;
        my $c2 = CT::b64url($ENC->encode(admin_claims(sub => 'intruder',
            exp => time + 3600)));
        refused_token($nge, $dbe, 'ES256: claims swapped under a signature',
            "$h.$c2.$s", qr/token signature does not verify/);
    }
    refused_token($nge, $dbe, 'ES256 server: the harness HS256 token',
        CT::admin_token('admin-attack'),
        qr/token alg is not the configured one/);
}


# --- nginx -t ------------------------------------------------------------

{
    my $DB = q{customer_db "host=127.0.0.1 dbname=x user=x sslmode=disable";};
    my $secret32 = spew("$KEYDIR/secret32", ('s' x 32) . "\n");
    my $short = spew("$KEYDIR/secret31", ('s' x 31) . "\n");
    my $keys_ok = spew("$KEYDIR/keys-ok", "# comment\n\n  "
        . ('k' x 16) . "  \n");
    my $keys_empty = spew("$KEYDIR/keys-empty", '');
    my $keys_comments = spew("$KEYDIR/keys-comments", "# only\n\n# comments\n");
    my $keys_short = spew("$KEYDIR/keys-short",
        ('k' x 20) . "\n" . ('k' x 15) . "\n");
    my $missing = "$KEYDIR/no-such-file";

    my $passes = sub {
        my ($name, $http) = @_;
        my ($rc, $out) = CT::nginx_test_server("$DB $http");
        is($rc, 0, "nginx -t passes: $name") or diag($out);
    };
    my $fails = sub {
        my ($name, $http, $re) = @_;
        my ($rc, $out) = CT::nginx_test_server("$DB $http");
        my ($emerg) = $out =~ /(\[emerg\].*)/;
        ok($rc != 0, "nginx -t fails: $name") or diag($out);
        like($emerg // '', $re, "$name: the [emerg] names the problem")
            or diag($out);
    };

    $passes->('HS256, 32-byte secret', "customer_jwt HS256 $secret32;");
    $passes->('RS256, RSA public key', "customer_jwt RS256 $rsa_pub;");
    $passes->('ES256, P-256 public key', "customer_jwt ES256 $ec_pub;");
    $passes->('service keys with comments and blanks',
        "customer_jwt HS256 $secret32; customer_service_keys $keys_ok;");
    $passes->('leeway, issuer, audience',
        "customer_jwt HS256 $secret32; customer_jwt_leeway 2m;"
        . ' customer_jwt_issuer https://a.example; customer_jwt_audience x;');

    $fails->('customer_jwt with a missing file',
        "customer_jwt HS256 $missing;",
        qr/"customer_jwt" cannot open ".*no-such-file"/);
    $fails->('HS256 secret of 31 bytes', "customer_jwt HS256 $short;",
        qr/"customer_jwt" HS256 secret .* shorter than 32 bytes/);
    $fails->('RS256 with an EC key', "customer_jwt RS256 $ec_pub;",
        qr/"customer_jwt" key in .* is not an RSA key/);
    $fails->('ES256 with an RSA key', "customer_jwt ES256 $rsa_pub;",
        qr/"customer_jwt" key in .* is not a P-256 EC key/);
    $fails->('ES256 with a P-384 key', "customer_jwt ES256 $p384_pub;",
        qr/"customer_jwt" key in .* is not a P-256 EC key/);
    $fails->('RS256 with a file that is not a PEM public key',
        "customer_jwt RS256 $secret32;",
        qr/"customer_jwt" cannot read a PEM public key/);
    $fails->('RS256 with a private key file',
        "customer_jwt RS256 $rsa_key;",
        qr/"customer_jwt" cannot read a PEM public key/);
    $fails->('unknown alg HS512', "customer_jwt HS512 $secret32;",
        qr/"customer_jwt" algorithm must be HS256, RS256 or ES256/);
    $fails->('alg none', "customer_jwt none $secret32;",
        qr/"customer_jwt" algorithm must be HS256, RS256 or ES256/);
    $fails->('customer_jwt twice',
        "customer_jwt HS256 $secret32; customer_jwt HS256 $secret32;",
        qr/"customer_jwt" directive is duplicate/);
    $fails->('customer_service_keys with a missing file',
        "customer_jwt HS256 $secret32; customer_service_keys $missing;",
        qr/"customer_service_keys" cannot open ".*no-such-file"/);
    $fails->('customer_service_keys with an empty file',
        "customer_jwt HS256 $secret32; customer_service_keys $keys_empty;",
        qr/"customer_service_keys": no key in/);
    $fails->('customer_service_keys with comments only',
        "customer_jwt HS256 $secret32; customer_service_keys $keys_comments;",
        qr/"customer_service_keys": no key in/);
    $fails->('customer_service_keys with a 15-character key',
        "customer_jwt HS256 $secret32; customer_service_keys $keys_short;",
        qr/"customer_service_keys": a key in .* is shorter than 16/);
    $fails->('customer_api without customer_jwt', '',
        qr/"customer_api" is used but "customer_jwt" is not set/);
    $fails->('customer_jwt_leeway not a time',
        "customer_jwt HS256 $secret32; customer_jwt_leeway soon;",
        qr/"customer_jwt_leeway" directive invalid/);
}

done_testing();
