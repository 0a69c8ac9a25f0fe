# CORS in a real browser: headless Chromium loads a page from another
# origin (another port of 127.0.0.1) that calls the API with fetch():
# bearer-token GET (a preflight), PATCH with If-Match and Idempotency-Key
# (a preflight for PATCH and those headers), an error it must be able to
# read, and a request with credentials. From the listed origin all of it
# works and the page reads ETag and X-Request-Id; from an origin not
# listed the browser blocks every call, and the PATCH never reaches nginx.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use CT;

my $CHROMIUM = $ENV{CT_CHROMIUM} // '/usr/bin/chromium';

plan skip_all => "$CHROMIUM is missing (scripts/deps.sh installs chromium)"
    unless -x $CHROMIUM;

my $PAGE_PORT = CT::free_port();
my $OTHER_PORT = CT::free_port();
my $PAGES = CT::_fresh_dir('pages', 0755);
my $ORIGIN = "http://127.0.0.1:$PAGE_PORT";

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db, http_extra => <<"CONF");
    customer_cors_origins $ORIGIN;
    customer_cors_credentials on;

    # the pages, each server another origin
    server {
        listen 127.0.0.1:$PAGE_PORT;
        root $PAGES;
    }
    server {
        listen 127.0.0.1:$OTHER_PORT;
        root $PAGES;
    }
CONF

my ($ID) = CT::make_customer($ng, 'browser');
my $TOKEN = CT::admin_token();
my $API = $ng->url('');

# the page: every call's outcome, as JSON, in <pre id="out">
my $page = <<"HTML";
<!doctype html>
<html><head><meta charset="utf-8"><title>cors</title></head>
<body><pre id="out">pending</pre>
<script>
const API = "$API", ID = "$ID", MISSING = "$CT::MISSING";
const AUTH = { Authorization: "Bearer $TOKEN" };
async function call(name, path, init, out) {
  try {
    const r = await fetch(API + path, init);
    const body = await r.json();
    out[name] = { status: r.status, etag: r.headers.get("ETag"),
      requestId: r.headers.get("X-Request-Id"), body: body };
  } catch (e) {
    out[name] = { error: e.name + ": " + e.message };
  }
}
async function run() {
  const out = { origin: location.origin };
  await call("get", "/api/customers/" + ID, { headers: AUTH }, out);
  const etag = out.get && out.get.etag;
  await call("patch", "/api/customers/" + ID, { method: "PATCH",
    headers: Object.assign({ "Content-Type": "application/json",
      "If-Match": etag || '"1"', "Idempotency-Key": "chromium-" + out.origin,
      "X-Request-Id": "from-the-page" }, AUTH),
    body: JSON.stringify({ notes: "written from " + out.origin }) }, out);
  await call("missing", "/api/customers/" + MISSING, { headers: AUTH }, out);
  await call("health", "/health", { credentials: "include" }, out);
  document.getElementById("out").textContent = JSON.stringify(out);
}
run();
</script></body></html>
HTML
{
    open my $fh, '>', "$PAGES/page.html" or die "$PAGES: $!";
    print $fh $page;
    close $fh;
    chmod 0644, "$PAGES/page.html";
}

sub run { CT::run_timed(@_) }

# the page from that origin, rendered: what it wrote into #out
sub browse {
    my ($url) = @_;
    my $profile = tempdir(CLEANUP => 1);
    my $t0 = time;
    my ($status, $dom, $err) = run([$CHROMIUM, '--headless', '--no-sandbox',
        '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--disable-dev-shm-usage',
        "--user-data-dir=$profile", '--virtual-time-budget=10000',
        '--dump-dom', $url], timeout => 90);
    my $took = sprintf '%.1f', time - $t0;
    is($status, 0, "chromium --dump-dom $url exited 0 (${took}s)")
        or diag("stderr:\n$err");
    my ($json) = $dom =~ m{<pre id="out">(.*?)</pre>}s;
    $json //= '';
    $json =~ s/&quot;/"/g;
    $json =~ s/&lt;/</g;
    $json =~ s/&gt;/>/g;
    $json =~ s/&amp;/&/g;
    my $out = eval { JSON::PP->new->utf8->decode($json) };
    ok($out, 'the page wrote its results') or diag($dom);
    return $out // {};
}

sub patches {
    return scalar(() = CT::_slurp($ng->dir . '/access.log')
        =~ m{"PATCH /api/customers/\Q$ID\E }g);
}

sub preflights {
    return scalar(() = CT::_slurp($ng->dir . '/access.log')
        =~ m{"OPTIONS /api/customers/\Q$ID\E HTTP/[\d.]+" 204 }g);
}


# --- from the listed origin ------------------------------------------------------

{
    my $out = browse("$ORIGIN/page.html");
    is($out->{origin}, $ORIGIN, "the page ran on $ORIGIN");

    my $get = $out->{get} // {};
    is($get->{status}, 200, 'fetch GET with a bearer token: 200')
        or diag(explain($out));
    is($get->{body}{data}{customerId}, $ID, '... the page read the record');
    like($get->{etag} // '', qr/^"\d+"$/, '... and the ETag (exposed)');
    like($get->{requestId} // '', qr/^\S+$/, '... and X-Request-Id (exposed)');

    my $patch = $out->{patch} // {};
    is($patch->{status}, 200, 'fetch PATCH with If-Match, Idempotency-Key '
        . 'and X-Request-Id: 200') or diag(explain($out));
    is($patch->{requestId}, 'from-the-page', '... its own X-Request-Id back');
    isnt($patch->{etag}, $get->{etag}, '... a new ETag');
    is(CT::sql($db, q{SELECT notes FROM customers WHERE id = :'p1'}, $ID),
        "written from $ORIGIN", '... written');

    my $missing = $out->{missing} // {};
    is($missing->{status}, 404, 'fetch of a missing customer: the page '
        . 'reads the 404') or diag(explain($out));
    is($missing->{body}{message}, 'Customer not found',
        '... and its error envelope');

    is($out->{health}{status}, 200, 'fetch with credentials: "include": 200 '
        . '(Access-Control-Allow-Credentials)') or diag(explain($out));

    ok(preflights() >= 2, 'nginx answered the preflights 204 (' . preflights()
        . ')');
    is(patches(), 1, 'the PATCH reached nginx once');
}


# --- from an origin not listed --------------------------------------------------

{
    my $before = CT::sql($db, q{SELECT notes FROM customers
        WHERE id = :'p1'}, $ID);
    my $preflights = preflights();
    my $out = browse("http://127.0.0.1:$OTHER_PORT/page.html");
    is($out->{origin}, "http://127.0.0.1:$OTHER_PORT", 'the page ran on '
        . 'the other origin');
    for my $call (qw(get patch missing health)) {
        like($out->{$call}{error} // '', qr/^TypeError: /,
            "fetch $call: blocked by the browser")
            or diag(explain($out->{$call}));
        ok(!exists $out->{$call}{status}, '... the page saw no answer');
    }
    ok(preflights() > $preflights, 'the browser asked (preflight) and was '
        . 'not allowed');
    is(patches(), 1, 'the PATCH never reached nginx');
    is(CT::sql($db, q{SELECT notes FROM customers WHERE id = :'p1'}, $ID),
        $before, 'nothing written');
}

done_testing();
