# One endpoint table, four views of it: the route tables in src/*.c (what
# the router runs), the OpenAPI document's paths and methods, the README's
# endpoint table and the running router must name the same routes with the
# same methods, each way round. A route added as a row and missing from a
# document fails here, and so does a documented route no row serves.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my @METHODS = qw(GET HEAD POST PUT PATCH DELETE);
my $ID = '00000000-0000-4000-8000-000000000001';

# path => { METHOD => 1 } of a list of "METHOD path" strings
sub by_path {
    my %p;
    for (@_) {
        my ($m, $path) = split / /, $_, 2;
        $p{$path}{$m} = 1;
    }
    return \%p;
}

sub methods_of {
    my ($set) = @_;
    return join ', ', grep { $set->{$_} } @METHODS;
}


# --- the endpoint table ----------------------------------------------------

my @rows = CT::route_table();
cmp_ok(scalar @rows, '>=', 60, 'route tables read: ' . @rows . ' routes');
{
    my %seen;
    my @twice = grep { $seen{$_}++ == 1 } map { "$_->{method} $_->{path}" }
        @rows;
    ok(!@twice, 'no route is in the tables twice') or diag("@twice");
}
my $table = by_path(map { "$_->{method} $_->{path}" } @rows);


# --- the documents -----------------------------------------------------------

my $doc = JSON::PP->new->utf8->decode(
    CT::_slurp(CT::root() . '/openapi/openapi.json'));
my $ops = CT::openapi_ops($doc);
my $openapi = by_path(keys %$ops);
# HEAD is implied by GET: the router answers it wherever GET is served
for my $path (sort keys %$openapi) {
    next unless delete $openapi->{$path}{HEAD};
    ok($openapi->{$path}{GET}, "OpenAPI: HEAD $path is documented with GET");
}

my $readme = by_path(CT::readme_routes());

my %paths = map { ($_ => 1) } keys %$table, keys %$openapi, keys %$readme;
for my $path (sort keys %paths) {
    my $want = methods_of($table->{$path});
    is(methods_of($openapi->{$path}), $want,
        "OpenAPI: $path: " . ($want || 'no route'));
    is(methods_of($readme->{$path}), $want,
        "README: $path: " . ($want || 'no route'));
}


# --- the running router ------------------------------------------------------

# each row's methods answer (401 without credentials; a public route
# neither 401, 403, 404 nor 405); every other method is 405 with exactly
# the table's methods in Allow
my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db);
my %public = map { ("$_->{method} $_->{path}" => 1) }
    grep { $_->{access} eq 'PUBLIC' } @rows;

for my $path (sort keys %$table) {
    (my $url = $path) =~ s/\{\}/$ID/g;
    my %served = (%{ $table->{$path} });
    $served{HEAD} = 1 if $served{GET};
    my $allow = methods_of(\%served);
    for my $m (@METHODS) {
        my $r = $ng->req($m => $url, auth => 'none');
        if (!$served{$m}) {
            is("$r->{status} " . ($r->{headers}{allow} // ''), "405 $allow",
                "router: $m $path: 405, Allow: $allow");
        } elsif ($public{($m eq 'HEAD' ? 'GET' : $m) . " $path"}) {
            unlike($r->{status}, qr/^(?:401|403|404|405)\z/,
                "router: $m $path (public): answered ($r->{status})");
        } else {
            is($r->{status}, 401, "router: $m $path: 401");
        }
    }
}

done_testing();
