-- Idempotency keys are kept 24 hours: the outbox run (each worker's
-- customer_outbox_trigger) deletes older ones a batch at a time, found
-- through this index instead of a scan of every stored answer.
CREATE INDEX loyalty_idempotency_created
    ON loyalty_idempotency (created_at);
