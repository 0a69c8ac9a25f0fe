# The list totals (customer_counts) have no single hot row: a create, a
# delete and a status or type change add their difference to the slot of
# their own connection, so a transaction that has created a customer and
# not committed yet (holding its slot's row) delays no create or status
# change on another connection. The totals stay exact: 200 concurrent
# creates and a burst of status and type changes and deletes leave every
# status and type's sum of slots equal to count(*), through SQL and
# through the list's totalItems.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use POSIX ();

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db, workers => 2, pool => 4, timeout => '3s');

sub create {
    my ($u, %o) = @_;
    return $ng->req(POST => '/api/customers', json => { userId => $u,
        email => "$u\@example.com", fullName => "Count $u", %o });
}

# warm the pool so that its connections exist and can be told apart
my @ids;
for my $i (1 .. 8) {
    my $r = create("warm-$$-$i");
    die "create: $r->{body}" unless $r->{status} == 201;
    push @ids, $r->{json}{data}{customerId};
}

sub pool_slots {
    my %s = map { $_ => 1 } split /\n/, CT::sql($db, q{SELECT DISTINCT
        pid % 64 FROM pg_stat_activity
        WHERE application_name = 'nginx-customer'});
    return \%s;
}

# a session whose slot no pool connection shares
sub holder {
    for (1 .. 50) {
        my $s = CT::psql_session($db);
        my $slot = $s->run('SELECT pg_backend_pid() % 64');
        $slot =~ s/\D//g;
        return ($s, $slot) unless pool_slots()->{$slot};
        $s->close;
    }
    die 'no session with a slot of its own';
}

{
    my ($s, $slot) = holder();
    $s->run('BEGIN');
    $s->run(q{INSERT INTO customers (user_id, email, full_name)
        VALUES ('held-} . $$ . q{', 'held@example.com', 'Held Open')});
    is($s->run(q{SELECT count(*) FROM pg_locks l JOIN pg_class c
        ON c.oid = l.relation WHERE c.relname = 'customer_counts'
        AND l.pid = pg_backend_pid()}) > 0 ? 1 : 0, 1,
        "an open transaction holds its slot ($slot) of the counts");

    my $r = create("beside-$$");
    is($r->{status}, 201, 'a create beside it answers 201');
    cmp_ok($r->{elapsed}, '<', 1, 'without waiting for the open one');

    $r = $ng->req(PATCH => "/api/customers/$ids[0]/status",
        json => { status => 'Suspended', reason => 'beside' });
    is($r->{status}, 200, 'a status change beside it answers 200')
        or diag $r->{body};
    cmp_ok($r->{elapsed}, '<', 1, 'without waiting either');

    $r = $ng->req(PATCH => "/api/customers/$ids[1]/type",
        json => { type => 'VIP' });
    is($r->{status}, 200, 'a type change beside it answers 200')
        or diag $r->{body};
    cmp_ok($r->{elapsed}, '<', 1, 'without waiting either');

    $s->run('COMMIT');
    $s->close;
}

# many at once, then a mix of changes and deletes
my @kids;
for my $k (1 .. 8) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        my $bad = 0;
        for my $i (1 .. 25) {
            my $r = create("burst-$$-$k-$i",
                customerType => (qw(Regular Premium VIP))[$i % 3]);
            $bad++ unless $r->{status} == 201;
        }
        POSIX::_exit($bad ? 1 : 0);
    }
    push @kids, $pid;
}
my $failed = 0;
for (@kids) { waitpid($_, 0); $failed++ if $? }
is($failed, 0, '200 concurrent creates, from 8 clients, all 201');

cmp_ok(CT::sql($db, q{SELECT count(DISTINCT slot) FROM customer_counts}),
    '>', 1, 'the counts are spread over more than one slot');

my @burst = split /\n/, CT::sql($db, q{SELECT id FROM customers
    WHERE user_id LIKE 'burst-%' ORDER BY id LIMIT 60});
for my $i (0 .. 19) {
    $ng->req(PATCH => "/api/customers/$burst[$i]/status",
        json => { status => (qw(Inactive Suspended))[$i % 2] });
}
for my $i (20 .. 39) {
    $ng->req(PATCH => "/api/customers/$burst[$i]/type",
        json => { type => 'Premium' });
}
for my $i (40 .. 59) {
    $ng->req(DELETE => "/api/customers/$burst[$i]");
}

is(CT::sql($db, q{SELECT count(*) FROM (
        SELECT customer_status, customer_type, count(*) AS n
        FROM customers GROUP BY 1, 2) t
    FULL JOIN (SELECT customer_status, customer_type, sum(n) AS n
        FROM customer_counts GROUP BY 1, 2 HAVING sum(n) <> 0) c
    USING (customer_status, customer_type)
    WHERE t.n IS DISTINCT FROM c.n}), 0,
    'every status and type: the slots sum to count(*)');

for my $st (qw(Active Inactive Suspended)) {
    my $r = $ng->req(GET => "/api/customers?status=$st&limit=1");
    is($r->{json}{data}{pagination}{totalItems},
        CT::sql($db, q{SELECT count(*) FROM customers
            WHERE customer_status = :'p1'}, $st),
        "list status=$st: totalItems is count(*)");
}
my $r = $ng->req(GET => '/api/customers?limit=1');
is($r->{json}{data}{pagination}{totalItems},
    CT::sql($db, 'SELECT count(*) FROM customers'),
    'list: totalItems is count(*)');

$ng->stop;
CT::done_testing();
