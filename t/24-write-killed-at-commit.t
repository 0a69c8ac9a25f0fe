# A write answered 2xx must have committed. PostgreSQL sends a
# statement's rows before the Sync that commits it only when something
# flushes its output buffer early; a backend killed by an immediate
# shutdown does exactly that (its last WARNING is flushed with whatever
# was buffered). So a write whose commit is under way when the server is
# killed arrives at the module with its result and then EOF, and must be
# answered 503 "Outcome unknown", never 201.
#
# The commit is held open by a deferred constraint trigger that sleeps
# (it runs at commit, after the INSERT's result was buffered); the server
# is stopped with -m immediate meanwhile.
#
# `make soak` found it (a 201 loyalty earn missing from the ledger after
# an immediate restart): the pool completed a write on its own result
# instead of at the PGRES_PIPELINE_SYNC that follows the commit.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use File::Temp ();
use JSON::PP ();
use POSIX ();

my $pg = CT::private_pg(durable => 1);
my $ng = CT::nginx_start(conninfo => $pg->conninfo, timeout => '5s',
    allow_log => qr/PostgreSQL/);

my $u = "killed-$$";
my $c = $ng->req(POST => '/api/customers', json => { userId => $u,
    email => "$u\@example.com", fullName => 'Killed At Commit' });
is($c->{status}, 201, 'a customer') or diag($c->{body});
my $id = $c->{json}{data}{customerId};

$pg->sql(q{
    CREATE FUNCTION t_slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_sleep(3); RETURN NULL; END $$;
    CREATE CONSTRAINT TRIGGER t_slow_commit AFTER INSERT ON customer_notes
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
        EXECUTE FUNCTION t_slow_commit();
});

# the request from a child, so that this process can kill the server
my $out = File::Temp->new;
my $pid = fork // die "fork: $!\n";
if (!$pid) {
    my $r = $ng->req(POST => "/api/customers/$id/notes",
        json => { content => 'killed at commit' });
    open my $fh, '>', $out->filename or POSIX::_exit(1);
    print $fh JSON::PP->new->encode({ status => $r->{status},
        body => $r->{body} });
    close $fh;
    POSIX::_exit(0);
}

# the INSERT has run; its commit sleeps in the trigger
ok(CT::wait_for(sub { $pg->sql(q{SELECT count(*) FROM pg_stat_activity
    WHERE wait_event = 'PgSleep'}) > 0 }, timeout => 10),
    'the write waits in its commit');
$pg->stop('immediate');
waitpid($pid, 0);
$pg->start;

my $r = JSON::PP->new->decode(CT::_slurp($out->filename) || '{}');
my $stored = $pg->sql(q{SELECT count(*) FROM customer_notes
    WHERE content = 'killed at commit'});
is($stored, 0, 'the note did not commit (the server was killed first)');

isnt($r->{status}, 201, 'so it is not answered 201') or diag($r->{body});
is($r->{status}, 503, '... but 503 (Outcome unknown)');

done_testing();
