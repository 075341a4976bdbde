/* warnings.c: see warnings.h.  A few dozen entries at most, changed when a
 * configuration row changes: a mutex and linear scans are plenty. */
#include "warnings.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct entry {
    char source[48];
    char key[128];
    char message[512];
} entry;

/* Per source: warnings raised or changed since start. */
typedef struct source_count {
    char source[48];
    uint64_t raised;
} source_count;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static entry held[WARNINGS_MAX];
static int nheld;
static source_count counts[WARNINGS_MAX];
static int ncounts;

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* The entry of (source, key), or -1.  Under mu. */
static int find(const char *source, const char *key)
{
    for (int i = 0; i < nheld; i++)
        if (strncmp(held[i].source, source, sizeof held[i].source - 1) == 0 &&
            strncmp(held[i].key, key, sizeof held[i].key - 1) == 0)
            return i;
    return -1;
}

/* Counts one raise for source (sources beyond WARNINGS_MAX go uncounted).  Under mu. */
static void count(const char *source)
{
    for (int i = 0; i < ncounts; i++)
        if (strncmp(counts[i].source, source, sizeof counts[i].source - 1) == 0) {
            counts[i].raised++;
            return;
        }
    if (ncounts == WARNINGS_MAX)
        return;
    copy(counts[ncounts].source, sizeof counts[ncounts].source, source);
    counts[ncounts++].raised = 1;
}

int warnings_set(const char *source, const char *key, const char *message)
{
    pthread_mutex_lock(&mu);
    int rc = 1, i = find(source, key);
    if (i >= 0 && strncmp(held[i].message, message, sizeof held[i].message - 1) == 0) {
        rc = 0;
    } else if (i < 0 && nheld == WARNINGS_MAX) {
        count(source);
        rc = -1;
    } else {
        if (i < 0) {
            i = nheld++;
            copy(held[i].source, sizeof held[i].source, source);
            copy(held[i].key, sizeof held[i].key, key);
        }
        copy(held[i].message, sizeof held[i].message, message);
        count(source);
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

int warnings_clear(const char *source, const char *key)
{
    pthread_mutex_lock(&mu);
    int i = find(source, key);
    if (i >= 0)
        held[i] = held[--nheld];
    pthread_mutex_unlock(&mu);
    return i >= 0;
}

int warnings_keys(const char *source, char (*keys)[128], int max)
{
    pthread_mutex_lock(&mu);
    int n = 0;
    for (int i = 0; i < nheld; i++)
        if (strncmp(held[i].source, source, sizeof held[i].source - 1) == 0) {
            if (n < max)
                copy(keys[n], sizeof keys[n], held[i].key);
            n++;
        }
    pthread_mutex_unlock(&mu);
    return n;
}

int warnings_render_json(buf *out)
{
    pthread_mutex_lock(&mu);
    int rc = buf_add_str(out, "[");
    for (int i = 0; i < nheld; i++) {
        const entry *e = &held[i];
        rc |= buf_add_str(out, i ? ",{\"source\":\"" : "{\"source\":\"");
        rc |= buf_add_json_escaped(out, e->source, strlen(e->source));
        rc |= buf_add_str(out, "\",\"key\":\"");
        rc |= buf_add_json_escaped(out, e->key, strlen(e->key));
        rc |= buf_add_str(out, "\",\"message\":\"");
        rc |= buf_add_json_escaped(out, e->message, strlen(e->message));
        rc |= buf_add_str(out, "\"}");
    }
    rc |= buf_add_str(out, "]");
    pthread_mutex_unlock(&mu);
    return rc ? -1 : 0;
}

/* Source names are the Lua modules' own constants, but a label value must
 * stay a label value whatever it holds. */
static int add_label(buf *out, const char *family, const char *source, uint64_t v)
{
    int rc = buf_add_str(out, family);
    rc |= buf_add_str(out, "{source=\"");
    for (const char *p = source; *p; p++) {
        char c = (*p == '"' || *p == '\\' || *p == '\n') ? '_' : *p;
        rc |= buf_add(out, &c, 1);
    }
    rc |= buf_add_str(out, "\"} ");
    rc |= buf_add_u64(out, v);
    rc |= buf_add_str(out, "\n");
    return rc;
}

int warnings_render_metrics(buf *out)
{
    pthread_mutex_lock(&mu);
    int rc = buf_add_str(out, "# HELP strata_config_invalid_total Configuration rows found invalid (raised or changed warnings).\n"
                              "# TYPE strata_config_invalid_total counter\n");
    for (int i = 0; i < ncounts; i++)
        rc |= add_label(out, "strata_config_invalid_total", counts[i].source, counts[i].raised);
    rc |= buf_add_str(out, "# HELP strata_config_warnings Warnings held now (GET /ready lists them).\n"
                           "# TYPE strata_config_warnings gauge\n");
    for (int i = 0; i < ncounts; i++) {
        uint64_t n = 0;
        for (int j = 0; j < nheld; j++)
            n += strncmp(held[j].source, counts[i].source, sizeof held[j].source - 1) == 0;
        rc |= add_label(out, "strata_config_warnings", counts[i].source, n);
    }
    pthread_mutex_unlock(&mu);
    return rc ? -1 : 0;
}
