/* scripts.h: a snapshot of every *.lua file under the Lua directory, read
 * into memory at once.  Each Lua state is built from a snapshot, never from
 * the disk directly, so all workers run the same code even while files are
 * being written, and a previous snapshot can be returned to (rollback).
 * Snapshots are immutable and reference-counted; any thread may hold one. */
#ifndef STRATA_SCRIPTS_H
#define STRATA_SCRIPTS_H

#include <stdatomic.h>
#include <stddef.h>

typedef struct script_file {
    char *path;     /* owned; relative to the Lua directory, e.g. "routes/hello.lua" */
    char *text;     /* owned; the file's bytes, NUL-terminated */
    size_t len;     /* bytes in text, without the NUL */
    char hash[17];  /* first 16 hex digits of the SHA-256 of text */
} script_file;

typedef struct scripts {
    atomic_int refs;      /* the snapshot is freed when it drops to 0 */
    long generation;      /* set by whoever publishes it; 0 until then */
    char *root;           /* owned; the directory read, for chunk names */
    size_t count;
    script_file *files;   /* owned; sorted by path */
} scripts;

/* Reads every *.lua file under dir (recursively).  Returns a snapshot with
 * one reference, or NULL with a message naming the file in err. */
scripts *scripts_read(const char *dir, char *err, size_t errlen);

scripts *scripts_ref(scripts *s);
void scripts_unref(scripts *s); /* NULL is a no-op */

/* The file at `path` (relative), or NULL. */
const script_file *scripts_find(const scripts *s, const char *path);

#endif
