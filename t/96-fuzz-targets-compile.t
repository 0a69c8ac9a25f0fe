# The fuzz targets call the module's functions (and include some of its
# .c files to reach static ones), but only `make fuzz` builds them: a
# change of a function's arguments once left a target that no longer
# compiled, and nothing said so until the fuzz run. Here each target is
# compiled (syntax only, warnings as errors) against the headers of the
# nginx this suite's module was built with, in a few seconds.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $root = CT::root();
my $ngx = "$root/build/nginx";

plan(skip_all => 'no configured nginx in build/nginx (the module was '
    . 'built elsewhere)') unless -f "$ngx/objs/ngx_auto_config.h";

my $pg = `pg_config --includedir 2>/dev/null` || '/usr/include/postgresql';
chomp $pg;
my @inc = map { ('-I', $_) } (map { "$ngx/$_" } qw(src/core src/event
    src/event/modules src/os/unix objs src/http src/http/modules
    src/http/v2)), $pg, "$root/src", "$root/fuzz";

my @files = sort glob("$root/fuzz/*.c");
cmp_ok(scalar @files, '>=', 9, 'the fuzz targets are there');

for my $f (@files) {
    my ($rc, $out) = CT::_capture(['cc', '-fsyntax-only', '-Wall',
        '-Werror', '-Wno-deprecated-declarations', @inc, $f], merge => 1);
    is($rc, 0, 'compiles: ' . (split m{/}, $f)[-1]) or diag($out);
}

done_testing();
