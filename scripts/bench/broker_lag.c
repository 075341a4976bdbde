/* broker_lag.c: the measuring client of scripts/bench/broker_lag.sh.  Writes
 * broker_values directly in PostgreSQL (libpq) and times each COMMIT to the
 * moment strata's native broker engine answers the new data: it polls
 * POST /rest/v1/rpc/get_broker_values_for_context (answered from memory)
 * over one keep-alive HTTP connection, every POLL_US.  Three shapes:
 *   single   SINGLE commits of one UPDATE of one row (p50, p99, max);
 *   two      ROUNDS transactions writing 12,000 rows in two statements;
 *   each     ROUNDS transactions writing 12,000 rows in 12,000 statements
 *            (one INSERT ... ON CONFLICT per row, as an ORM writes them).
 * A 12,000-row transaction counts as answered when four of its rows (the
 * first, the last and two in the middle) carry the round's value.  For
 * each shape it also prints what strata_broker_apply_lag_seconds counted
 * meanwhile (from /metrics, before and after).
 *   bench_broker_lag PORT TOKEN DATABASE_URL SINGLE ROUNDS
 * Creates an organization, 12,001 data_broker rows named lagbench-<org>
 * and their values, and deletes them at the end. */
#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ROWS 12000
#define POLL_US 200
#define GIVE_UP_S 30.0

static PGconn *db;
static int http_fd = -1, port;
static const char *token;
static char org[37], brokers[ROWS + 1][37]; /* brokers[0]: the single-row shape's */
static char *body;                          /* the last HTTP answer's body (owned) */
static size_t body_cap;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_broker_lag: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- PostgreSQL ------------------------------------------------------------ */

static PGresult *sql(const char *text, int n, const char *const *params, ExecStatusType want)
{
    PGresult *r = PQexecParams(db, text, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != want)
        die("%s: %s", text, PQresultErrorMessage(r));
    return r;
}

static void sql_ok(const char *text, int n, const char *const *params)
{
    PQclear(sql(text, n, params, PGRES_COMMAND_OK));
}

/* --- HTTP ------------------------------------------------------------------ */

static void http_connect(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    if ((http_fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 || connect(http_fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        setsockopt(http_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
        die("cannot connect to 127.0.0.1:%d", port);
}

static void send_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(http_fd, p, n);
        if (k <= 0)
            die("HTTP write failed");
        p += k;
        n -= (size_t)k;
    }
}

/* Sends one request and reads the answer into body; its status. */
static int http(const char *method, const char *path, const char *json)
{
    char head[2048];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     method, path, token, json ? strlen(json) : 0);
    if (n < 0 || (size_t)n >= sizeof head)
        die("request head too long");
    send_all(head, (size_t)n);
    if (json)
        send_all(json, strlen(json));
    static char in[65536];
    size_t got = 0;
    char *end = NULL;
    while (!end) {
        ssize_t k = read(http_fd, in + got, sizeof in - 1 - got);
        if (k <= 0)
            die("HTTP read failed (the server closed the connection?)");
        got += (size_t)k;
        in[got] = 0;
        end = strstr(in, "\r\n\r\n");
        if (!end && got == sizeof in - 1)
            die("answer head too long");
    }
    int status = atoi(in + 9);
    const char *cl = strcasestr(in, "\r\nContent-Length:");
    if (!cl || cl > end)
        die("answer without Content-Length");
    size_t len = strtoul(cl + 17, NULL, 10), have = got - (size_t)(end + 4 - in);
    if (len + 1 > body_cap && !(body = realloc(body, body_cap = len + 1)))
        die("out of memory");
    memcpy(body, end + 4, have < len ? have : len);
    while (have < len) {
        ssize_t k = read(http_fd, body + have, len - have);
        if (k <= 0)
            die("HTTP read failed in a body");
        have += (size_t)k;
    }
    body[len] = 0;
    return status;
}

static size_t count_in(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Polls the native engine until each of the brokers named answers value
 * "lagmark-<mark>" at the organization: seconds since t0. */
static double await_mark(const int *which, int n, long mark, double t0)
{
    char req[1024], want[64];
    int len = snprintf(req, sizeof req, "{\"p_organization_id\":\"%s\",\"p_broker_ids\":[", org);
    for (int i = 0; i < n; i++)
        len += snprintf(req + len, sizeof req - (size_t)len, "%s\"%s\"", i ? "," : "", brokers[which[i]]);
    snprintf(req + len, sizeof req - (size_t)len, "]}");
    snprintf(want, sizeof want, "\"lagmark-%ld\"", mark);
    for (;;) {
        int status = http("POST", "/rest/v1/rpc/get_broker_values_for_context", req);
        double t = now_s();
        if (status != 200)
            die("get_broker_values_for_context answered %d: %.300s", status, body);
        if (count_in(body, want) == (size_t)n)
            return t - t0;
        if (t - t0 > GIVE_UP_S)
            die("the engine did not answer %s within %.0f s: %.300s", want, GIVE_UP_S, body);
        usleep(POLL_US);
    }
}

/* --- strata_broker_apply_lag_seconds --------------------------------------- */

#define MAX_LE 32
typedef struct histo {
    int n;                 /* buckets, +Inf last; 0 = the metric is absent */
    double le[MAX_LE];
    double cum[MAX_LE];
    double sum, count;
} histo;

/* The feed counts a transaction once it has gone idle after applying it
 * (it cannot know sooner that no notification of it is still coming): the
 * "after" figures are read SETTLE_US after the last answer. */
#define SETTLE_US 100000

static histo scrape(int settle)
{
    histo h = {0};
    if (settle)
        usleep(SETTLE_US);
    if (http("GET", "/metrics", NULL) != 200)
        die("GET /metrics answered %.300s", body);
    const char *p = body;
    const char *key = "strata_broker_apply_lag_seconds_";
    while ((p = strstr(p, key))) {
        p += strlen(key);
        if (strncmp(p, "bucket{le=\"", 11) == 0 && h.n < MAX_LE) {
            h.le[h.n] = strncmp(p + 11, "+Inf", 4) == 0 ? 1e30 : strtod(p + 11, NULL);
            h.cum[h.n++] = strtod(strchr(p, '}') + 1, NULL);
        } else if (strncmp(p, "sum ", 4) == 0) {
            h.sum = strtod(p + 4, NULL);
        } else if (strncmp(p, "count ", 6) == 0) {
            h.count = strtod(p + 6, NULL);
        }
    }
    return h;
}

/* The upper bound of the bucket holding quantile q of what after - before counted. */
static const char *bucket_of(const histo *b, const histo *a, double q, char *out, size_t len)
{
    double total = a->count - b->count;
    for (int i = 0; i < a->n; i++) {
        if (a->cum[i] - b->cum[i] >= q * total) {
            if (a->le[i] > 1e29)
                snprintf(out, len, "> %g ms", a->le[i - 1] * 1e3);
            else
                snprintf(out, len, "<= %g ms", a->le[i] * 1e3);
            return out;
        }
    }
    return "?";
}

static void print_histo(const histo *b, const histo *a)
{
    if (a->n == 0) {
        printf("    strata_broker_apply_lag_seconds: absent from /metrics\n");
        return;
    }
    double n = a->count - b->count;
    char p50[32], p99[32];
    printf("    strata_broker_apply_lag_seconds: %.0f transactions, mean %.1f ms, p50 %s, p99 %s\n", n,
           n > 0 ? (a->sum - b->sum) / n * 1e3 : 0.0, bucket_of(b, a, 0.5, p50, sizeof p50),
           bucket_of(b, a, 0.99, p99, sizeof p99));
}

/* --- the shapes ------------------------------------------------------------ */

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double quantile(const double *sorted, int n, double q)
{
    int i = (int)(q * (n - 1) + 0.5);
    return sorted[i];
}

static long next_mark = 1;

/* Returns the p99 (seconds). */
static double single_rows(int count)
{
    static const int probe[] = {0};
    double *lag = malloc((size_t)count * sizeof *lag);
    if (!lag)
        die("out of memory");
    histo before = scrape(0);
    for (int i = 0; i < count; i++) {
        char value[48];
        long mark = next_mark++;
        snprintf(value, sizeof value, "\"lagmark-%ld\"", mark);
        const char *params[] = {value, org, brokers[0]};
        sql_ok("update public.broker_values set value = $1::jsonb where organization_id = $2 and broker_id = $3", 3,
               params);
        lag[i] = await_mark(probe, 1, mark, now_s());
    }
    histo after = scrape(1);
    qsort(lag, (size_t)count, sizeof *lag, cmp_double);
    double p99 = quantile(lag, count, 0.99);
    printf("  single-row commits (%d): p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", count,
           quantile(lag, count, 0.5) * 1e3, p99 * 1e3, lag[count - 1] * 1e3);
    print_histo(&before, &after);
    free(lag);
    return p99;
}

static const char UPSERT_ONE[] =
    "insert into public.broker_values(broker_id, organization_id, value) values ($1, $2, $3::jsonb) "
    "on conflict on constraint broker_values_unique_per_scope do update set value = excluded.value";
static const char UPSERT_HALF[] =
    "insert into public.broker_values(broker_id, organization_id, value) "
    "select b.id, $1, $2::jsonb from unnest($3::uuid[]) b(id) "
    "on conflict on constraint broker_values_unique_per_scope do update set value = excluded.value";

/* A uuid[] literal of brokers[from .. to]. */
static char *id_array(int from, int to)
{
    char *a = malloc((size_t)(to - from + 1) * 37 + 3), *p = a;
    if (!a)
        die("out of memory");
    *p++ = '{';
    for (int i = from; i <= to; i++)
        p += sprintf(p, "%s%s", i > from ? "," : "", brokers[i]);
    strcpy(p, "}");
    return a;
}

/* One 12,000-row transaction per round; returns the worst round (seconds). */
static double big_transactions(int rounds, int per_row)
{
    static const int probe[] = {1, ROWS / 2, ROWS / 2 + 1, ROWS};
    char *halves[2] = {id_array(1, ROWS / 2), id_array(ROWS / 2 + 1, ROWS)};
    double worst = 0;
    histo before = scrape(0);
    printf("  one transaction of %d rows in %s:", ROWS, per_row ? "12,000 statements" : "two statements");
    for (int r = 0; r < rounds; r++) {
        char value[48];
        long mark = next_mark++;
        snprintf(value, sizeof value, "\"lagmark-%ld\"", mark);
        sql_ok("begin", 0, NULL);
        if (per_row) {
            for (int i = 1; i <= ROWS; i++) {
                const char *params[] = {brokers[i], org, value};
                sql_ok(UPSERT_ONE, 3, params);
            }
        } else {
            for (int h = 0; h < 2; h++) {
                const char *params[] = {org, value, halves[h]};
                sql_ok(UPSERT_HALF, 3, params);
            }
        }
        sql_ok("commit", 0, NULL);
        double lag = await_mark(probe, 4, mark, now_s());
        printf(" %.0f ms", lag * 1e3);
        fflush(stdout);
        if (lag > worst)
            worst = lag;
    }
    printf(" (worst %.0f ms)\n", worst * 1e3);
    histo after = scrape(1);
    print_histo(&before, &after);
    free(halves[0]);
    free(halves[1]);
    return worst;
}

/* --- fixture --------------------------------------------------------------- */

static void fixture(void)
{
    PGresult *r = sql("insert into public.organizations(name, slug) values ('lagbench', 'lagbench-' || gen_random_uuid()) "
                      "returning id",
                      0, NULL, PGRES_TUPLES_OK);
    snprintf(org, sizeof org, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    const char *params[] = {org};
    r = sql("insert into public.data_broker(name) select 'lagbench-' || $1 || '-' || g "
            "from generate_series(0, 12000) g order by g returning id",
            1, params, PGRES_TUPLES_OK);
    if (PQntuples(r) != ROWS + 1)
        die("fixture: %d brokers", PQntuples(r));
    for (int i = 0; i <= ROWS; i++)
        snprintf(brokers[i], sizeof brokers[i], "%s", PQgetvalue(r, i, 0));
    PQclear(r);
    const char *v[] = {brokers[0], org};
    sql_ok("insert into public.broker_values(broker_id, organization_id, value) values ($1, $2, '\"lagmark-0\"')", 2, v);
    static const int probe[] = {0};
    await_mark(probe, 1, 0, now_s()); /* the engine holds the fixture */
}

static void drop_fixture(void)
{
    const char *params[] = {org};
    sql_ok("delete from public.data_broker where name like 'lagbench-' || $1 || '-%'", 1, params);
    sql_ok("delete from public.organizations where id = $1", 1, params);
}

int main(int argc, char **argv)
{
    if (argc != 6)
        die("usage: bench_broker_lag PORT TOKEN DATABASE_URL SINGLE ROUNDS");
    port = atoi(argv[1]);
    token = argv[2];
    int single = atoi(argv[4]), rounds = atoi(argv[5]);
    if (single < 1 || rounds < 1)
        die("SINGLE and ROUNDS must be at least 1");
    db = PQconnectdb(argv[3]);
    if (PQstatus(db) != CONNECTION_OK)
        die("cannot connect to the database: %s", PQerrorMessage(db));
    http_connect();
    fixture();
    double p99 = single_rows(single);
    double two = big_transactions(rounds, 0);
    double each = big_transactions(rounds, 1);
    drop_fixture();
    printf("  goals: single-row p99 < 50 ms %s; 12,000 rows < 200 ms: two statements %s, 12,000 statements %s\n",
           p99 < 0.05 ? "met" : "MISSED", two < 0.2 ? "met" : "MISSED", each < 0.2 ? "met" : "MISSED");
    free(body);
    close(http_fd);
    PQfinish(db);
    return 0;
}
