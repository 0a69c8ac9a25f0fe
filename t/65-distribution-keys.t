# Past one primary (README): every table is ready to be distributed by
# customer_id, co-located with customers, or is listed here with the
# reason why not. Read from the real schema of a test database.
#
# The rule: a table holding customer data is keyed when its primary key
# includes customer_id (customers itself: its primary key is (id), the
# same value). Being reachable from a keyed parent through a foreign key
# is not enough: Citus co-locates rows by the distribution column in each
# table's own rows, and refuses a primary key or unique constraint of a
# distributed table that leaves it out.
#
# A new table must be keyed or added to one of the lists below; a listed
# table that has been keyed meanwhile must leave its list. The lists are
# the README's plan: keep the two in step.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $db = CT::db_create();

# not customer data, or not one customer's: reference tables (copied to
# every node) and tables of the coordinator
my %NOT_CUSTOMER = (
    schema_migrations => 'bookkeeping of the migrations; stays on the '
        . 'coordinator',
    credit_bands => 'reference table: five bands, read by every shard',
    credit_settings => 'reference table: settings, read by every shard',
    loyalty_tiers => 'reference table: four tiers, read by every shard',
    survey_questions => 'reference table: the survey, read by every shard',
    score_weights => 'reference table: the estimate\'s weights, read by '
        . 'every shard',
    customer_counts => 'totals over all customers per status and type; '
        . 'becomes per-shard counters summed across shards (README)',
    customer_search_vocab => 'the words of letters of all customers\' '
        . 'names and e-mails, each once, for misspelt searches: a reference '
        . 'table (a new word is rare)',
    idempotency_keys => 'keyed by the caller (a token subject or '
        . '"service"), not by a customer; distributed by caller (README)',
    event_types => 'reference table: the event types, read by every '
        . 'shard',
    event_once => 'the keys of time-based events, unique over all '
        . 'customers; on the coordinator with events',
    event_scan => 'one row: when the periodic scan last ran; on the '
        . 'coordinator',
);

# customer data that is not keyed yet: the primary key is a surrogate id
# alone; before distribution it becomes (customer_id, id), as README says
my %TO_REKEY = (
    customer_status_history => 'bigserial id',
    customer_notes => 'uuid id',
    credit_history => 'bigserial id',
    credit_alerts => 'uuid id',
    loyalty_transactions => 'uuid id',
    vehicles => 'uuid id (and VIN unique across customers)',
    service_records => 'uuid id; its vehicle by vehicle_id alone',
    documents => 'uuid id; its vehicle by vehicle_id alone',
    document_contents => 'document_id, no customer_id column: gains one',
);

# customer data that stays on the coordinator, as a local table
my %COORDINATOR = (
    events => 'the event outbox (the Auth Service\'s status updates '
        . 'too): the outbox run claims due rows of every customer with '
        . 'FOR UPDATE SKIP LOCKED, which Citus runs only on one shard; a '
        . 'change then writes a worker and the coordinator (2PC)',
);

# unique constraints that do not include customer_id, which a distributed
# table cannot enforce (besides the primary keys of %TO_REKEY)
my %GLOBAL_UNIQUE = (
    'customers.customers_user_id_key' => 'one record per Auth Service '
        . 'user: a user_id → customer_id table distributed by user_id',
    'vehicles.vehicles_vin_key' => 'a VIN on one vehicle: a vin → '
        . 'vehicle table distributed by vin',
);

my @tables = CT::sql($db, q{SELECT c.relname FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
    ORDER BY 1});
ok(scalar(grep { $_ eq 'customers' } @tables), 'the schema is there')
    or BAIL_OUT('no customers table');

# a table's columns: name → NOT NULL
sub columns {
    my ($t) = @_;
    return map { split /\|/ } CT::sql($db, q{SELECT column_name,
        (is_nullable = 'NO')::int FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name = :'p1'}, $t);
}

# the columns of a constraint or index, in order
sub pk_columns {
    my ($t) = @_;
    return CT::sql($db, q{SELECT a.attname FROM pg_index x
        JOIN LATERAL unnest(x.indkey) WITH ORDINALITY k(attnum, o) ON true
        JOIN pg_attribute a ON a.attrelid = x.indrelid
            AND a.attnum = k.attnum
        WHERE x.indisprimary AND x.indrelid = ('public.' || :'p1')::regclass
        ORDER BY k.o}, $t);
}

sub keyed {
    my ($t) = @_;
    my @pk = pk_columns($t);
    return $t eq 'customers' ? "@pk" eq 'id'
        : scalar grep { $_ eq 'customer_id' } @pk;
}

for my $t (@tables) {
    my %col = columns($t);
    my @pk = pk_columns($t);

    ok(@pk, "$t has a primary key");

    if ($NOT_CUSTOMER{$t}) {
        ok(!exists $col{customer_id},
            "$t: not customer data ($NOT_CUSTOMER{$t}), no customer_id");
        next;
    }

    if ($COORDINATOR{$t}) {
        ok($col{customer_id}, "$t: stays on the coordinator "
            . "($COORDINATOR{$t}); its rows name their customer");
        next;
    }

    if ($TO_REKEY{$t}) {
        ok(!keyed($t), "$t: not keyed yet ($TO_REKEY{$t}); once its "
            . 'primary key includes customer_id, take it off %TO_REKEY');
        # what makes the change a primary key, not a data migration
        if ($t eq 'document_contents') {
            is(CT::sql($db, q{SELECT confrelid::regclass FROM pg_constraint
                WHERE contype = 'f'
                  AND conrelid = 'public.document_contents'::regclass}),
                'documents', "$t: reaches its customer through documents");
        } else {
            ok($col{customer_id}, "$t: has a NOT NULL customer_id");
        }
        next;
    }

    ok(keyed($t), "$t: its primary key (@pk) includes customer_id, or it "
        . 'is listed in t/65 with the reason why not');
}

# the lists name real tables
my %have = map { $_ => 1 } @tables;
for my $t (sort(keys %NOT_CUSTOMER), sort(keys %TO_REKEY),
    sort(keys %COORDINATOR))
{
    ok($have{$t}, "listed table $t exists");
}

# unique constraints of customer data include the key
for my $row (CT::sql($db, q{SELECT c.relname, i.relname, x.indisprimary,
        coalesce(string_agg(a.attname, ',' ORDER BY k.o), '')
    FROM pg_index x
    JOIN pg_class c ON c.oid = x.indrelid
    JOIN pg_class i ON i.oid = x.indexrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN LATERAL unnest(x.indkey) WITH ORDINALITY k(attnum, o) ON true
    LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid
        AND a.attnum = k.attnum
    WHERE n.nspname = 'public' AND x.indisunique
    GROUP BY 1, 2, 3 ORDER BY 1, 2}))
{
    my ($t, $index, $primary, $cols) = split /\|/, $row;
    next if $NOT_CUSTOMER{$t} || $COORDINATOR{$t};
    next if $TO_REKEY{$t} && $primary eq 't';
    my %in = map { $_ => 1 } split /,/, $cols;
    ok($in{customer_id} || ($t eq 'customers' && $in{id})
        || $GLOBAL_UNIQUE{"$t.$index"},
        "$t: unique $index ($cols) includes the distribution column"
        . ($GLOBAL_UNIQUE{"$t.$index"}
            ? " or is listed: $GLOBAL_UNIQUE{\"$t.$index\"}" : ''));
}

# foreign keys between keyed tables carry customer_id (Citus needs the
# distribution column in a key between co-located tables)
for my $row (CT::sql($db, q{SELECT conrelid::regclass::text,
        confrelid::regclass::text, conname,
        (SELECT string_agg(attname, ',') FROM pg_attribute
         WHERE attrelid = conrelid AND attnum = ANY (conkey))
    FROM pg_constraint WHERE contype = 'f' ORDER BY 1, 3}))
{
    my ($t, $parent, $name, $cols) = split /\|/, $row;
    next unless keyed($t) && keyed($parent);
    ok(scalar(grep { $_ eq 'customer_id' } split /,/, $cols),
        "$t: foreign key $name to $parent is on customer_id");
}

done_testing();
