
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_validate.h"
#include "ngx_http_customer_answer.h"
#include "ngx_http_customer_credit.h"
#include "ngx_http_customer_query.h"
#include "ngx_http_customer_router.h"


/*
 * The survey and the credit score estimate.  Administrators keep the
 * questions (text, kind single|multiple|number|boolean, options with
 * weights, active flag, position); a Customer reads the active ones
 * without their weights and answers them; every submission of answers
 * is kept, numbered, and the latest counts.  The estimate is
 * credit_score_estimate() (sql/028, where its formula is): from the
 * financial profile and the latest answers, stored through the credit
 * status's own statement with source "estimate", so that history, band,
 * alerts and milestones follow as for any score.
 */


#define NGX_HTTP_CUSTOMER_SURVEY_MAX_ANSWERS  100

/* the question q as the API's object */
#define NGX_HTTP_CUSTOMER_SURVEY_QUESTION                                    \
    "json_build_object('questionId', q.id, 'text', q.text, 'kind', q.kind," \
    " 'options', q.options, 'weight', q.weight, 'min', q.min_value,"        \
    " 'max', q.max_value, 'isActive', q.is_active,"                         \
    " 'position', q.position, 'createdAt', api_ts(q.created_at),"           \
    " 'updatedAt', api_ts(q.updated_at), 'version', q.version)"

/* its members from the validated body j */
#define NGX_HTTP_CUSTOMER_SURVEY_VALUES                                      \
    " j->>'text', j->>'kind', coalesce(j->'options', '[]'),"                \
    " coalesce((j->>'weight')::numeric, 0), (j->>'min')::numeric,"          \
    " (j->>'max')::numeric, coalesce((j->>'isActive')::boolean, true),"     \
    " coalesce((j->>'position')::integer, 0)"

#define NGX_HTTP_CUSTOMER_SURVEY_SUBMISSION                                  \
    "json_build_object('customerId', s.customer_id, 'version', s.version,"  \
    " 'answers', s.answers, 'submittedBy', s.submitted_by,"                 \
    " 'submittedAt', api_ts(s.submitted_at))"


static ngx_int_t ngx_http_customer_survey_rules(
    ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_survey_cents(ngx_str_t *s);
static ngx_int_t ngx_http_customer_survey_answers(
    ngx_http_customer_ctx_t *ctx);
static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_survey_answered);
static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_estimated);
static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_estimate_stored);


static const char  *ngx_http_customer_survey_kinds[] = {
    "single", "multiple", "number", "boolean", NULL
};


static ngx_http_customer_field_t  ngx_http_customer_survey_option_fields[] = {
    { "value", ngx_http_customer_check_line, NGX_HTTP_CUSTOMER_F_REQUIRED,
      1, 100, NULL, NULL },
    { "label", ngx_http_customer_check_line, 0, 1, 200, NULL, NULL },
    { "weight", ngx_http_customer_check_money_delta,
      NGX_HTTP_CUSTOMER_F_REQUIRED, 0, 0, NULL, NULL },
    { NULL, NULL, 0, 0, 0, NULL, NULL }
};


/* POST and PUT take the whole question */
static ngx_http_customer_field_t  ngx_http_customer_survey_fields[] = {
    { "text", ngx_http_customer_check_text, NGX_HTTP_CUSTOMER_F_REQUIRED,
      1, 500, NULL, NULL },
    NGX_HTTP_CUSTOMER_ONE_OF("kind", REQUIRED, ngx_http_customer_survey_kinds),
    { "options", ngx_http_customer_check_objects, 0, 0, 20, NULL,
      ngx_http_customer_survey_option_fields },
    { "weight", ngx_http_customer_check_money_delta, 0, 0, 0, NULL, NULL },
    { "min", ngx_http_customer_check_money_delta,
      NGX_HTTP_CUSTOMER_F_NULLABLE, 0, 0, NULL, NULL },
    { "max", ngx_http_customer_check_money_delta,
      NGX_HTTP_CUSTOMER_F_NULLABLE, 0, 0, NULL, NULL },
    { "isActive", ngx_http_customer_check_bool, 0, 0, 0, NULL, NULL },
    { "position", ngx_http_customer_check_count, 0, 0, 10000, NULL, NULL },
    { NULL, NULL, 0, 0, 0, NULL, NULL }
};


static ngx_http_customer_column_t  ngx_http_customer_survey_page_columns[] = {
    { "submission", NGX_HTTP_CUSTOMER_COL_JSON }
};


static ngx_http_customer_missing_t  ngx_http_customer_question_missing = {
    "Question not found", "questionId",
    "No survey question exists with the provided ID", 0
};


/* every question, inactive ones too, in their order */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_survey_list_sql =
    NGX_HTTP_CUSTOMER_PG_READ(0,
    "SELECT json_build_object('questions', coalesce(json_agg("
    NGX_HTTP_CUSTOMER_SURVEY_QUESTION " ORDER BY q.position, q.id), '[]'))"
    " FROM survey_questions q");


/* $1 question id */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_survey_get_sql =
    NGX_HTTP_CUSTOMER_PG_SHARED(1,
    "SELECT " NGX_HTTP_CUSTOMER_SURVEY_QUESTION
    " FROM survey_questions q WHERE q.id = $1");


/* $1 body, $2 who */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_survey_create_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(2,
    "INSERT INTO survey_questions AS q (text, kind, options, weight,"
    " min_value, max_value, is_active, position, created_by, updated_by)"
    " SELECT" NGX_HTTP_CUSTOMER_SURVEY_VALUES ", $2, $2"
    " FROM (SELECT $1::jsonb AS j) s"
    " RETURNING " NGX_HTTP_CUSTOMER_SURVEY_QUESTION);


/* $1 question id, $2 body, $3 who.  No row: no such question. */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_survey_put_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(3,
    "UPDATE survey_questions AS q SET (text, kind, options, weight,"
    " min_value, max_value, is_active, position) = (SELECT"
    NGX_HTTP_CUSTOMER_SURVEY_VALUES "),"
    " updated_at = now(), updated_by = $3, version = q.version + 1"
    " FROM (SELECT $2::jsonb AS j) s WHERE q.id = $1"
    " RETURNING " NGX_HTTP_CUSTOMER_SURVEY_QUESTION);


/*
 * $1 question id.  The answers that named it stay in their submissions
 * (the history); the estimate counts only existing active questions.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_survey_delete_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(1,
    "DELETE FROM survey_questions WHERE id = $1"
    " RETURNING json_build_object('questionId', id,"
    " 'deletedAt', api_ts(now()))");


/* what a Customer sees: the active questions, without weights */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_survey_active_sql =
    NGX_HTTP_CUSTOMER_PG_READ(0,
    "SELECT json_build_object('questions', coalesce(json_agg("
    "json_build_object('questionId', q.id, 'text', q.text, 'kind', q.kind,"
    " 'options', (SELECT coalesce(json_agg(json_build_object("
    "'value', o->>'value', 'label', o->>'label')), '[]')"
    " FROM jsonb_array_elements(q.options) o),"
    " 'min', q.min_value, 'max', q.max_value)"
    " ORDER BY q.position, q.id), '[]'))"
    " FROM survey_questions q WHERE q.is_active");


/*
 * $1 customer id, $2 the Customer's sub (NULL for an Administrator), $3
 * the body, its answers {"<questionId>": answer}, $4 who.  Each answer
 * is checked against its question; with any wrong, rows (false, field,
 * message) and nothing written; else one row (true, the submission).
 * No row: no such customer, or not the caller's.  The customer's row
 * lock numbers concurrent submissions one after the other.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_survey_answer_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(4,
    "WITH c AS (SELECT id FROM customers WHERE id = $1"
    " AND ($2::text IS NULL OR user_id = $2::text) FOR UPDATE),"
    " a AS (SELECT e.key, e.value, q.kind, q.options, q.min_value,"
    " q.max_value, q.id AS qid FROM c"
    " CROSS JOIN jsonb_each($3::jsonb->'answers') e"
    " LEFT JOIN survey_questions q ON q.id::text = e.key AND q.is_active),"
    " v AS (SELECT a.key, CASE"
    " WHEN a.qid IS NULL THEN 'Unknown or inactive question'"
    " WHEN a.kind = 'single' AND (jsonb_typeof(a.value) <> 'string'"
    " OR NOT EXISTS (SELECT 1 FROM jsonb_array_elements(a.options) o"
    " WHERE o->>'value' = a.value #>> '{}'))"
    " THEN 'Must be one of the question''s option values'"
    " WHEN a.kind = 'multiple' AND (jsonb_typeof(a.value) <> 'array'"
    " OR EXISTS (SELECT 1 FROM jsonb_array_elements(a.value) x"
    " WHERE jsonb_typeof(x) <> 'string' OR NOT EXISTS (SELECT 1"
    " FROM jsonb_array_elements(a.options) o"
    " WHERE o->>'value' = x #>> '{}'))"
    " OR (SELECT count(*) <> count(DISTINCT x)"
    " FROM jsonb_array_elements(a.value) x))"
    " THEN 'Must be a list of distinct option values of the question'"
    " WHEN a.kind = 'number' AND (jsonb_typeof(a.value) <> 'number'"
    " OR (a.value #>> '{}')::numeric < coalesce(a.min_value, '-Infinity')"
    " OR (a.value #>> '{}')::numeric > coalesce(a.max_value, 'Infinity'))"
    " THEN 'Must be a number from ' || coalesce(a.min_value::text, '-inf')"
    " || ' to ' || coalesce(a.max_value::text, 'inf')"
    " WHEN a.kind = 'boolean' AND jsonb_typeof(a.value) <> 'boolean'"
    " THEN 'Must be true or false' END AS message FROM a),"
    " s AS (INSERT INTO survey_submissions AS s (customer_id, version,"
    " answers, submitted_by) SELECT c.id, coalesce((SELECT max(version)"
    " FROM survey_submissions WHERE customer_id = c.id), 0) + 1,"
    " $3::jsonb->'answers',"
    " $4::text FROM c"
    " WHERE NOT EXISTS (SELECT 1 FROM v WHERE message IS NOT NULL)"
    " RETURNING s.*)"
    " SELECT true, " NGX_HTTP_CUSTOMER_SURVEY_SUBMISSION "::text, NULL"
    " FROM s"
    " UNION ALL SELECT false, 'answers.' || key, message FROM v"
    " WHERE message IS NOT NULL");


/*
 * $1 customer id, $2 the Customer's sub (NULL for an Administrator), $3
 * limit, $4 offset: the submissions, newest first.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_survey_history_sql =
    NGX_HTTP_CUSTOMER_PG_LIST(4,
    NGX_HTTP_CUSTOMER_PAGE_SQL("survey_submissions WHERE customer_id = c.id",
        "SELECT " NGX_HTTP_CUSTOMER_SURVEY_SUBMISSION
        " AS j FROM survey_submissions s WHERE s.customer_id = c.id"
        " ORDER BY s.version DESC LIMIT $3 OFFSET $4"));


/* $1 customer id.  No row: no such customer; NULL: no profile. */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_estimate_sql =
    NGX_HTTP_CUSTOMER_PG_READ(1,
    "SELECT x.e::text, x.e->>'score' FROM customers c"
    " CROSS JOIN LATERAL (SELECT credit_score_estimate(c.id) AS e) x"
    " WHERE c.id = $1");


#define NGX_HTTP_CUSTOMER_A  NGX_HTTP_CUSTOMER_ADMIN
#define NGX_HTTP_CUSTOMER_S  NGX_HTTP_CUSTOMER_SELF
#define NGX_HTTP_CUSTOMER_E  ngx_http_customer_endpoint

#define NGX_HTTP_CUSTOMER_SURVEY_ANSWER                                      \
    .answer = NGX_HTTP_CUSTOMER_ANSWER_JSON,                                \
    .missing = &ngx_http_customer_question_missing

/* a statement on the question of the path's id */
#define NGX_HTTP_CUSTOMER_SURVEY_QUESTION_ID(sql, text)                      \
    .stmt = sql, .params = { NGX_HTTP_CUSTOMER_NAMED(ID, "questionId") },    \
    NGX_HTTP_CUSTOMER_SURVEY_ANSWER, .message = text

/* the estimate, then stored as the customer's score */
#define NGX_HTTP_CUSTOMER_ESTIMATE                                           \
    .stmt = &ngx_http_customer_estimate_sql,                                \
    .params = { NGX_HTTP_CUSTOMER_CUSTOMER_ID },                            \
    .done = ngx_http_customer_estimated

/* the whole question, then what its kind asks of the rest */
#define NGX_HTTP_CUSTOMER_SURVEY_WRITE                                       \
    .fields = ngx_http_customer_survey_fields,                              \
    .check = ngx_http_customer_survey_rules, NGX_HTTP_CUSTOMER_SURVEY_ANSWER

ngx_http_customer_route_t  ngx_http_customer_survey_routes[] = {
    { NGX_HTTP_GET, "/api/survey",
      NGX_HTTP_CUSTOMER_E, NGX_HTTP_CUSTOMER_S, 0, 0,
      NGX_HTTP_CUSTOMER_AS_JSON(&ngx_http_customer_survey_active_sql,
          "Survey retrieved successfully") },
    { NGX_HTTP_GET, "/api/survey/questions",
      NGX_HTTP_CUSTOMER_E, NGX_HTTP_CUSTOMER_A, 0, 0,
      NGX_HTTP_CUSTOMER_AS_JSON(&ngx_http_customer_survey_list_sql,
          "Survey questions retrieved successfully") },
    { NGX_HTTP_POST, "/api/survey/questions",
      NGX_HTTP_CUSTOMER_E, NGX_HTTP_CUSTOMER_A, 1, 0,
      .stmt = &ngx_http_customer_survey_create_sql,
      .params = { NGX_HTTP_CUSTOMER_PARAM(JSON),
                  NGX_HTTP_CUSTOMER_PARAM(SUB) },
      NGX_HTTP_CUSTOMER_SURVEY_WRITE, .status = NGX_HTTP_CREATED,
      .message = "Survey question created successfully" },
    { NGX_HTTP_GET, "/api/survey/questions/{}",
      NGX_HTTP_CUSTOMER_E, NGX_HTTP_CUSTOMER_A, 0, 0,
      NGX_HTTP_CUSTOMER_SURVEY_QUESTION_ID(&ngx_http_customer_survey_get_sql,
          "Survey question retrieved successfully") },
    { NGX_HTTP_PUT, "/api/survey/questions/{}",
      NGX_HTTP_CUSTOMER_E, NGX_HTTP_CUSTOMER_A, 1, 0,
      .stmt = &ngx_http_customer_survey_put_sql,
      .params = { NGX_HTTP_CUSTOMER_NAMED(ID, "questionId"),
                  NGX_HTTP_CUSTOMER_PARAM(JSON),
                  NGX_HTTP_CUSTOMER_PARAM(SUB) },
      NGX_HTTP_CUSTOMER_SURVEY_WRITE,
      .message = "Survey question updated successfully" },
    { NGX_HTTP_DELETE, "/api/survey/questions/{}",
      NGX_HTTP_CUSTOMER_E, NGX_HTTP_CUSTOMER_A, 0, 0,
      NGX_HTTP_CUSTOMER_SURVEY_QUESTION_ID(
          &ngx_http_customer_survey_delete_sql,
          "Survey question deleted successfully") },
    { NGX_HTTP_GET, "/api/customers/{}/survey/answers",
      NGX_HTTP_CUSTOMER_E, NGX_HTTP_CUSTOMER_S, 0, 0,
      .stmt = &ngx_http_customer_survey_history_sql,
      .params = { NGX_HTTP_CUSTOMER_OWN_ID("customerId"),
                  NGX_HTTP_CUSTOMER_PARAM(PAGE) },
      .answer = NGX_HTTP_CUSTOMER_ANSWER_PAGE,
      .message = "Survey submissions retrieved successfully",
      .list = "submissions",
      .columns = ngx_http_customer_survey_page_columns, .ncolumns = 1 },
    /* the answers are checked against their questions in the statement */
    { NGX_HTTP_PUT, "/api/customers/{}/survey/answers",
      NGX_HTTP_CUSTOMER_E, NGX_HTTP_CUSTOMER_S, 1, 0,
      .check = ngx_http_customer_survey_answers,
      .stmt = &ngx_http_customer_survey_answer_sql,
      .params = { NGX_HTTP_CUSTOMER_OWN_ID("customerId"),
                  NGX_HTTP_CUSTOMER_PARAM(JSON),
                  NGX_HTTP_CUSTOMER_PARAM(SUB) },
      .done = ngx_http_customer_survey_answered },
    { NGX_HTTP_POST, "/api/customers/{}/credit-score/estimate",
      NGX_HTTP_CUSTOMER_E, NGX_HTTP_CUSTOMER_A, 0, 0,
      NGX_HTTP_CUSTOMER_ESTIMATE },
    { NGX_HTTP_POST, "/api/customers/internal/{}/credit-score/estimate",
      NGX_HTTP_CUSTOMER_E, NGX_HTTP_CUSTOMER_SERVICE, 0, 0,
      NGX_HTTP_CUSTOMER_ESTIMATE },
    NGX_HTTP_CUSTOMER_ROUTES_END
};


/*
 * What a kind asks of the rest: single and multiple two or more options
 * of distinct values and no bounds; number and boolean no options;
 * bounds in order.
 */

static ngx_int_t
ngx_http_customer_survey_rules(ngx_http_customer_ctx_t *ctx)
{
    ngx_int_t                  lo, hi;
    ngx_str_t                  path;
    ngx_uint_t                 choice;
    ngx_http_customer_json_t  *kind, *options, *o, *p, *v, *w, *min, *max;

    kind = ngx_http_customer_json_member(ctx->body, "kind");
    options = ngx_http_customer_json_member(ctx->body, "options");
    min = ngx_http_customer_json_member(ctx->body, "min");
    max = ngx_http_customer_json_member(ctx->body, "max");

    choice = (kind->str.len == 6
              && ngx_strncmp(kind->str.data, "single", 6) == 0)
             || (kind->str.len == 8
                 && ngx_strncmp(kind->str.data, "multiple", 8) == 0);

    ngx_str_set(&path, "options");

    if (choice && (options == NULL || options->n < 2)) {
        return ngx_http_customer_fail(ctx, &path, "A single or multiple "
                                      "choice question needs at least two "
                                      "options");
    }

    if (!choice && options && options->n) {
        return ngx_http_customer_fail(ctx, &path, "Only a single or "
                                      "multiple choice question has "
                                      "options");
    }

    if (choice) {
        for (o = options->child; o; o = o->next) {
            v = ngx_http_customer_json_member(o, "value");

            for (p = options->child; p != o; p = p->next) {
                w = ngx_http_customer_json_member(p, "value");

                if (w->str.len == v->str.len
                    && ngx_strncmp(w->str.data, v->str.data, v->str.len)
                       == 0)
                {
                    return ngx_http_customer_fail(ctx, &path, "Option "
                                                  "values must be "
                                                  "distinct");
                }
            }
        }
    }

    if (choice
        && ((min && min->type != NGX_HTTP_CUSTOMER_JSON_NULL)
            || (max && max->type != NGX_HTTP_CUSTOMER_JSON_NULL)))
    {
        ngx_str_set(&path, "min");
        return ngx_http_customer_fail(ctx, &path, "Only a number question "
                                      "has bounds");
    }

    if (min && max && min->type == NGX_HTTP_CUSTOMER_JSON_NUMBER
        && max->type == NGX_HTTP_CUSTOMER_JSON_NUMBER)
    {
        lo = ngx_http_customer_survey_cents(&min->str);
        hi = ngx_http_customer_survey_cents(&max->str);

        if (lo > hi) {
            ngx_str_set(&path, "max");
            return ngx_http_customer_fail(ctx, &path, "Must not be below "
                                          "min");
        }
    }

    return NGX_OK;
}


/* a validated signed amount (two decimals at most) in cents */

static ngx_int_t
ngx_http_customer_survey_cents(ngx_str_t *s)
{
    ngx_int_t  n;

    if (s->len > 1 && s->data[0] == '-') {
        n = ngx_atofp(s->data + 1, s->len - 1, 2);
        return n == NGX_ERROR ? 0 : -n;
    }

    n = ngx_atofp(s->data, s->len, 2);

    return n == NGX_ERROR ? 0 : n;
}


/* {"answers": {"<questionId>": answer, ...}} and nothing else */

static ngx_int_t
ngx_http_customer_survey_answers(ngx_http_customer_ctx_t *ctx)
{
    ngx_int_t                  rc;
    ngx_str_t                  path;
    ngx_http_customer_json_t  *m, *answers;

    rc = NGX_OK;
    answers = NULL;

    for (m = ctx->body->child; m; m = m->next) {
        if (m->key.len == 7 && ngx_strncmp(m->key.data, "answers", 7) == 0) {
            answers = m;
            continue;
        }

        rc = ngx_http_customer_fail(ctx, &m->key, "Unknown field");
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }
    }

    ngx_str_set(&path, "answers");

    if (answers == NULL || answers->type != NGX_HTTP_CUSTOMER_JSON_OBJECT
        || answers->n == 0
        || answers->n > NGX_HTTP_CUSTOMER_SURVEY_MAX_ANSWERS)
    {
        return ngx_http_customer_fail(ctx, &path, "Must be an object of 1 "
                                      "to 100 answers by questionId");
    }

    return rc;
}


static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_survey_answered)
{
    int        i, n;
    ngx_int_t  rc;

    n = ngx_http_customer_rows(ctx, q, res, &rc);
    if (n == 0) {
        return rc;
    }

    if (PQgetvalue(res, 0, 0)[0] == 't') {
        return ngx_http_customer_send_json(ctx, NGX_HTTP_OK,
                                           "Survey answers saved "
                                           "successfully", res, 1);
    }

    for (i = 0; i < n; i++) {
        if (ngx_http_customer_add_error(ctx, (u_char *) PQgetvalue(res, i, 1),
                                        PQgetlength(res, i, 1),
                                        PQgetvalue(res, i, 2))
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_customer_invalid(ctx);
}


/* the estimate is stored as a score like any other */

static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_estimated)
{
    char       *p;
    ngx_int_t   rc;
    ngx_str_t  *est;

    if (ngx_http_customer_rows(ctx, q, res, &rc) == 0) {
        return rc;
    }

    if (PQgetisnull(res, 0, 0)) {
        return ngx_http_customer_send_error(ctx,
                   NGX_HTTP_UNPROCESSABLE_ENTITY,
                   "Financial profile required", "financialProfile",
                   "The estimate needs the customer's financial profile; "
                   "create it first");
    }

    /* the estimate's JSON text, kept for the stored score's answer */

    est = ngx_palloc(ctx->request->pool, sizeof(ngx_str_t));
    if (est == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->data = est;

    est->len = PQgetlength(res, 0, 0);
    est->data = (u_char *) ngx_http_customer_value(ctx->request->pool, res,
                                                   0, 0);
    p = ngx_http_customer_value(ctx->request->pool, res, 0, 1);
    if (est->data == NULL || p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q = ngx_http_customer_query_create(ctx);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q->values[0] = (char *) ctx->params[0].data;
    q->values[1] = (char *) p;
    q->values[2] = "estimate";

    q->values[3] = ctx->who.sub.len ? (char *) ctx->who.sub.data
                   : ctx->who.service ? "service" : NULL;

    return ngx_http_customer_query_run(ctx, q,
                                       &ngx_http_customer_credit_put_sql,
                                       ngx_http_customer_estimate_stored);
}


static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_estimate_stored)
{
    yajl_gen    g;
    ngx_int_t   rc;
    ngx_str_t  *est;

    if (ngx_http_customer_rows(ctx, q, res, &rc) == 0) {
        return rc;
    }

    est = ctx->data;

    g = ngx_http_customer_envelope(ctx, "Credit score estimated and "
                                        "stored successfully");
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    yajl_gen_map_open(g);

    if (ngx_http_customer_json_row(ctx->request->pool, g, res, 0, 0,
                                   ngx_http_customer_credit_put_columns,
                                   NGX_HTTP_CUSTOMER_CREDIT_PUT_NCOLUMNS)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_customer_gen_lit(g, "estimate");

    if (ngx_http_customer_json_text(g, est->data, est->len) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_customer_send_data(ctx, NGX_HTTP_OK, g);
}
