# make check-compat: the module the suite runs passes against the nginx
# the suite runs; a copy whose nginx_version or signature is changed is
# refused, naming what differs, as load_module would refuse it.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use File::Copy qw(copy);

my $root = CT::root();

sub check {
    my ($module) = @_;
    my ($rc, $out) = CT::_capture(['env', "NGINX=$ENV{CT_NGINX}",
        "MODULE=$module", "$root/scripts/check-compat.sh"], merge => 1);
    return ($rc, $out);
}

my ($rc, $out) = check($ENV{CT_MODULE});
is($rc, 0, 'the module under test fits the nginx under test') or diag $out;
like($out, qr/can be loaded/, 'and says so');

my $dir = CT::_fresh_dir('compat', 0755);

# the version member: the 6th word of ngx_module_t, as the script reads it
sub patch_at {
    my ($file, $pos, $bytes) = @_;
    open my $fh, '+<:raw', $file or die "$file: $!";
    seek $fh, $pos, 0;
    print $fh $bytes;
    close $fh;
}

sub version_pos {
    my ($file) = @_;
    my ($value, $ndx) = `readelf -sW $file` =~ /^\s*\d+:\s+([0-9a-f]+)
        \s+\d+\s+OBJECT\s+\w+\s+\w+\s+(\d+)\s+ngx_http_customer_module$/mx
        or die 'no symbol';
    my ($addr, $off) = `readelf -SW $file`
        =~ /^\s*\[\s*$ndx\]\s+\S+\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)/m
        or die 'no section';
    return hex($value) - hex($addr) + hex($off) + 5 * 8;
}

{
    my $copy = "$dir/version.so";
    copy($ENV{CT_MODULE}, $copy) or die $!;
    my $pos = version_pos($copy);
    open my $fh, '<:raw', $copy or die;
    seek $fh, $pos, 0;
    read $fh, my $word, 8;
    close $fh;
    my $v = unpack 'Q<', $word;
    like($v, qr/^10\d{5}$/, "the module's nginx_version reads as $v");
    patch_at($copy, $pos, pack 'Q<', $v + 1);
    my ($rc, $out) = check($copy);
    isnt($rc, 0, 'another nginx_version: refused');
    like($out, qr/version differs/, 'another nginx_version: says so');
}

{
    my $copy = "$dir/signature.so";
    copy($ENV{CT_MODULE}, $copy) or die $!;
    my $data = do { local $/; open my $fh, '<:raw', $copy or die; <$fh> };
    $data =~ /(\d+,\d+,\d+,)([01]{20,})\0/ or die 'no signature';
    my $pos = $-[2];
    my $flip = substr($2, 0, 1) eq '0' ? '1' : '0';
    patch_at($copy, $pos, $flip);
    my ($rc, $out) = check($copy);
    isnt($rc, 0, 'another signature: refused');
    like($out, qr/signature differs/, 'another signature: says so');
}

CT::done_testing();
