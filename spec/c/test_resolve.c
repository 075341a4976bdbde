/* test_resolve.c: tests of the broker resolution engine (core/resolve.c,
 * resolve_query.c, resolve_index.c): every scope level winning in turn,
 * nested and deep workspaces, loops in bad data, request handling,
 * missing / complete / explain, updates and deletes, version isolation, a
 * brute-force model compared after random batches, and two reader threads
 * checking every answer against a writer applying 10,000 changes.
 *
 * Built with ASan and UBSan (spec/c/resolve.mk), so a reader touching a
 * reclaimed version or a leak of the writer fails the run.  Prints each
 * failure with its case name, then exactly one line "N passed, N failed";
 * exits 1 on a failure. */
#include "engine/resolve.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_harness.h"

/* Setup steps cannot fail but for lack of memory: stop the program. */
static void must(int rc, const char *what)
{
    if (rc != 0) {
        printf("FAIL %s: setup %s: %d\n", case_name, what, rc);
        exit(2);
    }
}

/* ---- ids and fixtures ---- */

enum { K_BROKER = 0xB0, K_VALUE = 0xFA };

/* A uuid of kind k (first byte) and number n (last four bytes): memcmp
 * order is (k, n) order. */
static rs_uuid U(unsigned k, unsigned n)
{
    rs_uuid u = {{0}};
    u.b[0] = (uint8_t)k;
    u.b[12] = (uint8_t)(n >> 24);
    u.b[13] = (uint8_t)(n >> 16);
    u.b[14] = (uint8_t)(n >> 8);
    u.b[15] = (uint8_t)n;
    return u;
}

static int ueq(const rs_uuid *a, const rs_uuid *b)
{
    return a && b && rs_uuid_cmp(a, b) == 0;
}

static int ueqv(const rs_uuid *a, rs_uuid b)
{
    return ueq(a, &b);
}

/* The scope ids of the standard context: kind = the level's number. */
static rs_uuid ctx_ids[RS_GLOBAL + 1];

static rs_context full_ctx(void)
{
    for (int l = RS_AI_TASK; l <= RS_USER; l++)
        ctx_ids[l] = U((unsigned)l, 1);
    return (rs_context){.user = &ctx_ids[RS_USER],
                        .organization = &ctx_ids[RS_ORGANIZATION],
                        .workspace = &ctx_ids[RS_WORKSPACE],
                        .project = &ctx_ids[RS_PROJECT],
                        .task = &ctx_ids[RS_TASK],
                        .ai_run = &ctx_ids[RS_AI_RUN],
                        .ai_task = &ctx_ids[RS_AI_TASK]};
}

typedef struct fx {
    rs_engine *e;
    rs_reader *r;
    rs_batch *b;
    const rs_snap *s; /* entered version, or NULL */
} fx;

static fx fx_new(void)
{
    fx f = {rs_engine_new(), NULL, NULL, NULL};
    if (!f.e || !(f.r = rs_reader_new(f.e)) || !(f.b = rs_batch_begin(f.e)))
        must(-1, "engine");
    return f;
}

/* Publishes the open batch, opens the next, and enters the new version. */
static const rs_snap *commit(fx *f)
{
    if (f->s)
        rs_read_end(f->r);
    rs_batch_publish(f->b);
    if (!(f->b = rs_batch_begin(f->e)))
        must(-1, "batch");
    return f->s = rs_read_begin(f->r);
}

static void fx_free(fx *f)
{
    if (f->s)
        rs_read_end(f->r);
    rs_batch_publish(f->b);
    rs_reader_free(f->r);
    rs_engine_free(f->e);
}

static void put(fx *f, unsigned id, unsigned broker, rs_level level, rs_uuid scope, const char *json)
{
    rs_value v = {U(K_VALUE, id), U(K_BROKER, broker), level, scope, json, strlen(json)};
    must(rs_batch_put_value(f->b, &v), "put value");
}

static void del(fx *f, unsigned id)
{
    rs_uuid u = U(K_VALUE, id);
    must(rs_batch_del_value(f->b, &u), "del value");
}

static void put_ws(fx *f, rs_uuid id, const rs_uuid *parent)
{
    rs_uuid org = U(RS_ORGANIZATION, 1);
    rs_workspace w = {id, parent, &org};
    must(rs_batch_put_workspace(f->b, &w), "put workspace");
}

static void put_broker(fx *f, unsigned n, const char *name, const char *desc)
{
    rs_broker b = {U(K_BROKER, n), name, "str", "dflt", desc};
    must(rs_batch_put_broker(f->b, &b), "put broker");
}

/* Resolves broker `n` alone; 1 and *row when it has a value. */
static int one(fx *f, const rs_context *c, unsigned n, rs_row *row)
{
    rs_uuid id = U(K_BROKER, n);
    rs_ids req = {&id, NULL, 1};
    return rs_resolve(f->s, c, &req, row) == 1;
}

static int is_value(const rs_row *row, rs_level level, const char *json)
{
    return row->level == level && row->value && strcmp(row->value, json) == 0 &&
           row->value_len == strlen(json);
}

/* ---- uuids ---- */

static void t_uuid(void)
{
    static const struct {
        const char *in;
        int ok;
    } cases[] = {
        {"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", 1},
        {"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", 1},
        {"{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}", 1},
        {"a0eebc999c0b4ef8bb6d6bb9bd380a11", 1},
        {"a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11", 1},
        {"{a0eebc999c0b4ef8bb6d6bb9bd380a11}", 1},
        {"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1", 0},
        {"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111", 0},
        {"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g", 0},
        {"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-", 0},
        {"a0e-ebc99-9c0b-4ef8-bb6d-6bb9bd380a11", 0},
        {"a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11", 0},
        {"{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", 0},
        {"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}", 0},
        {" a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", 0},
        {"", 0},
        {"{}", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rs_uuid u, before = U(1, 2);
        u = before;
        int rc = rs_uuid_parse(cases[i].in, strlen(cases[i].in), &u);
        CHECK((rc == 0) == cases[i].ok, "'%s': parse answered %d", cases[i].in, rc);
        if (!cases[i].ok) {
            CHECK(ueq(&u, &before), "'%s': failed parse changed the output", cases[i].in);
            continue;
        }
        char text[37];
        rs_uuid_format(&u, text);
        CHECK(strcmp(text, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11") == 0, "'%s' formats as %s",
              cases[i].in, text);
    }
    rs_uuid a = U(1, 0xff), b = U(2, 0);
    CHECK(rs_uuid_cmp(&a, &b) < 0 && rs_uuid_cmp(&b, &a) > 0 && rs_uuid_cmp(&a, &a) == 0,
          "uuid order is memcmp order");
    CHECK(strcmp(rs_level_name(RS_AI_TASK), "ai_task") == 0 &&
              strcmp(rs_level_name(RS_ORGANIZATION), "organization") == 0 &&
              strcmp(rs_level_name(RS_GLOBAL), "global") == 0 && rs_level_name(RS_NONE) == NULL,
          "level names");
}

static void t_scope_of(void)
{
    rs_uuid a = U(1, 1), b = U(2, 2);
    const rs_uuid *scope;
    CHECK(rs_scope_of(1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, &scope) == RS_GLOBAL && !scope,
          "global");
    CHECK(rs_scope_of(0, NULL, NULL, NULL, &a, NULL, NULL, NULL, &scope) == RS_PROJECT &&
              scope == &a,
          "project");
    CHECK(rs_scope_of(0, NULL, NULL, NULL, NULL, NULL, NULL, &b, &scope) == RS_USER && scope == &b,
          "user");
    CHECK(rs_scope_of(0, &a, NULL, NULL, NULL, NULL, NULL, NULL, &scope) == RS_AI_TASK, "ai_task");
    CHECK(rs_scope_of(0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, &scope) == RS_NONE && !scope,
          "no scope");
    CHECK(rs_scope_of(0, &a, NULL, NULL, NULL, NULL, NULL, &b, &scope) == RS_NONE && !scope,
          "two scopes");
    CHECK(rs_scope_of(1, NULL, NULL, NULL, NULL, &a, NULL, NULL, &scope) == RS_NONE,
          "global plus a scope");
}

/* ---- resolution order ---- */

/* Values of broker 1 at every level (and two ancestor workspaces); each is
 * deleted in turn and the next level must win. */
static void t_levels_in_turn(void)
{
    fx f = fx_new();
    rs_context c = full_ctx();
    rs_uuid ws1 = U(RS_WORKSPACE, 2), ws2 = U(RS_WORKSPACE, 3);
    put_ws(&f, ctx_ids[RS_WORKSPACE], &ws1);
    put_ws(&f, ws1, &ws2);
    put_ws(&f, ws2, NULL);
    static const struct {
        rs_level level;
        unsigned scope; /* 0: the context's id */
        uint32_t depth;
    } order[] = {{RS_AI_TASK, 0, 0},      {RS_AI_RUN, 0, 0},   {RS_TASK, 0, 0},
                 {RS_PROJECT, 0, 0},      {RS_WORKSPACE, 0, 0}, {RS_WORKSPACE, 2, 1},
                 {RS_WORKSPACE, 3, 2},    {RS_ORGANIZATION, 0, 0}, {RS_USER, 0, 0},
                 {RS_GLOBAL, 0, 0}};
    size_t n = sizeof order / sizeof order[0];
    char json[32];
    /* Inserted least specific first, so insertion order cannot explain a win. */
    for (size_t i = n; i-- > 0;) {
        snprintf(json, sizeof json, "\"v%zu\"", i);
        rs_uuid scope = order[i].scope ? U(order[i].level, order[i].scope) : ctx_ids[order[i].level];
        put(&f, (unsigned)i, 1, order[i].level, scope, json);
    }
    commit(&f);
    for (size_t i = 0; i < n; i++) {
        rs_row row;
        snprintf(json, sizeof json, "\"v%zu\"", i);
        CHECK(one(&f, &c, 1, &row), "step %zu: no value", i);
        CHECK(is_value(&row, order[i].level, json), "step %zu: got %s at %s", i, row.value,
              rs_level_name(row.level));
        CHECK(row.depth == order[i].depth, "step %zu: depth %u", i, row.depth);
        CHECK(ueqv(row.value_id, U(K_VALUE, (unsigned)i)), "step %zu: value id", i);
        if (order[i].level == RS_GLOBAL) {
            CHECK(row.scope_id == NULL, "global has no scope id");
        } else {
            rs_uuid want = order[i].scope ? U(order[i].level, order[i].scope) : ctx_ids[order[i].level];
            CHECK(ueq(row.scope_id, &want), "step %zu: scope id", i);
        }
        del(&f, (unsigned)i);
        commit(&f);
    }
    rs_row row;
    CHECK(!one(&f, &c, 1, &row), "no value left");
    fx_free(&f);
}

/* A level whose context id is NULL is skipped, as a NULL parameter is. */
static void t_null_context_skips(void)
{
    fx f = fx_new();
    rs_context c = full_ctx();
    put(&f, 1, 1, RS_TASK, ctx_ids[RS_TASK], "1");
    put(&f, 2, 1, RS_USER, ctx_ids[RS_USER], "2");
    put(&f, 3, 1, RS_PROJECT, U(RS_PROJECT, 99), "3"); /* another project */
    commit(&f);
    rs_row row;
    CHECK(one(&f, &c, 1, &row) && is_value(&row, RS_TASK, "1"), "task wins");
    c.task = NULL;
    CHECK(one(&f, &c, 1, &row) && is_value(&row, RS_USER, "2"), "without task, user wins");
    c.user = NULL;
    CHECK(!one(&f, &c, 1, &row), "without user, another project's value does not count");
    rs_context none = {0};
    CHECK(!one(&f, &none, 1, &row), "empty context");
    fx_free(&f);
}

/* w0 -> w1 -> w2: the closer workspace wins, then the grandparent. */
static void t_nested_workspaces(void)
{
    fx f = fx_new();
    rs_context c = full_ctx();
    rs_uuid w0 = ctx_ids[RS_WORKSPACE], w1 = U(RS_WORKSPACE, 2), w2 = U(RS_WORKSPACE, 3);
    put_ws(&f, w2, NULL);
    put_ws(&f, w1, &w2);
    put_ws(&f, w0, &w1);
    put(&f, 1, 1, RS_WORKSPACE, w2, "\"grand\"");
    put(&f, 2, 1, RS_WORKSPACE, w1, "\"parent\"");
    put(&f, 3, 1, RS_ORGANIZATION, ctx_ids[RS_ORGANIZATION], "\"org\"");
    commit(&f);
    rs_row row;
    CHECK(one(&f, &c, 1, &row) && is_value(&row, RS_WORKSPACE, "\"parent\"") && row.depth == 1 &&
              ueq(row.scope_id, &w1),
          "parent wins over grandparent");
    del(&f, 2);
    commit(&f);
    CHECK(one(&f, &c, 1, &row) && is_value(&row, RS_WORKSPACE, "\"grand\"") && row.depth == 2,
          "then the grandparent");
    put(&f, 4, 1, RS_WORKSPACE, w0, "\"self\"");
    commit(&f);
    CHECK(one(&f, &c, 1, &row) && is_value(&row, RS_WORKSPACE, "\"self\"") && row.depth == 0,
          "the given workspace wins");
    c.workspace = &w1;
    CHECK(one(&f, &c, 1, &row) && is_value(&row, RS_WORKSPACE, "\"grand\"") && row.depth == 1,
          "from w1, w2 is at depth 1 and w0 is not an ancestor");
    fx_free(&f);
}

/* A value 1000 levels up still beats the organization (the seed's 5 +
 * depth priority lost at 995). */
static void t_deep_workspace(void)
{
    fx f = fx_new();
    rs_context c = full_ctx();
    for (unsigned d = 0; d <= 1000; d++) {
        rs_uuid id = U(RS_WORKSPACE, 1 + d), parent = U(RS_WORKSPACE, 2 + d);
        put_ws(&f, id, d < 1000 ? &parent : NULL);
    }
    put(&f, 1, 1, RS_WORKSPACE, U(RS_WORKSPACE, 1001), "\"deep\"");
    put(&f, 2, 1, RS_ORGANIZATION, ctx_ids[RS_ORGANIZATION], "\"org\"");
    const rs_snap *s = commit(&f);
    rs_row row;
    CHECK(one(&f, &c, 1, &row) && is_value(&row, RS_WORKSPACE, "\"deep\"") && row.depth == 1000,
          "depth-1000 workspace wins over the organization (got %s, depth %u)", row.value,
          row.depth);
    rs_stats st;
    rs_snap_stats(s, &st);
    CHECK(st.workspaces == 1001 && st.values == 2, "stats: %zu workspaces, %zu values",
          st.workspaces, st.values);
    fx_free(&f);
}

/* Loops in parent links (refused by the database, but the engine must not
 * hang on bad data): the walk ends, each workspace counts once. */
static int count_rows(void *arg, const rs_row *row)
{
    (void)row;
    ++*(int *)arg;
    return 0;
}

static void t_workspace_cycles(void)
{
    fx f = fx_new();
    rs_context c = full_ctx();
    rs_uuid w[6];
    for (unsigned i = 0; i < 6; i++)
        w[i] = U(RS_WORKSPACE, 10 + i);
    /* w0 -> w1 -> w2 -> w3 -> w1 (a loop of three below a tail of one). */
    put_ws(&f, w[0], &w[1]);
    put_ws(&f, w[1], &w[2]);
    put_ws(&f, w[2], &w[3]);
    put_ws(&f, w[3], &w[1]);
    put_ws(&f, w[4], &w[4]); /* its own parent */
    for (unsigned i = 0; i < 5; i++)
        put(&f, 10 + i, 2, RS_WORKSPACE, w[i], "\"ws\"");
    put(&f, 1, 1, RS_ORGANIZATION, ctx_ids[RS_ORGANIZATION], "\"org\"");
    put(&f, 2, 1, RS_WORKSPACE, w[3], "\"w3\"");
    commit(&f);
    rs_row row;
    c.workspace = &w[0];
    CHECK(one(&f, &c, 1, &row) && is_value(&row, RS_WORKSPACE, "\"w3\"") && row.depth == 3,
          "found at depth 3 inside the loop");
    del(&f, 2);
    commit(&f);
    CHECK(one(&f, &c, 1, &row) && is_value(&row, RS_ORGANIZATION, "\"org\""),
          "nothing in the loop: the walk ends and the organization answers");
    rs_uuid b2 = U(K_BROKER, 2);
    rs_ids req = {&b2, NULL, 1};
    int n = 0;
    CHECK(rs_explain(f.s, &c, &req, count_rows, &n) == 0 && n == 4,
          "explain lists the 4 workspaces of the loop once each, got %d", n);
    c.workspace = &w[4];
    CHECK(one(&f, &c, 1, &row) && is_value(&row, RS_ORGANIZATION, "\"org\""), "self-parent ends");
    n = 0;
    CHECK(rs_explain(f.s, &c, &req, count_rows, &n) == 0 && n == 1, "self-parent listed once: %d",
          n);
    fx_free(&f);
}

/* Workspaces deleted while values still reference them: unreachable. */
static void t_deleted_workspace(void)
{
    fx f = fx_new();
    rs_context c = full_ctx();
    rs_uuid w0 = ctx_ids[RS_WORKSPACE], w1 = U(RS_WORKSPACE, 2), ghost = U(RS_WORKSPACE, 50);
    put_ws(&f, w0, &w1);
    put_ws(&f, w1, NULL);
    put(&f, 1, 1, RS_WORKSPACE, w1, "\"w1\"");
    put(&f, 2, 1, RS_GLOBAL, U(0, 0), "\"global\"");
    put(&f, 3, 2, RS_WORKSPACE, ghost, "\"ghost\"");
    commit(&f);
    rs_row row;
    CHECK(one(&f, &c, 1, &row) && is_value(&row, RS_WORKSPACE, "\"w1\""), "parent reachable");
    c.workspace = &ghost;
    CHECK(!one(&f, &c, 2, &row), "a workspace not held has no values, like the SQL join");
    c.workspace = &w0;
    must(rs_batch_del_workspace(f.b, &w1), "del workspace");
    commit(&f);
    CHECK(one(&f, &c, 1, &row) && is_value(&row, RS_GLOBAL, "\"global\""),
          "deleted parent: its values are out of reach");
    must(rs_batch_del_workspace(f.b, &w0), "del workspace");
    must(rs_batch_del_workspace(f.b, &w0), "del workspace twice");
    const rs_snap *s = commit(&f);
    rs_stats st;
    rs_snap_stats(s, &st);
    CHECK(st.workspaces == 0 && st.values == 3, "stats after deletes: %zu, %zu", st.workspaces,
          st.values);
    fx_free(&f);
}

/* ---- requests ---- */

static void t_request_shapes(void)
{
    fx f = fx_new();
    rs_context c = full_ctx();
    put(&f, 1, 1, RS_GLOBAL, U(0, 0), "1");
    put(&f, 2, 2, RS_USER, ctx_ids[RS_USER], "2");
    put(&f, 3, 3, RS_PROJECT, ctx_ids[RS_PROJECT], "null"); /* JSON null: a value */
    put(&f, 4, 3, RS_GLOBAL, U(0, 0), "\"hidden\"");
    commit(&f);
    rs_uuid ids[] = {U(K_BROKER, 2), U(0, 0), U(K_BROKER, 1), U(K_BROKER, 2), U(K_BROKER, 1),
                     U(K_BROKER, 3), U(K_BROKER, 9)};
    unsigned char nulls[] = {0, 1, 0, 0, 0, 0, 0};
    rs_ids req = {ids, nulls, 7};
    rs_row out[7];
    size_t n = rs_resolve(f.s, &c, &req, out);
    CHECK(n == 3, "duplicates collapse, NULL and unknown ids give no row: %zu rows", n);
    CHECK(ueq(&out[0].broker_id, &ids[2]) && ueq(&out[1].broker_id, &ids[0]) &&
              ueq(&out[2].broker_id, &ids[5]),
          "rows sorted by broker id");
    CHECK(is_value(&out[0], RS_GLOBAL, "1") && is_value(&out[1], RS_USER, "2"), "values");
    CHECK(is_value(&out[2], RS_PROJECT, "null"), "a JSON null hides the global value");
    req.n = 0;
    CHECK(rs_resolve(f.s, &c, &req, out) == 0, "empty request, no rows");
    rs_uuid only_null = U(K_BROKER, 1);
    unsigned char yes = 1;
    rs_ids all_null = {&only_null, &yes, 1};
    int has_null = 0;
    CHECK(rs_resolve(f.s, &c, &all_null, out) == 0, "all-NULL request, no rows");
    CHECK(rs_missing(f.s, &c, &all_null, out, &has_null) == 0 && has_null == 1,
          "missing of {NULL} is {NULL}");
    CHECK(rs_missing(f.s, &c, &req, out, &has_null) == 0 && has_null == 0, "missing of {} is {}");
    fx_free(&f);
}

static void t_missing(void)
{
    fx f = fx_new();
    rs_context c = full_ctx();
    put(&f, 1, 1, RS_TASK, ctx_ids[RS_TASK], "1");
    put(&f, 2, 5, RS_TASK, U(RS_TASK, 77), "5"); /* another task: not in context */
    commit(&f);
    rs_uuid ids[] = {U(K_BROKER, 3), U(K_BROKER, 1), U(0, 0), U(K_BROKER, 3), U(K_BROKER, 0),
                     U(K_BROKER, 5)};
    unsigned char nulls[] = {0, 0, 1, 0, 0, 0};
    rs_ids req = {ids, nulls, 6};
    rs_row out[6];
    int has_null = 0;
    size_t n = rs_missing(f.s, &c, &req, out, &has_null);
    CHECK(n == 3 && has_null == 1, "3 missing and a NULL, got %zu, %d", n, has_null);
    CHECK(ueq(&out[0].broker_id, &ids[4]) && ueq(&out[1].broker_id, &ids[0]) &&
              ueq(&out[2].broker_id, &ids[5]),
          "distinct, in uuid order");
    fx_free(&f);
}

static void t_complete(void)
{
    fx f = fx_new();
    rs_context c = full_ctx();
    put_broker(&f, 1, "first", NULL);
    put_broker(&f, 2, "second", "no value");
    put_broker(&f, 4, "old name", NULL);
    put_broker(&f, 4, "fourth", "json null"); /* replaces */
    put(&f, 1, 1, RS_ORGANIZATION, ctx_ids[RS_ORGANIZATION], "{\"a\": 1}");
    put(&f, 3, 3, RS_GLOBAL, U(0, 0), "3"); /* value, but not in data_broker */
    put(&f, 4, 4, RS_AI_RUN, ctx_ids[RS_AI_RUN], "null");
    commit(&f);
    rs_uuid ids[] = {U(K_BROKER, 4), U(K_BROKER, 3), U(K_BROKER, 2), U(K_BROKER, 1), U(K_BROKER, 2),
                     U(0, 0)};
    unsigned char nulls[] = {0, 0, 0, 0, 0, 1};
    rs_ids req = {ids, nulls, 6};
    rs_row out[6];
    size_t n = rs_complete(f.s, &c, &req, out);
    CHECK(n == 3, "ids not in data_broker dropped, duplicates collapse: %zu rows", n);
    CHECK(ueq(&out[0].broker_id, &ids[3]) && ueq(&out[1].broker_id, &ids[2]) &&
              ueq(&out[2].broker_id, &ids[0]),
          "sorted by broker id");
    CHECK(is_value(&out[0], RS_ORGANIZATION, "{\"a\": 1}") && ueq(out[0].scope_id, &ctx_ids[RS_ORGANIZATION]),
          "first has its value");
    CHECK(strcmp(out[0].broker->name, "first") == 0 && strcmp(out[0].broker->data_type, "str") == 0 &&
              strcmp(out[0].broker->default_value, "dflt") == 0 && out[0].broker->description == NULL,
          "first's metadata");
    CHECK(out[1].value == NULL && out[1].level == RS_NONE && out[1].scope_id == NULL &&
              strcmp(out[1].broker->description, "no value") == 0,
          "second: no value, has_value false");
    CHECK(is_value(&out[2], RS_AI_RUN, "null") && strcmp(out[2].broker->name, "fourth") == 0,
          "fourth: JSON null is a value, replaced metadata");
    const rs_broker *b = rs_get_broker(f.s, &ids[0]);
    CHECK(b && strcmp(b->description, "json null") == 0, "rs_get_broker");
    must(rs_batch_del_broker(f.b, &ids[0]), "del broker");
    commit(&f);
    n = rs_complete(f.s, &c, &req, out);
    CHECK(n == 2 && rs_get_broker(f.s, &ids[0]) == NULL, "deleted broker dropped: %zu", n);
    CHECK(rs_resolve(f.s, &c, &req, out) == 3, "its values still resolve (the loader deletes them)");
    fx_free(&f);
}

/* ---- explain ---- */

typedef struct seen {
    int n, stop_at;
    rs_row rows[16];
} seen;

static int collect(void *arg, const rs_row *row)
{
    seen *s = arg;
    if (s->n < 16)
        s->rows[s->n] = *row;
    s->n++;
    return s->n == s->stop_at ? 7 : 0;
}

static void t_explain(void)
{
    fx f = fx_new();
    rs_context c = full_ctx();
    rs_uuid w0 = ctx_ids[RS_WORKSPACE], w1 = U(RS_WORKSPACE, 2), w2 = U(RS_WORKSPACE, 3);
    put_ws(&f, w0, &w1);
    put_ws(&f, w1, &w2);
    put_ws(&f, w2, NULL);
    put(&f, 1, 1, RS_GLOBAL, U(0, 0), "\"g\"");
    put(&f, 2, 1, RS_WORKSPACE, w2, "\"w2\"");
    put(&f, 3, 1, RS_TASK, ctx_ids[RS_TASK], "\"t\"");
    put(&f, 4, 1, RS_WORKSPACE, w0, "\"w0\"");
    put(&f, 5, 1, RS_USER, U(RS_USER, 42), "\"other user\"");
    put(&f, 6, 0, RS_USER, ctx_ids[RS_USER], "\"b0\"");
    commit(&f);
    rs_uuid ids[] = {U(K_BROKER, 1), U(K_BROKER, 0), U(K_BROKER, 1), U(K_BROKER, 8)};
    rs_ids req = {ids, NULL, 4};
    static seen s;
    s = (seen){.stop_at = -1};
    CHECK(rs_explain(f.s, &c, &req, collect, &s) == 0 && s.n == 5, "5 candidates, got %d", s.n);
    CHECK(ueq(&s.rows[0].broker_id, &ids[1]) && is_value(&s.rows[0], RS_USER, "\"b0\""),
          "broker 0 first (uuid order)");
    CHECK(is_value(&s.rows[1], RS_TASK, "\"t\"") && is_value(&s.rows[2], RS_WORKSPACE, "\"w0\"") &&
              s.rows[2].depth == 0 && is_value(&s.rows[3], RS_WORKSPACE, "\"w2\"") &&
              s.rows[3].depth == 2 && is_value(&s.rows[4], RS_GLOBAL, "\"g\""),
          "broker 1's candidates in priority order");
    rs_row top;
    CHECK(one(&f, &c, 1, &top) && top.value == s.rows[1].value, "the first candidate is the answer");
    static seen stop;
    stop = (seen){.stop_at = 2};
    CHECK(rs_explain(f.s, &c, &req, collect, &stop) == 7 && stop.n == 2, "callback stops it");
    fx_free(&f);
}

/* ---- changes ---- */

static void t_updates_and_deletes(void)
{
    fx f = fx_new();
    rs_context c = full_ctx();
    put(&f, 1, 1, RS_PROJECT, ctx_ids[RS_PROJECT], "1");
    put(&f, 2, 1, RS_GLOBAL, U(0, 0), "\"g\"");
    const rs_snap *s = commit(&f);
    rs_stats st;
    rs_row row;
    put(&f, 1, 1, RS_PROJECT, ctx_ids[RS_PROJECT], "\"replaced\"");
    s = commit(&f);
    rs_snap_stats(s, &st);
    CHECK(one(&f, &c, 1, &row) && is_value(&row, RS_PROJECT, "\"replaced\"") && st.values == 2,
          "update in place: %zu values", st.values);
    /* Same id, other scope: the value moves. */
    put(&f, 1, 1, RS_PROJECT, U(RS_PROJECT, 9), "\"moved\"");
    commit(&f);
    CHECK(one(&f, &c, 1, &row) && is_value(&row, RS_GLOBAL, "\"g\""), "moved out of the context");
    rs_uuid p9 = U(RS_PROJECT, 9);
    c.project = &p9;
    CHECK(one(&f, &c, 1, &row) && is_value(&row, RS_PROJECT, "\"moved\""), "found at its new scope");
    /* Same id, other broker. */
    put(&f, 1, 7, RS_PROJECT, U(RS_PROJECT, 9), "\"rebrokered\"");
    commit(&f);
    CHECK(one(&f, &c, 1, &row) && is_value(&row, RS_GLOBAL, "\"g\""), "left broker 1");
    CHECK(one(&f, &c, 7, &row) && is_value(&row, RS_PROJECT, "\"rebrokered\""), "joined broker 7");
    /* Another id at the same (broker, scope) replaces it. */
    put(&f, 3, 7, RS_PROJECT, U(RS_PROJECT, 9), "\"usurper\"");
    s = commit(&f);
    rs_snap_stats(s, &st);
    CHECK(one(&f, &c, 7, &row) && is_value(&row, RS_PROJECT, "\"usurper\"") &&
              ueqv(row.value_id, U(K_VALUE, 3)) && st.values == 2,
          "unique per scope: replaced, %zu values", st.values);
    del(&f, 1); /* already displaced: nothing */
    del(&f, 99); /* never existed */
    s = commit(&f);
    rs_snap_stats(s, &st);
    CHECK(one(&f, &c, 7, &row) && st.values == 2, "deleting displaced/unknown ids is a no-op");
    del(&f, 3);
    del(&f, 2);
    s = commit(&f);
    rs_snap_stats(s, &st);
    CHECK(!one(&f, &c, 7, &row) && !one(&f, &c, 1, &row) && st.values == 0 && st.scopes == 0,
          "deleted: %zu values, %zu scopes", st.values, st.scopes);
    /* Several changes to one value in one batch: the last one counts. */
    put(&f, 5, 1, RS_USER, ctx_ids[RS_USER], "1");
    put(&f, 5, 1, RS_USER, ctx_ids[RS_USER], "2");
    del(&f, 5);
    put(&f, 5, 1, RS_USER, ctx_ids[RS_USER], "3");
    commit(&f);
    CHECK(one(&f, &c, 1, &row) && is_value(&row, RS_USER, "3"), "last change of a batch wins");
    rs_value bad = {U(K_VALUE, 1), U(K_BROKER, 1), RS_NONE, U(0, 0), "1", 1};
    CHECK(rs_batch_put_value(f.b, &bad) == -2, "a value without a level is refused");
    fx_free(&f);
}

/* A reader inside a version keeps seeing it while the writer publishes. */
static void t_version_isolation(void)
{
    fx f = fx_new();
    rs_context c = full_ctx();
    put(&f, 1, 1, RS_GLOBAL, U(0, 0), "\"old\"");
    commit(&f);
    rs_reader *r2 = rs_reader_new(f.e);
    CHECK(r2 != NULL, "second reader");
    const rs_snap *held = rs_read_begin(r2);
    rs_stats st;
    rs_snap_stats(held, &st);
    uint64_t v = st.version;
    put(&f, 1, 1, RS_GLOBAL, U(0, 0), "\"new\"");
    for (int i = 0; i < 40; i++) /* many publishes while it is held */
        put(&f, 100 + (unsigned)i, 2, RS_USER, U(RS_USER, (unsigned)i), "0");
    commit(&f);
    for (int i = 0; i < 5; i++)
        commit(&f);
    rs_uuid id = U(K_BROKER, 1);
    rs_ids req = {&id, NULL, 1};
    rs_row row;
    CHECK(rs_resolve(held, &c, &req, &row) == 1 && is_value(&row, RS_GLOBAL, "\"old\""),
          "held version unchanged");
    CHECK(one(&f, &c, 1, &row) && is_value(&row, RS_GLOBAL, "\"new\""), "new reader sees new");
    rs_stats now;
    rs_snap_stats(f.s, &now);
    CHECK(now.version == v + 6 && now.retired_bytes > 0, "versions advance (%llu), old memory held",
          (unsigned long long)now.version);
    rs_read_end(r2);
    commit(&f);
    rs_snap_stats(f.s, &now);
    CHECK(now.retired_bytes == 0, "released: reclaimed at the next publish (%zu left)",
          now.retired_bytes);
    rs_reader_free(r2);
    rs_reader *all[RS_MAX_READERS];
    size_t got = 0;
    while (got < RS_MAX_READERS && (all[got] = rs_reader_new(f.e)))
        got++;
    CHECK(got == RS_MAX_READERS - 1 && rs_reader_new(f.e) == NULL, "reader slots: %zu", got);
    rs_reader_free(all[0]);
    all[0] = rs_reader_new(f.e);
    CHECK(all[0] != NULL, "a freed slot is reused");
    for (size_t i = 0; i < got; i++)
        rs_reader_free(all[i]);
    rs_batch *second = rs_batch_begin(f.e);
    CHECK(second == NULL, "one batch at a time");
    fx_free(&f);
}

/* A full reload: clear and load again in one batch, published at once. */
static void t_clear_reload(void)
{
    fx f = fx_new();
    rs_context c = full_ctx();
    rs_uuid w1 = U(RS_WORKSPACE, 2);
    put_ws(&f, ctx_ids[RS_WORKSPACE], &w1);
    put_ws(&f, w1, NULL);
    put_broker(&f, 1, "one", NULL);
    for (unsigned i = 0; i < 500; i++)
        put(&f, i, i % 50, (rs_level)(1 + i % 8), i % 8 == 7 ? U(0, 0) : ctx_ids[1 + i % 8], "\"old\"");
    commit(&f);
    rs_reader *r2 = rs_reader_new(f.e);
    CHECK(r2 != NULL, "second reader");
    const rs_snap *held = rs_read_begin(r2);
    must(rs_batch_clear(f.b), "clear");
    put(&f, 1000, 1, RS_USER, ctx_ids[RS_USER], "\"new\"");
    put_broker(&f, 2, "two", NULL);
    commit(&f);
    rs_uuid ids[] = {U(K_BROKER, 1), U(K_BROKER, 2)};
    rs_ids req = {ids, NULL, 2};
    rs_row rows[2];
    CHECK(rs_resolve(held, &c, &req, rows) == 2 && strcmp(rows[0].value, "\"old\"") == 0,
          "the held version keeps the old data");
    CHECK(rs_complete(held, &c, &req, rows) == 1 && strcmp(rows[0].broker->name, "one") == 0,
          "and the old brokers");
    rs_read_end(r2);
    rs_reader_free(r2);
    CHECK(rs_resolve(f.s, &c, &req, rows) == 1 && is_value(&rows[0], RS_USER, "\"new\""),
          "the new version has only the new data");
    CHECK(rs_complete(f.s, &c, &req, rows) == 1 && strcmp(rows[0].broker->name, "two") == 0,
          "and the new brokers");
    rs_stats st;
    rs_snap_stats(f.s, &st);
    CHECK(st.values == 1 && st.workspaces == 0 && st.brokers == 1 && st.scopes == 1,
          "stats after reload: %zu values, %zu workspaces, %zu brokers, %zu scopes", st.values,
          st.workspaces, st.brokers, st.scopes);
    del(&f, 3); /* an id of the old data: gone */
    put(&f, 4, 1, RS_TASK, ctx_ids[RS_TASK], "\"again\"");
    commit(&f);
    rs_row row;
    CHECK(one(&f, &c, 1, &row) && is_value(&row, RS_TASK, "\"again\""), "old ids can come back");
    fx_free(&f);
}

/* ---- a brute-force model ---- */

enum { M_BROKERS = 24, M_SCOPES = 4, M_WS = 10, M_IDS = 300, M_BATCHES = 300 };

typedef struct mval {
    int live;
    unsigned broker;
    rs_level level;
    rs_uuid scope;
    char json[16];
} mval;

typedef struct mws {
    int live, has_parent;
    unsigned parent;
} mws;

static mval mv[M_IDS];
static mws mw[M_WS];
static int mb_live[M_BROKERS + 3];
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static rs_uuid ws_id(unsigned i)
{
    return U(RS_WORKSPACE, 100 + i);
}

/* A model context: per level the scope number (M_SCOPES: an id with no
 * values; -1: NULL), workspace M_WS an id that is not held. */
typedef struct mctx {
    int id[RS_GLOBAL];
    rs_uuid uuids[RS_GLOBAL];
    rs_context c;
} mctx;

static void m_random_ctx(mctx *m)
{
    const rs_uuid **slots[] = {NULL, &m->c.ai_task, &m->c.ai_run, &m->c.task, &m->c.project,
                               &m->c.workspace, &m->c.organization, &m->c.user};
    memset(&m->c, 0, sizeof m->c);
    for (int l = RS_AI_TASK; l <= RS_USER; l++) {
        m->id[l] = rnd(5) == 0 ? -1 : (int)rnd(l == RS_WORKSPACE ? M_WS + 1 : M_SCOPES + 1);
        m->uuids[l] = l == RS_WORKSPACE ? ws_id((unsigned)m->id[l]) : U((unsigned)l, (unsigned)m->id[l]);
        *slots[l] = m->id[l] < 0 ? NULL : &m->uuids[l];
    }
}

static int m_find(unsigned broker, rs_level level, const rs_uuid *scope)
{
    for (int k = 0; k < M_IDS; k++)
        if (mv[k].live && mv[k].broker == broker && mv[k].level == level &&
            rs_uuid_cmp(&mv[k].scope, scope) == 0)
            return k;
    return -1;
}

/* The candidates of a broker in priority order: value numbers and depths. */
static int m_candidates(const mctx *m, unsigned broker, int *idx, uint32_t *depth)
{
    int n = 0, k;
    rs_uuid zero = U(0, 0);
    for (int l = RS_AI_TASK; l <= RS_GLOBAL; l++) {
        if (l == RS_WORKSPACE && m->id[l] >= 0) {
            int seen[M_WS + 1] = {0};
            unsigned cur = (unsigned)m->id[l];
            for (uint32_t d = 0; cur < M_WS && mw[cur].live && !seen[cur]; d++) {
                seen[cur] = 1;
                rs_uuid w = ws_id(cur);
                if ((k = m_find(broker, RS_WORKSPACE, &w)) >= 0) {
                    idx[n] = k;
                    depth[n++] = d;
                }
                if (!mw[cur].has_parent)
                    break;
                cur = mw[cur].parent;
            }
        } else if (l == RS_GLOBAL || (l != RS_WORKSPACE && m->id[l] >= 0)) {
            if ((k = m_find(broker, (rs_level)l, l == RS_GLOBAL ? &zero : &m->uuids[l])) >= 0) {
                idx[n] = k;
                depth[n++] = 0;
            }
        }
    }
    return n;
}

static void m_apply_random(fx *f, int stamp)
{
    unsigned op = rnd(100), i = rnd(M_IDS);
    if (op < 60) {
        mval v = {1, rnd(M_BROKERS), (rs_level)(1 + rnd(8)), U(0, 0), ""};
        if (v.level == RS_WORKSPACE)
            v.scope = ws_id(rnd(M_WS));
        else if (v.level != RS_GLOBAL)
            v.scope = U(v.level, rnd(M_SCOPES));
        snprintf(v.json, sizeof v.json, "%d", stamp);
        for (int k = 0; k < M_IDS; k++) /* the unique (broker, scope) */
            if (mv[k].live && mv[k].broker == v.broker && mv[k].level == v.level &&
                rs_uuid_cmp(&mv[k].scope, &v.scope) == 0)
                mv[k].live = 0;
        mv[i] = v;
        put(f, i, v.broker, v.level, v.scope, v.json);
    } else if (op < 80) {
        mv[i].live = 0;
        del(f, i);
    } else if (op < 90) {
        unsigned w = rnd(M_WS), parent = rnd(M_WS);
        int has = rnd(10) < 7;
        mw[w] = (mws){1, has, parent};
        rs_uuid id = ws_id(w), pid = ws_id(parent);
        put_ws(f, id, has ? &pid : NULL);
    } else if (op < 94) {
        unsigned w = rnd(M_WS);
        rs_uuid id = ws_id(w);
        mw[w].live = 0;
        must(rs_batch_del_workspace(f->b, &id), "del workspace");
    } else if (op < 98) {
        unsigned b = rnd(M_BROKERS);
        mb_live[b] = 1;
        put_broker(f, b, "name", NULL);
    } else if (op == 99 && rnd(20) == 0) { /* a full reload starts */
        memset(mv, 0, sizeof mv);
        memset(mw, 0, sizeof mw);
        memset(mb_live, 0, sizeof mb_live);
        must(rs_batch_clear(f->b), "clear");
    } else {
        unsigned b = rnd(M_BROKERS);
        rs_uuid id = U(K_BROKER, b);
        mb_live[b] = 0;
        must(rs_batch_del_broker(f->b, &id), "del broker");
    }
}

typedef struct mexp {
    int n;
    rs_row rows[64 * 12];
} mexp;

static int m_collect(void *arg, const rs_row *row)
{
    mexp *x = arg;
    if (x->n < 64 * 12)
        x->rows[x->n] = *row;
    x->n++;
    return 0;
}

static int row_is(const rs_row *row, unsigned broker, int k, uint32_t depth)
{
    rs_uuid b = U(K_BROKER, broker), vid = U(K_VALUE, (unsigned)k);
    return ueq(&row->broker_id, &b) && ueq(row->value_id, &vid) && row->level == mv[k].level &&
           strcmp(row->value, mv[k].json) == 0 && row->depth == depth &&
           (mv[k].level == RS_GLOBAL ? row->scope_id == NULL : ueq(row->scope_id, &mv[k].scope));
}

/* One random request on the current version, checked in full. */
static void m_check_query(fx *f, int batch)
{
    mctx m;
    m_random_ctx(&m);
    rs_uuid ids[40];
    unsigned char nulls[40];
    int want[M_BROKERS + 3] = {0}, any_null = 0;
    size_t n = rnd(40);
    for (size_t i = 0; i < n; i++) {
        unsigned b = rnd(M_BROKERS + 3);
        nulls[i] = rnd(10) == 0;
        ids[i] = U(K_BROKER, b);
        if (nulls[i])
            any_null = 1;
        else
            want[b] = 1;
    }
    rs_ids req = {ids, nulls, n};
    rs_row got[40], miss[40], comp[40];
    static mexp ex;
    ex.n = 0;
    int has_null = -1;
    size_t ng = rs_resolve(f->s, &m.c, &req, got), nm = rs_missing(f->s, &m.c, &req, miss, &has_null);
    size_t nc = rs_complete(f->s, &m.c, &req, comp);
    CHECK(rs_explain(f->s, &m.c, &req, m_collect, &ex) == 0, "explain");
    CHECK(has_null == any_null, "batch %d: has_null", batch);
    size_t ig = 0, im = 0, ic = 0;
    int ie = 0;
    for (unsigned b = 0; b < M_BROKERS + 3; b++) {
        if (!want[b])
            continue;
        int idx[64];
        uint32_t depth[64];
        int nk = m_candidates(&m, b, idx, depth);
        rs_uuid bid = U(K_BROKER, b);
        if (nk > 0) {
            CHECK(ig < ng && row_is(&got[ig], b, idx[0], depth[0]),
                  "batch %d: broker %u resolves to value %d at depth %u", batch, b, idx[0], depth[0]);
            ig++;
        } else {
            CHECK(im < nm && ueq(&miss[im].broker_id, &bid), "batch %d: broker %u missing", batch, b);
            im++;
        }
        if (mb_live[b]) {
            CHECK(ic < nc && ueq(&comp[ic].broker_id, &bid) && comp[ic].broker &&
                      (nk > 0 ? row_is(&comp[ic], b, idx[0], depth[0]) : comp[ic].value == NULL),
                  "batch %d: complete row of broker %u", batch, b);
            ic++;
        }
        for (int j = 0; j < nk; j++, ie++)
            CHECK(ie < ex.n && row_is(&ex.rows[ie], b, idx[j], depth[j]),
                  "batch %d: explain candidate %d of broker %u", batch, j, b);
    }
    CHECK(ig == ng && im == nm && ic == nc && ie == ex.n,
          "batch %d: extra rows (%zu/%zu resolve, %zu/%zu missing, %zu/%zu complete, %d/%d explain)",
          batch, ig, ng, im, nm, ic, nc, ie, ex.n);
}

static void t_model(void)
{
    fx f = fx_new();
    memset(mv, 0, sizeof mv);
    memset(mw, 0, sizeof mw);
    memset(mb_live, 0, sizeof mb_live);
    int stamp = 0;
    for (int batch = 0; batch < M_BATCHES; batch++) {
        unsigned ops = 1 + rnd(40);
        for (unsigned i = 0; i < ops; i++)
            m_apply_random(&f, ++stamp);
        commit(&f);
        for (int q = 0; q < 5 && !case_failed; q++)
            m_check_query(&f, batch);
        if (case_failed)
            return;
    }
    size_t values = 0, workspaces = 0, brokers = 0;
    for (int k = 0; k < M_IDS; k++)
        values += (size_t)mv[k].live;
    for (int w = 0; w < M_WS; w++)
        workspaces += (size_t)mw[w].live;
    for (int b = 0; b < M_BROKERS; b++)
        brokers += (size_t)mb_live[b];
    rs_stats st;
    rs_snap_stats(f.s, &st);
    CHECK(st.values == values && st.workspaces == workspaces && st.brokers == brokers,
          "stats %zu/%zu/%zu, model %zu/%zu/%zu", st.values, st.workspaces, st.brokers, values,
          workspaces, brokers);
    fx_free(&f);
}

/* 60,000 values in one batch, then all deleted in one batch, then again. */
static void t_large_batch(void)
{
    fx f = fx_new();
    rs_context c = full_ctx();
    enum { N = 60000, BROKERS = 300 };
    for (int round = 0; round < 2; round++) {
        for (unsigned i = 0; i < N; i++) { /* 7 levels; each scope gets 300 brokers */
            rs_level level = (rs_level)(1 + i % 7);
            unsigned scope = (i / 7) / BROKERS;
            put(&f, i, (i / 7) % BROKERS, level, U(level, scope == 0 ? 1 : scope + 10), "1");
        }
        commit(&f);
        rs_stats st;
        rs_snap_stats(f.s, &st);
        CHECK(st.values == N && st.bytes > N * sizeof(void *), "round %d: %zu values, %zu bytes",
              round, st.values, st.bytes);
        rs_uuid ids[BROKERS];
        for (unsigned b = 0; b < BROKERS; b++)
            ids[b] = U(K_BROKER, b);
        rs_ids req = {ids, NULL, BROKERS};
        static rs_row out[BROKERS];
        size_t n = rs_resolve(f.s, &c, &req, out);
        CHECK(n == BROKERS, "round %d: every broker resolves: %zu", round, n);
        for (unsigned b = 0; b < BROKERS; b++)
            CHECK(ueq(&out[b].broker_id, &ids[b]), "round %d: order at %u", round, b);
        for (unsigned i = 0; i < N; i++)
            del(&f, i);
        commit(&f);
        rs_snap_stats(f.s, &st);
        CHECK(st.values == 0 && st.scopes == 0 && rs_resolve(f.s, &c, &req, out) == 0,
              "round %d: all deleted (%zu values, %zu scopes)", round, st.values, st.scopes);
    }
    fx_free(&f);
}

/* ---- concurrency ---- */

enum { C_BROKERS = 20, C_PLACES = 10, C_CHANGES = 10000, C_READERS = 2 };

typedef struct conc {
    rs_engine *e;
    rs_context ctx;
    rs_uuid ids[C_BROKERS];
    _Atomic int started, done, bad;
    _Atomic long checks;
    char msg[256];
} conc;

static void conc_fail(conc *k, const char *msg, uint64_t version)
{
    if (atomic_fetch_add(&k->bad, 1) == 0)
        snprintf(k->msg, sizeof k->msg, "%s (version %llu)", msg, (unsigned long long)version);
}

/* Every answer must come from one whole batch: a writer's batch sets or
 * deletes the values of all 20 brokers at one place, with one stamp. */
static void conc_check(conc *k, const rs_snap *s)
{
    rs_stats st;
    rs_snap_stats(s, &st);
    rs_ids req = {k->ids, NULL, C_BROKERS};
    rs_row rows[C_BROKERS], miss[C_BROKERS];
    int has_null;
    size_t n = rs_resolve(s, &k->ctx, &req, rows);
    size_t nm = rs_missing(s, &k->ctx, &req, miss, &has_null);
    if ((n != 0 && n != C_BROKERS) || nm != C_BROKERS - n)
        return conc_fail(k, "a torn answer: some brokers resolved, others not", st.version);
    for (size_t i = 0; i < n; i++) {
        if (!ueq(&rows[i].broker_id, &k->ids[i]))
            return conc_fail(k, "rows out of order", st.version);
        if (rows[i].level != rows[0].level || rows[i].depth != rows[0].depth ||
            strcmp(rows[i].value, rows[0].value) != 0 ||
            (rows[i].scope_id != NULL) != (rows[0].scope_id != NULL) ||
            (rows[0].scope_id && !ueq(rows[i].scope_id, rows[0].scope_id)))
            return conc_fail(k, "a torn answer: rows from different batches", st.version);
    }
}

static void *conc_reader(void *arg)
{
    conc *k = arg;
    rs_reader *r = rs_reader_new(k->e);
    uint64_t last = 0;
    if (!r) {
        conc_fail(k, "no reader slot", 0);
        atomic_fetch_add(&k->started, 1);
        return NULL;
    }
    atomic_fetch_add(&k->started, 1);
    for (int final = 0; final < 2;) {
        final += atomic_load(&k->done); /* one last pass after the writer ends */
        const rs_snap *s = rs_read_begin(r);
        rs_stats st;
        rs_snap_stats(s, &st);
        if (st.version < last)
            conc_fail(k, "versions went backwards", st.version);
        last = st.version;
        conc_check(k, s);
        rs_read_end(r);
        atomic_fetch_add(&k->checks, 1);
    }
    rs_reader_free(r);
    return NULL;
}

static rs_uuid place_scope(unsigned p, rs_level *level)
{
    static const rs_level levels[C_PLACES] = {RS_AI_TASK,  RS_AI_RUN,       RS_TASK,
                                              RS_PROJECT,  RS_WORKSPACE,    RS_WORKSPACE,
                                              RS_WORKSPACE, RS_ORGANIZATION, RS_USER,
                                              RS_GLOBAL};
    *level = levels[p];
    if (p >= 4 && p <= 6)
        return U(RS_WORKSPACE, p == 4 ? 1 : p - 3);
    return *level == RS_GLOBAL ? U(0, 0) : ctx_ids[*level];
}

static void t_concurrent(void)
{
    static conc k;
    memset(&k, 0, sizeof k);
    k.ctx = full_ctx();
    fx f = fx_new();
    k.e = f.e;
    for (unsigned b = 0; b < C_BROKERS; b++)
        k.ids[b] = U(K_BROKER, b);
    rs_uuid w1 = U(RS_WORKSPACE, 2), w2 = U(RS_WORKSPACE, 3);
    put_ws(&f, ctx_ids[RS_WORKSPACE], &w1);
    put_ws(&f, w1, &w2);
    put_ws(&f, w2, NULL);
    for (unsigned b = 0; b < C_BROKERS; b++)
        put(&f, 9 * 100 + b, b, RS_GLOBAL, U(0, 0), "0");
    commit(&f);
    pthread_t th[C_READERS];
    for (int i = 0; i < C_READERS; i++)
        if (pthread_create(&th[i], NULL, conc_reader, &k) != 0)
            must(-1, "thread");
    while (atomic_load(&k.started) < C_READERS)
        ;
    int changes = 0;
    char json[16];
    for (int batch = 1; changes < C_CHANGES; batch++) {
        rs_level level;
        unsigned p = rnd(C_PLACES);
        rs_uuid scope = place_scope(p, &level);
        int set = rnd(10) < 7;
        snprintf(json, sizeof json, "%d", batch);
        for (unsigned b = 0; b < C_BROKERS; b++, changes++) {
            if (set)
                put(&f, p * 100 + b, b, level, scope, json);
            else
                del(&f, p * 100 + b);
        }
        if (batch % 10 == 0) { /* the same chain, rewritten: copies a workspace shard */
            put_ws(&f, w1, &w2);
            changes++;
        }
        if (f.s)
            rs_read_end(f.r);
        f.s = NULL;
        rs_batch_publish(f.b);
        if (!(f.b = rs_batch_begin(f.e)))
            must(-1, "batch");
    }
    atomic_store(&k.done, 1);
    for (int i = 0; i < C_READERS; i++)
        pthread_join(th[i], NULL);
    CHECK(atomic_load(&k.bad) == 0, "%d bad answers, first: %s", atomic_load(&k.bad), k.msg);
    CHECK(atomic_load(&k.checks) >= 2 * C_READERS, "readers ran: %ld", atomic_load(&k.checks));
    fx_free(&f);
}

static const struct {
    const char *name;
    void (*fn)(void);
} cases[] = {
    {"uuid parse and format", t_uuid},
    {"scope of a row's columns", t_scope_of},
    {"each level wins in turn", t_levels_in_turn},
    {"a NULL context id skips its level", t_null_context_skips},
    {"nested workspaces: closer wins", t_nested_workspaces},
    {"depth-1000 workspace beats the organization", t_deep_workspace},
    {"workspace loops end", t_workspace_cycles},
    {"deleted workspaces are unreachable", t_deleted_workspace},
    {"duplicates, NULLs, empty request, JSON null", t_request_shapes},
    {"missing ids", t_missing},
    {"complete rows", t_complete},
    {"explain lists candidates in priority order", t_explain},
    {"updates, moves and deletes", t_updates_and_deletes},
    {"a held version stays unchanged", t_version_isolation},
    {"clear and reload in one batch", t_clear_reload},
    {"random batches equal a brute-force model", t_model},
    {"large batch grows and shrinks the tables", t_large_batch},
    {"2 readers during 10,000 changes see whole batches", t_concurrent},
};

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* a sanitizer's exit does not flush stdio */
    for (size_t i = 0; i < COUNT(cases); i++) {
        case_name = cases[i].name;
        cases[i].fn();
        finish_case();
    }
    return report();
}
