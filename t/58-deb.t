# The Debian package (make deb) on this machine: built (scripts/deb.sh
# --no-lint; or CT_DEB names a .deb), installed with dpkg -i, its files and
# the modules-enabled link where Debian's module packages put them, the
# installed nginx-customer-migrate run on an empty database, the installed
# example configuration through nginx -t and then serving /health and
# RS256-authenticated requests from the test PostgreSQL, then dpkg -r (the
# link parked as .removed, as Debian's modules do) and dpkg --purge
# (everything gone).
#
# Needs root (dpkg) and the stock nginx the package is built for, so it is
# skipped when CT_NGINX is another binary (NGINX_VERSION=, make
# test-asan). The other test files are not disturbed: they load the module
# from build/ with configurations of their own, never /etc/nginx/nginx.conf
# or /usr/lib/nginx/modules/. An installed package or module that this test
# did not install is left alone (skipped). From install to purge it holds a
# machine-wide lock, so the runs of two checkouts do not interleave.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use Fcntl qw(:flock);
use File::Temp qw(tempdir);
use JSON::PP ();

my $NGINX = '/usr/sbin/nginx';
my $PKG = 'libnginx-mod-http-customer';
my $SO = '/usr/lib/nginx/modules/ngx_http_customer_module.so';
my $AVAIL = '/usr/share/nginx/modules-available/mod-http-customer.conf';
my $LINK = '/etc/nginx/modules-enabled/50-mod-http-customer.conf';
my $SHARE = "/usr/share/$PKG";
my $DOC = "/usr/share/doc/$PKG";
my $MIGRATE = '/usr/sbin/nginx-customer-migrate';
my $MAN = '/usr/share/man/man8/nginx-customer-migrate.8.gz';
my $ROOT = CT::root();
my $MAIN_PID = $$;

plan skip_all => 'dpkg -i needs root' if $> != 0;
plan skip_all => "the package is for the stock $NGINX, not $ENV{CT_NGINX}"
    if ($ENV{CT_NGINX} // $NGINX) ne $NGINX;

sub run {
    my ($rc, $out) = CT::_capture([@_], merge => 1);
    return wantarray ? ($rc, $out) : $out;
}

# dpkg refuses at once while apt or another dpkg holds its lock: wait.
sub dpkg {
    my ($rc, $out);
    for (1 .. 120) {
        ($rc, $out) = run('dpkg', @_);
        last unless $rc && $out =~ /\block\b.*(?:another process|locked)/;
        sleep 1;
    }
    return ($rc, $out);
}

sub pkg_status {
    my ($rc, $out) = CT::_capture(
        ['dpkg-query', '-W', '-f=${db:Status-Abbrev}', $PKG]);
    return $rc ? 'un' : substr($out, 0, 2);
}

my $lockdir = -d '/run/lock' ? '/run/lock' : '/tmp';
open my $lock, '>', "$lockdir/customer-deb-test.lock" or die "lock: $!";
flock($lock, LOCK_EX) or die "flock: $!";

my $status = pkg_status();
plan skip_all => "$PKG is installed here ($status); not touching it"
    if $status =~ /^.[^nc]/;
plan skip_all => "$SO exists and is not from $PKG; not touching it"
    if -e $SO && $status !~ /^.c/;
# leftovers of an interrupted run of this test (removed, not purged)
dpkg('--purge', $PKG) if $status =~ /^.c/;

# --- the package ---------------------------------------------------------

my $deb = $ENV{CT_DEB};
if (!$deb) {
    my ($rc, $out) = run("$ROOT/scripts/deb.sh", '--no-lint');
    is($rc, 0, 'scripts/deb.sh builds the package') or diag($out);
    ($deb) = $out =~ m{^deb: (/\S+\.deb)$}m;
}
if (!defined $deb || !-f $deb) {
    fail('a .deb to install');
    done_testing();
    exit;
}

my $version = run('dpkg-parsechangelog', '-l', "$ROOT/debian/changelog",
    '-SVersion');
chomp $version;
is(run('dpkg-deb', '-f', $deb, 'Version'), "$version\n",
    "its version is debian/changelog's ($version)");
like($deb, qr{/\Q${PKG}_${version}_\E\w+\.deb$}, 'the file is named so');

# the ABI dh_nginx takes from nginx-dev
my ($abi) = CT::_slurp('/usr/share/nginx/src/debian/'
    . 'libnginx-mod.abisubstvars') =~ /^nginx:abi=(\S+)$/m;
my $depends = run('dpkg-deb', '-f', $deb, 'Depends');
like($depends, qr/(?:^|, )\Q$abi\E(?:,|$)/m,
    "it depends on the nginx ABI it was built for ($abi)");
like(run('dpkg-query', '-W', '-f=${Provides}', 'nginx'), qr/\Q$abi\E/,
    '... which the installed nginx provides');
for my $lib (qw(libpq5 libyajl2 libssl3)) {
    like($depends, qr/(?:^|, )\Q$lib\E[ ,(]/, "it depends on $lib");
}

# --- installed -------------------------------------------------------------

my $installed;
END {
    # a test that died half-way leaves no package behind
    dpkg('--purge', $PKG) if $installed && $$ == $MAIN_PID;
}

my ($rc, $out) = dpkg('-i', $deb);
is($rc, 0, 'dpkg -i installs it') or diag($out);
$installed = 1;
like(pkg_status(), qr/^ii/, 'dpkg says installed');

ok(-f $SO, "the module is $SO");
is(CT::_slurp($AVAIL),
    "load_module modules/ngx_http_customer_module.so;\n",
    "$AVAIL loads it");
is(readlink($LINK), $AVAIL, "$LINK links to it");
ok(-x $MIGRATE, "$MIGRATE is installed");
ok(-f $MAN, 'with a man page');

my @sql = map { s{.*/}{}r } glob("$ROOT/sql/[0-9][0-9][0-9]_*.sql");
is_deeply([map { s{.*/}{}r } glob("$SHARE/sql/*")], \@sql,
    "the migrations are in $SHARE/sql/");
ok(-f "$DOC/README.md.gz" || -f "$DOC/README.md", "the README is in $DOC");
ok(-f "$DOC/copyright", '... with the copyright file');
my ($example) = grep { -f }
    map { ("$_", "$_.gz") } "$DOC/examples/customer.conf.example";
ok($example, "the example configuration is in $DOC/examples/");
$example //= "$ROOT/conf/customer.conf.example";

# Debian's own nginx.conf includes modules-enabled/*.conf: it loads the
# module through the link.
if (CT::_slurp('/etc/nginx/nginx.conf')
    =~ m{^include\s+/etc/nginx/modules-enabled/}m)
{
    ($rc, $out) = run($NGINX, '-T', '-c', '/etc/nginx/nginx.conf');
    is($rc, 0, 'nginx -t passes on /etc/nginx/nginx.conf') or diag($out);
    like($out, qr{^load_module modules/ngx_http_customer_module\.so;$}m,
        '... which loads the module through modules-enabled/');
}

# --- nginx-customer-migrate ---------------------------------------------

my $db = CT::db_create(empty => 1);
my $conninfo = "host=$ENV{CT_PGHOST} port=$ENV{CT_PGPORT} dbname=$db"
    . " user=$ENV{CT_PGUSER} sslmode=disable gssencmode=disable";
($rc, $out) = run($MIGRATE, $conninfo);
is($rc, 0, "$MIGRATE CONNINFO migrates an empty database") or diag($out);
is(scalar(() = $out =~ /^migrate: applied \d{3}_/mg), scalar @sql,
    '... applying every migration');
my @versions = CT::sql($db, 'SELECT version FROM schema_migrations'
    . ' ORDER BY version');
is_deeply(\@versions, [map { s/\.sql$//r } @sql],
    '... each recorded in schema_migrations');
is_deeply(\@versions, [CT::sql('customer_template',
    'SELECT version FROM schema_migrations ORDER BY version')],
    '... as scripts/pg.sh migrate records them');
($rc, $out) = run('env', "PGHOST=$ENV{CT_PGHOST}", "PGPORT=$ENV{CT_PGPORT}",
    "PGDATABASE=$db", "PGUSER=$ENV{CT_PGUSER}", 'PGSSLMODE=disable',
    $MIGRATE);
is($rc, 0, 'with PG* variables instead') or diag($out);
is($out, "migrate: up to date\n", '... it finds nothing left to do');

# --- the installed example, run -----------------------------------------

my $dir = tempdir('ct-deb-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my %ex = CT::conf_example(file => $example, dir => $dir, log_dir => $dir,
    module => undef);
is($ex{text}, CT::_slurp("$ROOT/conf/customer.conf.example"),
    'the installed example is conf/customer.conf.example');
like($ex{conf}, qr{^load_module \Q$SO\E;$}m,
    '... and loads the installed module');

my $conf = $ex{conf};
open my $fh, '>', "$dir/nginx.conf" or die "$dir: $!";
print $fh $conf;
close $fh;
($rc, $out) = run($NGINX, '-t', '-p', "$dir/", '-c', "$dir/nginx.conf");
is($rc, 0, 'nginx -t passes on it') or diag($out);

# Served here: listeners on free loopback ports, customer_db on the
# migrated database, in the foreground for CT.
my %port = map { $_ => CT::free_port() } qw(http https loop);
# the example's Auth Service, which a create asks whether the userId
# exists: a stand-in on loopback that knows every user
my $auth = CT::peer_start(handler => sub {
    my ($req) = @_;
    my ($u) = $req->{path} =~ m{^/api/auth/user/([^/]+)\z}
        or return [404, {}, { success => JSON::PP::false }];
    return [200, {}, { success => JSON::PP::true,
        data => { userId => $u, email => "$u\@example.com" } }];
});
my @edits = (
    [qr/^(\s*)server 192\.0\.2\.31:3001 [^;]*;\n\s*server 192\.0\.2\.32:3001 [^;]*;/m,
        sub { "$1server 127.0.0.1:" . $auth->port . ";" }],
    [qr/^(\s*)listen 80;/m, sub { "$1listen 127.0.0.1:$port{http};" }],
    [qr/^(\s*)listen 443 ssl;/m,
        sub { "$1listen 127.0.0.1:$port{https} ssl;" }],
    [qr/\b127\.0\.0\.1:8081\b/, sub { "127.0.0.1:$port{loop}" }],
    [qr/^(\s*)customer_db "[^"]*";/m,
        sub { qq{$1customer_db "$conninfo";} }],
);
for my $e (@edits) {
    my ($re, $to) = @$e;
    my $n = $conf =~ s/$re/$to->()/ge;
    ok($n, "the example has $re") or diag($conf);
}
$conf = "daemon off;\n$conf";
open $fh, '>', "$dir/nginx.conf" or die "$dir: $!";
print $fh $conf;
close $fh;

my $ng = CT::nginx_start_conf(dir => $dir, port => $port{loop});

# Tokens as the example's Auth Service signs them: RS256, its iss and aud.
sub rs256 {
    my (%claims) = @_;
    my $enc = JSON::PP->new->canonical;
    my $input = CT::b64url($enc->encode({ alg => 'RS256', typ => 'JWT' }))
        . '.' . CT::b64url($enc->encode({ iss => 'https://auth.example.com',
            aud => 'customer-api', iat => time, exp => time + 600,
            %claims }));
    my $f = File::Temp->new;
    print $f $input;
    close $f;
    my ($rc, $sig, $err) = CT::_capture(['openssl', 'dgst', '-sha256',
        '-sign', $ex{key}, '-binary', $f->filename]);
    die "openssl dgst: $err" if $rc;
    return "$input." . CT::b64url($sig);
}
my $admin = rs256(sub => 'deb-admin', role => 'Administrator');

my $r = $ng->req(GET => '/health', auth => 'none');
is($r->{status}, 200, 'GET /health: 200') or diag($r->{body});

$r = $ng->req(POST => '/api/customers', auth => $admin, json => {
    userId => 'deb-customer', email => 'deb@example.com',
    fullName => 'Debian Package', contactNumber => '+919876543210' });
is($r->{status}, 201, 'POST /api/customers with an RS256 token: 201')
    or diag($r->{body});
my $id = $r->{json}{data}{customerId} // '';
like($id, qr/^[0-9a-f-]{36}$/, '... its customerId');
$r = $ng->req(GET => "/api/customers/$id", auth => $admin);
is($r->{status}, 200, 'GET /api/customers/{id}: 200') or diag($r->{body});
is($r->{json}{data}{userId}, 'deb-customer', '... the customer created');
is(CT::sql($db, 'SELECT count(*) FROM customers'), 1,
    '... stored in the migrated database');
$r = $ng->req(GET => "/api/customers/$id", auth => CT::admin_token());
is($r->{status}, 401, 'an HS256 token is refused (the example is RS256)');

$ng->stop;

# --- removed, purged ------------------------------------------------------

($rc, $out) = dpkg('-r', $PKG);
is($rc, 0, 'dpkg -r removes it') or diag($out);
ok(!-e $_, "$_ is gone") for $SO, $AVAIL, $MIGRATE, "$SHARE/sql";
ok(!-e $LINK && !-l $LINK, "$LINK is gone");
is(readlink("$LINK.removed"), $AVAIL,
    '... kept as .removed until purge, as Debian does');

($rc, $out) = dpkg('--purge', $PKG);
is($rc, 0, 'dpkg --purge purges it') or diag($out);
$installed = 0;
ok(!-e "$LINK.removed" && !-l "$LINK.removed", '.removed link is gone');
ok(!-e $_, "$_ is gone") for $SHARE, $DOC, $MAN;
like(pkg_status(), qr/^.n/, 'dpkg knows it no more');

done_testing();
