-- api_ts() was declared IMMUTABLE around to_char(), which is only STABLE,
-- so PostgreSQL refused to inline it and parsed its body on every call
-- (half the server's time in a GET by id). STABLE and not STRICT lets the
-- planner inline it into each query; NULL still gives NULL.
CREATE OR REPLACE FUNCTION api_ts(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;
