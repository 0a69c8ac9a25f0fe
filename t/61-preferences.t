# Preferences: GET|PUT /api/customers/{id}/preferences for an
# Administrator and /api/customers/me/preferences for the caller's own
# record. Reads fill in every group's default; PUT replaces what is stored,
# honours If-Match and lists every failing field at once; the customer
# record's PATCH still merges "preferences" and validates the new groups.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use CT;

my $db = CT::db_create();
my $ng = CT::nginx_start(db => $db);


my %DEFAULTS = (
    communication => { email => $T, sms => $F, push => $F },
    newsletter => $F,
    notifications => $T,
    language => 'en',
    theme => 'system',
    preferredServiceDays => [],
    preferredServiceTimes => [],
    dietaryRestrictions => [],
    marketingOptIn => $F,
    privacy => { dataSharing => $F, analyticsConsent => $F },
);


# --- helpers -------------------------------------------------------------

sub uniq { CT::uniq('prefs') }

sub make_customer { CT::make_customer($ng, 'prefs', @_) }

sub stored {
    my ($id) = @_;
    my $j = CT::sql($db, q{SELECT json_build_object('preferences',
        preferences, 'version', version, 'updated_by', updated_by)
        FROM customers WHERE id = :'p1'}, $id);
    return JSON::PP->new->decode($j);
}

sub says {
    my ($r, $field) = @_;
    my ($e) = grep { $_->{field} eq $field }
        @{ ($r->{json} // {})->{errors} // [] };
    return $e ? $e->{message} : undef;
}

sub put_prefs {
    my ($id, $body, %o) = @_;
    return $ng->req(PUT => "/api/customers/$id/preferences", json => $body,
        %o);
}


# --- GET: defaults for a fresh customer ------------------------------------

my ($ID, $SUB) = make_customer();

{
    my $r = $ng->req(GET => "/api/customers/$ID/preferences");
    is($r->{status}, 200, 'GET preferences: 200') or diag($r->{body});
    is($r->{json}{success}, $T, 'GET: success true');
    is($r->{json}{message}, 'Preferences retrieved successfully',
        'GET: message');
    is_deeply([sort keys %{ $r->{json}{data} }],
        [qw(customerId preferences)], 'GET: data is customerId, preferences');
    is($r->{json}{data}{customerId}, $ID, 'GET: customerId');
    is_deeply($r->{json}{data}{preferences}, \%DEFAULTS,
        'GET: every group present with its default');
    is($r->{headers}{etag}, '"1"', "GET: the customer's ETag");
    like($r->{headers}{'x-request-id'} // '', qr/\S/, 'GET: X-Request-Id');

    $r = $ng->req(HEAD => "/api/customers/$ID/preferences");
    is($r->{status}, 200, 'HEAD preferences: 200');
    is($r->{body}, '', 'HEAD: no body');

    $r = $ng->req(GET => "/api/customers/$ID/preferences/");
    is($r->{status}, 200, 'GET preferences/ (trailing slash): 200');

    # what was stored before is kept, the rest is filled in
    CT::sql($db, q{UPDATE customers SET preferences = '{"newsletter": true,
        "communication": {"sms": true}}' WHERE id = :'p1'}, $ID);
    $r = $ng->req(GET => "/api/customers/$ID/preferences");
    is_deeply($r->{json}{data}{preferences}, { %DEFAULTS, newsletter => $T,
        communication => { email => $T, sms => $T, push => $F } },
        'GET: stored members over the defaults, nested groups merged');
    CT::sql($db, q{UPDATE customers SET preferences = '{}'
        WHERE id = :'p1'}, $ID);

    $r = $ng->req(GET => "/api/customers/$MISSING/preferences");
    is_error($r, 404, 'Customer not found', ['customerId'],
        'GET unknown customer');
    $r = $ng->req(GET => '/api/customers/not-a-uuid/preferences');
    is_error($r, 400, 'Validation failed', ['customerId'], 'GET bad id');

    $r = $ng->req(POST => "/api/customers/$ID/preferences", json => {});
    is($r->{status}, 405, 'POST preferences: 405');
    is($r->{headers}{allow}, 'GET, HEAD, PUT', '... Allow: GET, HEAD, PUT');
}


# --- PUT then GET ----------------------------------------------------------

my %FULL = (
    communication => { email => $F, sms => $T, push => $T },
    newsletter => $T,
    notifications => $F,
    language => 'hi-IN',
    theme => 'dark',
    preferredServiceDays => ['monday', 'saturday'],
    preferredServiceTimes => [{ start => '09:00', end => '12:30' },
        { start => '00:00', end => '23:59' }],
    dietaryRestrictions => ['vegetarian', 'no nuts'],
    marketingOptIn => $T,
    privacy => { dataSharing => $T, analyticsConsent => $T },
);

{
    my $before = stored($ID)->{version};
    my $r = put_prefs($ID, \%FULL);
    is($r->{status}, 200, 'PUT every group: 200') or diag($r->{body});
    is($r->{json}{message}, 'Preferences updated successfully',
        'PUT: message');
    is($r->{json}{data}{customerId}, $ID, 'PUT: customerId');
    is_deeply($r->{json}{data}{preferences}, \%FULL,
        'PUT: answers the new preferences');
    is($r->{headers}{etag}, '"' . ($before + 1) . '"', 'PUT: the new ETag');
    my $s = stored($ID);
    is($s->{version}, $before + 1, 'PUT: version + 1');
    is($s->{updated_by}, 'admin-user', "PUT: updated_by is the token's sub");
    is_deeply($s->{preferences}, \%FULL, 'PUT: stored');

    $r = $ng->req(GET => "/api/customers/$ID/preferences");
    is_deeply($r->{json}{data}{preferences}, \%FULL, 'GET after PUT');
    is($r->{headers}{etag}, '"' . ($before + 1) . '"', 'GET: the new ETag');

    # PUT replaces: what is not given is back to its default on read
    $r = put_prefs($ID, { theme => 'light',
        communication => { sms => $T },
        dietaryRestrictions => ['  halal  '] });
    is($r->{status}, 200, 'PUT some groups: 200') or diag($r->{body});
    my %want = (%DEFAULTS, theme => 'light',
        communication => { email => $T, sms => $T, push => $F },
        dietaryRestrictions => ['halal']);
    is_deeply($r->{json}{data}{preferences}, \%want,
        'PUT replaces: the rest back to the defaults, strings trimmed');
    is_deeply(stored($ID)->{preferences}, { theme => 'light',
        communication => { sms => $T }, dietaryRestrictions => ['halal'] },
        'PUT: only what was given is stored');
    $r = $ng->req(GET => "/api/customers/$ID/preferences");
    is_deeply($r->{json}{data}{preferences}, \%want, 'GET after PUT again');

    $r = put_prefs($ID, {});
    is($r->{status}, 200, 'PUT {}: 200');
    is_deeply($r->{json}{data}{preferences}, \%DEFAULTS,
        'PUT {}: every default');

    # the customer record shows what is stored
    $r = $ng->req(GET => "/api/customers/$ID");
    is_deeply($r->{json}{data}{preferences}, {},
        'GET customer: the stored preferences');

    $r = put_prefs($MISSING, { theme => 'dark' });
    is_error($r, 404, 'Customer not found', ['customerId'],
        'PUT unknown customer');
}


# --- validation: every failing field at once, nothing written --------------

{
    my $before = stored($ID);
    my @cases = (
        ['bad language', { language => 'english' }, ['language']],
        ['language not a string', { language => 5 }, ['language']],
        ['bad weekday', { preferredServiceDays => ['monday', 'funday'] },
            ['preferredServiceDays[1]']],
        ['capitalised weekday', { preferredServiceDays => ['Monday'] },
            ['preferredServiceDays[0]']],
        ['duplicate day',
            { preferredServiceDays => ['friday', 'monday', 'friday'] },
            ['preferredServiceDays[2]'], 'Duplicate item'],
        ['days not an array', { preferredServiceDays => 'monday' },
            ['preferredServiceDays'], 'Must be an array'],
        ['bad time 25:00',
            { preferredServiceTimes => [{ start => '25:00', end => '26:00' }] },
            ['preferredServiceTimes[0].end',
             'preferredServiceTimes[0].start']],
        ['bad time shape',
            { preferredServiceTimes => [{ start => '9:00', end => '10:60' }] },
            ['preferredServiceTimes[0].end',
             'preferredServiceTimes[0].start']],
        ['start equals end',
            { preferredServiceTimes => [{ start => '10:00', end => '10:00' }] },
            ['preferredServiceTimes[0].end'], 'Must be later than start'],
        ['start after end',
            { preferredServiceTimes => [{ start => '09:00', end => '10:00' },
                { start => '18:00', end => '08:00' }] },
            ['preferredServiceTimes[1].end']],
        ['time window missing end',
            { preferredServiceTimes => [{ start => '09:00' }] },
            ['preferredServiceTimes[0].end'], 'Field is required'],
        ['time window unknown member',
            { preferredServiceTimes => [{ start => '09:00', end => '10:00',
                day => 'monday' }] },
            ['preferredServiceTimes[0].day'], 'Unknown field'],
        ['too many time windows',
            { preferredServiceTimes => [map {
                { start => sprintf('%02d:00', $_), end => sprintf('%02d:30', $_) }
              } 1 .. 8] },
            ['preferredServiceTimes'], 'Must have at most 7 items'],
        ['time window not an object',
            { preferredServiceTimes => ['09:00-10:00'] },
            ['preferredServiceTimes[0]'], 'Must be an object'],
        ['too many restrictions',
            { dietaryRestrictions => [map { "r$_" } 1 .. 21] },
            ['dietaryRestrictions'], 'Must have at most 20 items'],
        ['empty restriction', { dietaryRestrictions => [''] },
            ['dietaryRestrictions[0]']],
        ['long restriction', { dietaryRestrictions => ['x' x 51] },
            ['dietaryRestrictions[0]']],
        ['duplicate restriction',
            { dietaryRestrictions => ['vegan', ' vegan'] },
            ['dietaryRestrictions[1]'], 'Duplicate item'],
        ['restriction not a string', { dietaryRestrictions => [7] },
            ['dietaryRestrictions[0]']],
        ['bad theme', { theme => 'neon' }, ['theme'],
            'Must be one of: light, dark, system'],
        ['communication not an object', { communication => $T },
            ['communication'], 'Must be an object'],
        ['communication member not a bool',
            { communication => { email => 'yes', push => 1 } },
            ['communication.email', 'communication.push']],
        ['unknown nested member', { communication => { fax => $T } },
            ['communication.fax'], 'Unknown field'],
        ['unknown privacy member', { privacy => { cookies => $F } },
            ['privacy.cookies'], 'Unknown field'],
        ['unknown group', { colour => 'red' }, ['colour'], 'Unknown field'],
        ['null group', { theme => undef }, ['theme'], 'Must not be null'],
        ['wrong types', { newsletter => 'yes', notifications => 1,
            marketingOptIn => 'true', privacy => { dataSharing => 0 } },
            [qw(newsletter notifications marketingOptIn privacy.dataSharing)]],
        ['every group wrong at once', {
            communication => { sms => 'no', fax => $T },
            newsletter => 1, notifications => 'on', language => 'e',
            theme => 'blue',
            preferredServiceDays => ['sunday', 'sunday', 'someday'],
            preferredServiceTimes => [{ start => '25:00', end => '10:00' },
                { start => '11:00', end => '10:59' }],
            dietaryRestrictions => ['', 'kosher', 'kosher'],
            marketingOptIn => undef,
            privacy => { dataSharing => 'x', analyticsConsent => [] },
            extra => 1 },
            [qw(communication.sms communication.fax newsletter notifications
                language theme preferredServiceDays[1]
                preferredServiceDays[2] preferredServiceTimes[0].start
                preferredServiceTimes[1].end dietaryRestrictions[0]
                dietaryRestrictions[2] marketingOptIn privacy.dataSharing
                privacy.analyticsConsent extra)]],
    );

    for my $c (@cases) {
        my ($name, $body, $fields, $says) = @$c;
        my $r = put_prefs($ID, $body);
        is_error($r, 400, 'Validation failed', $fields, "PUT $name");
        is(says($r, $fields->[0]), $says, "PUT $name: says '$says'")
            if defined $says;
    }
    is_deeply(stored($ID), $before, 'no failed PUT wrote anything');

    my $r = put_prefs('not-a-uuid', { theme => 'neon' });
    is_error($r, 400, 'Validation failed', ['customerId', 'theme'],
        'PUT bad id and bad body: both listed');

    $r = $ng->req(PUT => "/api/customers/$ID/preferences",
        body => '["theme"]',
        headers => { 'Content-Type' => 'application/json' });
    is($r->{status}, 400, 'PUT a non-object body: 400');
    is($r->{json}{message}, 'Malformed JSON', '... Malformed JSON');

    $r = $ng->req(PUT => "/api/customers/$ID/preferences",
        body => '{"theme":"dark"}',
        headers => { 'Content-Type' => 'text/plain' });
    is($r->{status}, 415, 'PUT text/plain: 415');

    # the bounds themselves pass
    $r = put_prefs($ID, {
        preferredServiceDays => [qw(monday tuesday wednesday thursday friday
            saturday sunday)],
        preferredServiceTimes => [map {
            { start => sprintf('%02d:00', $_), end => sprintf('%02d:59', $_) }
          } 17 .. 23],
        dietaryRestrictions => [('y' x 50), map { "r$_" } 2 .. 20] });
    is($r->{status}, 200, 'PUT 7 days, 7 windows, 20 restrictions of up to '
        . '50 characters: 200') or diag($r->{body});
    put_prefs($ID, {});
}


# --- If-Match ---------------------------------------------------------------

{
    my $v = stored($ID)->{version};
    my $r = put_prefs($ID, { theme => 'dark' },
        headers => { 'If-Match' => '"' . ($v - 1) . '"' });
    is_error($r, 412, 'Precondition failed', ['If-Match'],
        'PUT stale If-Match');
    is(stored($ID)->{version}, $v, 'PUT stale If-Match: nothing written');
    is(stored($ID)->{preferences}{theme}, undef, '... theme not stored');

    $r = put_prefs($ID, { theme => 'dark' },
        headers => { 'If-Match' => 'garbage' });
    is($r->{status}, 412, 'PUT If-Match garbage: 412');

    $r = put_prefs($ID, { theme => 'dark' },
        headers => { 'If-Match' => "\"$v\"" });
    is($r->{status}, 200, 'PUT current If-Match: 200') or diag($r->{body});
    is($r->{headers}{etag}, '"' . ($v + 1) . '"', '... ETag is version + 1');
    is($r->{json}{data}{preferences}{theme}, 'dark', '... written');

    $r = put_prefs($ID, { theme => 'light' },
        headers => { 'If-Match' => '*' });
    is($r->{status}, 200, 'PUT If-Match *: 200');

    $r = put_prefs($MISSING, { theme => 'dark' },
        headers => { 'If-Match' => '"1"' });
    is($r->{status}, 404, 'PUT If-Match on an unknown customer: 404');
}


# --- /me ---------------------------------------------------------------------

{
    my ($mid, $msub) = make_customer();
    my $tok = CT::customer_token($msub);

    my $r = $ng->req(GET => '/api/customers/me/preferences', auth => $tok);
    is($r->{status}, 200, 'GET /me/preferences: 200') or diag($r->{body});
    is($r->{json}{data}{customerId}, $mid, '/me: the record of the sub');
    is_deeply($r->{json}{data}{preferences}, \%DEFAULTS, '/me: defaults');
    is($r->{headers}{etag}, '"1"', '/me: ETag');

    $r = $ng->req(PUT => '/api/customers/me/preferences', auth => $tok,
        json => { newsletter => $T, preferredServiceDays => ['sunday'] },
        headers => { 'If-Match' => '"1"' });
    is($r->{status}, 200, 'PUT /me/preferences: 200') or diag($r->{body});
    is($r->{json}{message}, 'Preferences updated successfully',
        'PUT /me: message');
    is_deeply($r->{json}{data}{preferences}, { %DEFAULTS, newsletter => $T,
        preferredServiceDays => ['sunday'] }, 'PUT /me: answered');
    is($r->{headers}{etag}, '"2"', 'PUT /me: ETag "2"');
    my $s = stored($mid);
    is($s->{updated_by}, $msub, 'PUT /me: updated_by is the sub');
    is_deeply(stored($ID)->{preferences}, { theme => 'light' },
        "PUT /me: another customer's preferences untouched");

    $r = $ng->req(PUT => '/api/customers/me/preferences', auth => $tok,
        json => { theme => 'dark' }, headers => { 'If-Match' => '"1"' });
    is_error($r, 412, 'Precondition failed', ['If-Match'],
        'PUT /me stale If-Match');

    $r = $ng->req(PUT => '/api/customers/me/preferences', auth => $tok,
        json => { theme => 'x', communication => { fax => $T } });
    is_error($r, 400, 'Validation failed', ['theme', 'communication.fax'],
        'PUT /me invalid');
    is(stored($mid)->{version}, 2, 'PUT /me invalid: nothing written');

    # an Administrator's own record, by its sub
    my ($aid) = make_customer(userId => 'prefs-admin');
    $r = $ng->req(GET => '/api/customers/me/preferences',
        auth => CT::admin_token('prefs-admin'));
    is($r->{status}, 200, 'GET /me/preferences as an Administrator: 200');
    is($r->{json}{data}{customerId}, $aid, '... its own record');

    my $none = CT::customer_token('prefs-nobody-has-this');
    $r = $ng->req(GET => '/api/customers/me/preferences', auth => $none);
    is_error($r, 404, 'Customer not found', ['userId'],
        'GET /me/preferences without a record');
    is($r->{json}{errors}[0]{message},
        'No customer record exists for this user', '... says why');
    $r = $ng->req(PUT => '/api/customers/me/preferences', auth => $none,
        json => { theme => 'dark' });
    is_error($r, 404, 'Customer not found', ['userId'],
        'PUT /me/preferences without a record');

    # the admin routes are not for a Customer, not even its own record
    $r = $ng->req(GET => "/api/customers/$mid/preferences", auth => $tok);
    is($r->{status}, 403, 'GET {id}/preferences as a Customer: 403');
    $r = $ng->req(PUT => "/api/customers/$mid/preferences", auth => $tok,
        json => { theme => 'dark' });
    is($r->{status}, 403, 'PUT {id}/preferences as a Customer: 403');
    is(stored($mid)->{version}, 2, '... nothing written');

    for my $c (['GET', "/api/customers/$mid/preferences"],
        ['PUT', "/api/customers/$mid/preferences"],
        ['GET', '/api/customers/me/preferences'],
        ['PUT', '/api/customers/me/preferences'])
    {
        my ($m, $path) = @$c;
        $r = $ng->req($m => $path, auth => 'none',
            $m eq 'PUT' ? (json => { theme => 'dark' }) : ());
        is($r->{status}, 401, "$m $path anonymous: 401");
        like($r->{headers}{'www-authenticate'} // '', qr/^Bearer\b/,
            '... WWW-Authenticate: Bearer');
    }
    $r = $ng->req(GET => '/api/customers/me/preferences', auth => 'service');
    is($r->{status}, 401, 'GET /me/preferences with a service key: 401');
}


# --- the customer record validates and merges the new groups ---------------

# PATCH /api/customers/ID with {preferences: PREFS}: 200 (test NAME); the
# answer
sub patch_preferences {
    my ($id, $prefs, $name) = @_;
    my $r = $ng->req(PATCH => "/api/customers/$id",
        json => { preferences => $prefs });
    is($r->{status}, 200, "$name: 200") or diag($r->{body});
    return $r;
}

{
    my ($pid) = make_customer(preferences => { theme => 'dark',
        communication => { push => $T } });
    my $r = $ng->req(GET => "/api/customers/$pid/preferences");
    is_deeply($r->{json}{data}{preferences}, { %DEFAULTS, theme => 'dark',
        communication => { email => $T, sms => $F, push => $T } },
        'POST customer with new groups: read back with defaults');

    $r = patch_preferences($pid, { theme => 'light' },
        'PATCH customer preferences.theme');
    is($r->{json}{data}{preferences}{theme}, 'light', '... changed');
    is_deeply($r->{json}{data}{preferences}{communication}, { push => $T },
        '... PATCH merges: communication kept');

    $r = patch_preferences($ID, { theme => 'dark' },
        'PATCH {"preferences":{"theme":"dark"}}');
    is($r->{json}{data}{preferences}{theme}, 'dark', '... theme stored');
    $r = $ng->req(GET => "/api/customers/$ID/preferences");
    is($r->{json}{data}{preferences}{theme}, 'dark',
        '... GET preferences sees it');

    my $before = stored($ID);
    $r = $ng->req(PATCH => "/api/customers/$ID", json => { preferences => {
        theme => 'neon', communication => { fax => $T },
        preferredServiceDays => ['monday', 'monday'],
        preferredServiceTimes => [{ start => '12:00', end => '11:00' }],
        dietaryRestrictions => [''], privacy => { dataSharing => 'no' },
        marketingOptIn => 'yes' } });
    is_error($r, 400, 'Validation failed', [qw(preferences.theme
        preferences.communication.fax preferences.preferredServiceDays[1]
        preferences.preferredServiceTimes[0].end
        preferences.dietaryRestrictions[0] preferences.privacy.dataSharing
        preferences.marketingOptIn)],
        'PATCH customer: the new groups validated, nested paths');
    is_deeply(stored($ID), $before, '... nothing written');

    $r = $ng->req(PUT => "/api/customers/$ID",
        json => { preferences => { theme => 'neon' } });
    is_error($r, 400, 'Validation failed', ['preferences.theme'],
        'PUT customer: the new groups validated');

    $r = $ng->req(PATCH => '/api/customers/me',
        auth => CT::customer_token($SUB),
        json => { preferences => { privacy => { analyticsConsent => $T } } });
    is($r->{status}, 200, 'PATCH /me with a new group: 200')
        or diag($r->{body});
    $r = $ng->req(GET => '/api/customers/me/preferences',
        auth => CT::customer_token($SUB));
    is_deeply($r->{json}{data}{preferences}{privacy},
        { dataSharing => $F, analyticsConsent => $T },
        '... GET /me/preferences merges it over the defaults');
}


done_testing();
