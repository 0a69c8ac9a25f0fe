-- Financial profile of a customer (seed 000): income, debts,
-- assets and liabilities in one currency, with the employment status.
-- At most one per customer; an Administrator creates or replaces it, the
-- customer reads its own.  The derived values (debt-to-income ratio, net
-- worth) are computed on read, never stored.

CREATE TABLE financial_profiles (
    customer_id        uuid PRIMARY KEY
                       REFERENCES customers (id) ON DELETE CASCADE,
    annual_income      numeric(14,2) NOT NULL,
    monthly_debts      numeric(14,2) NOT NULL,
    total_assets       numeric(14,2) NOT NULL,
    total_liabilities  numeric(14,2) NOT NULL,
    employment_status  text,
    employer           text,
    currency           char(3) NOT NULL,       -- ISO 4217
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    updated_by         text,                   -- the token's sub
    version            integer NOT NULL DEFAULT 1,

    CONSTRAINT financial_profiles_annual_income_check
        CHECK (annual_income >= 0),
    CONSTRAINT financial_profiles_monthly_debts_check
        CHECK (monthly_debts >= 0),
    CONSTRAINT financial_profiles_total_assets_check
        CHECK (total_assets >= 0),
    CONSTRAINT financial_profiles_total_liabilities_check
        CHECK (total_liabilities >= 0),
    CONSTRAINT financial_profiles_employment_status_enum
        CHECK (employment_status IN ('employed', 'self-employed',
                                     'unemployed', 'retired', 'student')),
    CONSTRAINT financial_profiles_employer_len
        CHECK (char_length(employer) <= 200),
    CONSTRAINT financial_profiles_currency_iso
        CHECK (currency ~ '^[A-Z]{3}$')
);
