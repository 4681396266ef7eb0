/* serve.h - fs serve: an OpenAI-compatible HTTP server on one engine, many
 * clients at once.
 *
 *   clients --HTTP--> network thread --jobs--> scheduler thread --> engine
 *           <--bytes-- (poll, parse,  <--SSE--  (slots, one batched
 *                       route, write)            forward step at a time)
 *
 * The network thread (src/serve.c, the caller's thread) owns the sockets:
 * it never blocks on one client - every socket is non-blocking and one
 * poll() watches them all - parses requests (http.h), answers what needs
 * no model at once (/health, /v1/models, the chat page, errors) and turns
 * a generation request into a job for the scheduler.
 *
 * The scheduler thread (src/serve_sched.c) owns the engine and its
 * --parallel slots, one fs_seq (KV cache + sampler) each. It puts waiting
 * jobs into free slots - the slot whose cache shares the longest prefix
 * with the prompt, so a chat's next turn reuses its conversation - and
 * runs fs_engine_step over all the busy slots: one forward pass carries
 * one new token of every decoding request and a chunk of every new
 * prompt (continuous batching). What each step produces goes back to the
 * job's output buffer as server-sent events, and the network thread
 * sends it.
 *
 * Endpoints: POST /v1/chat/completions, POST /v1/completions (serve_api.h
 * for the fields), GET /v1/models, GET /health, GET / (the chat page,
 * src/serve_page.html, embedded in the binary at build time).
 *
 * Docs: docs/serve.md
 */
#ifndef FS_SERVE_H
#define FS_SERVE_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>

#include "engine.h"

typedef struct fs_serve_opts {
    const char *host;         /* address to bind (NULL: 127.0.0.1) */
    int port;                 /* 0: any free port (the ready callback says which) */
    int parallel;             /* slots: requests generating at once (<= FS_MAX_SEQS) */
    int n_ctx;                /* each slot's context, tokens (0: the engine's) */
    int queue;                /* requests waiting for a slot at most; beyond: 503 (0: 64) */
    size_t max_body;          /* request body limit, bytes; beyond: 413 (0: 8 MiB) */
    int step_tokens;          /* tokens one forward step carries at most (0: 256) */
    const char *api_key;      /* NULL: none; else "Authorization: Bearer KEY" on /v1/ */
    const char *model_name;   /* the model's id in the API (NULL: the directory's name) */
    const fs_sampling *sampling; /* the server's defaults over the model's (NULL: the model's) */
    int default_max_tokens;   /* a request without max_tokens: -1 (or 0 in a zeroed struct
                                 left so): until the context is full */
    const char *const *default_stops; /* a request without stop: these (may be NULL) */
    int n_default_stops;
    volatile sig_atomic_t *stop; /* set (by SIGINT/SIGTERM) to stop: no new connections,
                                    running streams end with a final event */
    FILE *log;                /* one line per request (NULL: quiet) */
    void (*on_ready)(void *user, const char *url); /* listening now */
    void *user;
} fs_serve_opts;

/* Serve until *o->stop is set. Returns 0 after a clean stop, -1 with e
 * filled when it could not start (the address is taken, out of memory). */
int fs_serve(fs_engine *g, const fs_serve_opts *o, fs_err *e);

#endif
