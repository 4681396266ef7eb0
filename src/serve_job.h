/* serve_job.h - what the two threads of fs serve share (private to
 * src/serve.c and src/serve_sched.c; see serve.h for the picture).
 *
 * A job is one generation request. The network thread makes it (the
 * request parsed, the prompt tokenized, the sampling settings checked)
 * and queues it; the scheduler runs it in a slot and appends the
 * response's bytes to job->out; the network thread sends them. Both hold
 * a reference; the last to let go frees it. Everything a job shares is
 * guarded by the server's one mutex (fs_srv.mu): two threads, short
 * critical sections, so one lock is simplest and costs nothing.
 *
 * Memory: a job's buffers are allocated when it is made - the output
 * buffer at a fixed size (out_cap), the log-probabilities for its whole
 * reply when it is not streamed - so the decode loop appends without
 * allocating. A streamed job whose client reads slower than it generates
 * fills its buffer; its slot then sits out the steps (backpressure) until
 * the network thread has sent enough, and the others go on.
 *
 * Docs: docs/serve.md
 */
#ifndef FS_SERVE_JOB_H
#define FS_SERVE_JOB_H

#include <pthread.h>

#include "http.h"
#include "serve.h"
#include "serve_api.h"

typedef struct fs_job {
    int refs;                   /* 2 while both threads hold it */
    fs_api_request req;
    int *ids;                   /* [n_ids] the prompt */
    int n_ids;
    int max_new;                /* tokens to generate at most */
    int vocab;                  /* V: the logits' length */
    fs_sampler_params sp;
    int minor;                  /* the connection's HTTP/1.minor (chunked framing) */
    int keep_alive;             /* the connection stays open after the response */
    char id[48];                /* "chatcmpl-..." / "cmpl-..." */
    long long created;          /* unix seconds */
    double t_queued, t_first;   /* made; its first token sampled */

    /* the response: bytes for the socket (guarded by mu) */
    char *out;
    size_t n_out, out_cap;
    size_t event_bound;         /* the most one step can append */
    int done;                   /* the scheduler wrote the last byte */
    int gone;                   /* the client went away: drop it at the next step */

    /* the scheduler's own */
    int slot;
    int stepped;                /* it was in a step: its prompt has begun */
    fs_think_split think;
    fs_str reasoning, content;  /* this step's text (streamed), or the whole reply */
    fs_api_logprob *lps;        /* this step's tokens (streamed), or the whole reply's */
    int n_lps, cap_lps;
    int *tok_ids;               /* this step's sampled ids (streamed), or the whole reply's */
    int n_tok_ids, cap_tok_ids;
    size_t text_offset;         /* completions' logprobs.text_offset */
    fs_str ev;                  /* an event being built */
    fs_str frame;               /* bytes framed for the socket, before they are handed over */
} fs_job;

/* A slot: one sequence (KV cache + sampler) and the job it runs. */
typedef struct fs_slot {
    fs_seq *q;
    fs_job *job;                /* NULL: free */
    double last_used;           /* for the least recently used among equal prefixes */
} fs_slot;

typedef struct fs_srv {
    fs_engine *g;
    const fs_serve_opts *o;
    const char *model_name;
    int n_ctx;
    fs_slot *slots;             /* [o->parallel] */

    pthread_mutex_t mu;
    pthread_cond_t wake_sched;  /* a job was queued, cancelled or drained, or stop */
    int wake_fd[2];             /* the scheduler wakes poll() by writing a byte */
    int wake_pending;           /* a byte is in the pipe (no need for another) */

    fs_job **queue;             /* [o->queue] FIFO of jobs waiting for a slot */
    int n_queue, queue_cap;
    int busy;                   /* slots generating (for /health) */
    int quit;                   /* the scheduler ends its jobs and returns */
    long long served;           /* requests completed */
} fs_srv;

/* The scheduler thread's body (arg: fs_srv *). */
void *fs_sched_main(void *arg);

/* Let go of a job (srv->mu held); the last reference frees it. */
void fs_job_release(fs_job *j);

/* Wake the network thread (srv->mu held). */
void fs_srv_wake(fs_srv *s);

#endif
