# A write whose answer is lost after PostgreSQL committed it is never sent
# again. A relay between nginx and PostgreSQL waits, for one chosen
# statement (one whose Bind carries a marker), until PostgreSQL answered
# its Sync with ReadyForQuery (the commit is done), then resets both sides
# instead of passing the answer on. The write is stored exactly once, the
# client gets a 503 saying the outcome is unknown, and a retry with the
# same Idempotency-Key answers the stored result. A read that loses its
# answer the same way is sent again and answers 200. And statements the
# server forgot (the relay slips a DEALLOCATE ALL in before the Bind, as
# DISCARD ALL or a transaction pooler would) are prepared again and sent
# once more: 26000 means the statement never ran.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Socket qw(SOL_SOCKET SO_LINGER);

my $db = CT::db_create();
my $dir = CT::_fresh_dir('relay', 0777);
my $MARK = "$dir/marker";
my $FIRED = "$dir/fired";

# --- the relay ---------------------------------------------------------

sub reset_close {
    my ($s) = @_;
    setsockopt($s, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
    close $s;
}

sub touch_fired {
    open my $f, '>>', $FIRED or die "$FIRED: $!";
    print $f "fired\n";
    close $f;
}

sub relay_conn {
    my ($c) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $ENV{CT_PGPORT}, Proto => 'tcp') or POSIX::_exit(1);
    my $sel = IO::Select->new($c, $s);
    my ($cbuf, $sbuf, $started, $armed, $synced, $swallow)
        = ('', '', 0, 0, 0, 0);
    while (1) {
        for my $h ($sel->can_read) {
            my $n = sysread($h, my $data, 65536);
            POSIX::_exit(0) unless $n;
            if ($h == $c) {
                $cbuf .= $data;
                # forward whole messages; look at Bind and Sync
                while (1) {
                    if (!$started) {
                        last if length $cbuf < 4;
                        my $len = unpack 'N', $cbuf;
                        last if length $cbuf < $len;
                        syswrite $s, substr($cbuf, 0, $len, '');
                        $started = 1;
                        next;
                    }
                    last if length $cbuf < 5;
                    my ($type, $len) = unpack 'a N', $cbuf;
                    last if length $cbuf < $len + 1;
                    my $msg = substr($cbuf, 0, $len + 1, '');
                    if ($type eq 'B' && -e $MARK) {
                        my $m = CT::_slurp($MARK);
                        if ($m =~ s/^deallocate://) {
                            # drop the session's prepared statements just
                            # before this Bind, and hide the answer to that
                            if (length $m && index($msg, $m) >= 0) {
                                unlink $MARK;
                                my $q = "DEALLOCATE ALL\0";
                                syswrite $s, 'Q' . pack('N', 4 + length $q) . $q;
                                $swallow = 1;
                                touch_fired();
                            }
                        } elsif (length $m && index($msg, $m) >= 0) {
                            $armed = 1;
                        }
                    }
                    syswrite $s, $msg;
                    $synced = 1 if $type eq 'S' && $armed;
                }
            } else {
                if ($swallow) {
                    # the injected query's CommandComplete and ReadyForQuery
                    $sbuf .= $data;
                    while ($swallow && length $sbuf >= 5) {
                        my ($type, $len) = unpack 'a N', $sbuf;
                        last if length $sbuf < $len + 1;
                        substr($sbuf, 0, $len + 1, '');
                        $swallow = 0 if $type eq 'Z';
                    }
                    next if $swallow;
                    ($data, $sbuf) = ($sbuf, '');
                    next unless length $data;
                }
                if (!$synced) {
                    syswrite $c, $data;
                    next;
                }
                # hold the answer back; once ReadyForQuery came, cut both
                $sbuf .= $data;
                while (length $sbuf >= 5) {
                    my ($type, $len) = unpack 'a N', $sbuf;
                    last if length $sbuf < $len + 1;
                    substr($sbuf, 0, $len + 1, '');
                    next unless $type eq 'Z';
                    unlink $MARK;
                    touch_fired();
                    reset_close($c);
                    reset_close($s);
                    POSIX::_exit(0);
                }
            }
        }
    }
}

my $RELAY_PORT = CT::tcp_server(\&relay_conn, fork => 1);

# one connection in the pool, so that a retry would go through a new one
my $ng = CT::nginx_start(workers => 1, pool => 1, timeout => '5s',
    conninfo => "host=127.0.0.1 port=$RELAY_PORT dbname=$db"
        . " user=$ENV{CT_PGUSER} sslmode=disable gssencmode=disable",
    allow_log => qr/PostgreSQL connection failed|prepared statements were dropped/);

sub make_customer {
    my ($id) = CT::make_customer($ng, 'once');
    # the pool's connection has served: the case where a retry was made
    $ng->req(GET => "/api/customers/$id")->{status} == 200 or die 'GET';
    return $id;
}

sub arm {
    my ($marker) = @_;
    unlink $FIRED;
    open my $f, '>', "$MARK.tmp" or die $!;
    print $f $marker;
    close $f;
    rename "$MARK.tmp", $MARK or die $!;
}

sub fired { -e $FIRED }

sub unknown_outcome {
    my ($r, $name) = @_;
    ok(fired(), "$name: the relay cut the answer after the commit");
    is($r->{status}, 503, "$name: 503") or diag($r->{body});
    is($r->{json} && $r->{json}{message}, 'Outcome unknown',
        "$name: the message says the outcome is unknown");
    like($r->{json} && $r->{json}{errors}[0]{message}, qr/may or may not/,
        "$name: and that the change may have been applied");
}

# --- a note --------------------------------------------------------------

{
    my $id = make_customer();
    arm($id);
    my $r = $ng->req(POST => "/api/customers/$id/notes",
        json => { content => 'exactly once' });
    unknown_outcome($r, 'note');
    is(CT::sql($db, q{SELECT count(*) FROM customer_notes
        WHERE customer_id = :'p1'}, $id), 1, 'note: stored exactly once');
}

# --- an increment ----------------------------------------------------------

{
    my $id = make_customer();
    arm($id);
    my $r = $ng->req(PATCH => "/api/customers/internal/$id/statistics",
        auth => 'service', json => { increment => { totalOrders => 1 } });
    unknown_outcome($r, 'increment');
    is(CT::sql($db, q{SELECT total_orders FROM customers WHERE id = :'p1'},
        $id), 1, 'increment: applied exactly once');
}

# --- an earn, without and with an Idempotency-Key --------------------------

{
    my $id = make_customer();
    arm($id);
    my $r = $ng->req(POST => "/api/customers/$id/loyalty/earn",
        json => { points => 10, reason => 'no key' });
    unknown_outcome($r, 'earn');
    is(CT::sql($db, q{SELECT count(*) FROM loyalty_transactions
        WHERE customer_id = :'p1'}, $id), 1, 'earn: one ledger row');
    is(CT::sql($db, q{SELECT balance FROM loyalty_accounts
        WHERE customer_id = :'p1'}, $id), 10, 'earn: balance 10');

    my $key = "once-key-$$";
    arm($id);
    $r = $ng->req(POST => "/api/customers/$id/loyalty/earn",
        headers => { 'Idempotency-Key' => $key },
        json => { points => 5, reason => 'keyed' });
    unknown_outcome($r, 'earn with a key');
    $r = $ng->req(POST => "/api/customers/$id/loyalty/earn",
        headers => { 'Idempotency-Key' => $key },
        json => { points => 5, reason => 'keyed' });
    is($r->{status}, 201, 'the retry with the same key: 201')
        or diag($r->{body});
    is($r->{json}{data}{balance}, 15, 'the stored answer: balance 15');
    is(CT::sql($db, q{SELECT count(*) FROM loyalty_transactions
        WHERE customer_id = :'p1'}, $id), 2, 'still two ledger rows');
    is(CT::sql($db, q{SELECT balance FROM loyalty_accounts
        WHERE customer_id = :'p1'}, $id), 15, 'balance 15');
}

# --- any write route with an Idempotency-Key ------------------------------

{
    my $id = make_customer();
    my $key = "note-key-$$";
    arm($id);
    my $r = $ng->req(POST => "/api/customers/$id/notes",
        headers => { 'Idempotency-Key' => $key },
        json => { content => 'keyed, answer lost' });
    unknown_outcome($r, 'note with a key');
    $r = $ng->req(POST => "/api/customers/$id/notes",
        headers => { 'Idempotency-Key' => $key },
        json => { content => 'keyed, answer lost' });
    is($r->{status}, 409, 'the retry with the key: 409, not a second note')
        or diag($r->{body});
    is($r->{json}{message}, 'Request already applied',
        'saying the request was applied');
    is($r->{json}{errors}[0]{field}, 'Idempotency-Key', 'naming the key');
    is(CT::sql($db, q{SELECT count(*) FROM customer_notes
        WHERE customer_id = :'p1'}, $id), 1, 'one note');

    # the key's claim and the write are one transaction: a write that
    # failed leaves no key behind, and the retry runs
    $r = $ng->req(PATCH => "/api/customers/$id",
        headers => { 'Idempotency-Key' => "$key-2" },
        json => { email => 'not an email' });
    is($r->{status}, 400, 'a refused write with a key: 400');
    $r = $ng->req(PATCH => "/api/customers/$id",
        headers => { 'Idempotency-Key' => "$key-2" },
        json => { fullName => 'Fixed Body' });
    is($r->{status}, 200, 'the key is free for the corrected request')
        or diag($r->{body});
}

# --- a read is sent again ----------------------------------------------------

{
    my $id = make_customer();
    arm($id);
    my $r = $ng->req(GET => "/api/customers/$id");
    ok(fired(), 'read: the relay cut the answer');
    is($r->{status}, 200, 'read: answered 200 after a retry')
        or diag($r->{body});
    is($r->{json}{data}{customerId}, $id, 'read: its own record');
}

# --- prepared statements the server dropped (DISCARD ALL, a pooler) ----------

{
    my $id = make_customer();
    for my $round (1 .. 2) {
        arm("deallocate:$id");
        my $r = $ng->req(GET => "/api/customers/$id");
        ok(fired(), "dropped statements $round: DEALLOCATE ALL went first");
        is($r->{status}, 200, "dropped statements $round: prepared again, 200")
            or diag($r->{body});
        is($r->{json}{data}{customerId}, $id, "dropped statements $round: "
            . 'the record');
    }
    arm("deallocate:$id");
    my $r = $ng->req(POST => "/api/customers/$id/notes",
        json => { content => 'after DEALLOCATE' });
    ok(fired(), 'dropped statements, a write: DEALLOCATE ALL went first');
    is($r->{status}, 201, 'a write that found its statement gone: 201')
        or diag($r->{body});
    is(CT::sql($db, q{SELECT count(*) FROM customer_notes
        WHERE customer_id = :'p1' AND content = 'after DEALLOCATE'}, $id), 1,
        'and it is stored once');
    like($ng->error_log, qr/prepared statements were dropped/,
        'the error log says what happened');
}

is($ng->req(GET => '/health', auth => 'none')->{status}, 200,
    'the pool is healthy afterwards');

$ng->stop;
CT::done_testing();
