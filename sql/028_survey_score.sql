-- The survey and the credit score estimate.  Administrators keep the
-- questions; a customer's answers are kept as numbered submissions (the
-- latest counts, the earlier ones are its history).  The estimate is
-- credit_score_estimate() below, from the financial profile and the
-- latest answers, with weights that operators tune in score_weights.

CREATE TABLE survey_questions (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    text        text NOT NULL,
    kind        text NOT NULL,
    -- single and multiple: [{value, label, weight}], at least two values
    options     jsonb NOT NULL DEFAULT '[]',
    -- boolean: points for true; number: points per unit of the answer
    weight      numeric(14,2) NOT NULL DEFAULT 0,
    min_value   numeric(14,2),             -- number: the answer's bounds
    max_value   numeric(14,2),
    is_active   boolean NOT NULL DEFAULT true,
    position    integer NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text,
    updated_by  text,
    version     integer NOT NULL DEFAULT 1,

    CONSTRAINT survey_questions_text_len
        CHECK (char_length(text) BETWEEN 1 AND 500),
    CONSTRAINT survey_questions_kind_enum
        CHECK (kind IN ('single', 'multiple', 'number', 'boolean')),
    CONSTRAINT survey_questions_options_array
        CHECK (jsonb_typeof(options) = 'array')
);

CREATE INDEX survey_questions_order_idx ON survey_questions (position, id);

CREATE TABLE survey_submissions (
    customer_id   uuid NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    version       integer NOT NULL,          -- 1, 2, ... per customer
    answers       jsonb NOT NULL,            -- {"<questionId>": answer}
    submitted_by  text,
    submitted_at  timestamptz NOT NULL DEFAULT now(),

    PRIMARY KEY (customer_id, version)
);

CREATE TABLE score_weights (
    key          text PRIMARY KEY,
    value        numeric NOT NULL,
    description  text NOT NULL
);

INSERT INTO score_weights (key, value, description) VALUES
    ('base', 600, 'the score before any factor'),
    ('dti_target', 0.36,
     'the debt-to-income ratio that adds nothing'),
    ('dti_points', 250,
     'points per 1.0 of ratio below (added) or above (taken) dti_target;'
     ' the ratio counts up to 1.5, and as 1.5 without income'),
    ('net_worth_points', 20,
     'points per unit of ln(1 + |netWorth| / net_worth_scale), with the'
     ' sign of netWorth'),
    ('net_worth_scale', 10000, 'the net worth that counts as one unit'),
    ('net_worth_cap', 100, 'the most the net worth adds or takes'),
    ('employment_employed', 40, 'points for employmentStatus employed'),
    ('employment_self-employed', 20,
     'points for employmentStatus self-employed'),
    ('employment_retired', 10, 'points for employmentStatus retired'),
    ('employment_student', 0, 'points for employmentStatus student'),
    ('employment_unemployed', -80,
     'points for employmentStatus unemployed'),
    ('survey_cap', 100,
     'the most the survey answers add or take together');

-- What one answer adds: the chosen option's weight (single), the sum of
-- the chosen options' weights (multiple), weight when true (boolean),
-- weight times the answer within [min, max] (number); an answer that a
-- question changed since no longer fits adds nothing.
CREATE FUNCTION survey_answer_points(q survey_questions, a jsonb)
    RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(CASE q.kind
        WHEN 'single' THEN (SELECT (o->>'weight')::numeric
            FROM jsonb_array_elements(q.options) o
            WHERE o->>'value' = a #>> '{}' LIMIT 1)
        WHEN 'multiple' THEN (SELECT sum((o->>'weight')::numeric)
            FROM jsonb_array_elements(q.options) o
            WHERE jsonb_typeof(a) = 'array' AND a ? (o->>'value'))
        WHEN 'boolean' THEN CASE WHEN a = 'true' THEN q.weight ELSE 0 END
        WHEN 'number' THEN CASE WHEN jsonb_typeof(a) = 'number' THEN
            q.weight * greatest(coalesce(q.min_value, (a #>> '{}')::numeric),
            least(coalesce(q.max_value, (a #>> '{}')::numeric),
            (a #>> '{}')::numeric)) END
        END, 0)
$$;

-- The estimate of a customer's score, or NULL without a financial
-- profile:
--   score = clamp(300, 850, round(base + debtToIncome + netWorth
--                                 + employment + survey))
--   debtToIncome = dti_points * (dti_target - min(ratio, 1.5)), the ratio
--       monthlyDebts * 12 / annualIncome (1.5 without income)
--   netWorth = clamp(-net_worth_cap, net_worth_cap, sign(netWorth)
--       * net_worth_points * ln(1 + |netWorth| / net_worth_scale))
--   employment = employment_<employmentStatus>
--   survey = clamp(-survey_cap, survey_cap, the sum of
--       survey_answer_points() over the latest submission's answers to
--       questions that are still active)
-- Each factor's contribution is answered with it, rounded to cents.
CREATE FUNCTION credit_score_estimate(customer uuid) RETURNS jsonb
    LANGUAGE sql STABLE AS $$
    WITH w AS (SELECT jsonb_object_agg(key, value) AS w FROM score_weights),
    f AS (SELECT * FROM financial_profiles WHERE customer_id = customer),
    x AS (SELECT (w->>'base')::numeric AS base,
        CASE WHEN f.annual_income > 0
             THEN least(f.monthly_debts * 12 / f.annual_income, 1.5)
             ELSE 1.5 END AS dti,
        f.total_assets - f.total_liabilities AS net_worth,
        f.employment_status, w FROM f, w),
    s AS (SELECT answers FROM survey_submissions
        WHERE customer_id = customer ORDER BY version DESC LIMIT 1),
    a AS (SELECT count(*) AS n,
        coalesce(sum(survey_answer_points(q, e.value)), 0) AS points
        FROM s CROSS JOIN LATERAL jsonb_each(s.answers) e
        JOIN survey_questions q ON q.id::text = e.key AND q.is_active),
    p AS (SELECT 1 AS n, 'debtToIncome' AS factor,
            to_jsonb(round(dti, 4)) AS value,
            (w->>'dti_points')::numeric
            * ((w->>'dti_target')::numeric - dti) AS points FROM x
        UNION ALL
        SELECT 2, 'netWorth', to_jsonb(net_worth),
            greatest(-(w->>'net_worth_cap')::numeric,
                least((w->>'net_worth_cap')::numeric, sign(net_worth)
                * (w->>'net_worth_points')::numeric
                * ln(1 + abs(net_worth)
                     / (w->>'net_worth_scale')::numeric))) FROM x
        UNION ALL
        SELECT 3, 'employment', to_jsonb(employment_status),
            coalesce((w->>('employment_' || employment_status))::numeric,
                     0) FROM x
        UNION ALL
        SELECT 4, 'survey', to_jsonb(a.n),
            greatest(-(w->>'survey_cap')::numeric,
                least((w->>'survey_cap')::numeric, a.points))
        FROM x CROSS JOIN a)
    SELECT jsonb_build_object(
        'score', greatest(300, least(850,
            round(x.base + (SELECT sum(points) FROM p))))::integer,
        'unclamped', round(x.base + (SELECT sum(points) FROM p))::integer,
        'base', x.base,
        'factors', (SELECT jsonb_agg(jsonb_build_object('factor', factor,
            'value', value, 'contribution', round(points, 2)) ORDER BY n)
            FROM p))
    FROM x
$$;
