-- Search by a function whose plan is generic. As a prepared statement
-- the search was planned again at every call: its estimated cost with an
-- unknown limit stays above the plans made for each term, so PostgreSQL
-- never settles on a generic plan, and planning it (about 1.2 ms) cost
-- half as much as running it (2.2 to 3.6 ms; the generic plan runs in 2.0
-- to 3.4). Here it is planned once per connection.
--
-- The candidates' distance (d) and similarity (e) are computed once per
-- candidate: OFFSET 0 keeps the planner from pulling the subquery up,
-- which had each trigram comparison made again for the filter and for
-- the sort (2.8 ms a search on average over the 20 bench fragments,
-- 1.7 ms with it, the same rows in the same order).
--
-- The candidates are bounded, whatever the term: for each of the query's
-- 4 longest words (customer_search_words(), sql/024) the first 2 x limit
-- entries of the words that start with it, one btree range each; and only
-- when those are fewer than the limit (a misspelt word) the customers of
-- the 2 nearest spellings of each word in the vocabulary of words of
-- letters, 2 x limit each.  Only they are ranked, as before: a word
-- similarity of at least 0.3, nearest first, and among equally near the
-- most similar texts.  The folded term is computed once (customer_fold()
-- looks its dictionary up at each call), and each candidate is fetched by
-- its id (LIMIT 1 keeps the planner from hashing the whole table for a
-- few hundred ids).  The GiST walk over every customer's text that this
-- replaces had no bound: a 3-letter fragment lies as near to thousands of
-- customers.
--
-- term: the query as typed; lim: how many rows at the most.
CREATE FUNCTION customer_search(term text, lim int)
    RETURNS TABLE (id uuid, email text, full_name text,
                   contact_number text, customer_status text,
                   customer_type text, total_orders int)
    LANGUAGE plpgsql STABLE
    SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
        WITH q AS MATERIALIZED (SELECT customer_fold(term) AS t),
        w AS (SELECT word FROM q, unnest(customer_search_words(q.t)) word
        ORDER BY length(word) DESC, word LIMIT 4),
        p AS (SELECT s.customer_id FROM w CROSS JOIN LATERAL
        (SELECT customer_id FROM customer_search_words s
        WHERE s.word >= w.word AND s.word < w.word || chr(1114111)
        ORDER BY s.word, s.customer_id LIMIT 2 * lim) s),
        t AS (SELECT s.customer_id FROM w CROSS JOIN LATERAL
        (SELECT v.word FROM customer_search_vocab v
        WHERE (SELECT count(*) FROM p) < lim
        ORDER BY w.word <<-> v.word LIMIT 2) v
        CROSS JOIN LATERAL
        (SELECT customer_id FROM customer_search_words s
        WHERE s.word = v.word ORDER BY s.customer_id LIMIT 2 * lim) s
        WHERE w.word <<-> v.word <= 0.7),
        c AS (SELECT customer_id FROM p UNION SELECT customer_id FROM t)
        SELECT id, email, full_name, contact_number, customer_status,
        customer_type, total_orders FROM
        (SELECT x.*, q.t <<-> x.search_text AS d,
        similarity(q.t, x.search_text) AS e
        FROM q, c CROSS JOIN LATERAL (SELECT * FROM customers x
        WHERE x.id = c.customer_id LIMIT 1) x OFFSET 0) x
        WHERE d <= 0.7
        ORDER BY d, e DESC, id
        LIMIT lim;
END
$$;
