# Smoke test: nginx starts with the module, /health answers, and the test
# database was cloned from the migrated template.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

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

done_testing();
