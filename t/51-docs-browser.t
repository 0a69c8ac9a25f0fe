# Swagger UI at /docs/, rendered by headless Chromium (Debian's chromium,
# installed by scripts/deps.sh): the page loads /api/openapi.json and lists
# every documented operation.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use CT;

my $CHROMIUM = $ENV{CT_CHROMIUM} // '/usr/bin/chromium';
my $ROOT = CT::root();

plan skip_all => "$CHROMIUM is missing (scripts/deps.sh installs chromium)"
    unless -x $CHROMIUM;
plan skip_all => 'build/swagger-ui is missing (scripts/swagger.sh)'
    unless -f "$ROOT/build/swagger-ui/swagger-ui-bundle.js";

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db);

my $doc = do {
    open my $fh, '<:raw', "$ROOT/openapi/openapi.json" or die $!;
    JSON::PP->new->utf8->decode(do { local $/; <$fh> });
};

sub run { CT::run_timed(@_) }

my $profile = tempdir(CLEANUP => 1);
my $t0 = time;
my ($status, $dom, $err) = run([$CHROMIUM, '--headless', '--no-sandbox',
    '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--disable-dev-shm-usage',
    "--user-data-dir=$profile", '--virtual-time-budget=10000',
    '--dump-dom', $ng->url('/docs/')], timeout => 90);
my $took = sprintf '%.1f', time - $t0;

is($status, 0, "chromium --dump-dom /docs/ exited 0 (${took}s)")
    or diag("stderr:\n$err");
ok(length $dom > 1000, 'it printed the rendered DOM (' . length($dom)
    . ' bytes)') or diag($dom);

# Swagger UI puts zero-width spaces before the slashes of paths it shows
my $text = $dom;
$text =~ s/\x{e2}\x{80}\x{8b}//g;      # U+200B in UTF-8
$text =~ s/&amp;/&/g;
$text =~ s/&#39;|&apos;/'/g;
$text =~ s/&quot;/"/g;

like($text, qr{<div id="swagger-ui"[^>]*>\s*<section class="swagger-ui},
    'Swagger UI rendered into #swagger-ui');
unlike($text, qr{Failed to load API definition|Errors\s*</h4>},
    'no load or parse error shown');
like($text, qr{\Q$doc->{info}{title}\E}, "the title \"$doc->{info}{title}\"");
like($text, qr{/api/customers/\{id\}}, 'it lists /api/customers/{id}');

# every documented operation: its path with the method's block, and its
# summary
my @ops;
for my $path (sort keys %{ $doc->{paths} }) {
    for my $m (sort keys %{ $doc->{paths}{$path} }) {
        my $op = $doc->{paths}{$path}{$m};
        next unless ref $op eq 'HASH' && $op->{responses};
        push @ops, [$m, $path, $op->{summary}];
    }
}
my $blocks = () = $text =~ /class="opblock opblock-/g;
is($blocks, scalar @ops, 'one operation block per documented operation ('
    . @ops . ')');
for my $o (@ops) {
    my ($m, $path, $summary) = @$o;
    like($text, qr{data-path="\Q$path\E"}, uc($m) . " $path shown");
    like($text, qr{\Q$summary\E}, "... with its summary \"$summary\"");
}

# the page took the document from this nginx
like(CT::_slurp($ng->dir . '/access.log'),
    qr{"GET /api/openapi\.json HTTP/[\d.]+" 200 }, 'the browser fetched '
    . '/api/openapi.json (200)');

done_testing();
