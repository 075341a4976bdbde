/* test_crypt.c: core/auth/crypt_pool.c — bcrypt hashes and verifications
 * (OpenBSD's $2a$ test vector, $2b$ round trips), the 72-byte and NUL
 * refusals, non-bcrypt hashes refused, and many jobs through the threads,
 * each coming home exactly once through the submitter's post function. */
#include "auth/crypt_pool.h"

#include "test_harness.h"

#include <pthread.h>
#include <stdint.h>

static void set_or_fail(crypt_job *j, int verify, const char *pw, size_t n, const char *hash, int cost)
{
    memset(j, 0, sizeof *j);
    if (crypt_job_set(j, verify, pw, n, hash, cost) != 0)
        failf("crypt_job_set refused '%s'", pw);
}

static void known_vector(void)
{
    crypt_job j;
    /* From OpenBSD's bcrypt tests (also in Openwall's crypt_blowfish). */
    set_or_fail(&j, 1, "U*U", 3, "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", 0);
    CHECK(crypt_run_now(&j) == CRYPT_OK, "the $2a$ vector does not verify: %d", j.rc);
    set_or_fail(&j, 1, "U*V", 3, "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", 0);
    CHECK(crypt_run_now(&j) == CRYPT_MISMATCH, "another password verifies: %d", j.rc);
}

static void round_trip(void)
{
    crypt_job j, v;
    set_or_fail(&j, 0, "correct horse", 13, NULL, 4);
    CHECK(crypt_run_now(&j) == CRYPT_OK, "hash failed: %d", j.rc);
    CHECK(strncmp(j.out, "$2b$04$", 7) == 0 && strlen(j.out) == 60, "hash '%s'", j.out);
    CHECK(j.password[0] == '\0', "the password was not wiped");
    set_or_fail(&v, 1, "correct horse", 13, j.out, 0);
    CHECK(crypt_run_now(&v) == CRYPT_OK, "own hash does not verify: %d", v.rc);
    crypt_job k;
    set_or_fail(&k, 0, "correct horse", 13, NULL, 4);
    crypt_run_now(&k);
    CHECK(strcmp(j.out, k.out) != 0, "two hashes share a salt");
}

static void refusals(void)
{
    crypt_job j;
    char long_pw[74];
    memset(long_pw, 'a', sizeof long_pw);
    CHECK(crypt_job_set(&j, 0, long_pw, 73, NULL, 4) == CRYPT_TOO_LONG, "73 bytes accepted");
    CHECK(crypt_job_set(&j, 0, long_pw, 72, NULL, 4) == 0, "72 bytes refused");
    CHECK(crypt_job_set(&j, 0, "a\0b", 3, NULL, 4) == CRYPT_TOO_LONG, "a NUL byte accepted");
    set_or_fail(&j, 1, "pw", 2, "$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0", 0); /* MD5-crypt */
    CHECK(crypt_run_now(&j) == CRYPT_BAD_HASH, "an MD5-crypt hash was accepted: %d", j.rc);
    set_or_fail(&j, 1, "pw", 2, "plaintext", 0);
    CHECK(crypt_run_now(&j) == CRYPT_BAD_HASH, "plain text was accepted: %d", j.rc);
}

/* The pool: 40 jobs on 3 threads, each posted home once. */
typedef struct home {
    pthread_mutex_t lock;
    int posted[40];
} home;

static void post(void *owner, crypt_job *job)
{
    home *hm = owner;
    pthread_mutex_lock(&hm->lock);
    hm->posted[(int)(intptr_t)job->arg]++;
    pthread_mutex_unlock(&hm->lock);
    job->done(job);
}

static void done(crypt_job *job)
{
    (void)job;
}

static void pool_runs_every_job_once(void)
{
    char err[128];
    home hm = {PTHREAD_MUTEX_INITIALIZER, {0}};
    crypt_pool *p = crypt_pool_new(3, err, sizeof err);
    CHECK(p, "crypt_pool_new: %s", err);
    crypt_client c = {p, post, &hm};
    static crypt_job jobs[40];
    for (int i = 0; i < 40; i++) {
        set_or_fail(&jobs[i], i % 2, "pw", 2, "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", 4);
        jobs[i].done = done;
        jobs[i].arg = (void *)(intptr_t)i;
        if (crypt_pool_submit(&c, &jobs[i]) != 0)
            failf("submit %d refused", i);
    }
    crypt_pool_drain(p);
    int once = 1;
    for (int i = 0; i < 40; i++)
        once &= hm.posted[i] == 1;
    crypt_pool_free(p);
    CHECK(once, "a job was posted other than once");
    for (int i = 0; i < 40; i++) {
        int want = i % 2 ? CRYPT_MISMATCH : CRYPT_OK;
        CHECK(jobs[i].rc == want, "job %d: rc %d, want %d", i, jobs[i].rc, want);
    }
    crypt_pool *q = crypt_pool_new(0, err, sizeof err);
    CHECK(!q, "a pool of 0 threads was made");
}

int main(void)
{
    static const struct {
        const char *name;
        void (*fn)(void);
    } CASES[] = {
        {"verifies OpenBSD's $2a$ test vector", known_vector},
        {"hashes $2b$ with a fresh salt and verifies its own hashes", round_trip},
        {"refuses over 72 bytes, NUL bytes and hashes that are not bcrypt", refusals},
        {"runs every job once on its threads and posts it home", pool_runs_every_job_once},
    };
    for (size_t i = 0; i < COUNT(CASES); i++) {
        case_name = CASES[i].name;
        CASES[i].fn();
        finish_case();
    }
    return report();
}
