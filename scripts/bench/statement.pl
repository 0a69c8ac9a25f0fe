#!/usr/bin/perl
# statement.pl FILE MACRO [ARG]: the SQL text of a C string macro in FILE
# (adjacent string literals joined, a macro parameter replaced by ARG,
# other string macros of FILE named in it expanded), so that make bench
# runs the module's own statement through pgbench.
use strict;
use warnings;

my ($file, $macro, $arg) = @ARGV;
open my $fh, '<', $file or die "$file: $!\n";
my $src = do { local $/; <$fh> };

# a C literal's escapes: \" \\ \n \t
sub unescape {
    my ($s) = @_;
    my %c = (n => "\n", t => "\t");
    $s =~ s{\\(.)}{$c{$1} // $1}ge;
    return $s;
}

sub expand {
    my ($name, $arg, $depth) = @_;
    die "$name: macros nested too deep\n" if $depth > 8;
    $src =~ /^#define\s+\Q$name\E(?:\((\w+)\))?((?:.*\\\n)*.*)$/m
        or die "$name not in $file\n";
    my ($param, $body) = ($1, $2);

    $body =~ s/\\\n/ /g;
    $body =~ s/\b\Q$param\E\b(?=(?:[^"]*"[^"]*")*[^"]*$)/"$arg"/g
        if defined $param;

    my $sql = '';
    while ($body =~ /\G\s*(?:"((?:[^"\\]|\\.)*)"|([A-Za-z_]\w*))/gc) {
        $sql .= defined $1 ? unescape($1) : expand($2, undef, $depth + 1);
    }
    return $sql;
}

print expand($macro, $arg, 0), "\n";
