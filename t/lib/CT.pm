package CT;

# Test harness for the customer module (core Perl only).
#
#   use CT;                         # also gives Test::More's functions
#   my $db = CT::db_create();       # fresh database from customer_template
#   my $ng = CT::nginx_start(db => $db, pool => 4);
#   # trigger => '200ms': the outbox trigger aimed at this nginx itself
#   my $r  = $ng->req(GET => '/health');
#   is($r->{status}, 200); is($r->{json}{success}, JSON::PP::true);
#   done_testing();                 # stops nginx, checks its error.log
#
# Functions: db_create, migrate, nginx_start, nginx_start_conf, nginx_test_conf,
# conf_example, sql, psql_session, private_pg, peer_start, peer_conf,
# free_port, wait_for, root, static_paths, error_recipe, and the endpoint
# table with its documents: route_table, openapi_ops, readme_routes (see
# below). Every nginx_start also serves /api/openapi.json
# (openapi/openapi.json) and /docs/ (Swagger UI from build/swagger-ui) as
# conf/nginx.conf does.
# Everything started here is stopped at the end of the test file; nginx's error.log must not contain [alert],
# [crit] or [emerg] (pass allow_log => qr/.../ to nginx_start to permit
# expected lines). Stopping an nginx is itself a test (one per instance):
# prefer done_testing() to a fixed plan. Set CT_KEEP=1 to keep the runtime directories; they are
# kept anyway when a test failed. CT_LOG_LEVEL sets nginx's error_log level
# (info by default; debug for the pool's and nginx's event-by-event log).
#
# Peer services (stand-ins for the Auth, Order and Complaint services):
#
#   my $peer = CT::peer_start(handler => sub {
#       my ($req) = @_;             # {method, path, query, args, headers,
#       return [200, {}, '{}'];     #  body, json}
#   });
#   my ($http, $server) = CT::peer_conf(orders => $peer->port, key => 'k');
#   my $ng = CT::nginx_start(db => $db, http_extra => $http,
#       server_extra => $server);
#   # the same in one: nginx_start(db => $db, peers => { orders => $peer,
#   #     key => 'k' }) (peers: peer_conf's arguments)
#
# nginx_start(documents => SIZE or [MAX, BUFFER]) gives the documents
# upload location its own client_max_body_size and client_body_buffer_size
# (SIZE: both), as conf/nginx.conf does.
#   my @calls = $peer->requests;    # what the peer was sent, in order
#
# peer_start(handler => CODE, port => undef) listens on 127.0.0.1 (a free
# port, or the one given) before it returns; a child process accepts and
# forks one process per connection, so the handler may sleep, and state it
# keeps in variables does not survive from one request to the next. $req:
# method, path, query (the raw string after '?', '' if none), args
# (decoded query parameters; the last of repeated names wins), headers
# (lower-case names; repeated ones joined with ", "), body (bytes,
# Content-Length or chunked), json (the body decoded, or undef). The
# handler returns [STATUS, {headers}, BODY]: BODY is bytes, or a reference
# sent as JSON; Content-Type defaults to application/json; Content-Length
# (unless the handler sets one) and Connection: close are added. A handler
# that returns nothing (or dies: a warning, then 500) plays a peer that
# hangs up without answering. Every request is recorded (one JSON line in
# the peer's directory, written before the handler runs). Methods: port,
# requests (list of $req), clear, stop (nothing listens afterwards), start
# (listen again on the same port), handler(CODE) (a new handler, the
# socket stays open; requests in progress are cut off), dir.
# peer_conf(auth => PORT, orders => PORT, complaints => PORT,
# read_timeout => '1s', key => undef, user_check => 0): (http_extra,
# server_extra) for nginx_start: an upstream, a customer_*_service
# directive and an internal proxy_pass location /_svc/NAME/ for each
# service given (PORT may be a peer), and customer_peer_key when key is
# given. With auth, customer_auth_user_check is off unless user_check is
# true: most stand-ins answer only what their test is about, not the
# user lookup every create would make. free_port(): a port
# nothing listens on.
#
# Environment (exported by scripts/test.sh): CT_PGHOST, CT_PGPORT,
# CT_PGUSER, CT_MODULE, CT_RUN_DIR, CT_PG_BIN; optional CT_NGINX.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(basename dirname);
use File::Path qw(make_path remove_tree);
use Fcntl qw(O_WRONLY O_CREAT O_EXCL);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use IPC::Open3 qw(open3);
use JSON::PP ();
use MIME::Base64 ();
use Digest::SHA ();
use POSIX qw(WNOHANG);
use Test::More ();
use Time::HiRes qw(time sleep);

my $ROOT = abs_path(dirname(__FILE__) . '/../..');
my $MAIN_PID = $$;

my (@NGINX, @SESSIONS, @PGS, @DBS, @DIRS, @PEERS);
my $IN_END = 0;
my %DB_SEQ;

# Defaults for running a single file by hand (prove -I t/lib t/x.t) while
# the test cluster is up (scripts/pg.sh start test).
if (grep { !defined $ENV{$_} } qw(CT_RUN_DIR CT_MODULE CT_PG_BIN)) {
    open my $fh, '-|', 'bash', '-c',
        '. "$1/scripts/env.sh" && printf "%s\n" "$RUN_DIR" "$MODULE"'
        . ' "$PG_BIN" "$PG_TEST_PORT"', '_', $ROOT
        or die "CT: cannot source scripts/env.sh: $!\n";
    my @v = map { chomp; $_ } <$fh>;
    close $fh or die "CT: scripts/env.sh failed\n";
    $ENV{CT_RUN_DIR} //= $v[0];
    $ENV{CT_MODULE}  //= $v[1];
    $ENV{CT_PG_BIN}  //= $v[2];
    $ENV{CT_PGPORT}  //= $v[3];
}
$ENV{CT_PGHOST} //= '127.0.0.1';
$ENV{CT_PGPORT} //= 54339;
$ENV{CT_PGUSER} //= 'customer';

my $NGINX = $ENV{CT_NGINX} // '/usr/sbin/nginx';

# Credentials every test nginx is configured with (see nginx_start):
# tokens are HS256 with $JWT_SECRET; two service keys, as during rotation.
our $JWT_SECRET = 'test-jwt-secret-0123456789abcdef0123456789abcdef';
our @SERVICE_KEYS = ('test-service-key-0123456789abcdef',
    'test-service-key-rotated-fedcba9876543210');
my $PG_BIN = $ENV{CT_PG_BIN};

# Make prove's timeouts and Ctrl-C run the END cleanup.
for my $sig (qw(INT TERM HUP)) {
    $SIG{$sig} = sub { exit 1 } unless $SIG{$sig};
}


# `use CT;` exports Test::More (plan arguments pass through) with a
# done_testing that first stops everything and checks the logs as tests.
sub import {
    my ($class, @plan) = @_;
    my $caller = caller;

    eval "package $caller; Test::More->import(\@plan); 1" or die $@;
    no strict 'refs';
    no warnings 'redefine';
    *{"${caller}::done_testing"} = \&done_testing;
    *{"${caller}::$_"} = \&{"CT::$_"} for qw(fields_of field_set is_error);
    *{"${caller}::$_"} = \${"CT::$_"} for qw(TS UUID MISSING T F);
}


# --- what the tests of the API share ------------------------------------
#
# $TS, $UUID: a timestamp and an id as the API writes them; $MISSING: a
# customer id nobody has; $T, $F: JSON true and false.
# fields_of($r): the fields its errors name, in order; field_set($r):
# sorted. is_error($r, STATUS, MESSAGE, [FIELDS], NAME): an error
# envelope (MESSAGE and FIELDS are checked when defined).
# uniq(TAG): a fresh user id; make_customer($ng, TAG, %fields): a record
# made through the API ("via => 'internal'": by the service route), its
# (customerId, userId).

our $TS = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\z/;
our $UUID =
    qr/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\z/;
our $MISSING = '00000000-0000-4000-8000-000000000000';
our $T = JSON::PP::true;
our $F = JSON::PP::false;

my $UNIQ = 0;

sub fields_of {
    my ($r) = @_;
    my $j = $r->{json};
    return [] unless ref $j eq 'HASH' && ref $j->{errors} eq 'ARRAY';
    return [ map { $_->{field} // '' } @{ $j->{errors} } ];
}

sub field_set { [ sort @{ fields_of($_[0]) } ] }

sub is_error {
    my ($r, $status, $message, $fields, $name) = @_;
    my $j = $r->{json};
    Test::More::is($r->{status}, $status, "$name: $status")
        or Test::More::diag($r->{body});
    Test::More::ok(ref $j eq 'HASH' && exists $j->{success}
        && !$j->{success} && defined $j->{message}
        && ref $j->{errors} eq 'ARRAY' && @{ $j->{errors} },
        "$name: the error envelope") or Test::More::diag($r->{body});
    Test::More::is(ref $j eq 'HASH' && $j->{message}, $message,
        "$name: message") if defined $message;
    Test::More::is_deeply(field_set($r), [sort @$fields],
        "$name: errors name @$fields") or Test::More::diag($r->{body})
        if $fields;
}

sub uniq { "$_[0]-$$-" . ++$UNIQ }

# row_of($db, TABLE, ID): the stored row as JSON text, '' when there is
# none (or ID is no UUID); lock_waiters($db): statements of nginx's pool
# waiting on a lock in the server.
sub row_of {
    my ($db, $table, $id) = @_;
    return '' unless defined $id && $id =~ $UUID;
    return scalar sql($db, qq{SELECT row_to_json(t)::text
        FROM $table t WHERE id = :'p1'}, $id);
}

# lock_row($db, ID): a psql session holding customer ID's row lock, in a
# transaction it keeps open until ->run('ROLLBACK').
sub lock_row {
    my ($db, $id) = @_;
    my $s = psql_session($db);
    $s->run('BEGIN');
    $s->run("SELECT 1 FROM customers WHERE id = '$id' FOR UPDATE");
    return $s;
}

sub lock_waiters {
    my ($db) = @_;
    return sql($db, q{SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database()
        AND application_name = 'nginx-customer'
        AND wait_event_type = 'Lock'});
}

# async_req($ng, METHOD, PATH, JSON): an Administrator's request sent
# in the background, raw HTTP/1.0 on its own socket (the answer ends when
# nginx closes); async_answered($a): true once something came back.
sub async_req {
    my ($ng, $method, $path, $json) = @_;
    my $body = defined $json
        ? JSON::PP->new->utf8->canonical->encode($json) : undef;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $ng->port, Proto => 'tcp', Timeout => 5)
        or die "connect: $!\n";
    my $req = "$method $path HTTP/1.0\r\nHost: localhost\r\n"
        . "Authorization: Bearer " . admin_token() . "\r\n";

    $req .= "Content-Type: application/json\r\n"
        . 'Content-Length: ' . length($body) . "\r\n" if defined $body;
    $req .= "\r\n" . ($body // '');
    syswrite($s, $req) == length $req or die "write: $!\n";
    return { sock => $s, t0 => time, buf => '', method => $method,
        path => $path, json_in => $json, what => "$method $path" };
}

sub async_answered {
    return IO::Select->new($_[0]{sock})->can_read(0) ? 1 : 0;
}

# unread($ng, SOCKETS): how many of these client sockets' requests nginx
# has not read yet: the receive queues of nginx's side of them
# (/proc/net/tcp, ports in hex). nginx reads a small request whole and
# hands it on in the same turn of its event loop, so 0 means all of them
# are in the module (waiting for a connection, say); with the worker
# stopped, the count of those whose bytes have arrived.
sub unread {
    my ($ng, @socks) = @_;
    my %ours = map { sprintf('%04X', $_->sockport) => 1 } @socks;
    my $srv = sprintf '%04X', $ng->port;
    my $n = 0;
    open my $t, '<', '/proc/net/tcp' or die "/proc/net/tcp: $!";
    while (<$t>) {
        my (undef, $local, $remote, undef, $queues) = split ' ';
        next unless defined $queues && $local =~ /:$srv\z/;
        my ($rport) = $remote =~ /:([0-9A-F]{4})\z/ or next;
        next unless $ours{$rport};
        my (undef, $rx) = split /:/, $queues;
        $n++ if hex $rx;
    }
    return $n;
}

# stop_worker($pid): SIGSTOP, and back once the process is stopped ('T'
# in /proc/PID/stat). A worker in epoll_wait, woken by the signal, may
# return from it with what arrived before it stopped: requests sent only
# after this returns are all read in its first turn after SIGCONT.
sub stop_worker {
    my ($pid) = @_;
    kill 'STOP', $pid;
    wait_for(sub {
        open my $f, '<', "/proc/$pid/stat" or return 0;
        my $stat = <$f> // '';
        return $stat =~ /^\d+ \(.*\) (\S)/ && $1 eq 'T';
    }) or die "worker $pid did not stop\n";
    return 1;
}

# VINs (ISO 3779): vin_check(VIN) is the character position 9 must hold
# (undef: a bad length or character), with_check(VIN) sets it, and
# new_vin(PREFIX) is a fresh valid VIN: the 10 characters of PREFIX and a
# serial number.
my @VIN_CHARS = grep { !/[IOQ]/ } ('0' .. '9', 'A' .. 'Z');
my %VIN_VALUE = ((map { ($_ => $_) } 0 .. 9),
    A => 1, B => 2, C => 3, D => 4, E => 5, F => 6, G => 7, H => 8,
    J => 1, K => 2, L => 3, M => 4, N => 5, P => 7, R => 9,
    S => 2, T => 3, U => 4, V => 5, W => 6, X => 7, Y => 8, Z => 9);
my @VIN_WEIGHT = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2);
my $VINS = 0;

sub vin_check {
    my @c = split //, uc $_[0];
    return undef unless @c == 17;
    my $sum = 0;
    for my $i (0 .. 16) {
        my $v = $VIN_VALUE{ $c[$i] };
        return undef unless defined $v;
        $sum += $v * $VIN_WEIGHT[$i];
    }
    return $sum % 11 == 10 ? 'X' : $sum % 11;
}

sub with_check {
    my ($v) = @_;
    substr($v, 8, 1, '0');
    substr($v, 8, 1, vin_check($v));
    return $v;
}

sub new_vin {
    my ($prefix) = @_;
    my ($n, $serial) = (++$VINS, '');
    for (1 .. 7) {
        $serial = $VIN_CHARS[$n % @VIN_CHARS] . $serial;
        $n = int($n / @VIN_CHARS);
    }
    return with_check($prefix . $serial);
}

sub make_customer {
    my ($ng, $tag, %o) = @_;
    my $via = delete $o{via} // '';
    my $u = $o{userId} // uniq($tag);
    my $r = $ng->req(POST => '/api/customers'
        . ($via eq 'internal' ? '/internal/create' : ''),
        $via eq 'internal' ? (auth => 'service') : (),
        json => { userId => $u, email => "$u\@example.com",
            fullName => "\u$tag Test", %o });
    die "create failed: $r->{body}" unless $r->{status} == 201;
    return ($r->{json}{data}{customerId}, $u);
}


# insert_customer($db, TAG, column => value, ...): a customer row written
# by SQL, not through the API (for tests of what nginx does with rows it
# did not write), with those columns too: {id, user}, the user id
# "TAG-user-N" and its email unique in the file.
my $INSERTED = 0;

sub insert_customer {
    my ($db, $tag, %cols) = @_;
    my $n = ++$INSERTED;
    my $user = "$tag-user-$n";
    my @names = sort keys %cols;
    my $i = 3;
    my $id = sql($db, 'INSERT INTO customers (user_id, email, full_name'
        . join('', map { ", $_" } @names) . ") VALUES (:'p1', :'p2', :'p3'"
        . join('', map { ", :'p" . ++$i . "'" } @names) . ') RETURNING id',
        $user, "$tag$n\@example.com", "\u$tag Test", @cols{@names});
    return { id => $id, user => $user };
}

# day($db, N): the API's today (the UTC date, from PostgreSQL) plus N
# days, YYYY-MM-DD.
sub day {
    my ($db, $n) = @_;
    return scalar sql($db, q{SELECT ((now() AT TIME ZONE 'UTC')::date
        + :'p1'::int)::text}, $n // 0);
}

# make_vehicle($ng, $db, CUSTOMER, VIN_PREFIX, %fields): a vehicle added
# through the API with a fresh VIN, its id; should that fail, a failed
# test and the row inserted directly, so that what needs a vehicle can
# still be looked at.
sub make_vehicle {
    my ($ng, $db, $cid, $prefix, %v) = @_;
    $v{vin} = new_vin($prefix);
    my $r = $ng->req(POST => "/api/customers/$cid/vehicles", json => \%v);
    return $r->{json}{data}{vehicleId} if $r->{status} == 201 && $r->{json};
    Test::More::ok(0, 'POST vehicle (make_vehicle): 201')
        or Test::More::diag($r->{body});
    my @k = sort keys %v;
    my $cols = join ', ', map { s/([A-Z])/_\l$1/gr } @k;
    my $vals = join ', ', map { ":'p$_'" } 2 .. @k + 1;
    return scalar sql($db, "INSERT INTO vehicles (customer_id, $cols)"
        . " VALUES (:'p1', $vals) RETURNING id", $cid, @v{@k});
}

# add_note($ng, ID, %body): a note an Administrator added, its data.
sub add_note {
    my ($ng, $id, %body) = @_;
    my $r = $ng->req(POST => "/api/customers/$id/notes", json => \%body);
    die "add note failed: $r->{body}" unless $r->{status} == 201;
    return $r->{json}{data};
}

# with_query(PATH, QUERY): PATH, and "?QUERY" when QUERY is defined.
# pluck($r, LIST, KEY): KEY of every item of a page's data.LIST.
sub with_query {
    my ($path, $query) = @_;
    return defined $query ? "$path?$query" : $path;
}

sub pluck {
    my ($r, $list, $key) = @_;
    return [ map { $_->{$key} } @{ $r->{json}{data}{$list} // [] } ];
}

# pages(PAGE, LIMIT, TOTAL): the pagination a page of a list has.
sub pages {
    my ($page, $limit, $total) = @_;
    my $n = POSIX::ceil($total / $limit);
    return { currentPage => $page, totalPages => $n, totalItems => $total,
        itemsPerPage => $limit, hasNextPage => $page < $n ? $T : $F,
        hasPreviousPage => $page > 1 ? $T : $F };
}

# raw_member($r, NAME): the text of NAME's value in the answer body as
# sent (a number's digits as written), undef when it is not there.
sub raw_member {
    my ($r, $name) = @_;
    return $r->{body}
        =~ /"\Q$name\E"\s*:\s*("[^"]*"|-?[0-9.eE+]+|null|true|false)/
        ? $1 : undef;
}

# both_ways(\%A, \%B, [NAME, WHAT], [NAME, WHAT]): two tests that the
# keys of A and B are the same set: every key of A is in B (the first
# NAME; the diagnostic lists those missing after WHAT), every key of B in
# A (the second).
sub both_ways {
    my ($x, $y, @names) = @_;
    for ([$x, $y, @{ $names[0] }], [$y, $x, @{ $names[1] }]) {
        my ($from, $to, $name, $what) = @$_;
        my @left = grep { !exists $to->{$_} } sort keys %$from;
        Test::More::is_deeply(\@left, [], $name)
            or Test::More::diag("$what: @left");
    }
}

# pct(TEXT): TEXT as UTF-8, every byte but the unreserved ones
# percent-encoded; qs(name => value, ...): a query string of them.
# insert_named($db, [fullName, email, phone], ...): customers with those
# (user id "named-" and the name's md5); { fullName => id }
sub insert_named {
    my ($db, @people) = @_;
    my %id;
    for my $c (@people) {
        my ($name, $email, $phone) = @$c;
        my $bytes = $name;
        utf8::encode($bytes);
        $id{$name} = sql($db, q{INSERT INTO customers (user_id, email,
            full_name, contact_number) VALUES ('named-' || md5(:'p1'),
            :'p2', :'p1', :'p3') RETURNING id}, $bytes, $email, $phone);
    }
    return %id;
}

sub pct {
    my ($s) = @_;
    utf8::encode($s);
    $s =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge;
    return $s;
}

sub qs {
    my @kv = @_;
    my @p;
    while (my ($k, $v) = splice @kv, 0, 2) {
        push @p, "$k=" . pct($v);
    }
    return join '&', @p;
}

# bad_values(FIELD, [VALUE, WHAT], ...): validation cases
# [{FIELD => VALUE}, [FIELD], "FIELD WHAT"], one per pair, for tables of
# bodies that must be refused naming FIELD.
sub bad_values {
    my ($field, @pairs) = @_;
    return map { [{ $field => $_->[0] }, [$field], "$field $_->[1]"] }
        @pairs;
}

# is_success($r, STATUS, MESSAGE, [KEYS], NAME): a success envelope with
# that status and message, data having exactly KEYS (when given); the
# data, or {}.
sub is_success {
    my ($r, $status, $message, $keys, $name) = @_;
    Test::More::is($r->{status}, $status, "$name: $status")
        or Test::More::diag($r->{body});
    Test::More::is($r->{json}{success}, $T, "$name: success");
    Test::More::is($r->{json}{message}, $message, "$name: message")
        if defined $message;
    my $d = $r->{json}{data} // {};
    Test::More::is_deeply([sort keys %$d], [sort @$keys],
        "$name: the fields") if $keys;
    return $d;
}

# is_deleted($r, KEY, ID, NAME): a DELETE's answer: 200, data exactly
# {KEY: ID, deletedAt: a timestamp}.
sub is_deleted {
    my ($r, $key, $id, $name) = @_;
    my $d = is_success($r, 200, undef, [$key, 'deletedAt'], $name);
    Test::More::is($d->{$key}, $id, "$name: $key");
    Test::More::like($d->{deletedAt} // '', $TS, "$name: deletedAt");
}

# in_parallel(N, CODE): CODE->(i) for i in 1..N, each in a process of its
# own, all at once; how many returned true.
sub in_parallel {
    my ($n, $code) = @_;
    my @pids;
    for my $i (1 .. $n) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            POSIX::_exit($code->($i) ? 0 : 1);
        }
        push @pids, $pid;
    }
    my $ok = 0;
    for my $pid (@pids) {
        waitpid $pid, 0;
        $ok++ if $? == 0;
    }
    return $ok;
}

# run_timed(\@cmd, timeout => S): (exit status, stdout, stderr); the
# process group is killed when it overruns
sub run_timed {
    my ($cmd, %o) = @_;
    my $dir = tempdir(CLEANUP => 1);
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        setpgrp(0, 0);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$dir/out" or die;
        open STDERR, '>', "$dir/err" or die;
        exec @$cmd or POSIX::_exit(127);
    }
    my $deadline = time + ($o{timeout} // 60);
    my $status;
    while (1) {
        if (waitpid($pid, WNOHANG) == $pid) {
            $status = $? >> 8;
            last;
        }
        if (time > $deadline) {
            kill 'KILL', -$pid;
            waitpid($pid, 0);
            $status = 'timeout';
            last;
        }
        sleep 0.1;
    }
    my %f;
    for my $k (qw(out err)) {
        open my $fh, '<', "$dir/$k";
        $f{$k} = do { local $/; <$fh> } // '';
    }
    return ($status, $f{out}, $f{err});
}

# tcp_server(CODE, fork => 0): a TCP listener on a free port of
# 127.0.0.1 whose child process runs CODE->(SOCKET) for each connection it
# accepts, one after the other (fork => 1: each in a process of its own);
# the child is killed at the end of the test file. Its port.
my @CHILDREN;

sub tcp_server {
    my ($code, %o) = @_;
    my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
        LocalPort => 0, Listen => 64, ReuseAddr => 1, Proto => 'tcp')
        or die "CT: listen: $!\n";
    my $port = $listen->sockport;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        $SIG{CHLD} = 'IGNORE' if $o{fork};
        while (my $c = $listen->accept) {
            if (!$o{fork}) {
                $code->($c);
            } elsif (!(fork // POSIX::_exit(1))) {
                close $listen;
                $code->($c);
                POSIX::_exit(0);
            }
            close $c;
        }
        POSIX::_exit(0);
    }
    push @CHILDREN, $pid;
    close $listen;
    return $port;
}


sub done_testing {
    _shutdown();
    goto &Test::More::done_testing;
}


sub root { $ROOT }


sub wait_for {
    my ($cond, %o) = @_;
    my $deadline = time + ($o{timeout} // 10);

    while (1) {
        my $v = $cond->();
        return $v if $v;
        return undef if time >= $deadline;
        sleep($o{interval} // 0.05);
    }
}


# --- databases -----------------------------------------------------------

sub _test_name {
    my $name = lc basename($0, '.t');
    $name =~ s/[^a-z0-9]+/_/g;
    return substr($name, 0, 40);
}


# migrate($db, $dir, $file, before => 0): $db migrated as a deployment
# stood at one migration. Links into $dir every sql/NNN_*.sql up to
# $file (the name, e.g. '029_auth_events.sql'; with before => 1 only
# those before it; without $file all of them) and runs
# scripts/migrate.sh on $dir, which applies those not yet applied.
# Returns (exit code, output).
sub migrate {
    my ($db, $dir, $file, %o) = @_;
    for my $f (sort glob("$ROOT/sql/[0-9][0-9][0-9]_*.sql")) {
        my $name = (split m{/}, $f)[-1];
        last if $o{before} && defined $file && $name eq $file;
        symlink($f, "$dir/$name") or die "symlink: $!" unless -l "$dir/$name";
        last if defined $file && $name eq $file;
    }
    return _capture(['env', "PSQL=$ENV{CT_PG_BIN}/psql",
        "$ROOT/scripts/migrate.sh", '--sql-dir', "$dir",
        "host=$ENV{CT_PGHOST} port=$ENV{CT_PGPORT} user=$ENV{CT_PGUSER} "
        . "dbname=$db"], merge => 1);
}

# db_create(empty => 0): a database of its own, cloned from the migrated
# customer_template, or with empty => 1 a fresh one without the
# migrations; dropped at the end of the test file.
sub db_create {
    my (%o) = @_;
    my $name = 't_' . _test_name() . "_$$";
    $name .= '_' . $DB_SEQ{$name} if $DB_SEQ{$name}++;
    my $template = $o{empty} ? '' : ' TEMPLATE customer_template';

    _sql_at($ENV{CT_PGPORT}, 'postgres',
        qq{CREATE DATABASE "$name"$template});
    push @DBS, $name;
    return $name;
}


# sql($db, $sql, @bind): bind values are psql variables :'p1', :'p2', ...
# (quoted literals) in $sql. Dies on error. List context: result lines;
# scalar: the whole output, chomped.
sub sql {
    my ($db, $sql, @bind) = @_;
    return $db->sql($sql, @bind) if ref $db;
    return _sql_at($ENV{CT_PGPORT}, $db, $sql, @bind);
}


sub _psql_cmd {
    my ($port, $db, @extra) = @_;
    return ("$PG_BIN/psql", '-X', '-A', '-t', '-q',
        '-h', $ENV{CT_PGHOST}, '-p', $port, '-U', $ENV{CT_PGUSER},
        '-d', $db, @extra);
}


sub _sql_at {
    my ($port, $db, $sql, @bind) = @_;
    my $f = File::Temp->new(SUFFIX => '.sql');
    my $i = 0;

    print $f $sql, "\n";
    close $f;
    my @vars = map { ('-v', 'p' . ++$i . "=$_") } @bind;
    push @vars, '-v', 'ON_ERROR_STOP=1';
    my ($rc, $out, $err) = _capture(
        [_psql_cmd($port, $db, @vars, '-f', $f->filename)]);
    die "CT::sql failed (exit $rc) on $db: $err\nSQL: $sql\n" if $rc;
    print STDERR $err if length $err;
    chomp $out;
    return wantarray ? split(/\n/, $out) : $out;
}


# _capture([cmd...], merge => 1): run without a shell; returns
# (exit code, stdout, stderr). With merge, stderr goes to stdout.
sub _capture {
    my ($cmd, %o) = @_;
    my $errf = File::Temp->new;
    my $pid = open(my $fh, '-|') // die "CT: fork: $!\n";

    if (!$pid) {
        open STDIN, '<', '/dev/null';
        if ($o{merge}) {
            open STDERR, '>&', \*STDOUT;
        } else {
            open STDERR, '>', $errf->filename;
        }
        exec @$cmd or POSIX::_exit(127);
    }
    my $out = do { local $/; <$fh> } // '';
    close $fh;
    my $rc = $? >> 8;
    my $err = do { local $/; open my $e, '<', $errf->filename; <$e> } // '';
    return ($rc, $out, $err);
}


sub psql_session {
    my ($db) = @_;
    return $db->psql_session if ref $db;
    return CT::Session->new(_psql_cmd($ENV{CT_PGPORT}, $db));
}


# --- runtime directories and ports -------------------------------------

sub _fresh_dir {
    my ($kind, $mode) = @_;
    my $base = "$ENV{CT_RUN_DIR}/t";

    make_path($base, { mode => 0755 });
    my $dir = tempdir(_test_name() . "-$kind-XXXXXX", DIR => $base);
    chmod $mode, $dir;
    push @DIRS, $dir;
    return $dir;
}


# A port below the kernel's ephemeral range (32768 and up on Linux): a port
# the kernel hands out (bind to 0) is also what outgoing connections take,
# so between this check and the server's bind a client of a test running
# in parallel could take it. Each port handed out is also reserved, as a
# file named after it under $CT_RUN_DIR/ports holding the test's pid,
# until that test ends: a test that binds its port only much later (t/02
# starts nginx through `make run`) cannot lose it to another test that
# found it free meanwhile. A reservation whose test is gone is taken over.
my @RESERVED;

sub _reserve_port {
    my ($port) = @_;
    my $dir = "$ENV{CT_RUN_DIR}/ports";
    make_path($dir);
    my $file = "$dir/$port";

    for (1 .. 2) {
        if (sysopen my $fh, $file, O_WRONLY | O_CREAT | O_EXCL) {
            print $fh "$$\n";
            close $fh;
            push @RESERVED, $file;
            return 1;
        }
        my ($pid) = _slurp($file) =~ /^(\d+)/;
        return 0 if !$pid || $pid == $$ || kill 0, $pid;
        unlink $file;
    }
    return 0;
}

sub _free_port {
    for (1 .. 200) {
        my $port = 20000 + int(rand(12000));
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
            LocalPort => $port, Proto => 'tcp', Listen => 1, ReuseAddr => 1)
            or next;
        close $s;
        _reserve_port($port) or next;
        return $port;
    }
    die "CT: cannot find a free port: $!\n";
}


sub free_port { _free_port() }


sub _slurp {
    my ($file) = @_;
    open my $fh, '<', $file or return '';
    local $/;
    return <$fh> // '';
}


sub _as_pg {
    return $> == 0 ? ('runuser', '-u', 'postgres', '--', 'env', '-C', '/', @_)
        : @_;
}


# --- nginx -------------------------------------------------------------

sub _nginx_conf {
    my (%o) = @_;
    my $level = $ENV{CT_LOG_LEVEL} // 'info';
    my $dir = $o{dir};
    my $temp = join '', map { "    ${_}_temp_path $dir/${_}_temp;\n" }
        qw(client_body proxy fastcgi uwsgi scgi);

    return <<"CONF";
load_module $ENV{CT_MODULE};

daemon off;
master_process on;
worker_processes $o{workers};
error_log $dir/error.log $level;
pid $dir/nginx.pid;
$o{main_extra}
events {
    worker_connections 1024;
}

http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
$temp
    access_log $dir/access.log;

$o{http}
}
CONF
}


# nginx_start(db => $db, pool => 4, timeout => '5s', queue => 64,
#     workers => 1, http_extra => '', server_extra => '', main_extra => '',
#     conninfo => undef, allow_log => undef, trigger => undef). Passing
# pool/timeout/queue as undef leaves that directive out. trigger =>
# INTERVAL (e.g. '200ms') adds customer_outbox_trigger 127.0.0.1:PORT (the
# port this nginx listens on) and customer_outbox_interval INTERVAL: every
# worker then POSTs to /api/customers/internal/outbox that often.
sub nginx_start {
    my (%o) = @_;
    my %d = (pool => 4, timeout => '5s', queue => 64);
    %o = (workers => 1, http_extra => '', server_extra => '',
        main_extra => '', %o);
    for my $k (keys %d) {
        $o{$k} = $d{$k} unless exists $o{$k};
    }
    defined $o{db} or defined $o{conninfo}
        or die "CT::nginx_start: db or conninfo required\n";
    if (my $peers = delete $o{peers}) {
        my ($http, $server) = peer_conf(%$peers);
        $o{http_extra} = "$http$o{http_extra}";
        $o{server_extra} = "$server$o{server_extra}";
    }
    if (my $docs = delete $o{documents}) {
        my ($max, $buffer) = ref $docs ? @$docs : ($docs, $docs);
        $o{server_extra} .= <<"CONF";
        location ~ ^/api/customers/[^/]+/documents\$ {
            customer_api;
            client_max_body_size $max;
            client_body_buffer_size $buffer;
        }
CONF
    }

    my $conninfo = $o{conninfo} // "host=$ENV{CT_PGHOST} port=$ENV{CT_PGPORT}"
        . " dbname=$o{db} user=$ENV{CT_PGUSER}"
        . ' sslmode=disable gssencmode=disable';
    $conninfo =~ s/(["\\])/\\$1/g;

    my %static = static_paths();
    my %recipe = error_recipe();
    my $dir = _fresh_dir('nginx', 0777);
    my $self = bless { dir => $dir, workers => $o{workers},
        allow_log => $o{allow_log}, creator => $$ }, 'CT::Nginx';

    for my $attempt (1 .. 3) {
        my $port = _free_port();
        my $http = qq{    customer_db "$conninfo";\n};
        $http .= '    ' . ($o{auth_conf} // jwt_conf());
        for my $k (qw(pool timeout queue)) {
            $http .= "    customer_db_$k $o{$k};\n" if defined $o{$k};
        }
        $http .= "    customer_outbox_trigger 127.0.0.1:$port;\n"
            . "    customer_outbox_interval $o{trigger};\n"
            if defined $o{trigger};
        $http .= <<"HTTP";
$o{http_extra}
    server {
        listen 127.0.0.1:$port;

        client_max_body_size 64k;
        client_body_buffer_size 64k;

        # nginx's own 413/414/... answered in the API's JSON envelope, as
        # conf/nginx.conf does it (error_recipe)
$recipe{error_page}

        location /api/ {
            customer_api;
        }

        location = /health {
            customer_api;
        }

$recipe{location}

        # the API document and Swagger UI, as in conf/nginx.conf
        location = /api/openapi.json {
            alias $static{spec};
            default_type application/json;
        }

        location = /docs {
            return 301 /docs/;
        }

        location /docs/ {
            alias $static{ui}/;
        }
$o{server_extra}
    }
HTTP
        open my $fh, '>', "$dir/nginx.conf" or die "CT: $dir: $!\n";
        print $fh _nginx_conf(%o, dir => $dir, http => $http);
        close $fh;

        my ($rc, $out) = _capture(
            [$NGINX, '-t', '-p', $dir, '-c', "$dir/nginx.conf"], merge => 1);
        die "CT: nginx -t failed for $dir/nginx.conf:\n$out" if $rc;

        $self->{port} = $port;
        return $self if $self->_spawn;
        last unless _slurp("$dir/stderr.log") =~ /Address already in use/;
    }
    die "CT: nginx did not start in $dir:\n" . _slurp("$dir/stderr.log")
        . _slurp("$dir/error.log");
}


# error_recipe(FILE): (error_page => TEXT, location => TEXT), the
# error_page directive and the location it names, as written (indented) in
# FILE (conf/nginx.conf by default); every test nginx uses them.
sub error_recipe {
    my ($file) = @_;
    $file //= "$ROOT/conf/nginx.conf";
    my $conf = _slurp($file);
    my ($page, $uri) = $conf =~ /^([ \t]*error_page\s[^;]*?(\S+);)/m
        or die "CT: no error_page in $file\n";
    my ($loc) = $conf =~ /^([ \t]*location\s+(?:=\s+)?\Q$uri\E\s*\{[^}]*\})/m
        or die "CT: no location $uri in $file\n";
    return (error_page => $page, location => $loc);
}


# static_paths(): (spec => FILE, ui => DIR), what every test nginx serves
# at /api/openapi.json and /docs/: openapi/openapi.json and
# build/swagger-ui (scripts/swagger.sh) of the checkout, or, when nginx's
# workers cannot enter the checkout (scripts/env.sh then put the run
# directory elsewhere), a copy of them under $CT_RUN_DIR/t.
my %STATIC;

sub static_paths {
    return %STATIC if %STATIC;
    my %p = (spec => "$ROOT/openapi/openapi.json",
        ui => "$ROOT/build/swagger-ui");

    if ($> != 0 || $ENV{CT_RUN_DIR} eq "$ROOT/.run") {
        %STATIC = %p;
        return %STATIC;
    }

    # named after the content, so a by-hand run never serves a stale copy
    my $sig = substr(Digest::SHA::sha1_hex(_slurp($p{spec})
        . join(',', map { (stat "$p{ui}/$_")[9] // '' }
            qw(index.html swagger-initializer.js))), 0, 12);
    my $base = "$ENV{CT_RUN_DIR}/t";
    my $to = "$base/static-$sig";
    if (!-d $to) {
        make_path($base, { mode => 0755 });
        my $tmp = tempdir("static-XXXXXX", DIR => $base);
        my ($rc, $out) = _capture(['cp', '-r', $p{spec},
            (-d $p{ui} ? $p{ui} : ()), $tmp], merge => 1);
        die "CT: cannot copy the static files: $out" if $rc;
        _capture(['chmod', '-R', 'a+rX', $tmp]);
        # another test file may have made it meanwhile: keep theirs
        rename $tmp, $to or remove_tree($tmp);
    }
    %STATIC = (spec => "$to/openapi.json", ui => "$to/swagger-ui");
    return %STATIC;
}


# nginx_start_conf(dir => DIR, port => PORT, allow_log => undef): nginx
# on DIR/nginx.conf as written by the caller (daemon off; its error_log
# DIR/error.log), once something listens on PORT; stopped and its
# error.log checked like nginx_start's.
sub nginx_start_conf {
    my (%o) = @_;
    my $self = bless { dir => $o{dir}, port => $o{port}, workers => 1,
        allow_log => $o{allow_log}, creator => $$ }, 'CT::Nginx';

    return $self if $self->_spawn;
    die "CT: nginx did not start in $o{dir}:\n"
        . _slurp("$o{dir}/stderr.log") . _slurp("$o{dir}/error.log");
}


# conf_example(file => FILE, dir => DIR, module => PATH, log_dir => LOGS):
# an example configuration (conf/customer.conf.example unless FILE; a
# FILE ending in .gz is decompressed) made to run here. The files it names
# under /etc/nginx/customer/ are made in DIR/customer/ (an RS256 key pair,
# a service keys file, a self-signed TLS certificate for api.example.com,
# a passfile, an empty root certificate) and its paths are pointed into
# DIR: /etc/nginx/customer/ to DIR/customer/, /var/log/nginx/ to LOGS
# (DIR/log/), /var/lib/nginx/ to DIR/tmp/, /run/nginx.pid to
# DIR/nginx.pid, and its load_module path to PATH (CT_MODULE; undef
# keeps the example's). DIR defaults to a fresh directory under TMPDIR,
# removed at exit. Returns a hash: text (the file as read), code (without
# comments), conf (code with the paths mapped), dir, key (the RS256
# private key's file), service_key (the one in the service keys file).
sub conf_example {
    my (%o) = @_;
    my $file = $o{file} // "$ROOT/conf/customer.conf.example";
    my $dir = $o{dir}
        // tempdir('ct-conf-example-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $logs = $o{log_dir} // "$dir/log";
    my $module = exists $o{module} ? $o{module} : $ENV{CT_MODULE};
    my $service_key = 'example-service-key-0123456789abcdef';

    chmod 0755, $dir;
    make_path("$dir/customer/tls", $logs, "$dir/tmp", { mode => 0755 });

    my $spew = sub {
        my ($f, $data) = @_;
        open my $fh, '>:raw', $f or die "CT: $f: $!\n";
        print $fh $data;
        close $fh or die "CT: $f: $!\n";
    };
    my $openssl = sub {
        my ($rc, $out) = _capture(['openssl', @_], merge => 1);
        die "CT: openssl @_ failed ($rc):\n$out" if $rc;
    };

    $openssl->('genpkey', '-algorithm', 'RSA', '-pkeyopt',
        'rsa_keygen_bits:2048', '-out', "$dir/auth.key");
    $openssl->('pkey', '-in', "$dir/auth.key", '-pubout',
        '-out', "$dir/customer/auth.pub.pem");
    $spew->("$dir/customer/service.keys",
        "# the example's service keys\n$service_key\n");
    $openssl->('req', '-x509', '-newkey', 'ec', '-pkeyopt',
        'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=api.example.com',
        '-days', '1', '-keyout', "$dir/customer/tls/api.example.com.key",
        '-out', "$dir/customer/tls/api.example.com.crt");
    # Named in customer_db; libpq reads them only when a worker connects.
    $spew->("$dir/customer/pgpass", "*:*:*:customer:example\n");
    chmod 0600, "$dir/customer/pgpass";
    $spew->("$dir/customer/pg-root.crt", '');

    my $text;
    if ($file =~ /\.gz$/) {
        my ($rc, $out, $err) = _capture(['gzip', '-dc', $file]);
        die "CT: gzip -dc $file: $err" if $rc;
        $text = $out;
    } else {
        $text = _slurp($file);
        length $text or die "CT: $file is missing or empty\n";
    }

    # Configuration without comments (none of its strings holds a '#').
    (my $code = $text) =~ s/(?:^|(?<=\s))#[^\n]*//g;

    my %map = (
        '/etc/nginx/customer/' => "$dir/customer/",
        '/var/log/nginx/' => "$logs/",
        '/var/lib/nginx/' => "$dir/tmp/",
        '/run/nginx.pid' => "$dir/nginx.pid",
    );
    $map{'/usr/lib/nginx/modules/ngx_http_customer_module.so'} = $module
        if defined $module;
    my $alt = join '|', map { quotemeta } sort { length $b <=> length $a }
        keys %map;
    (my $conf = $code) =~ s/(?<![\w.\/])($alt)/$map{$1}/g;

    return (text => $text, code => $code, conf => $conf, dir => $dir,
        key => "$dir/auth.key", service_key => $service_key);
}


# nginx_test_conf($http_snippet): (exit code, output) of nginx -t with the
# module loaded and the snippet inside http{}.
# b64url($bytes): base64url without padding.
sub b64url {
    my ($bytes) = @_;
    my $s = MIME::Base64::encode_base64($bytes, '');
    $s =~ tr{+/}{-_};
    $s =~ s/=+$//;
    return $s;
}

# jwt(%claims): an HS256 token signed with $JWT_SECRET; exp defaults to an
# hour from now. jwt_raw($header_json, $claims_json, $secret) signs
# exactly the bytes given (for hostile tokens).
sub jwt {
    my (%claims) = @_;
    $claims{exp} //= time + 3600;
    my $enc = JSON::PP->new->canonical;
    return jwt_raw($enc->encode({ alg => 'HS256', typ => 'JWT' }),
        $enc->encode(\%claims), $JWT_SECRET);
}

sub jwt_raw {
    my ($header, $claims, $secret) = @_;
    my $input = b64url($header) . '.' . b64url($claims);
    return $input . '.'
        . b64url(Digest::SHA::hmac_sha256($input, $secret // $JWT_SECRET));
}

sub admin_token {
    my ($sub) = @_;
    return jwt(sub => $sub // 'admin-user', role => 'Administrator');
}

sub customer_token {
    my ($sub) = @_;
    return jwt(sub => $sub, role => 'Customer');
}

# jwt_conf(): the http-level directives for the test credentials, with
# the files written under $CT_RUN_DIR.
sub jwt_conf {
    my $dir = "$ENV{CT_RUN_DIR}/t";
    make_path($dir);
    my $secret = "$dir/jwt.secret";
    my $keys = "$dir/service.keys";
    for ([$secret, "$JWT_SECRET\n"],
        [$keys, "# rotation: both accepted\n" . join("\n", @SERVICE_KEYS) . "\n"])
    {
        my ($f, $text) = @$_;
        open my $fh, '>', "$f.$$" or die "CT: $f: $!\n";
        print $fh $text;
        close $fh;
        chmod 0644, "$f.$$";
        rename "$f.$$", $f or die "CT: $f: $!\n";
    }
    return "customer_jwt HS256 $secret;\n    customer_service_keys $keys;\n";
}

# nginx_test_server($http_snippet, $location_body): nginx_test_conf of
# the snippet and a server with location / holding the body
# ("customer_api;" when undef).
sub nginx_test_server {
    my ($http, $location) = @_;
    my $port = _free_port();
    $location //= 'customer_api;';
    return nginx_test_conf(<<"HTTP");
    $http
    server {
        listen 127.0.0.1:$port;
        location / {
            $location
        }
    }
HTTP
}

sub nginx_test_conf {
    my ($snippet) = @_;
    my $dir = _fresh_dir('conf', 0777);

    open my $fh, '>', "$dir/nginx.conf" or die "CT: $dir: $!\n";
    print $fh _nginx_conf(workers => 1, main_extra => '', dir => $dir,
        http => $snippet);
    close $fh;
    my ($rc, $out) = _capture(
        [$NGINX, '-t', '-p', $dir, '-c', "$dir/nginx.conf"], merge => 1);
    return ($rc, $out);
}


# --- private PostgreSQL ------------------------------------------------

# private_pg(durable => 0): a cluster of its own on a free port, with role
# and database "customer" migrated, for tests that stop and start
# PostgreSQL. durable => 1 keeps fsync, synchronous commit and full-page
# writes on (initdb syncs too), for runs that check no commit is lost
# when PostgreSQL is killed.
sub private_pg {
    my (%o) = @_;
    my $dir = _fresh_dir('pg', 0755);
    my $port = _free_port();
    my $self = bless { dir => $dir, port => $port, data => "$dir/data",
        creator => $$ }, 'CT::Pg';

    mkdir "$dir/data", 0700 or die "CT: $dir/data: $!\n";
    mkdir "$dir/sock", 0755 or die "CT: $dir/sock: $!\n";
    open my $log, '>', "$dir/pg.log" or die "CT: $dir/pg.log: $!\n";
    close $log;
    if ($> == 0) {
        my (undef, undef, $uid, $gid) = getpwnam('postgres');
        chown $uid, $gid, "$dir/data", "$dir/sock", "$dir/pg.log";
    }

    my ($rc, $out) = _capture([_as_pg("$PG_BIN/initdb", '-D', "$dir/data",
        '--auth=trust', '-U', 'postgres', ($o{durable} ? () : '--no-sync'),
        '-E', 'UTF8', '--locale=C.UTF-8')], merge => 1);
    die "CT: initdb failed:\n$out" if $rc;

    open my $conf, '>>', "$dir/data/postgresql.conf"
        or die "CT: postgresql.conf: $!\n";
    print $conf <<"CONF";
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/sock'
CONF
    # fast but unsafe unless asked otherwise: a crash may lose commits
    print $conf $o{durable} ? "fsync = on\nsynchronous_commit = on\n"
        . "full_page_writes = on\n"
        : "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n";
    close $conf;
    push @PGS, $self;
    $self->start;

    local $ENV{CT_PGUSER} = 'postgres';
    _sql_at($port, 'postgres', 'CREATE ROLE customer LOGIN SUPERUSER');
    _sql_at($port, 'postgres', 'CREATE DATABASE customer OWNER customer');

    local $ENV{CUSTOMER_DB} = $self->conninfo;
    ($rc, $out) = _capture(["$ROOT/scripts/pg.sh", 'migrate'], merge => 1);
    die "CT: migrate failed on private cluster:\n$out" if $rc;
    return $self;
}


# standby_pg($primary): a streaming standby of a private_pg() cluster
# (pg_basebackup -R), started, on a port of its own; a CT::Pg like the
# primary (stopped when the test ends). Promote it with ->promote.
sub standby_pg {
    my ($primary) = @_;
    my $dir = _fresh_dir('standby', 0755);
    my $port = _free_port();
    my $self = bless { dir => $dir, port => $port, data => "$dir/data",
        creator => $$ }, 'CT::Pg';

    mkdir "$dir/sock", 0755 or die "CT: $dir/sock: $!\n";
    open my $log, '>', "$dir/pg.log" or die "CT: $dir/pg.log: $!\n";
    close $log;
    if ($> == 0) {
        my (undef, undef, $uid, $gid) = getpwnam('postgres');
        chown $uid, $gid, $dir, "$dir/sock", "$dir/pg.log";
    }

    my ($rc, $out) = _capture([_as_pg("$PG_BIN/pg_basebackup", '-D',
        "$dir/data", '-R', '-X', 'stream', '-c', 'fast', '-h', '127.0.0.1',
        '-p', $primary->port, '-U', 'postgres',
        '-d', 'application_name=standby')], merge => 1);
    die "CT: pg_basebackup failed:\n$out" if $rc;

    open my $conf, '>>', "$dir/data/postgresql.conf"
        or die "CT: postgresql.conf: $!\n";
    print $conf "port = $port\nunix_socket_directories = '$dir/sock'\n";
    close $conf;
    push @PGS, $self;
    $self->start;
    return $self;
}


# --- peer services -----------------------------------------------------

# peer_start(handler => sub { my ($req) = @_; [STATUS, {...}, BODY] },
#     port => undef): see the header comment and CT::Peer.
sub peer_start {
    my (%o) = @_;
    ref $o{handler} eq 'CODE' or die "CT::peer_start: handler required\n";

    my $self = bless { dir => _fresh_dir('peer', 0755), port => $o{port},
        handler => $o{handler}, creator => $$ }, 'CT::Peer';
    $self->clear;
    push @PEERS, $self;
    return $self->start;
}


# peer_conf(auth => PORT, orders => PORT, complaints => PORT,
#     read_timeout => '1s', key => undef, user_check => 0)
#     → (http_extra, server_extra)
sub peer_conf {
    my (%o) = @_;
    my $timeout = $o{read_timeout} // '1s';
    my ($http, $server) = ('', '');

    $http .= "    customer_peer_key $o{key};\n" if defined $o{key};
    $server .= "        customer_auth_user_check off;\n"
        if defined $o{auth} && !$o{user_check};
    for (['auth', 'auth'], ['orders', 'order'], ['complaints', 'complaint']) {
        my ($name, $directive) = @$_;
        my $port = $o{$name};
        next unless defined $port;
        $port = $port->port if ref $port;
        $http .= "    upstream customer_${name}_up"
            . " { server 127.0.0.1:$port; }\n";
        $server .= <<"CONF";
        customer_${directive}_service /_svc/$name;

        location /_svc/$name/ {
            internal;
            proxy_pass http://customer_${name}_up/;
            proxy_connect_timeout 1s;
            proxy_read_timeout $timeout;
            proxy_send_timeout $timeout;
            proxy_next_upstream off;
            subrequest_output_buffer_size 64k;
        }
CONF
    }
    return ($http, $server);
}


# --- the endpoint table and the documents that describe it ----------------
#
# route_table(): ({method, path, access, json_body, file}, ...), one per
# method of every row of the route tables the router consults (the
# ngx_http_customer_route_t arrays that src/*.c's array of pointers to
# them names), read from the C sources: path is the row's pattern ("{}"
# for an id), access its class without the NGX_HTTP_CUSTOMER_ prefix
# (ADMIN, SELF, SERVICE, PUBLIC), json_body its body kind (0 none, 1 JSON,
# 2 optional JSON, 3 any bytes). Rows are read positionally ({ METHODS,
# "pattern", handler, access, json_body, ...}) or by designator
# (.methods =, .pattern =, ...); a row that is neither dies, so a row is
# never left out unseen.
# openapi_ops(DOC): { "METHOD /path/{}" => {op, path} } for every
# operation of a decoded OpenAPI document (HEAD included when documented).
# readme_routes(): ("METHOD /path/{}", ...) from the README's endpoint
# table (the one headed "| method and path |"): every code span of a row's
# first cell that is "METHODS PATH" (methods joined by "|" or ","; a
# segment "a|b" is two paths; a query string is ignored); a span there
# that is no route dies.

my $HTTP_METHODS = qr/GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS/;

# the top-level, comma-separated items of a C initializer's body
sub _c_items {
    my ($s) = @_;
    my (@items, $cur, $depth);
    ($cur, $depth) = ('', 0);
    while ($s =~ /\G("(?:[^"\\]|\\.)*"|[{(]|[})]|,|[^"{}(),]+)/gs) {
        my $t = $1;
        $depth++ if $t eq '{' || $t eq '(';
        $depth-- if $t eq '}' || $t eq ')';
        if ($t eq ',' && $depth == 0) {
            push @items, $cur;
            $cur = '';
            next;
        }
        $cur .= $t;
    }
    push @items, $cur;
    s/^\s+|\s+\z//g for @items;
    return grep { length } @items;
}

sub route_table {
    my (%alias, %arrays, @tables);

    for my $file (sort glob "$ROOT/src/*.c") {
        my $src = _slurp($file);
        my $name = basename($file);
        $src =~ s{/\*.*?\*/}{ }gs;
        $src =~ s{\\\n}{ }g;

        while ($src =~ /^#define\s+(NGX_HTTP_CUSTOMER_\w+)\s+(NGX_HTTP_CUSTOMER_\w+)\s*$/mg) {
            $alias{$1} = $2;
        }
        while ($src =~ /ngx_http_customer_route_t\s+(\w+)\s*\[\]\s*=\s*\{(.*?)^\};/msg) {
            my ($array, $body) = ($1, $2);
            my @rows;
            for my $item (_c_items($body)) {
                next unless $item =~ /^\{(.*)\}\z/s;
                my @f = _c_items($1);
                my %row;
                if ($f[0] =~ /^\./) {
                    for (@f) {
                        $row{$1} = $2 if /^\.(\w+)\s*=\s*(.*)\z/s;
                    }
                } else {
                    @row{qw(methods pattern handler access json_body)} = @f;
                }
                next if ($row{pattern} // 'NULL') eq 'NULL';
                die "$name: $array: a row CT cannot read: {$item}\n"
                    unless $row{pattern} =~ /^"(\/[^"]*)"\z/
                    && defined $row{methods} && defined $row{access};
                push @rows, { methods => $row{methods}, path => $1,
                    access => $row{access}, json_body => $row{json_body} // 0,
                    file => $name };
            }
            my $strings = () = $body =~ /"\//g;
            die "$name: $array: read " . @rows . " rows of $strings patterns\n"
                if $strings != @rows;
            $arrays{$array} = \@rows;
        }
        # the list of tables: an array of pointers to route_t
        if ($src =~ /ngx_http_customer_route_t\s*\*\s*\w+\s*\[\]\s*=\s*\{(.*?)\};/s) {
            @tables = grep { $_ ne 'NULL' } $1 =~ /(\w+)/g;
        }
    }
    die "no list of route tables (ngx_http_customer_route_t *x[]) in src/*.c\n"
        unless @tables;

    my @routes;
    for my $t (@tables) {
        my $rows = $arrays{$t} or die "route table $t not found\n";
        for my $row (@$rows) {
            my $access = $row->{access};
            $access = $alias{$access} while exists $alias{$access};
            $access =~ s/^NGX_HTTP_CUSTOMER_// or die "access $access?\n";
            my @methods;
            for my $m (split /\s*\|\s*/, $row->{methods}) {
                # NGX_HTTP_CUSTOMER_*: flags of the row, not methods
                next if $m =~ /^NGX_HTTP_CUSTOMER_\w+\z/;
                $m =~ s/^NGX_HTTP_($HTTP_METHODS)\z/$1/
                    or die "$row->{file}: method $m?\n";
                push @methods, $m;
            }
            die "$row->{file}: $row->{path}: no method\n" unless @methods;
            push @routes, map { { %$row, method => $_, access => $access } }
                @methods;
        }
    }
    return @routes;
}

sub openapi_ops {
    my ($doc) = @_;
    my %ops;

    for my $path (keys %{ $doc->{paths} }) {
        my $item = $doc->{paths}{$path};
        (my $norm = $path) =~ s/\{[^}]+\}/{}/g;
        for my $m (grep { ref $item->{$_} eq 'HASH' }
            qw(get put post delete options head patch trace))
        {
            $ops{uc($m) . " $norm"} = { op => $item->{$m}, path => $path };
        }
    }
    return \%ops;
}

sub readme_routes {
    my @routes;
    my $in = 0;

    for my $line (split /\n/, _slurp("$ROOT/README.md")) {
        if (!$in) {
            $in = 1 if $line =~ /^\|\s*method and path\s*\|/;
            next;
        }
        next if $line =~ /^\|[-|\s]+\|?\s*$/;
        last unless $line =~ /^\|/;
        # the first cell: up to the first "|" outside a code span that is
        # not escaped
        my ($cell) = $line =~ /^\|((?:`[^`]*`|\\\||[^|`])*)\|/
            or die "README: a row CT cannot read: $line\n";
        my @spans = $cell =~ /`([^`]*)`/g;
        die "README: no route in: $line\n" unless @spans;
        for my $span (@spans) {
            $span =~ s/\\\|/|/g;
            my ($methods, $paths) = $span
                =~ /^((?:$HTTP_METHODS)(?:\s*[|,]\s*(?:$HTTP_METHODS))*)\s+(\/\S*)\z/
                or die "README: not a route: `$span` in: $line\n";
            $paths =~ s/\?.*//;
            my @paths = ('');
            for my $seg (grep { length } split m{/}, $paths) {
                @paths = map { my $p = $_; map { "$p/$_" } split /\|/, $seg }
                    @paths;
            }
            s/\{[^}]+\}/{}/g for @paths;
            for my $m (split /\s*[|,]\s*/, $methods) {
                push @routes, map { "$m $_" } @paths;
            }
        }
    }
    die "README.md: no endpoint table (| method and path | answer |)\n"
        unless $in;
    return @routes;
}


# --- cleanup -----------------------------------------------------------

sub _shutdown {
    $_->stop for grep { !$_->{stopped} } @NGINX;
    $_->stop for @PEERS;
    $_->close for @SESSIONS;
    $_->stop for grep { $_->{running} } @PGS;
}


END {
    my $exit = $?;

    if ($$ == $MAIN_PID) {
        $IN_END = 1;
        unlink @RESERVED;
        kill 'KILL', @CHILDREN if @CHILDREN;
        my $bad = grep { !$_->{stopped} && !$_->stop } @NGINX;
        $_->stop for @PEERS;
        $_->close for @SESSIONS;
        for my $pg (grep { $_->{running} } @PGS) {
            eval { $pg->stop('immediate'); 1 } or warn $@;
        }
        for my $db (@DBS) {
            eval { _sql_at($ENV{CT_PGPORT}, 'postgres',
                qq{DROP DATABASE IF EXISTS "$db" WITH (FORCE)}); 1 }
                or warn $@;
        }
        my $passing = Test::More->builder->is_passing && !$bad && !$exit;
        if ($passing && !$ENV{CT_KEEP}) {
            remove_tree(@DIRS);
        } elsif (@DIRS) {
            Test::More::diag("kept for inspection: @DIRS");
        }
        $exit ||= 1 if $bad;
    }
    $? = $exit;
}


package CT::Nginx;

use strict;
use warnings;

use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

sub port { $_[0]{port} }
sub dir  { $_[0]{dir} }
sub pid  { $_[0]{pid} }
sub url  { "http://127.0.0.1:$_[0]{port}$_[1]" }
sub error_log { CT::_slurp("$_[0]{dir}/error.log") }


sub _spawn {
    my ($self) = @_;
    my $dir = $self->{dir};
    my $pid = fork // die "CT: fork: $!\n";

    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$dir/stderr.log";
        open STDERR, '>&', \*STDOUT;
        exec $NGINX, '-p', $dir, '-c', "$dir/nginx.conf"
            or POSIX::_exit(127);
    }
    $self->{pid} = $pid;

    my $deadline = time + 10;
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) {
            $self->{stopped} = 1;
            return 0;
        }
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
            PeerPort => $self->{port}, Proto => 'tcp', Timeout => 1);
        if ($s) {
            close $s;
            push @NGINX, $self;
            return 1;
        }
        select(undef, undef, undef, 0.02);
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
    die "CT: nginx did not listen on port $self->{port} within 10 s\n";
}


# Worker pids (children of the master); waits until all have started.
sub worker_pids {
    my ($self) = @_;
    my @pids;

    CT::wait_for(sub {
        open my $ps, '-|', 'ps', '--ppid', $self->{pid}, '-o', 'pid=';
        @pids = map { /(\d+)/ ? $1 : () } <$ps>;
        close $ps;
        @pids >= $self->{workers};
    });
    return @pids;
}


# Graceful stop (QUIT), then the error.log check: a test inside a test
# file, a diag and a failing exit status from END. Returns true if clean.
sub stop {
    my ($self) = @_;
    return 1 if $self->{stopped}++ || $$ != $self->{creator};

    my $pid = $self->{pid};
    my @problems;
    kill 'QUIT', $pid;
    my $gone = CT::wait_for(sub { waitpid($pid, WNOHANG) == $pid },
        timeout => 20);
    if (!$gone) {
        push @problems, "nginx $pid did not exit on QUIT within 20 s\n";
        kill 'KILL', $pid;
        waitpid($pid, 0);
    } elsif ($?) {
        push @problems, "nginx exited with status $?\n";
    }

    my $allow = $self->{allow_log};
    push @problems, grep { /\[(alert|crit|emerg)\]/
        && !($allow && $_ =~ $allow) } split /^/, $self->error_log;

    my $name = "nginx in $self->{dir} stopped cleanly,"
        . " no [alert]/[crit]/[emerg] in error.log";
    if ($IN_END) {
        Test::More::diag("not ok: $name:\n", @problems) if @problems;
    } else {
        Test::More::ok(!@problems, $name) or Test::More::diag(@problems);
    }
    return !@problems;
}


# req($method, $path, body => $string | json => $data, headers => {...})
# → {status, reason, headers (lower-case keys), body, json, elapsed}.
# status 599 is HTTP::Tiny's own error (connect failed, timeout).
# req(METHOD, PATH, json => ..., body => ..., headers => {...},
#     auth => TOKEN | 'none' | 'service' | 'service:KEY'): without auth and
# without an Authorization header, an Administrator token is sent.
sub req {
    my ($self, $method, $path, %o) = @_;
    my %headers = %{ $o{headers} // {} };
    my $content = $o{body};
    my $auth = $o{auth};

    if (!grep { lc eq 'authorization' || lc eq 'x-service-api-key' }
        keys %headers)
    {
        if (!defined $auth) {
            $headers{Authorization} = 'Bearer ' . CT::admin_token();
        } elsif ($auth =~ /^service(?::(.*))?$/) {
            $headers{'X-Service-API-Key'} = $1 // $CT::SERVICE_KEYS[0];
        } elsif ($auth ne 'none') {
            $headers{Authorization} = "Bearer $auth";
        }
    }

    if (exists $o{json}) {
        $content = JSON::PP->new->utf8->canonical->allow_nonref
            ->encode($o{json});
        $headers{'Content-Type'} //= 'application/json';
    }
    my $http = HTTP::Tiny->new(timeout => 30, keep_alive => 0,
        max_redirect => 0);
    my $t0 = time;
    my $r = $http->request($method, $self->url($path), {
        headers => \%headers,
        defined $content ? (content => $content) : () });
    my $elapsed = time - $t0;
    my $body = $r->{content} // '';
    my $json = length $body
        ? eval { JSON::PP->new->utf8->allow_nonref->decode($body) }
        : undef;

    return { status => $r->{status}, reason => $r->{reason},
        headers => $r->{headers}, body => $body, json => $json,
        elapsed => $elapsed };
}


# raw($bytes, timeout => 5): send bytes as-is, return all the server sent
# until it closed the connection (or the timeout passed).
sub raw {
    my ($self, $data, %o) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $self->{port}, Proto => 'tcp', Timeout => 5)
        or die "CT: connect: $!\n";
    my $sel = IO::Select->new($s);
    my $deadline = time + ($o{timeout} // 5);
    my $buf = '';

    syswrite($s, $data) // die "CT: write: $!\n";
    while ((my $left = $deadline - time) > 0) {
        last unless $sel->can_read($left);
        last unless sysread($s, $buf, 65536, length $buf);
    }
    close $s;
    return $buf;
}


package CT::Peer;

# A fake HTTP service (see CT::peer_start). The parent holds the listening
# socket; a child (leader of its own process group) accepts and forks one
# process per connection, which reads the request, records it, calls the
# handler and writes the answer.

use strict;
use warnings;

use Fcntl qw(:flock);
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time);

my %REASON = (200 => 'OK', 201 => 'Created', 202 => 'Accepted',
    204 => 'No Content', 301 => 'Moved Permanently', 302 => 'Found',
    304 => 'Not Modified', 400 => 'Bad Request', 401 => 'Unauthorized',
    403 => 'Forbidden', 404 => 'Not Found', 409 => 'Conflict',
    422 => 'Unprocessable Entity', 429 => 'Too Many Requests',
    500 => 'Internal Server Error', 502 => 'Bad Gateway',
    503 => 'Service Unavailable', 504 => 'Gateway Timeout');

sub port { $_[0]{port} }
sub dir  { $_[0]{dir} }
sub _log { "$_[0]{dir}/requests.jsonl" }


# Listen (again) on the port, and serve.
sub start {
    my ($self) = @_;
    return $self if $self->{sock};

    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
        LocalPort => $self->{port} // 0, Proto => 'tcp', Listen => 128,
        ReuseAddr => 1)
        or die "CT: peer cannot listen on 127.0.0.1:"
            . ($self->{port} // 0) . ": $!\n";
    $self->{sock} = $s;
    $self->{port} = $s->sockport;
    $self->_spawn;
    return $self;
}


# Nothing listens on the port afterwards; in-flight requests are cut off.
sub stop {
    my ($self) = @_;
    return $self unless $$ == $self->{creator};
    $self->_kill;
    close $self->{sock} if $self->{sock};
    $self->{sock} = undef;
    return $self;
}


# handler(CODE): serve with another handler from now on (the socket stays
# open: connections that arrive meanwhile wait in the backlog).
sub handler {
    my ($self, $code) = @_;
    return $self->{handler} unless $code;
    $self->{handler} = $code;
    if ($self->{sock}) {
        $self->_kill;
        $self->_spawn;
    }
    return $self;
}


sub requests {
    my ($self) = @_;
    open my $fh, '<', $self->_log or return ();
    flock $fh, LOCK_SH;
    my $json = JSON::PP->new;
    return map { $json->decode($_) } grep { /\S/ } <$fh>;
}


sub clear {
    my ($self) = @_;
    open my $fh, '>', $self->_log or die "CT: $self->{dir}: $!\n";
    close $fh;
    return $self;
}


sub _kill {
    my ($self) = @_;
    my $pid = delete $self->{pid} or return;
    kill 'KILL', -$pid, $pid;
    waitpid($pid, 0);
}


sub _spawn {
    my ($self) = @_;
    my $pid = fork // die "CT: fork: $!\n";

    if (!$pid) {
        setpgrp(0, 0);
        # other peers' sockets must close when those peers stop
        close $_->{sock} for grep { $_ != $self && $_->{sock} } @PEERS;
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP);
        $SIG{CHLD} = 'IGNORE';
        $SIG{PIPE} = 'IGNORE';
        open STDIN, '<', '/dev/null';
        eval { $self->_serve; 1 } or warn "CT peer: $@";
        POSIX::_exit(1);
    }
    setpgrp($pid, $pid);
    $self->{pid} = $pid;
}


sub _serve {
    my ($self) = @_;

    while (1) {
        my $c = $self->{sock}->accept or next;
        my $pid = fork;
        if (!defined $pid) {
            warn "CT peer: fork: $!\n";
        } elsif (!$pid) {
            close $self->{sock};
            $SIG{CHLD} = 'DEFAULT';
            eval { $self->_connection($c); 1 } or warn "CT peer: $@";
            POSIX::_exit(0);
        }
        close $c;
    }
}


sub _connection {
    my ($self, $c) = @_;
    my $req = _read_request($c) or return;

    open my $fh, '>>', $self->_log or die "CT: $self->{dir}: $!\n";
    flock $fh, LOCK_EX;
    print $fh JSON::PP->new->ascii->canonical->allow_nonref->encode($req),
        "\n";
    close $fh or die "CT: $self->{dir}: $!\n";

    my @res = eval { $self->{handler}->($req) };
    if (my $err = $@) {
        warn "CT peer: handler died: $err";
        @res = ([500, { 'Content-Type' => 'text/plain' }, "handler died\n"]);
    }
    my ($res) = @res;
    return unless ref $res eq 'ARRAY';

    my ($status, $headers, $body) = @$res;
    $headers //= {};
    $body //= '';
    $body = JSON::PP->new->utf8->canonical->allow_nonref->encode($body)
        if ref $body;
    utf8::encode($body) if utf8::is_utf8($body);

    my %have = map { lc($_) => 1 } keys %$headers;
    my $out = "HTTP/1.1 $status " . ($REASON{$status} // 'Status') . "\r\n";
    $out .= "Content-Type: application/json\r\n" unless $have{'content-type'};
    for my $k (sort keys %$headers) {
        next if lc $k eq 'connection';
        $out .= "$k: $headers->{$k}\r\n";
    }
    $out .= 'Content-Length: ' . length($body) . "\r\n"
        unless $have{'content-length'};
    $out .= "Connection: close\r\n\r\n";
    $out .= $body unless $req->{method} eq 'HEAD';

    while (length $out) {
        my $n = syswrite($c, $out) or last;
        substr($out, 0, $n, '');
    }
    shutdown($c, 1);
    close $c;
}


# The request on $c as {method, path, query, args, headers, body, json},
# or undef when the client sent no complete request within 10 s.
sub _read_request {
    my ($c) = @_;
    my $sel = IO::Select->new($c);
    my $deadline = time + 10;
    my $buf = '';
    my $fill = sub {
        my $left = $deadline - time;
        return 0 if $left <= 0 || !$sel->can_read($left);
        return sysread($c, $buf, 65536, length $buf);
    };
    # bytes up to the next CRLF (or LF), or exactly $n bytes
    my $take = sub {
        my ($n) = @_;
        while (defined $n ? length $buf < $n : $buf !~ /\n/) {
            $fill->() or return undef;
        }
        return substr($buf, 0, $n, '') if defined $n;
        $buf =~ s/\A(.*?)\r?\n//s;
        return $1;
    };

    my $line;
    do { $line = $take->() // return undef } while $line eq '';
    my ($method, $target) = $line =~ m{^(\S+)\s+(\S+)} or return undef;

    my %h;
    while (1) {
        my $l = $take->() // return undef;
        last if $l eq '';
        my ($k, $v) = $l =~ /^([^:\s]+)\s*:\s*(.*?)\s*\z/ or next;
        $k = lc $k;
        $h{$k} = exists $h{$k} ? "$h{$k}, $v" : $v;
    }

    my $body = '';
    if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
        while (1) {
            my $size = $take->() // return undef;
            $size =~ /^([0-9a-fA-F]+)/ or return undef;
            $size = hex $1;
            last if $size == 0;
            $body .= $take->($size) // return undef;
            $take->() // return undef;
        }
        while (1) {
            my $trailer = $take->() // return undef;
            last if $trailer eq '';
        }
    } elsif (($h{'content-length'} // '') =~ /^(\d+)$/) {
        my $len = $1;
        $body = $take->($len) // return undef;
    }

    my ($path, $query) = split /\?/, $target, 2;
    $query //= '';
    my %args;
    for my $pair (split /&/, $query) {
        next unless length $pair;
        my ($k, $v) = map {
            my $s = $_ // '';
            $s =~ tr/+/ /;
            $s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
            $s;
        } split /=/, $pair, 2;
        $args{$k} = $v // '';
    }
    my $json = length $body
        ? eval { JSON::PP->new->utf8->allow_nonref->decode($body) }
        : undef;

    return { method => $method, path => $path, query => $query,
        args => \%args, headers => \%h, body => $body, json => $json };
}


package CT::Session;

# A long-lived psql: ->run($sql) sends it and waits for a marker; dies on
# ERROR (->run($sql, allow_error => 1) returns the output instead).

use strict;
use warnings;

use IO::Select;
use IPC::Open3 qw(open3);
use Time::HiRes qw(time);

sub new {
    my ($class, @cmd) = @_;
    my $pid = open3(my $in, my $out, undef, @cmd);

    $in->autoflush(1);
    my $self = bless { pid => $pid, in => $in, out => $out, n => 0,
        buf => '' }, $class;
    push @SESSIONS, $self;
    return $self;
}


sub run {
    my ($self, $sql, %o) = @_;
    my $mark = '__CT_DONE_' . ++$self->{n} . '__';
    my $sel = IO::Select->new($self->{out});
    my $deadline = time + ($o{timeout} // 30);

    $sql =~ s/\s+\z//;
    $sql .= ';' unless $sql =~ /;\z/ || $sql =~ /^\\[^\n]*\z/m;
    print { $self->{in} } "$sql\n\\echo $mark\n";
    while ($self->{buf} !~ /^\Q$mark\E\n/m) {
        my $left = $deadline - time;
        die "CT::Session: no answer within the timeout to: $sql\n"
            if $left <= 0 || !$sel->can_read($left);
        sysread($self->{out}, $self->{buf}, 65536, length $self->{buf})
            or die "CT::Session: psql exited\n";
    }
    $self->{buf} =~ s/\A(.*?)^\Q$mark\E\n//ms;
    my $out = $1;
    die "CT::Session: $out" if !$o{allow_error} && $out =~ /^ERROR:/m;
    chomp $out;
    return wantarray ? split(/\n/, $out) : $out;
}


sub close {
    my ($self) = @_;
    return unless $self->{pid};
    CORE::close($self->{in});
    CT::wait_for(sub { waitpid($self->{pid}, POSIX::WNOHANG()) != 0 },
        timeout => 5) or kill 'KILL', $self->{pid};
    waitpid($self->{pid}, 0);
    $self->{pid} = undef;
}


package CT::Pg;

use strict;
use warnings;

sub port { $_[0]{port} }
sub db   { 'customer' }
sub dir  { $_[0]{dir} }

sub conninfo {
    "host=127.0.0.1 port=$_[0]{port} dbname=customer user=customer"
        . ' sslmode=disable gssencmode=disable';
}


sub start {
    my ($self) = @_;
    my ($rc, $out) = CT::_capture([CT::_as_pg("$PG_BIN/pg_ctl", 'start',
        '-w', '-s', '-D', $self->{data}, '-l', "$self->{dir}/pg.log")],
        merge => 1);
    die "CT: pg_ctl start failed:\n$out" . CT::_slurp("$self->{dir}/pg.log")
        if $rc;
    $self->{running} = 1;
}


# stop('fast' | 'immediate')
sub stop {
    my ($self, $mode) = @_;
    return unless $$ == $self->{creator};
    my ($rc, $out) = CT::_capture([CT::_as_pg("$PG_BIN/pg_ctl", 'stop',
        '-w', '-s', '-m', $mode // 'fast', '-D', $self->{data})],
        merge => 1);
    die "CT: pg_ctl stop failed:\n$out" if $rc;
    $self->{running} = 0;
}


sub sql {
    my ($self, $sql, @bind) = @_;
    return CT::_sql_at($self->{port}, 'customer', $sql, @bind);
}


# restart('fast' | 'immediate'): pg_ctl restart -w; immediate is a crash
# (no checkpoint; the server recovers from the WAL when it starts)
sub restart {
    my ($self, $mode) = @_;
    my ($rc, $out) = CT::_capture([CT::_as_pg("$PG_BIN/pg_ctl", 'restart',
        '-w', '-s', '-m', $mode // 'fast', '-D', $self->{data},
        '-l', "$self->{dir}/pg.log")], merge => 1);
    die "CT: pg_ctl restart failed:\n$out" if $rc;
    $self->{running} = 1;
}


# a standby becomes a primary (pg_ctl promote -w)
sub promote {
    my ($self) = @_;
    my ($rc, $out) = CT::_capture([CT::_as_pg("$PG_BIN/pg_ctl", 'promote',
        '-w', '-s', '-D', $self->{data})], merge => 1);
    die "CT: pg_ctl promote failed:\n$out" if $rc;
}


sub psql_session {
    my ($self) = @_;
    return CT::Session->new(CT::_psql_cmd($self->{port}, 'customer'));
}


1;
