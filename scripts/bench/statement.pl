#!/usr/bin/perl
# statement.pl FILE MACRO [ARG]: the SQL text of a C string macro in FILE
# (adjacent string literals joined, a macro parameter replaced by ARG), so
# that make bench runs the module's own statement through pgbench.
use strict;
use warnings;

my ($file, $macro, $arg) = @ARGV;
open my $fh, '<', $file or die "$file: $!\n";
my $src = do { local $/; <$fh> };

$src =~ /^#define\s+\Q$macro\E(?:\((\w+)\))?((?:.*\\\n)*.*)$/m
    or die "$macro not in $file\n";
my ($param, $body) = ($1, $2);

$body =~ s/\\\n/ /g;
$body =~ s/\b\Q$param\E\b(?=(?:[^"]*"[^"]*")*[^"]*$)/"$arg"/g
    if defined $param;

my $sql = join '', $body =~ /"((?:[^"\\]|\\.)*)"/g;
print "$sql\n";
