/* crypt_pool.c: the bcrypt threads (crypt_pool.h).  One mutex-guarded
 * FIFO of jobs; each thread keeps its own struct crypt_data (about 32 KB,
 * crypt_r's scratch space). */
#include "crypt_pool.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct crypt_pool {
    pthread_mutex_t lock;
    pthread_cond_t work;      /* a job was queued, or stopping */
    pthread_cond_t idle;      /* queue empty and nothing running */
    crypt_job *head, *tail;   /* queued jobs, oldest first */
    int running;              /* jobs being computed */
    int stopping;
    int nthreads;
    pthread_t threads[64];
};

int crypt_job_set(crypt_job *job, int verify, const char *password, size_t len, const char *hash, int cost)
{
    memset(job, 0, offsetof(crypt_job, done));
    job->verify = verify;
    if (len > CRYPT_MAX_PASSWORD || memchr(password, 0, len))
        return CRYPT_TOO_LONG;
    memcpy(job->password, password, len);
    job->password[len] = 0;
    if (verify) {
        size_t hl = strlen(hash);
        if (hl >= sizeof job->hash)
            return CRYPT_BAD_HASH;
        memcpy(job->hash, hash, hl + 1);
    }
    job->cost = cost < CRYPT_MIN_COST ? CRYPT_MIN_COST : cost > CRYPT_MAX_COST ? CRYPT_MAX_COST : cost;
    return 0;
}

/* bcrypt only: libxcrypt reads many other schemes ("$1$", DES), which a
 * password column must never accept. */
static int is_bcrypt(const char *h)
{
    return strlen(h) == 60 && h[0] == '$' && h[1] == '2' && (h[2] == 'a' || h[2] == 'b' || h[2] == 'y') &&
           h[3] == '$';
}

static int compute(crypt_job *job, struct crypt_data *cd)
{
    memset(cd, 0, sizeof *cd);
    if (job->verify) {
        if (!is_bcrypt(job->hash))
            return CRYPT_BAD_HASH;
        const char *h = crypt_r(job->password, job->hash, cd);
        if (!h || h[0] == '*')
            return CRYPT_BAD_HASH;
        size_t n = strlen(h);
        return n == strlen(job->hash) && CRYPTO_memcmp(h, job->hash, n) == 0 ? CRYPT_OK : CRYPT_MISMATCH;
    }
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    if (!crypt_gensalt_rn("$2b$", (unsigned long)job->cost, NULL, 0, salt, sizeof salt))
        return CRYPT_FAILED;
    const char *h = crypt_r(job->password, salt, cd);
    if (!h || h[0] == '*' || strlen(h) >= sizeof job->out)
        return CRYPT_FAILED;
    strcpy(job->out, h);
    return CRYPT_OK;
}

int crypt_run_now(crypt_job *job)
{
    struct crypt_data *cd = malloc(sizeof *cd);
    if (!cd)
        return job->rc = CRYPT_FAILED;
    job->rc = compute(job, cd);
    OPENSSL_cleanse(cd, sizeof *cd);
    free(cd);
    OPENSSL_cleanse(job->password, sizeof job->password);
    return job->rc;
}

static void *thread_main(void *arg)
{
    crypt_pool *p = arg;
    struct crypt_data *cd = malloc(sizeof *cd);
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->head && !p->stopping)
            pthread_cond_wait(&p->work, &p->lock);
        if (!p->head)
            break; /* stopping, and nothing left */
        crypt_job *job = p->head;
        p->head = job->next;
        if (!p->head)
            p->tail = NULL;
        p->running++;
        pthread_mutex_unlock(&p->lock);
        job->rc = cd ? compute(job, cd) : CRYPT_FAILED;
        OPENSSL_cleanse(job->password, sizeof job->password);
        job->post(job->owner, job); /* the job is the owner's from here */
        pthread_mutex_lock(&p->lock);
        if (--p->running == 0 && !p->head)
            pthread_cond_broadcast(&p->idle);
    }
    pthread_mutex_unlock(&p->lock);
    if (cd) {
        OPENSSL_cleanse(cd, sizeof *cd);
        free(cd);
    }
    return NULL;
}

crypt_pool *crypt_pool_new(int nthreads, char *err, size_t errlen)
{
    if (nthreads < 1 || nthreads > 64) {
        snprintf(err, errlen, "crypt pool: %d threads (1..64)", nthreads);
        return NULL;
    }
    crypt_pool *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "crypt pool: out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->idle, NULL);
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&p->threads[i], NULL, thread_main, p) != 0) {
            snprintf(err, errlen, "crypt pool: cannot start a thread");
            crypt_pool_free(p);
            return NULL;
        }
        p->nthreads++;
    }
    return p;
}

int crypt_pool_submit(const crypt_client *client, crypt_job *job)
{
    crypt_pool *p = client->pool;
    if (!p)
        return -1;
    job->post = client->post;
    job->owner = client->owner;
    job->next = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->stopping) {
        pthread_mutex_unlock(&p->lock);
        return -1;
    }
    if (p->tail)
        p->tail->next = job;
    else
        p->head = job;
    p->tail = job;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

void crypt_pool_drain(crypt_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    while (p->head || p->running)
        pthread_cond_wait(&p->idle, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

void crypt_pool_free(crypt_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->idle);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
