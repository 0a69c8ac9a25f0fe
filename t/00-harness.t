# Smoke test: nginx starts with the module, /health answers, and the test
# database was cloned from the migrated template. And the harness's ports:
# one handed out to a test is not handed to another test running at the
# same time until the first ends (it may bind it only much later).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use POSIX ();

my $db = CT::db_create();
cmp_ok(CT::sql($db, 'SELECT count(*) FROM schema_migrations'), '>=', 1,
    'test database has migrations applied');

my $ng = CT::nginx_start(db => $db);
my $r = $ng->req(GET => '/health');
is($r->{status}, 200, 'GET /health is 200');
ok($r->{json} && $r->{json}{success}, 'GET /health says success')
    or diag($r->{body});
like($r->{headers}{'content-type'} // '', qr{^application/json},
    'GET /health is JSON');

# a port reserved by this test: another live test cannot take it; once
# that other test is gone, its reservation can be taken over
my $port = CT::free_port();
ok(!CT::_reserve_port($port), "port $port is not handed out twice");
pipe my $rd, my $wr or die "pipe: $!";
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    close $rd;
    print $wr CT::_reserve_port($port) ? "taken\n" : "refused\n";
    close $wr;
    POSIX::_exit(0);
}
close $wr;
my $child = <$rd>;
waitpid $pid, 0;
is($child, "refused\n", 'another live test cannot take a reserved port');

my $other = CT::free_port();
unlink "$ENV{CT_RUN_DIR}/ports/$other";
$pid = fork // die "fork: $!";
if ($pid == 0) {
    POSIX::_exit(CT::_reserve_port($other) ? 0 : 1);
}
waitpid $pid, 0;
is($? >> 8, 0, 'a test reserves a free port');
ok(CT::_reserve_port($other),
    'a reservation whose test has ended is taken over');

# make test with a mistyped file in TESTS stops before it starts anything:
# prove would have started the other files and left their nginx running
{
    local $ENV{TESTS} = 't/00-harness.t t/no-such-file.t';
    my $out = `"$FindBin::Bin/../scripts/test.sh" 2>&1`;
    is($? >> 8, 2, 'a missing test file: make test exits 2');
    like($out, qr{no such test file: t/no-such-file\.t},
        'a missing test file: it is named');
    unlike($out, qr{pg: test cluster}, 'a missing test file: nothing started');
}

done_testing();
