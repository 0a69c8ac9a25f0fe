# Source style: no line over 80 columns, no tabs (as lua-nginx-module
# checks in CI), in src/ and in the fuzz targets; the Perl tests compile
# without warnings.
use strict;
use warnings;

use FindBin;
use Test::More;

my @files = sort glob(join ' ',
    map { "$FindBin::Bin/../$_/*.[ch]" } qw(src fuzz));
plan skip_all => 'no src/*.c or src/*.h yet' unless @files;

for my $file (@files) {
    open my $fh, '<', $file or die "$file: $!";
    my $name = $file =~ s{.*/((?:src|fuzz)/)}{$1}r;
    my @bad;
    while (my $line = <$fh>) {
        chomp $line;
        my $why = $line =~ /\t/ ? 'tab' : length $line > 80 ? 'long' : next;
        push @bad, "$name:$.: $why: $line\n";
    }
    ok(!@bad, "$name: lines within 80 columns, no tabs") or diag(@bad);
}

# the tests and their library compile without a warning (a warning such
# as "Possible precedence issue" marks code that does not do what it says)
for my $file (sort glob("$FindBin::Bin/lib/*.pm $FindBin::Bin/*.t")) {
    my $name = $file =~ s{.*/t/}{t/}r;
    my $out = `$^X -wc -I$FindBin::Bin/lib $file 2>&1`;
    is($out, "$file syntax OK\n", "$name: compiles without warnings");
}

done_testing();
