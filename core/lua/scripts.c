/* scripts.c: in-memory snapshots of the Lua directory (see scripts.h).
 * Uses libc and OpenSSL's SHA-256 for the content hashes that the reload
 * history records. */
#include "scripts.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct collect {
    script_file *files;
    size_t count, cap;
    char *err;
    size_t errlen;
} collect;

static int read_whole(const char *full, script_file *f, char *err, size_t errlen)
{
    FILE *fp = fopen(full, "rb");
    if (!fp) {
        snprintf(err, errlen, "cannot open %s: %s", full, strerror(errno));
        return -1;
    }
    int rc = -1;
    if (fseek(fp, 0, SEEK_END) == 0) {
        long n = ftell(fp);
        if (n >= 0 && fseek(fp, 0, SEEK_SET) == 0 && (f->text = malloc((size_t)n + 1))) {
            f->len = fread(f->text, 1, (size_t)n, fp);
            f->text[f->len] = '\0';
            rc = ferror(fp) ? -1 : 0;
        }
    }
    if (rc < 0)
        snprintf(err, errlen, "cannot read %s", full);
    fclose(fp);
    return rc;
}

static void hash_text(script_file *f)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    static const char hex[] = "0123456789abcdef";
    if (!EVP_Digest(f->text, f->len, md, &mdlen, EVP_sha256(), NULL) || mdlen < 8) {
        strcpy(f->hash, "0000000000000000");
        return;
    }
    for (int i = 0; i < 8; i++) {
        f->hash[2 * i] = hex[md[i] >> 4];
        f->hash[2 * i + 1] = hex[md[i] & 15];
    }
    f->hash[16] = '\0';
}

static int add_file(collect *c, const char *full, const char *rel)
{
    if (c->count == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 32;
        script_file *p = realloc(c->files, cap * sizeof *p);
        if (!p) {
            snprintf(c->err, c->errlen, "out of memory reading %s", full);
            return -1;
        }
        c->files = p;
        c->cap = cap;
    }
    script_file *f = &c->files[c->count];
    memset(f, 0, sizeof *f);
    if (!(f->path = strdup(rel))) {
        snprintf(c->err, c->errlen, "out of memory reading %s", full);
        return -1;
    }
    c->count++; /* counted before reading, so cleanup frees the path */
    if (read_whole(full, f, c->err, c->errlen) < 0)
        return -1;
    hash_text(f);
    return 0;
}

static int ends_with_lua(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && strcmp(name + n - 4, ".lua") == 0;
}

/* a + "/" + b into out (just b when a is empty); -1 when it does not fit. */
static int join(char *out, size_t size, const char *a, const char *b)
{
    int n = snprintf(out, size, "%s%s%s", a, *a ? "/" : "", b);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* Walks dir/rel recursively; hidden entries (editors' swap files) skipped. */
static int walk(collect *c, const char *root, const char *rel)
{
    char dirpath[4096];
    if (join(dirpath, sizeof dirpath, root, rel) < 0) {
        snprintf(c->err, c->errlen, "path too long under %s", root);
        return -1;
    }
    DIR *d = opendir(dirpath);
    if (!d) {
        snprintf(c->err, c->errlen, "cannot open directory %s: %s", dirpath, strerror(errno));
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char sub[2048], full[4096];
        if (join(sub, sizeof sub, rel, e->d_name) < 0 || join(full, sizeof full, root, sub) < 0) {
            snprintf(c->err, c->errlen, "path too long under %s", root);
            rc = -1;
            break;
        }
        struct stat st;
        if (stat(full, &st) < 0)
            continue; /* vanished while we looked: the next reload sees the new state */
        if (S_ISDIR(st.st_mode))
            rc = walk(c, root, sub);
        else if (S_ISREG(st.st_mode) && ends_with_lua(e->d_name))
            rc = add_file(c, full, sub);
    }
    closedir(d);
    return rc;
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const script_file *)a)->path, ((const script_file *)b)->path);
}

static void free_files(script_file *files, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(files[i].path);
        free(files[i].text);
    }
    free(files);
}

scripts *scripts_read(const char *dir, char *err, size_t errlen)
{
    collect c = {.err = err, .errlen = errlen};
    scripts *s = NULL;
    if (walk(&c, dir, "") < 0)
        goto err;
    if (!(s = calloc(1, sizeof *s)) || !(s->root = strdup(dir))) {
        snprintf(err, errlen, "out of memory reading %s", dir);
        goto err;
    }
    qsort(c.files, c.count, sizeof *c.files, by_path);
    s->files = c.files;
    s->count = c.count;
    atomic_init(&s->refs, 1);
    return s;
err:
    free_files(c.files, c.count);
    if (s)
        free(s->root);
    free(s);
    return NULL;
}

scripts *scripts_ref(scripts *s)
{
    atomic_fetch_add(&s->refs, 1);
    return s;
}

void scripts_unref(scripts *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    free_files(s->files, s->count);
    free(s->root);
    free(s);
}

const script_file *scripts_find(const scripts *s, const char *path)
{
    script_file key = {.path = (char *)path};
    return bsearch(&key, s->files, s->count, sizeof *s->files, by_path);
}
