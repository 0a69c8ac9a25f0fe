# The migration that turns the loyalty ledger's and accounts' CHECK
# constraints into domains (sql/034_loyalty_write_cost_2.sql), on a
# database with loyalty rows: it changes both tables in place (no
# rewrite, which on a large ledger would hold it locked for as long as
# copying it and rebuilding its indexes takes), keeps every row as it
# was, and the rules hold afterwards. Earns after it go on from the
# balances before it.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;
use File::Temp ();

my $db = CT::db_create(empty => 1);
my $dir = File::Temp->newdir;
my $UNDER = '034_loyalty_write_cost_2.sql';
ok(-e CT::root() . "/sql/$UNDER", 'the migration is there')
    or BAIL_OUT("no sql/$UNDER");

# the schema before it, and a ledger written by the function of then
my ($rc, $out) = CT::migrate($db, $dir, $UNDER, before => 1);
is($rc, 0, 'the migrations before it') or diag($out);

my @c = map { CT::insert_customer($db, 'domains') } 1 .. 3;
for my $i (0 .. $#c) {
    for my $n (1 .. 50) {
        CT::sql($db, q{SELECT status FROM loyalty_change(:'p1', 'earn',
            :'p2', 'before', 'ref', 'test', NULL, '{}')}, $c[$i]{id},
            $n + $i);
    }
}
CT::sql($db, q{SELECT status FROM loyalty_change(:'p1', 'redeem', 100,
    NULL, NULL, 'test', NULL, '{}')}, $c[0]{id});

my $snapshot = q{SELECT string_agg(customer_id || kind || points
    || balance_after || coalesce(reason, '-') || coalesce(reference, '-'),
    ',' ORDER BY id) || '|' || (SELECT string_agg(customer_id || ' '
    || balance || ' ' || lifetime_points, ',' ORDER BY customer_id)
    FROM loyalty_accounts) FROM loyalty_transactions};
my $rows = CT::sql($db, $snapshot);
my $files = q{SELECT pg_relation_filenode('loyalty_transactions') || ' '
    || pg_relation_filenode('loyalty_accounts') || ' '
    || pg_relation_filenode('loyalty_transactions_customer_idx')};
my $filenodes = CT::sql($db, $files);
is(CT::sql($db, 'SELECT count(*) FROM loyalty_transactions'), 151,
    '151 ledger rows before');

($rc, $out) = CT::migrate($db, $dir, $UNDER);
is($rc, 0, 'the migration applies') or diag($out);
is(CT::sql($db, $files), $filenodes,
    'the ledger, the accounts and their indexes were not rewritten');
is(CT::sql($db, $snapshot), $rows, 'every row as it was');
is(CT::sql($db, q{SELECT string_agg(attname || ' ' || format_type(atttypid,
    NULL), ',' ORDER BY attname) FROM pg_attribute
    WHERE attrelid = 'loyalty_transactions'::regclass
    AND attname IN ('kind', 'points', 'balance_after', 'reason',
                    'reference')}),
    'balance_after loyalty_amount,kind loyalty_kind,points loyalty_points,'
    . 'reason loyalty_reason,reference loyalty_reference',
    'the ledger columns are of the domains');
is(CT::sql($db, q{SELECT count(*) FROM pg_constraint
    WHERE contypid <> 0 AND NOT convalidated}), 0,
    'every domain rule is validated');

ok(!eval { CT::sql($db, q{INSERT INTO loyalty_transactions (customer_id,
    kind, points, balance_after) VALUES (:'p1', 'earn', 0, 1)},
    $c[1]{id}); 1 } && $@ =~ /violates check constraint/,
    'after it: points 0 are refused');
ok(!eval { CT::sql($db, q{UPDATE loyalty_accounts SET balance = -1
    WHERE customer_id = :'p1'}, $c[1]{id}); 1 }
    && $@ =~ /violates check constraint/,
    'after it: a negative balance is refused');

is(CT::sql($db, q{SELECT status || ' ' || (data::json->>'balance') FROM
    loyalty_change(:'p1', 'earn', 5, NULL, NULL, 'test', NULL, '{}')},
    $c[0]{id}), '201 1180', 'an earn after it goes on from the balance '
    . '(1,275 earned, 100 redeemed, 5 more)');

done_testing();
