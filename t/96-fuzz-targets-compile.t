# The fuzz targets call the module's functions (and include some of its
# .c files to reach static ones), but only `make fuzz` builds them: a
# change of a function's arguments once left a target that no longer
# compiled, and nothing said so until the fuzz run. Here each target is
# compiled (syntax only, warnings as errors) with the include paths and
# headers the suite's module was built with, in a few seconds.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $root = CT::root();
my $ngx = "$root/build/nginx";

plan(skip_all => 'no configured nginx in build/nginx (the module was '
    . 'built elsewhere)') unless -f "$ngx/objs/ngx_auto_config.h";

# the include paths nginx's configure gave the module's own build
open(my $mk, '<', "$ngx/objs/Makefile") or die "objs/Makefile: $!";
my ($incs) = do { local $/; <$mk> } =~ /^ALL_INCS\s*=((?:.*\\\n)*.*)$/m;
close $mk;
my @inc = map { ('-I', m{^/} ? $_ : "$ngx/$_") }
    ($incs // '') =~ /-I\s*(\S+)/g;
ok(@inc, 'the include paths of the module build');
push @inc, '-I', "$root/src", '-I', "$root/fuzz";

my @files = sort glob("$root/fuzz/*.c");
cmp_ok(scalar @files, '>=', 9, 'the fuzz targets are there');

for my $f (@files) {
    my ($rc, $out) = CT::_capture(['cc', '-fsyntax-only', '-Wall',
        '-Werror', '-Wno-deprecated-declarations', @inc, $f], merge => 1);
    is($rc, 0, 'compiles: ' . (split m{/}, $f)[-1]) or diag($out);
}

done_testing();
