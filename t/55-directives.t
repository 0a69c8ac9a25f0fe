# The directive reference (docs/directives.md) against the module: the
# directives in src/*.c's ngx_command_t tables and the documented ones
# must be the same set both ways; each documented context is the
# command's context flags, each syntax takes the arguments the command
# takes; the README's short table names the same set and links to the
# reference; and the reference's example configuration passes nginx -t.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use File::Path qw(make_path);

my $ROOT = CT::root();
my $NGINX = $ENV{CT_NGINX} // '/usr/sbin/nginx';

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or die "$file: $!\n";
    local $/;
    return <$fh>;
}

sub spew {
    my ($file, $text) = @_;
    open my $fh, '>', $file or die "$file: $!\n";
    print $fh $text;
    close $fh or die "$file: $!\n";
}


# --- the module's directives, from the ngx_command_t tables --------------

my %CONTEXT = (NGX_HTTP_MAIN_CONF => 'http', NGX_HTTP_SRV_CONF => 'server',
    NGX_HTTP_LOC_CONF => 'location', NGX_HTTP_UPS_CONF => 'upstream',
    NGX_HTTP_SIF_CONF => 'if in server', NGX_HTTP_LIF_CONF => 'if in location',
    NGX_HTTP_LMT_CONF => 'limit_except');
my @ORDER = ('http', 'server', 'location', 'upstream', 'if in server',
    'if in location', 'limit_except');
# argument counts each flag allows; FLAG is "on | off"
my %ARGS = (NGX_CONF_NOARGS => [0], NGX_CONF_TAKE1 => [1],
    NGX_CONF_TAKE2 => [2], NGX_CONF_TAKE3 => [3], NGX_CONF_TAKE12 => [1, 2],
    NGX_CONF_TAKE13 => [1, 3], NGX_CONF_TAKE23 => [2, 3],
    NGX_CONF_TAKE123 => [1, 2, 3], NGX_CONF_FLAG => ['flag'],
    NGX_CONF_1MORE => ['1more'], NGX_CONF_2MORE => ['2more']);

my %src;
for my $file (sort glob "$ROOT/src/*.c") {
    my $c = slurp($file);
    $c =~ s{/\*.*?\*/}{ }gs;
    my $name = $file =~ s{.*/}{}r;

    while ($c =~ /ngx_command_t\s+\w+\s*\[\]\s*=\s*\{(.*?)^\};/msg) {
        my $table = $1;
        my $strings = () = $table =~ /ngx_string\(/g;
        my $n = 0;
        while ($table =~ /\{\s*ngx_string\("([^"]+)"\)\s*,\s*([A-Z0-9_|\s]+?)\s*,/g) {
            my ($dir, $flags) = ($1, $2);
            my @flags = split /\s*\|\s*/, $flags;
            my @ctx = map { $CONTEXT{$_} } grep { $CONTEXT{$_} } @flags;
            my @args = map { @{ $ARGS{$_} } } grep { $ARGS{$_} } @flags;
            my @unknown = grep { !$CONTEXT{$_} && !$ARGS{$_}
                && $_ ne 'NGX_CONF_BLOCK' } @flags;
            die "$name: $dir: flags this test does not know: @unknown\n"
                if @unknown;
            die "$name: $dir is in two tables\n" if $src{$dir};
            my %rank = map { $ORDER[$_] => $_ } 0 .. $#ORDER;
            $src{$dir} = { file => $name,
                context => [sort { $rank{$a} <=> $rank{$b} } @ctx],
                args => \@args };
            $n++;
        }
        die "$name: parsed $n of $strings commands\n" if $n != $strings;
    }
}
ok(keys %src >= 19, 'the module has its directives (' . keys(%src) . ')')
    or diag(join ' ', sort keys %src);
ok(!grep({ !/^customer_/ } keys %src), 'every directive is customer_*');


# --- the reference ---------------------------------------------------------

my $doc = slurp("$ROOT/docs/directives.md");
my ($dirs) = $doc =~ /^## Directives\n(.*?)(?=^## |\z)/ms;
ok($dirs, 'docs/directives.md has a Directives section');
$dirs //= '';

my %doc;
my @sections = split /^### /m, $dirs;
shift @sections;
my @doc_order;
for my $sec (@sections) {
    my ($name) = $sec =~ /\A(\S+)\s*\n/;
    push @doc_order, $name;
    my %row;
    while ($sec =~ /^\|\s*(Syntax|Default|Context):\s*\|\s*(.*?)\s*\|\s*$/mg) {
        $row{$1} = $2;
    }
    $doc{$name} = { %row, text => $sec };
}
is_deeply(\@doc_order, [sort @doc_order],
    'the reference lists the directives in alphabetical order');

CT::both_ways(\%src, \%doc,
    ['every directive in src/ is documented', 'not in docs/directives.md'],
    ['every documented directive is in src/', 'no such directive in src/*.c']);

for my $name (sort grep { $src{$_} } keys %doc) {
    my $d = $doc{$name};
    my $s = $src{$name};

    for my $row (qw(Syntax Default Context)) {
        ok(defined $d->{$row}, "$name: has a $row row");
    }
    my @ctx = map { s/`//gr } split /\s*,\s*/, $d->{Context} // '';
    is_deeply(\@ctx, $s->{context}, "$name: context is the module's ("
        . join(', ', @{ $s->{context} }) . ", $s->{file})");

    # `customer_x arg arg;` or `customer_x on` | `off;`
    my $syntax = ($d->{Syntax} // '') =~ s/`//gr;
    $syntax =~ s/\\\|/|/g;
    my ($first, @words) = split ' ', $syntax =~ s/;\s*$//r;
    is($first, $name, "$name: the syntax names it");
    # "on | off" is a flag, "origin ..." one or more; other alternatives
    # ("on | off | header name") each take as many as they have words
    my @takes = "@words" eq 'on | off' ? ('flag')
        : (@words && $words[-1] eq '...') ? ((@words - 1) . 'more')
        : map { scalar split ' ' } split /\s*\|\s*/, "@words";
    @takes = (0) unless @takes;
    my %args = map { $_ => 1 } @{ $s->{args} };
    ok(!grep({ !$args{$_} } @takes), "$name: syntax takes "
        . join('/', @takes) . " argument(s), the module @{ $s->{args} }");
    like($d->{Syntax} // '', qr/;`\s*$/, "$name: the syntax ends with ;");

    my $def = $d->{Default} // '';
    ok($def eq "\x{e2}\x{80}\x{94}" || $def =~ /^`\Q$name\E [^`]+;`$/,
        "$name: the default is — or the directive with its value")
        or diag($def);

    like($d->{text}, qr/```nginx\n(?:[^`]*\n)?[ \t]*\Q$name\E\b[^`]*```/,
        "$name: an example uses it");
}


# --- the README's short table ----------------------------------------------

my $readme = slurp("$ROOT/README.md");
my ($rtable) = $readme =~ /^## Directives\n(.*?)(?=^## )/ms;
ok($rtable, 'README has a Directives section');
$rtable //= '';
like($rtable, qr{\(docs/directives\.md\)}, 'it links to docs/directives.md');
my %readme;
for my $line (grep { /^\| \[/ } split /\n/, $rtable) {
    my ($names, $ctx) = $line =~ /^\|\s*(.*?)\s*\|\s*(.*?)\s*\|/;
    while ($names =~ /\[`(\w+)`\]\(docs\/directives\.md#(\w+)\)/g) {
        is($2, $1, "README: $1 links to its own section");
        $readme{$1} = $ctx;
    }
}
CT::both_ways(\%src, \%readme,
    ['README: every directive is in the table', "not in README's table"],
    ['README: the table names no directive src/ lacks', 'no such directive']);
for my $name (sort grep { $src{$_} } keys %readme) {
    is($readme{$name}, join(', ', @{ $src{$name}{context} }),
        "README: $name context");
}


# --- the example configuration passes nginx -t ----------------------------

my ($example) = $doc =~ /^## Example configuration\n.*?```nginx\n(.*?)```/ms;
ok($example, 'docs/directives.md has an example configuration');

SKIP: {
    skip 'no example', 3 unless $example;
    my $dir = CT::_fresh_dir('example', 0755);
    make_path("$dir/customer", "$dir/log", "$dir/tmp");

    my ($rc, $out) = CT::_capture(['openssl', 'genpkey', '-algorithm',
        'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out',
        "$dir/auth.key"], merge => 1);
    die "openssl: $out" if $rc;
    ($rc, $out) = CT::_capture(['openssl', 'pkey', '-in', "$dir/auth.key",
        '-pubout', '-out', "$dir/customer/auth.pub.pem"], merge => 1);
    die "openssl: $out" if $rc;
    spew("$dir/customer/service.keys",
        "example-service-key-0123456789abcdef\n");

    my $conf = $example;
    $conf =~ s{/usr/lib/nginx/modules/ngx_http_customer_module\.so}
        {$ENV{CT_MODULE}}g;
    $conf =~ s{/etc/nginx/customer/}{$dir/customer/}g;
    # what a full nginx.conf has around the module's part
    $conf =~ s{^(load_module [^\n]*\n)}{$1
error_log $dir/log/error.log;
pid $dir/nginx.pid;
events {}
}m;
    my $temp = join '', map { "    ${_}_temp_path $dir/tmp/$_;\n" }
        qw(client_body proxy fastcgi uwsgi scgi);
    $conf =~ s/^http \{\n/http \{\n$temp    access_log off;\n/m;
    spew("$dir/nginx.conf", $conf);

    ($rc, $out) = CT::_capture(
        [$NGINX, '-t', '-p', "$dir/", '-c', "$dir/nginx.conf"], merge => 1);
    is($rc, 0, 'nginx -t passes on the example configuration')
        or diag($out, $conf);
    like($out, qr/test is successful/, 'nginx -t says successful');
    unlike($out, qr/\[(?:emerg|alert|crit)\]/,
        'no [emerg], [alert] or [crit]');
}

done_testing();
