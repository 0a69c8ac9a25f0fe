-- A userId of "." or ".." is no path segment of its own: in
-- PATCH /api/auth/user/{userId}/status it would be resolved away (the
-- call would reach /api/auth/status), and in
-- GET /api/customers/internal/user/{userId} it cannot be asked for. The
-- module refuses such ids; this keeps them out of the table too.
--
-- Older versions of the module accepted them, so rows may exist. Adding
-- the check must not fail on them (nor rename an id the Auth Service
-- owns): with such rows it is added NOT VALID, which holds for every new
-- or changed row, and a WARNING names the count; once the operator has
-- fixed them, ALTER TABLE customers VALIDATE CONSTRAINT
-- customers_user_id_not_dot. The module never sends such a row's outbox
-- entry to the Auth Service.
DO $$
DECLARE
    bad bigint;
BEGIN
    SELECT count(*) INTO bad FROM customers WHERE user_id IN ('.', '..');

    IF bad = 0 THEN
        ALTER TABLE customers ADD CONSTRAINT customers_user_id_not_dot
            CHECK (user_id NOT IN ('.', '..'));
    ELSE
        ALTER TABLE customers ADD CONSTRAINT customers_user_id_not_dot
            CHECK (user_id NOT IN ('.', '..')) NOT VALID;
        RAISE WARNING '% customers have a userId of "." or "..": the check '
            'customers_user_id_not_dot is NOT VALID until they are fixed',
            bad;
    END IF;
END
$$;
