-- A userId is one path segment when the module calls the Auth Service
-- (PATCH /api/auth/user/{userId}/status) and in
-- GET /api/customers/internal/user/{userId}: it cannot hold a '/'.
ALTER TABLE customers ADD CONSTRAINT customers_user_id_no_slash
    CHECK (position('/' in user_id) = 0);
