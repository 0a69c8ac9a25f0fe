-- Outbox leases: a claim stamps each row with a lease of its own, the
-- claimant renews it just before each send and records the outcome only
-- while it still holds it, so a slow Auth Service can never have two
-- workers send the same row. A row that keeps failing is set aside
-- (dead_at) after a bounded number of attempts; it no longer holds back
-- that customer's later changes, and /health and the metrics count it.
ALTER TABLE auth_outbox ADD COLUMN lease uuid;
ALTER TABLE auth_outbox ADD COLUMN dead_at timestamptz;
