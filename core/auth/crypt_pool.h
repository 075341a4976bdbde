/* crypt_pool.h: bcrypt off the event loops.  A few threads compute
 * password hashes with libxcrypt (crypt_r, crypt_gensalt_rn: bcrypt
 * "$2b$", and "$2a$"/"$2b$"/"$2y$" hashes verified as stored) and hand
 * each finished job back to the thread that submitted it through the
 * submitter's post function (a worker's worker_post), so a request's
 * coroutine resumes on its own worker.  No Lua, no HTTP, no event loop.
 *
 * Passwords longer than CRYPT_MAX_PASSWORD bytes are refused
 * (CRYPT_TOO_LONG), never truncated as bcrypt would silently do. */
#ifndef STRATA_CRYPT_POOL_H
#define STRATA_CRYPT_POOL_H

#include <pthread.h>
#include <stddef.h>

#define CRYPT_MAX_PASSWORD 72   /* bcrypt reads at most 72 bytes */
#define CRYPT_MAX_HASH 128      /* longest hash kept (bcrypt's are 60) */
#define CRYPT_MIN_COST 4        /* bcrypt's own bounds on the cost */
#define CRYPT_MAX_COST 31

/* Results of a job (crypt_job.rc). */
enum {
    CRYPT_OK = 0,          /* hash: out holds the hash; verify: the password matches */
    CRYPT_MISMATCH = 1,    /* verify: it does not */
    CRYPT_TOO_LONG = -1,   /* password over CRYPT_MAX_PASSWORD bytes (refused at submit) */
    CRYPT_BAD_HASH = -2,   /* verify: the stored hash is no bcrypt hash libxcrypt reads */
    CRYPT_FAILED = -3      /* libxcrypt failed (no entropy, no memory) */
};

typedef struct crypt_job crypt_job;
typedef struct crypt_pool crypt_pool;

/* How a finished job goes home: called on a pool thread, it must make
 * job->done(job) run on the owner's thread. */
typedef void (*crypt_post_fn)(void *owner, crypt_job *job);

/* One hash or verification.  The submitter owns it (it must live until
 * done runs); the pool only reads the inputs and writes rc and out. */
struct crypt_job {
    int verify;                              /* 0: hash password; 1: compare with hash */
    char password[CRYPT_MAX_PASSWORD + 1];   /* NUL-terminated (NUL bytes are refused at submit) */
    char hash[CRYPT_MAX_HASH];               /* verify: the stored hash */
    int cost;                                /* hash: bcrypt's log2 rounds */
    int rc;                                  /* CRYPT_*, set before done runs */
    char out[CRYPT_MAX_HASH];                /* hash: the new hash */
    void (*done)(crypt_job *job);            /* runs on the owner's thread */
    void *arg;                               /* the submitter's */
    crypt_post_fn post;                      /* set by crypt_pool_submit */
    void *owner;
    crypt_job *next;                         /* the pool's queue */
};

/* What a submitter hands the pool with each job: the pool and how jobs
 * come home to it. */
typedef struct crypt_client {
    crypt_pool *pool;
    crypt_post_fn post;
    void *owner;
} crypt_client;

/* Starts nthreads (1..64) threads.  NULL and err. */
crypt_pool *crypt_pool_new(int nthreads, char *err, size_t errlen);

/* Fills job's inputs: 0, or CRYPT_TOO_LONG when the password is over
 * CRYPT_MAX_PASSWORD bytes or holds a NUL, CRYPT_BAD_HASH when the hash
 * is too long to be one. */
int crypt_job_set(crypt_job *job, int verify, const char *password, size_t len, const char *hash, int cost);

/* Queues job for client->pool; done(job) later runs on the owner's
 * thread.  0, or -1 when the pool is stopping (done will not run). */
int crypt_pool_submit(const crypt_client *client, crypt_job *job);

/* Waits until no job is queued or running (their posts are made). */
void crypt_pool_drain(crypt_pool *p);

/* Stops the threads after the queued jobs and frees the pool; NULL is a
 * no-op. */
void crypt_pool_free(crypt_pool *p);

/* Computes a job set by crypt_job_set on the calling thread (for tests
 * and tools): its rc, also stored in job->rc. */
int crypt_run_now(crypt_job *job);

#endif
