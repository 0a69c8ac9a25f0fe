-- An earn runs the loyalty account's event trigger on every row it
-- changes, and nearly every earn stays within its tier. The trigger now
-- asks one question first, whether a tier's threshold lies between the
-- lifetime points before and after (one index probe), and names the two
-- tiers only when one does: the same events as before, for one query per
-- earn instead of three calls of loyalty_tier().
CREATE OR REPLACE FUNCTION events_loyalty_accounts() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    before  bigint := 0;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        before := OLD.lifetime_points;
    END IF;

    IF EXISTS (SELECT 1 FROM loyalty_tiers
               WHERE min_points > least(before, NEW.lifetime_points)
                 AND min_points <= greatest(before, NEW.lifetime_points))
    THEN
        PERFORM event_raise('loyalty.tier_changed', NEW.customer_id,
            'customers/' || NEW.customer_id || '/loyalty',
            jsonb_build_object('previousTier', loyalty_tier(before),
                               'tier', loyalty_tier(NEW.lifetime_points),
                               'lifetimePoints', NEW.lifetime_points));
    END IF;

    RETURN NULL;
END
$$;
