# The OpenAPI document (openapi/openapi.json, served at /api/openapi.json)
# against the module: the routes in src/*.c's route tables and the
# document's operations must be the same set both ways; each operation's
# security must follow its route's access class; documented request-body
# and query limits must be where the server draws the line; /docs/ serves
# Swagger UI.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $ROOT = CT::root();
my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db);
my $JSON = JSON::PP->new->utf8->canonical;
my $UUID = '00000000-0000-4000-8000-000000000001';


# --- the module's routes, read from the route tables in src/*.c ----------

my @routes = CT::route_table();
cmp_ok(scalar @routes, '>=', 17, 'route tables parsed: ' . @routes . ' routes');
my %route = map { ("$_->{method} $_->{path}" => $_) } @routes;


# --- the document, as nginx serves it --------------------------------------

my $r = $ng->req(GET => '/api/openapi.json', auth => 'none');
is($r->{status}, 200, 'GET /api/openapi.json: 200');
like($r->{headers}{'content-type'} // '', qr{^application/json\b},
    '... application/json');
my $doc = eval { $JSON->decode($r->{body}) };
ok($doc, '... parses as JSON') or diag($@);
die "no document\n" unless ref $doc eq 'HASH';
{
    open my $fh, '<:raw', "$ROOT/openapi/openapi.json" or die $!;
    my $file = do { local $/; <$fh> };
    ok($r->{body} eq $file, '... the bytes of openapi/openapi.json');
}
like($doc->{openapi} // '', qr/^3\.1\.\d+$/, "openapi is 3.1.x ($doc->{openapi})");
ok($doc->{info}{title} && $doc->{info}{version}, 'info has title and version');
is($ng->req(HEAD => '/api/openapi.json', auth => 'none')->{status}, 200,
    'HEAD /api/openapi.json: 200');

# every $ref resolves inside the document
{
    my @bad;
    my $walk;
    $walk = sub {
        my ($v, $where) = @_;
        if (ref $v eq 'HASH') {
            if (defined(my $ref = $v->{'$ref'})) {
                my $t = $doc;
                if ($ref =~ m{^#/(.*)}) {
                    for my $k (split m{/}, $1) {
                        $k =~ s/~1/\//g;
                        $k =~ s/~0/~/g;
                        $t = ref $t eq 'HASH' ? $t->{$k} : undef;
                    }
                } else {
                    $t = undef;
                }
                push @bad, "$where: $ref" unless defined $t;
            }
            $walk->($v->{$_}, "$where/$_") for sort keys %$v;
        } elsif (ref $v eq 'ARRAY') {
            $walk->($v->[$_], "$where/$_") for 0 .. $#$v;
        }
    };
    $walk->($doc, '#');
    ok(!@bad, 'every $ref resolves') or diag(join "\n", @bad);
}

sub deref {
    my ($v) = @_;
    while (ref $v eq 'HASH' && $v->{'$ref'}) {
        my $t = $doc;
        $t = $t->{$_} for split m{/}, substr($v->{'$ref'}, 2);
        $v = $t;
    }
    return $v;
}

my %SEC_OF = (PUBLIC => '', ADMIN => 'bearerAuth', SELF => 'bearerAuth',
    SERVICE => 'serviceKey');
is_deeply([sort keys %{ $doc->{components}{securitySchemes} // {} }],
    ['bearerAuth', 'serviceKey'], 'security schemes bearerAuth, serviceKey');
is_deeply($doc->{components}{securitySchemes}{bearerAuth},
    { %{ $doc->{components}{securitySchemes}{bearerAuth} },
      type => 'http', scheme => 'bearer', bearerFormat => 'JWT' },
    'bearerAuth: http bearer JWT');
is_deeply([@{ $doc->{components}{securitySchemes}{serviceKey} }{qw(type in name)}],
    ['apiKey', 'header', 'X-Service-API-Key'],
    'serviceKey: apiKey in header X-Service-API-Key');
ok(!exists $doc->{security}, 'no document-wide security: each operation says');

# the operations: "METHOD path-with-{}" => {op, path}
my (%ops, %op_ids);
my @METHODS = qw(get put post delete options head patch trace);
for my $path (sort keys %{ $doc->{paths} }) {
    my $item = $doc->{paths}{$path};
    my @names = $path =~ /\{([^}]+)\}/g;
    (my $norm = $path) =~ s/\{[^}]+\}/{}/g;
    for my $m (grep { $item->{$_} } @METHODS) {
        my $op = $item->{$m};
        $ops{uc($m) . " $norm"} = { op => $op, path => $path };
        $op_ids{$op->{operationId} // ''}++;

        # path parameters: declared exactly as the template names them
        my @declared = map { $_->{name} }
            grep { $_->{in} eq 'path' }
            map { deref($_) } @{ $item->{parameters} // [] },
                @{ $op->{parameters} // [] };
        is_deeply([sort @declared], [sort @names],
            uc($m) . " $path: path parameters declared");
        ok(ref $op->{responses} eq 'HASH' && %{ $op->{responses} },
            uc($m) . " $path: has responses");
    }
}
ok(!grep({ $_ eq '' || $op_ids{$_} > 1 } keys %op_ids),
    'operationIds present and unique');


# --- routes and operations, both ways ----------------------------------------

my @missing = grep { !$ops{$_} } sort keys %route;
ok(!@missing, 'every route in the route tables is documented')
    or diag("not in openapi/openapi.json: @missing");

# HEAD is implied by GET: a documented head needs a served GET
my @extra = grep {
    my ($m, $p) = split / /, $_, 2;
    !($route{$_} || ($m eq 'HEAD' && $route{"GET $p"}))
} sort keys %ops;
ok(!@extra, 'every documented operation is a route in the route tables')
    or diag("documented but not served: @extra");

for my $key (sort grep { $ops{$_} } keys %route) {
    my $rt = $route{$key};
    my $op = $ops{$key}{op};
    my $want = $SEC_OF{ $rt->{access} };
    die "unknown access class $rt->{access}\n" unless defined $want;

    ok(ref $op->{security} eq 'ARRAY', "$key: declares security");
    my @schemes = map { sort keys %$_ } @{ $op->{security} // [] };
    is("@schemes", $want,
        "$key: security " . ($want || 'none') . " ($rt->{access})");

    my %codes = map { ($_ => 1) } keys %{ $op->{responses} // {} };
    if ($rt->{access} ne 'PUBLIC') {
        ok($codes{401}, "$key: documents 401");
    }
    if ($rt->{access} eq 'ADMIN') {
        ok($codes{403}, "$key: documents 403");
    }

    # json_body: 1 a JSON body, 2 an optional one, 3 any bytes of any
    # media type (perhaps none), 0 none
    my $rb = deref($op->{requestBody});
    if ($rt->{json_body} == 3) {
        my $any = deref($rb && $rb->{content}{'*/*'}
            && $rb->{content}{'*/*'}{schema});
        ok($any && ($any->{type} // '') eq 'string'
            && ($any->{format} // '') eq 'binary',
            "$key: */* binary request body documented");
        ok($rb && !$rb->{required}, "$key: request body optional");
        ok($codes{$_}, "$key: documents $_") for 400, 413;
        ok(!$codes{415}, "$key: no 415 (any media type is taken)");
    } elsif ($rt->{json_body}) {
        ok($rb && $rb->{content}{'application/json'},
            "$key: JSON request body documented");
        is(($rb->{required} ? 1 : 0), ($rt->{json_body} == 1 ? 1 : 0),
            "$key: request body " . ($rt->{json_body} == 1 ? 'required'
                : 'optional'));
        ok($codes{$_}, "$key: documents $_") for 400, 413, 415;
    } else {
        ok(!$rb, "$key: no request body");
    }
}


# --- the running module agrees: 401 (or 200) on documented operations, 405
#     with the documented methods in Allow on the others -------------------

sub fill {
    my ($path) = @_;
    $path =~ s/\{(\w+)\}/$1 eq 'userId' ? 'probe-user' : $UUID/ge;
    return $path;
}

for my $path (sort keys %{ $doc->{paths} }) {
    my $item = $doc->{paths}{$path};
    my $url = fill($path);
    my @documented = map { uc } grep { $item->{$_} } @METHODS;
    for my $m (@documented) {
        next if $m eq 'HEAD';
        my $op = $item->{lc $m};
        my @schemes = map { keys %$_ } @{ $op->{security} // [] };
        my $res = $ng->req($m => $url, auth => 'none');
        if (!@schemes) {
            is($res->{status}, 200, "$m $url without credentials: 200");
            next;
        }
        is($res->{status}, 401, "$m $url without credentials: 401");
        my $www = $res->{headers}{'www-authenticate'} // '';
        like($www, $schemes[0] eq 'serviceKey' ? qr/^ApiKey\b/ : qr/^Bearer\b/,
            "... WWW-Authenticate asks for $schemes[0]");
    }
    my %doc = map { ($_ => 1) } @documented;
    $doc{HEAD} = 1 if $doc{GET};
    my $allow = join ', ', grep { $doc{$_} }
        qw(GET HEAD POST PUT PATCH DELETE);
    for my $m (grep { !$doc{$_} } qw(GET POST PUT PATCH DELETE)) {
        my $res = $ng->req($m => $url, auth => 'none');
        is($res->{status}, 405, "$m $url (undocumented): 405");
        is($res->{headers}{allow}, $allow, "... Allow: $allow");
    }
}


# --- documented limits are the server's limits ------------------------------

my $seq = 0;
sub valid_customer {
    $seq++;
    return (userId => "limits-$seq", email => "limits$seq\@example.com",
        fullName => 'Limits Customer');
}

sub create {
    my (%body) = @_;
    return $ng->req(POST => '/api/customers', json => \%body);
}


my $create = deref($doc->{paths}{'/api/customers'}{post}{requestBody})
    ->{content}{'application/json'}{schema};
$create = deref($create);
my $props = $create->{properties};

sub prop {
    my ($schema, $name) = @_;
    my $p = deref($schema->{properties}{$name});
    # nullable: {type: [T, "null"]} or oneOf [..., {type: null}]
    if ($p->{oneOf}) {
        ($p) = map { deref($_) } grep { !(($_->{type} // '') eq 'null') }
            @{ $p->{oneOf} };
    }
    return $p;
}

is($create->{additionalProperties}, JSON::PP::false,
    'CustomerCreate: additionalProperties false');
{
    my $res = create(valid_customer(), nickname => 'x');
    is($res->{status}, 400, 'an undocumented field: 400');
    is_deeply(field_set($res), ['nickname'], '... names it');
}

for my $req (@{ $create->{required} }) {
    my %b = valid_customer();
    delete $b{$req};
    my $res = create(%b);
    is($res->{status}, 400, "required $req missing: 400");
    is_deeply(field_set($res), [$req], "... names $req");
}

# string lengths: one under the minimum and one over the maximum fail,
# the bounds themselves pass
for my $name (qw(fullName userId nationalId notes)) {
    my $p = prop($create, $name);
    ok(defined $p->{maxLength}, "$name: maxLength documented") or next;
    my $min = $p->{minLength} // 0;
    my @cases = ([$p->{maxLength}, 201], [$p->{maxLength} + 1, 400]);
    push @cases, [$min, 201] if $min > 0;
    push @cases, [$min - 1, 400] if $min > 1;
    for my $c (@cases) {
        my ($len, $want) = @$c;
        my %b = (valid_customer(), $name => 'x' x $len);
        my $res = create(%b);
        is($res->{status}, $want, "$name of $len characters: $want");
        is_deeply(field_set($res), [$name], '... names it')
            if $want == 400;
    }
}

# arrays: maxItems
for my $c (['tags', sub { "tag$_[0]" }],
    ['addresses', sub { { line1 => "$_[0] Main St", city => 'Pune',
        country => 'IN' } }])
{
    my ($name, $item) = @$c;
    my $p = prop($create, $name);
    my $max = $p->{maxItems};
    ok(defined $max, "$name: maxItems documented") or next;
    is(create(valid_customer(), $name => [map { $item->($_) } 1 .. $max])
        ->{status}, 201, "$name with $max items: 201");
    my $res = create(valid_customer(),
        $name => [map { $item->($_) } 1 .. $max + 1]);
    is($res->{status}, 400, "$name with " . ($max + 1) . " items: 400");
}
{
    my $p = deref(prop($create, 'tags')->{items});
    my $res = create(valid_customer(), tags => ['t' x ($p->{maxLength} + 1)]);
    is($res->{status}, 400, "a tag over $p->{maxLength} characters: 400");
}

# patterns: the documented regular expression and the server agree
{
    my $pattern = prop($create, 'contactNumber')->{pattern};
    is($pattern, '^\+[1-9][0-9]{1,14}$', 'contactNumber: E.164 pattern');
    for my $n ('+919876543210', '+12', '+123456789012345', '+1234567890123456',
        '+0123456789', '919876543210', '+91 98765 43210', '+1', '+91987654321a')
    {
        my $doc_ok = $n =~ /$pattern/ ? 1 : 0;
        my $res = create(valid_customer(), contactNumber => $n);
        is($res->{status}, $doc_ok ? 201 : 400,
            "contactNumber $n: " . ($doc_ok ? 'matches, 201' : 'fails, 400'));
    }
    my $country = deref($doc->{components}{schemas}{Address})
        ->{properties}{country}{pattern};
    for my $cc (qw(IN in IND I)) {
        my $doc_ok = $cc =~ /$country/ ? 1 : 0;
        my $res = create(valid_customer(), addresses => [{ line1 => '1 Road',
            city => 'Pune', country => $cc }]);
        is($res->{status}, $doc_ok ? 201 : 400,
            "country $cc: " . ($doc_ok ? 201 : 400));
    }
}

# enums
for my $name (qw(customerStatus customerType)) {
    my @values = @{ prop($create, $name)->{enum} };
    for my $v (@values) {
        is(create(valid_customer(), $name => $v)->{status}, 201,
            "$name $v: 201");
    }
    my $res = create(valid_customer(), $name => 'Bogus');
    is($res->{status}, 400, "$name Bogus: 400");
    is($res->{json}{errors}[0]{message}, 'Must be one of: ' . join(', ', @values),
        '... the message lists the documented values');
}

# query parameters of the list
{
    my $list = $doc->{paths}{'/api/customers'}{get};
    my %q = map { ($_->{name} => $_->{schema}) }
        map { deref($_) } @{ $list->{parameters} };
    for my $name (qw(page limit)) {
        my $s = $q{$name};
        is($ng->req(GET => "/api/customers?$name=$s->{maximum}")->{status},
            200, "$name=$s->{maximum}: 200");
        is($ng->req(GET => "/api/customers?$name=" . ($s->{maximum} + 1))
            ->{status}, 400, "$name=" . ($s->{maximum} + 1) . ': 400');
        is($ng->req(GET => "/api/customers?$name=" . ($s->{minimum} - 1))
            ->{status}, 400, "$name=" . ($s->{minimum} - 1) . ': 400');
    }
    my $page = $ng->req(GET => '/api/customers');
    is($page->{json}{data}{pagination}{itemsPerPage}, $q{limit}{default},
        "limit defaults to $q{limit}{default}");
    for my $name (qw(status type sortBy sortOrder)) {
        for my $v (@{ $q{$name}{enum} }) {
            is($ng->req(GET => "/api/customers?$name=$v")->{status}, 200,
                "$name=$v: 200");
        }
        my $res = $ng->req(GET => "/api/customers?$name=bogus");
        is($res->{status}, 400, "$name=bogus: 400");
        is_deeply(field_set($res), [$name], '... names it');
    }
}

# the status change's reason
{
    my $res = create(valid_customer());
    my $id = $res->{json}{data}{customerId};
    my $schema = deref(deref($doc->{paths}{'/api/customers/{id}/status'}{patch}
        {requestBody})->{content}{'application/json'}{schema});
    my $max = prop($schema, 'reason')->{maxLength};
    $res = $ng->req(PATCH => "/api/customers/$id/status",
        json => { status => 'Suspended', reason => 'r' x ($max + 1) });
    is($res->{status}, 400, "status reason over $max characters: 400");
    is_deeply(field_set($res), ['reason'], '... names it');
    $res = $ng->req(PATCH => "/api/customers/$id/status",
        json => { status => 'Deleted' });
    is($res->{status}, 400, 'status outside the documented enum: 400');
}

# the statistics' increments
{
    my $res = create(valid_customer());
    my $id = $res->{json}{data}{customerId};
    my $schema = deref(deref(
        $doc->{paths}{'/api/customers/internal/{id}/statistics'}{patch}
        {requestBody})->{content}{'application/json'}{schema});
    my $inc = deref($schema->{properties}{increment})->{properties}{totalOrders};
    for my $c ([$inc->{maximum}, 200], [$inc->{maximum} + 1, 400],
        [$inc->{minimum} - 1, 400])
    {
        my ($n, $want) = @$c;
        $res = $ng->req(PATCH => "/api/customers/internal/$id/statistics",
            auth => 'service',
            json => { increment => { totalOrders => $n } });
        is($res->{status}, $want, "increment.totalOrders $n: $want");
    }
}

# documented envelopes: a success and an error answer carry the
# documented members
{
    my $res = create(valid_customer());
    my $customer = deref($doc->{components}{schemas}{Customer});
    is_deeply([sort keys %{ $res->{json}{data} }],
        [sort keys %{ $customer->{properties} }],
        'a created record has exactly the documented Customer members');
    my $error = deref($doc->{components}{schemas}{Error});
    $res = create(valid_customer(), fullName => 'x');
    is_deeply([sort keys %{ $res->{json} }], [sort @{ $error->{required} }],
        'an error has exactly the documented Error members');
    $res = $ng->req(GET => '/api/customers?limit=1');
    is_deeply([sort keys %{ $res->{json}{data}{pagination} }],
        [sort keys %{ deref($doc->{components}{schemas}{Pagination})
            ->{properties} }],
        'the list pagination has the documented members');
    is_deeply([sort keys %{ $res->{json}{data}{customers}[0] }],
        [sort keys %{ deref($doc->{components}{schemas}{CustomerSummary})
            ->{properties} }],
        'a list item has the documented CustomerSummary members');
}


# --- Swagger UI ---------------------------------------------------------------

SKIP: {
    skip 'build/swagger-ui is missing: run scripts/swagger.sh (make test does)', 6
        unless -f "$ROOT/build/swagger-ui/index.html";

    my $res = $ng->req(GET => '/docs', auth => 'none');
    is($res->{status}, 301, 'GET /docs: 301');
    like($res->{headers}{location} // '', qr{/docs/$}, '... to /docs/');

    $res = $ng->req(GET => '/docs/', auth => 'none');
    is($res->{status}, 200, 'GET /docs/: 200');
    like($res->{headers}{'content-type'} // '', qr{^text/html},
        '... text/html');
    like($res->{body}, qr{<div id="swagger-ui">.*swagger-ui-bundle\.js}s,
        "... Swagger UI's index.html");

    $res = $ng->req(GET => '/docs/swagger-initializer.js', auth => 'none');
    like($res->{body}, qr{url:\s*"/api/openapi\.json"},
        '... its initializer loads /api/openapi.json');
}

done_testing();
