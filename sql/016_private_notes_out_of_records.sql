-- Private notes were once copied into customers.notes, which the Customer
-- reads in its own record. Where a record's notes is the content of one
-- of its private notes (and of no public one), put back the newest public
-- note's content, or NULL, and bump the version so that cached copies
-- (ETag) are not served again.
UPDATE customers c
SET notes = (SELECT left(n.content, 1000) FROM customer_notes n
             WHERE n.customer_id = c.id AND NOT n.is_private
             ORDER BY n.created_at DESC, n.id DESC LIMIT 1),
    version = c.version + 1
WHERE EXISTS (SELECT 1 FROM customer_notes p
              WHERE p.customer_id = c.id AND p.is_private
                AND left(p.content, 1000) = c.notes)
  AND NOT EXISTS (SELECT 1 FROM customer_notes q
                  WHERE q.customer_id = c.id AND NOT q.is_private
                    AND left(q.content, 1000) = c.notes);
