# A query the module gives up on (customer_db_timeout) is not left to run:
# its connection is dropped and its backend terminated from another
# connection of the pool, so a write that waited on a lock cannot commit
# after the client was told 503. The termination is logged and counted in
# customer_db_terminated_total; other requests are served meanwhile.
#
# The wait is in a deferred constraint trigger, which runs at commit,
# where the server's own statement_timeout no longer applies: only the
# termination stops it.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db, timeout => '1s', pool => 4,
    server_extra => "location = /metrics { customer_metrics; }\n",
    allow_log => qr/PostgreSQL query timed out|terminated PostgreSQL backend/);

my $u = "term-$$";
my $c = $ng->req(POST => '/api/customers', json => { userId => $u,
    email => "$u\@example.com", fullName => 'Term Inate' });
is($c->{status}, 201, 'a customer') or diag($c->{body});
my $id = $c->{json}{data}{customerId};

sub waiting_backends {
    CT::sql($db, q{SELECT count(*) FROM pg_stat_activity
        WHERE application_name = 'nginx-customer' AND wait_event_type = 'Lock'});
}

CT::sql($db, q{
    CREATE FUNCTION t_wait() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NULL; END $$;
    CREATE CONSTRAINT TRIGGER t_wait AFTER INSERT ON customer_notes
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION t_wait();
});

my $s = CT::psql_session($db);
$s->run('BEGIN');
$s->run('SELECT pg_advisory_xact_lock(4242)');

my $r = $ng->req(POST => "/api/customers/$id/notes",
    json => { content => 'must not land' });
is($r->{status}, 503, 'the write waiting at its commit: 503 after the timeout')
    or diag($r->{body});
is($r->{json} && $r->{json}{message}, 'Outcome unknown', 'outcome unknown');

# the backend is gone while the lock is still held
ok(CT::wait_for(sub { waiting_backends() == 0 }, timeout => 5),
    'no backend of the pool waits on the lock any more');
$s->run('COMMIT');
$s->close;

# with the lock released, a backend still running would commit now
is($ng->req(GET => "/api/customers/$id")->{status}, 200,
    'the pool serves the next request');
is(CT::sql($db, q{SELECT count(*) FROM customer_notes
    WHERE customer_id = :'p1'}, $id), 0, 'the timed-out note never landed');

ok(CT::wait_for(sub { $ng->error_log =~ /terminated PostgreSQL backend \d+/ },
    timeout => 5), 'the error log names the terminated backend');
my $m = $ng->req(GET => '/metrics', auth => 'none');
like($m->{body}, qr/^customer_db_terminated_total\{worker="0"\} 1$/m,
    'customer_db_terminated_total counts it');

$ng->stop;
CT::done_testing();
