-- service_due() and loyalty_tier() as PL/pgSQL: the SQL-language
-- versions (013, 011) have a sub-select, so they are never inlined and
-- were planned again in every statement that called them (~0.8 ms and
-- ~0.4 ms of each dashboard); PL/pgSQL keeps its plans per connection.
-- The same results: t/81 checks the service status at its boundaries,
-- t/70 the tiers at theirs.
CREATE OR REPLACE FUNCTION service_due(v vehicles) RETURNS jsonb
    LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    base     date := coalesce(v.last_service_date,
                              (v.created_at AT TIME ZONE 'UTC')::date);
    next_km  integer := coalesce(v.last_service_mileage, 0)
                        + v.service_interval_km;
    next_at  date := (base + make_interval(
                         months => v.service_interval_months))::date;
    km       integer := next_km - v.mileage;
    days     integer := next_at - api_today();
BEGIN
    RETURN jsonb_build_object(
        'nextServiceMileage', next_km,
        'nextServiceDate', next_at,
        'kmRemaining', km,
        'daysRemaining', days,
        -- whichever comes first as a share of its interval
        'dueBy', CASE WHEN km::numeric * greatest(next_at - base, 1)
                           <= days::numeric * v.service_interval_km
                      THEN 'mileage' ELSE 'date' END,
        'due', km <= 0 OR days <= 0,
        'overdue', km < 0 OR days < 0,
        'status', CASE WHEN km < 0 OR days < 0 THEN 'overdue'
                       WHEN km <= 0 OR days <= 0 THEN 'due'
                       WHEN km <= 500 OR days <= 14 THEN 'due-soon'
                       ELSE 'ok' END);
END
$$;

CREATE OR REPLACE FUNCTION loyalty_tier(points bigint) RETURNS text
    LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN (SELECT name FROM loyalty_tiers WHERE min_points <= points
            ORDER BY min_points DESC LIMIT 1);
END
$$;
