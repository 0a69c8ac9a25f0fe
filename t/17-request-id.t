# X-Request-Id: a client's sane id is echoed; otherwise the answer
# carries a generated one (32 hex digits, a new one per request), and
# nginx's $request_id is that same id, so the access log and the answer
# agree.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $db = CT::db_create();
my $logs = CT::_fresh_dir('rid-log', 0777);
my $ng = CT::nginx_start(db => $db, workers => 2,
    http_extra => "    log_format rid '\$request_id \$status \$uri';\n"
        . "    access_log $logs/rid.log rid;\n");

my $c = $ng->req(POST => '/api/customers', json => { userId => 'rid-1',
    email => 'rid1@example.com', fullName => 'Request Id' });
is($c->{status}, 201, 'a customer') or diag($c->{body});
my $id = $c->{json}{data}{customerId};

my @sent;
for my $i (1 .. 20) {
    my $r = $ng->req(GET => "/api/customers/$id");
    is($r->{status}, 200, "GET $i is 200");
    my $rid = $r->{headers}{'x-request-id'} // '';
    like($rid, qr/^[0-9a-f]{32}\z/, "GET $i: a generated X-Request-Id");
    push @sent, $rid;
}
my %seen = map { ($_ => 1) } @sent;
is(scalar keys %seen, 20, 'the 20 generated ids all differ');

my $r = $ng->req(GET => "/api/customers/$id",
    headers => { 'X-Request-Id' => 'client-id-1' });
is($r->{headers}{'x-request-id'}, 'client-id-1', "a client's id is echoed");

my @logged;
ok(CT::wait_for(sub {
    @logged = grep { m{ /api/customers/\Q$id\E$} }
        split /\n/, CT::_slurp("$logs/rid.log");
    @logged >= 21;
}), 'the access log has the 21 GETs');
# in any order: the two workers each write their own lines, and the one
# that answered a GET may write its line after the other has answered
# and logged the next GET
my @ids = map { (split / /)[0] } @logged;
my %sent = map { ($_ => 1) } @sent;
is_deeply([sort grep { $sent{$_} } @ids], [sort @sent],
    'the access log shows each answer\'s generated id as $request_id');
my @other = grep { !$sent{$_} } @ids;
is(scalar @other, 1, 'one more GET logged: the one with a client id');
like($other[0] // '', qr/^[0-9a-f]{32}\z/,
    'with a client id, $request_id is still a generated one');

done_testing();
