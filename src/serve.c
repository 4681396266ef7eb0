/* serve.c - fs serve's network thread: sockets, HTTP, routing, and jobs
 * for the scheduler (see serve.h for the picture; serve_sched.c is the
 * other thread).
 *
 * One poll() loop watches the listening socket, a wake-up pipe (the
 * scheduler writes a byte when it has output) and every connection. All
 * sockets are non-blocking, so a client that sends its request one byte
 * a minute, or never reads its reply, holds only its own connection:
 *
 *   reading  bytes arrive -> the head parsed (http.h) -> the body awaited
 *            (Content-Length, at most max_body: else 413 at once)
 *            -> route: answered here, or a job queued for the scheduler
 *   writing  the connection's own bytes (responses made here), then its
 *            job's bytes as the scheduler hands them over
 *   timeouts a request must arrive whole within REQUEST_TIMEOUT_S of its
 *            first byte (408), an idle connection is closed after
 *            IDLE_TIMEOUT_S, one that takes no bytes for WRITE_TIMEOUT_S
 *            while a reply waits is closed (its job dropped)
 *
 * A client that disconnects mid-stream is seen here (poll's hang-up, or a
 * read of 0 bytes); its job is marked gone and the scheduler frees the
 * slot before its next step.
 *
 * Docs: docs/serve.md
 */
#include "serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "serve_job.h"

#define REQUEST_TIMEOUT_S 30.0
#define IDLE_TIMEOUT_S 120.0
#define WRITE_TIMEOUT_S 60.0
#define MAX_CONNS 512

/* The chat page, src/serve_page.html, embedded by the Makefile. */
extern const unsigned char fs_serve_page[];
extern const unsigned int fs_serve_page_len;

/* ---- jobs ---- */

void fs_job_release(fs_job *j) {
    if (--j->refs > 0) return;
    fs_api_request_free(&j->req);
    free(j->ids);
    free(j->out);
    free(j->lps);
    free(j->tok_ids);
    fs_str_free(&j->reasoning);
    fs_str_free(&j->content);
    fs_str_free(&j->ev);
    fs_str_free(&j->frame);
    free(j);
}

void fs_srv_wake(fs_srv *s) {
    if (s->wake_pending) return;
    s->wake_pending = 1;
    ssize_t w = write(s->wake_fd[1], "x", 1);
    (void)w; /* a full pipe already wakes poll() */
}

/* ---- connections ---- */

typedef struct conn {
    int fd;
    char *in;              /* received bytes: the request being read */
    size_t n_in, cap_in;
    fs_http_req req;
    int have_head;         /* req is parsed; the body is awaited */
    int sent_continue;
    fs_str out;            /* bytes made here (errors, /health, the page) */
    size_t out_off;
    fs_job *job;           /* the generation this connection waits for */
    int close_after;       /* close once out and the job's bytes are sent */
    double t_request;      /* first byte of the request being read (0: none yet) */
    double t_active;       /* last progress either way */
    double t_linger;       /* the reply is out and our side shut: reading what
                              the client still sends, so closing does not
                              reset the connection before it read the reply */
} conn;

static void conn_free(fs_srv *s, conn *c) {
    if (c->job) {
        pthread_mutex_lock(&s->mu);
        if (!c->job->done) {
            c->job->gone = 1;
            pthread_cond_signal(&s->wake_sched);
        }
        fs_job_release(c->job);
        pthread_mutex_unlock(&s->mu);
    }
    close(c->fd);
    free(c->in);
    fs_str_free(&c->out);
    free(c);
}

static const char CORS[] = "Access-Control-Allow-Origin: *\r\n";

/* A response made here, appended to c->out. */
static void reply(conn *c, int status, const char *type, const char *body, size_t len, const char *extra) {
    fs_str x = {0};
    fs_str_printf(&x, "%s%s", CORS, extra ? extra : "");
    fs_http_head(&c->out, status, c->req.minor ? c->req.minor : 1, type, (long long)len, !c->close_after, x.p);
    fs_str_add(&c->out, body, len);
    fs_str_free(&x);
}

static void reply_error(conn *c, int status, const char *msg, const char *type, const char *param, const char *code,
                        const char *extra) {
    fs_str b = {0};
    fs_api_error(&b, msg, type, param, code);
    reply(c, status, "application/json", b.p, b.n, extra);
    fs_str_free(&b);
}

/* An error before the request was whole: answered, then the connection
 * closes (what follows on it cannot be trusted to be a request). */
static void refuse(conn *c, int status, const char *msg) {
    c->close_after = 1;
    reply_error(c, status, msg, "invalid_request_error", NULL, NULL, NULL);
}

/* ---- endpoints ---- */

static void get_health(fs_srv *s, conn *c) {
    fs_str b = {0};
    pthread_mutex_lock(&s->mu);
    fs_str_printf(&b, "{\"status\": \"ok\", \"slots_idle\": %d, \"slots_processing\": %d, \"queued\": %d, "
                      "\"served\": %lld}",
                  s->o->parallel - s->busy, s->busy, s->n_queue, s->served);
    pthread_mutex_unlock(&s->mu);
    reply(c, 200, "application/json", b.p, b.n, NULL);
    fs_str_free(&b);
}

static void model_json(fs_srv *s, fs_str *b) {
    fs_str_puts(b, "{\"id\": ");
    fs_str_json(b, s->model_name, strlen(s->model_name));
    fs_str_printf(b, ", \"object\": \"model\", \"created\": 0, \"owned_by\": \"fs\", \"meta\": {\"n_ctx\": %d, "
                     "\"n_vocab\": %d, \"parallel\": %d}}",
                  s->n_ctx, fs_engine_model(s->g)->cfg.vocab, s->o->parallel);
}

static void get_models(fs_srv *s, conn *c, const char *id) {
    fs_str b = {0};
    if (id && strcmp(id, s->model_name)) {
        fs_str_printf(&b, "the model '%s' does not exist (this server has '%s')", id, s->model_name);
        reply_error(c, 404, b.p, "invalid_request_error", "model", "model_not_found", NULL);
    } else if (id) {
        model_json(s, &b);
        reply(c, 200, "application/json", b.p, b.n, NULL);
    } else {
        fs_str_puts(&b, "{\"object\": \"list\", \"data\": [");
        model_json(s, &b);
        fs_str_puts(&b, "]}");
        reply(c, 200, "application/json", b.p, b.n, NULL);
    }
    fs_str_free(&b);
}

/* Tokens the prompt of r becomes (chat: rendered with the template). */
static int prompt_ids(fs_srv *s, fs_api_request *r, int **ids, int *n, fs_err *e) {
    if (r->kind == FS_API_CHAT) return fs_engine_chat_prompt(s->g, r->msgs, r->n_msgs, r->think, ids, n, e);
    if (r->prompt_ids) {
        int V = fs_engine_model(s->g)->cfg.vocab;
        for (int i = 0; i < r->n_prompt_ids; i++)
            if (r->prompt_ids[i] >= V) return fs_errf(e, "prompt: token id %d is out of range (V = %d)", r->prompt_ids[i], V);
        *n = r->n_prompt_ids;
        *ids = fs_xmalloc((size_t)(*n > 0 ? *n : 1) * sizeof **ids);
        memcpy(*ids, r->prompt_ids, (size_t)*n * sizeof **ids);
        return 0;
    }
    /* a raw prompt gets the tokenizer's special tokens as fs generate's
     * (Llama 3's <|begin_of_text|>), as vLLM and HF do for completions */
    return fs_engine_encode_prompt(s->g, r->prompt, r->prompt_len, ids, n, e);
}

static uint64_t id_counter;

/* POST /v1/chat/completions and /v1/completions: a job, queued. */
static void post_generate(fs_srv *s, conn *c, fs_api_kind kind, const char *body, size_t len) {
    fs_job *j = fs_xcalloc(1, sizeof *j);
    fs_err e = {{0}};
    const char *param = NULL;
    char msg[FS_ERR_LEN + 128];
    if (fs_api_parse(&j->req, kind, body, len, &param, &e)) {
        reply_error(c, 400, e.msg, "invalid_request_error", param, NULL, NULL);
        goto fail;
    }
    if (prompt_ids(s, &j->req, &j->ids, &j->n_ids, &e)) {
        reply_error(c, 400, e.msg, "invalid_request_error", kind == FS_API_CHAT ? "messages" : "prompt", NULL, NULL);
        goto fail;
    }
    int room = kind == FS_API_CHAT ? 1 : 0;
    if (j->n_ids == 0) {
        reply_error(c, 400, "prompt: empty (Qwen3 has no BOS token: there is nothing to continue)",
                    "invalid_request_error", "prompt", NULL, NULL);
        goto fail;
    }
    if (j->n_ids > s->n_ctx - room) {
        snprintf(msg, sizeof msg,
                 "the prompt is %d tokens; this server's context is %d tokens per request (at most %d for the "
                 "prompt%s)", j->n_ids, s->n_ctx, s->n_ctx - room, room ? ", with room for a reply" : "");
        reply_error(c, 400, msg, "invalid_request_error", kind == FS_API_CHAT ? "messages" : "prompt",
                    "context_length_exceeded", NULL);
        goto fail;
    }
    /* the request's sampling fields over the server's defaults */
    fs_sampling smp = s->o->sampling ? *s->o->sampling : (fs_sampling){0};
    const fs_sampling *rq = &j->req.sampling;
    unsigned bits[] = {FS_SET_TEMPERATURE, FS_SET_TOP_K, FS_SET_TOP_P, FS_SET_MIN_P, FS_SET_REPETITION_PENALTY,
                       FS_SET_PRESENCE_PENALTY, FS_SET_SEED, FS_SET_FREQUENCY_PENALTY};
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++) {
        if (!(rq->set & bits[i])) continue;
        smp.set |= bits[i];
        switch (bits[i]) {
        case FS_SET_TEMPERATURE: smp.p.temperature = rq->p.temperature; break;
        case FS_SET_TOP_K: smp.p.top_k = rq->p.top_k; break;
        case FS_SET_TOP_P: smp.p.top_p = rq->p.top_p; break;
        case FS_SET_MIN_P: smp.p.min_p = rq->p.min_p; break;
        case FS_SET_REPETITION_PENALTY: smp.p.repetition_penalty = rq->p.repetition_penalty; break;
        case FS_SET_PRESENCE_PENALTY: smp.p.presence_penalty = rq->p.presence_penalty; break;
        case FS_SET_SEED: smp.p.seed = rq->p.seed; break;
        case FS_SET_FREQUENCY_PENALTY: smp.p.frequency_penalty = rq->p.frequency_penalty; break;
        }
    }
    if (fs_engine_sampler_params(s->g, &smp, &j->sp, &e)) {
        reply_error(c, 400, e.msg, "invalid_request_error", NULL, NULL, NULL);
        goto fail;
    }
    j->max_new = j->req.max_tokens >= 0 ? j->req.max_tokens : s->n_ctx - j->n_ids + 1;
    if (j->req.max_tokens < 0 && s->o->default_max_tokens > 0 && s->o->default_max_tokens < j->max_new)
        j->max_new = s->o->default_max_tokens;
    if (!j->req.n_stops && s->o->n_default_stops) {
        int n = s->o->n_default_stops < FS_API_MAX_STOPS ? s->o->n_default_stops : FS_API_MAX_STOPS;
        for (int i = 0; i < n; i++) j->req.stops[i] = s->o->default_stops[i];
        j->req.n_stops = n;
    }
    j->minor = c->req.minor;
    if (j->req.stream && j->minor == 0) c->close_after = 1; /* HTTP/1.0 has no chunks: the close ends the body */
    j->keep_alive = !c->close_after;
    j->vocab = fs_engine_model(s->g)->cfg.vocab;
    j->created = (long long)time(NULL);
    snprintf(j->id, sizeof j->id, "%s-%llx%06llx", kind == FS_API_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)j->created, (unsigned long long)++id_counter);
    j->t_queued = fs_now();

    /* Everything the decode loop writes is allocated now: one event's
     * worst case (every byte of a token escaped as \u00XX, the held-back
     * stop-string text released with it, the log-probabilities), the
     * output buffer a few events deep, the non-streamed reply's lists. */
    size_t tok = fs_tokenizer_max_token_bytes(fs_engine_tokenizer(s->g)), stops = 0;
    for (int i = 0; i < j->req.n_stops; i++) stops += strlen(j->req.stops[i]);
    size_t piece = FS_DETOK_MAX_OUT(tok) + stops;
    j->event_bound = 1024 + 6 * piece + (size_t)(1 + j->req.top_logprobs) * (160 + 10 * tok);
    j->out_cap = 4 * j->event_bound < 65536 ? 65536 : 4 * j->event_bound;
    j->out = fs_xmalloc(j->out_cap);
    fs_str_reserve(&j->ev, j->event_bound);
    fs_str_reserve(&j->frame, j->event_bound + 256);
    size_t text_cap = j->req.stream ? piece + 16 : (size_t)(j->max_new + 1) * piece + 16;
    fs_str_reserve(&j->reasoning, text_cap);
    fs_str_reserve(&j->content, text_cap);
    if (j->req.logprobs) {
        j->cap_lps = j->req.stream ? 2 : j->max_new + 1;
        j->lps = fs_xmalloc((size_t)j->cap_lps * sizeof *j->lps);
    }
    if (j->req.return_token_ids) {
        j->cap_tok_ids = j->req.stream ? 2 : j->max_new + 1;
        j->tok_ids = fs_xmalloc((size_t)j->cap_tok_ids * sizeof *j->tok_ids);
    }

    pthread_mutex_lock(&s->mu);
    if (s->n_queue >= s->queue_cap) {
        pthread_mutex_unlock(&s->mu);
        snprintf(msg, sizeof msg, "the server is busy: %d requests are waiting for one of %d slots; retry later",
                 s->n_queue, s->o->parallel);
        reply_error(c, 503, msg, "server_error", NULL, "server_busy", "Retry-After: 1\r\n");
        goto fail;
    }
    j->refs = 2;
    s->queue[s->n_queue++] = j;
    c->job = j;
    pthread_cond_signal(&s->wake_sched);
    pthread_mutex_unlock(&s->mu);
    return;
fail:
    j->refs = 1;
    fs_job_release(j);
}

/* Bearer KEY, compared in time independent of where it differs. */
static int authorized(fs_srv *s, const char *header) {
    const char *key = s->o->api_key;
    if (!key) return 1;
    if (strncmp(header, "Bearer ", 7)) return 0;
    const char *got = header + 7;
    size_t n = strlen(key), m = strlen(got);
    unsigned char diff = n != m;
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)(key[i] ^ got[i < m ? i : 0]);
    return diff == 0;
}

static void route(fs_srv *s, conn *c, const char *body, size_t len) {
    const char *m = c->req.method, *p = c->req.path;
    size_t start = c->out.n; /* a response before this one may still wait in c->out */
    if (!strncmp(p, "/v1/", 4)) p += 3; /* /v1/models and /models alike, as llama-server does */
    int get = !strcmp(m, "GET") || !strcmp(m, "HEAD"), post = !strcmp(m, "POST");
    if (!strcmp(m, "OPTIONS")) { /* a browser's CORS preflight */
        reply(c, 204, NULL, "", 0,
              "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
              "Access-Control-Allow-Headers: Authorization, Content-Type\r\nAccess-Control-Max-Age: 86400\r\n");
        return;
    }
    int api = strcmp(p, "/") && strcmp(p, "/health") && strcmp(p, "/index.html");
    if (api && !authorized(s, c->req.authorization)) {
        reply_error(c, 401, "invalid or missing API key (send Authorization: Bearer KEY)", "invalid_request_error",
                    NULL, "invalid_api_key", "WWW-Authenticate: Bearer\r\n");
        return;
    }
    int known = 1;
    if (!strcmp(p, "/") || !strcmp(p, "/index.html")) {
        if (get) reply(c, 200, "text/html; charset=utf-8", (const char *)fs_serve_page, fs_serve_page_len, NULL);
        else known = 0;
    } else if (!strcmp(p, "/health")) {
        if (get) get_health(s, c);
        else known = 0;
    } else if (!strcmp(p, "/models")) {
        if (get) get_models(s, c, NULL);
        else known = 0;
    } else if (!strncmp(p, "/models/", 8)) {
        if (get) get_models(s, c, p + 8);
        else known = 0;
    } else if (!strcmp(p, "/chat/completions") || !strcmp(p, "/completions")) {
        if (post) post_generate(s, c, p[1] == 'c' && p[2] == 'h' ? FS_API_CHAT : FS_API_COMPLETION, body, len);
        else known = 0;
    } else {
        char msg[2200];
        snprintf(msg, sizeof msg, "no such endpoint: %s %s", m, c->req.path);
        reply_error(c, 404, msg, "invalid_request_error", NULL, "not_found", NULL);
        return;
    }
    if (!known) {
        char msg[2200];
        snprintf(msg, sizeof msg, "%s does not take %s", c->req.path, m);
        reply_error(c, 405, msg, "invalid_request_error", NULL, NULL, "Allow: GET, POST, OPTIONS\r\n");
    }
    if (!strcmp(m, "HEAD") && c->out.n > start) { /* the same head, no body */
        char *end = strstr(c->out.p + start, "\r\n\r\n");
        if (end) c->out.n = (size_t)(end + 4 - c->out.p);
    }
}

/* Whatever of a request c holds: parse, check limits, route once whole. */
static void conn_input(fs_srv *s, conn *c) {
    while (!c->job && !c->close_after && c->n_in > 0) {
        fs_err e = {{0}};
        if (!c->have_head) {
            int r = fs_http_parse_head(c->in, c->n_in, &c->req, &e);
            if (r == FS_HTTP_NEED_MORE) return;
            if (r < 0) return refuse(c, -r, e.msg);
            c->have_head = 1;
            if (c->req.content_length > (long long)s->o->max_body) {
                snprintf(e.msg, sizeof e.msg, "the body is %lld bytes; this server takes at most %zu",
                         c->req.content_length, s->o->max_body);
                return refuse(c, 413, e.msg);
            }
            if (c->req.expect_continue && !c->sent_continue && c->req.content_length > 0) {
                fs_str_printf(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
                c->sent_continue = 1;
            }
        }
        size_t body = c->req.content_length > 0 ? (size_t)c->req.content_length : 0;
        size_t need = c->req.head_len + body;
        if (c->n_in < need) return;
        if (!strcmp(c->req.method, "POST") && c->req.content_length < 0)
            return refuse(c, 411, "a POST needs a Content-Length");
        if (!c->req.keep_alive) c->close_after = 1;
        route(s, c, c->in + c->req.head_len, body);
        memmove(c->in, c->in + need, c->n_in - need);
        c->n_in -= need;
        c->have_head = 0;
        c->sent_continue = 0;
        c->t_request = c->n_in ? fs_now() : 0;
    }
}

/* Read what is there. Returns -1 when the connection is over. */
static int conn_read(fs_srv *s, conn *c) {
    while (c->t_linger) {
        char sink[4096];
        ssize_t k = recv(c->fd, sink, sizeof sink, 0);
        if (k > 0) continue;
        return k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
    }
    for (;;) {
        size_t limit = FS_HTTP_MAX_HEAD + s->o->max_body + 1;
        if (c->n_in == limit) return 0; /* full: a request being refused or answered first */
        if (c->cap_in - c->n_in < 4096 && c->cap_in < limit) {
            c->cap_in = c->cap_in ? 2 * c->cap_in : 8192;
            if (c->cap_in > limit) c->cap_in = limit;
            c->in = fs_xrealloc(c->in, c->cap_in);
        }
        ssize_t k = recv(c->fd, c->in + c->n_in, c->cap_in - c->n_in, 0);
        if (k > 0) {
            if (!c->t_request && !c->job) c->t_request = fs_now();
            c->n_in += (size_t)k;
            c->t_active = fs_now();
            continue;
        }
        if (k == 0) return -1;
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
}

/* Send what is ready: c->out first, then the job's bytes. Returns -1 when
 * the connection is over (an error, or everything sent and close_after). */
static int conn_write(fs_srv *s, conn *c) {
    for (;;) {
        const char *p;
        size_t n;
        if (c->out_off < c->out.n) {
            p = c->out.p + c->out_off;
            n = c->out.n - c->out_off;
        } else {
            c->out.n = c->out_off = 0;
            if (!c->job && c->close_after && !c->t_linger) {
                shutdown(c->fd, SHUT_WR);
                c->t_linger = fs_now();
            }
            if (!c->job) return 0;
            pthread_mutex_lock(&s->mu);
            if (c->job->n_out == 0) {
                int done = c->job->done;
                if (done) {
                    fs_job_release(c->job);
                    c->job = NULL;
                }
                pthread_mutex_unlock(&s->mu);
                if (!done) return 0;
                if (c->close_after) continue; /* shut our side, linger */
                c->t_active = fs_now();
                conn_input(s, c); /* a request that came while this one ran */
                continue;
            }
            fs_str_add(&c->out, c->job->out, c->job->n_out); /* sized once; reused for every send */
            c->job->n_out = 0;
            pthread_cond_signal(&s->wake_sched); /* a stalled stream has room again */
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);
        if (k > 0) {
            c->out_off += (size_t)k;
            c->t_active = fs_now();
            continue;
        }
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        return -1;
    }
}

static int wants_write(fs_srv *s, conn *c) {
    if (c->out_off < c->out.n) return 1;
    if (!c->job) return 0;
    pthread_mutex_lock(&s->mu);
    int w = c->job->n_out > 0 || c->job->done;
    pthread_mutex_unlock(&s->mu);
    return w;
}

/* ---- the loop ---- */

static int listen_on(const char *host, int port, char *url, size_t url_cap, fs_err *e) {
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", port);
    int rc = getaddrinfo(host, port_s, &hints, &res);
    if (rc) return fs_errf(e, "%s: %s", host, gai_strerror(rc));
    int fd = -1, err = 0;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) || listen(fd, 128)) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) return fs_errf(e, "cannot listen on %s:%d: %s", host, port, strerror(err ? err : EADDRNOTAVAIL));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    char addr[INET6_ADDRSTRLEN] = "?";
    int real_port = port;
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a6->sin6_addr, addr, sizeof addr);
        real_port = ntohs(a6->sin6_port);
        snprintf(url, url_cap, "http://[%s]:%d", addr, real_port);
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a4->sin_addr, addr, sizeof addr);
        real_port = ntohs(a4->sin_port);
        snprintf(url, url_cap, "http://%s:%d", addr, real_port);
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static void accept_all(fs_srv *s, int lfd, conn **conns, int *n_conns) {
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) return;
        if (*n_conns >= MAX_CONNS) { /* a polite refusal costs one write */
            static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                       "Retry-After: 1\r\nConnection: close\r\n\r\n";
            ssize_t w = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)w;
            close(fd);
            continue;
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* a token is a small write: send it now */
        conn *c = fs_xcalloc(1, sizeof *c);
        c->fd = fd;
        c->t_active = fs_now();
        conns[(*n_conns)++] = c;
    }
}

int fs_serve(fs_engine *g, const fs_serve_opts *o_in, fs_err *e) {
    fs_serve_opts o = *o_in;
    if (!o.host) o.host = "127.0.0.1";
    if (o.parallel < 1) o.parallel = 1;
    if (o.parallel > FS_MAX_SEQS) return fs_errf(e, "--parallel %d: at most %d", o.parallel, FS_MAX_SEQS);
    if (o.queue <= 0) o.queue = 64;
    if (!o.max_body) o.max_body = 8u << 20;
    if (o.step_tokens <= 0) o.step_tokens = 256;

    fs_srv s = {0};
    s.g = g;
    s.o = &o;
    /* the model's id: --alias, else the directory's last name */
    char name[256];
    snprintf(name, sizeof name, "%s", o.model_name ? o.model_name : fs_engine_dir(g));
    for (size_t n = strlen(name); n > 1 && name[n - 1] == '/'; n--) name[n - 1] = 0;
    if (!o.model_name && strrchr(name, '/')) memmove(name, strrchr(name, '/') + 1, strlen(strrchr(name, '/')));
    s.model_name = name;

    /* the chat template is checked once, here, not by the first request */
    fs_chat_msg probe = {"user", "hi", NULL, NULL, NULL};
    int *probe_ids = NULL, n_probe = 0;
    if (fs_engine_chat_prompt(g, &probe, 1, 1, &probe_ids, &n_probe, e)) return -1;
    free(probe_ids);

    s.slots = fs_xcalloc((size_t)o.parallel, sizeof *s.slots);
    int rc = -1, lfd = -1, started = 0, n_conns = 0;
    conn **conns = fs_xcalloc(MAX_CONNS, sizeof *conns);
    struct pollfd *pfd = fs_xcalloc(MAX_CONNS + 2, sizeof *pfd);
    s.queue_cap = o.queue;
    s.queue = fs_xcalloc((size_t)o.queue, sizeof *s.queue);
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.wake_sched, NULL);
    s.wake_fd[0] = s.wake_fd[1] = -1;
    for (int i = 0; i < o.parallel; i++)
        if (fs_seq_new(&s.slots[i].q, g, o.n_ctx, NULL, e)) {
            fs_err_prefix(e, "slot %d", i);
            goto out;
        }
    s.n_ctx = fs_seq_n_ctx(s.slots[0].q);
    if (pipe(s.wake_fd)) {
        fs_errf(e, "pipe: %s", strerror(errno));
        goto out;
    }
    fcntl(s.wake_fd[0], F_SETFL, O_NONBLOCK);
    fcntl(s.wake_fd[1], F_SETFL, O_NONBLOCK);
    char url[128];
    lfd = listen_on(o.host, o.port, url, sizeof url, e);
    if (lfd < 0) goto out;
    pthread_t sched;
    if (pthread_create(&sched, NULL, fs_sched_main, &s)) {
        fs_errf(e, "cannot start the scheduler thread");
        goto out;
    }
    started = 1;
    if (o.on_ready) o.on_ready(o.user, url);

    double t_stop = 0;
    for (;;) {
        int stopping = o.stop && *o.stop;
        if (stopping && !t_stop) { /* stop accepting; the scheduler ends the streams */
            t_stop = fs_now();
            close(lfd);
            lfd = -1;
            pthread_mutex_lock(&s.mu);
            s.quit = 1;
            pthread_cond_signal(&s.wake_sched);
            pthread_mutex_unlock(&s.mu);
        }
        /* once stopping: out when every reply is sent, or after 5 s */
        if (t_stop && fs_now() - t_stop > 5) break;
        if (t_stop) {
            int busy = 0;
            for (int i = 0; i < n_conns; i++) busy |= conns[i]->job || conns[i]->out_off < conns[i]->out.n;
            if (!busy) break;
        }
        int np = 0;
        pfd[np++] = (struct pollfd){s.wake_fd[0], POLLIN, 0};
        if (lfd >= 0) pfd[np++] = (struct pollfd){lfd, POLLIN, 0};
        int first = np;
        for (int i = 0; i < n_conns; i++) {
            conn *c = conns[i];
            /* a full input buffer (a request waiting behind a running
             * one) is not read until it drains; a hang-up still shows */
            short ev = c->n_in < FS_HTTP_MAX_HEAD + o.max_body + 1 || c->t_linger ? POLLIN : 0;
            if (wants_write(&s, c)) ev |= POLLOUT;
            pfd[np++] = (struct pollfd){c->fd, ev, 0};
        }
        int r = poll(pfd, (nfds_t)np, 100);
        if (r < 0 && errno != EINTR) break;
        if (pfd[0].revents) {
            char buf[256];
            while (read(s.wake_fd[0], buf, sizeof buf) > 0) {}
            pthread_mutex_lock(&s.mu);
            s.wake_pending = 0;
            pthread_mutex_unlock(&s.mu);
        }
        if (lfd >= 0 && pfd[1].revents) accept_all(&s, lfd, conns, &n_conns);
        double now = fs_now();
        for (int i = first; i < np; i++) {
            conn *c = conns[i - first];
            int over = 0;
            if (pfd[i].revents & (POLLHUP | POLLERR)) { /* both ways closed: no one to answer */
                over = 1;
            } else if (pfd[i].revents & POLLIN) {
                over = conn_read(&s, c) < 0;
                if (!over) conn_input(&s, c);
            }
            if (!over) over = conn_write(&s, c) < 0;
            if (!over && c->t_request && !c->job && now - c->t_request > REQUEST_TIMEOUT_S && !c->close_after) {
                c->out.n = c->out_off = 0;
                refuse(c, 408, "the request did not arrive in time");
                over = conn_write(&s, c) < 0;
            }
            if (!over && !c->job && c->out.n == 0 && !c->t_request && now - c->t_active > IDLE_TIMEOUT_S) over = 1;
            if (!over && wants_write(&s, c) && now - c->t_active > WRITE_TIMEOUT_S) over = 1;
            if (!over && c->t_linger && now - c->t_linger > 2) over = 1;
            if (over) {
                conn_free(&s, c);
                conns[i - first] = NULL;
            }
        }
        int k = 0;
        for (int i = 0; i < n_conns; i++)
            if (conns[i]) conns[k++] = conns[i];
        n_conns = k;
    }
    rc = 0;

out:
    if (started) {
        pthread_mutex_lock(&s.mu);
        s.quit = 1;
        pthread_cond_signal(&s.wake_sched);
        pthread_mutex_unlock(&s.mu);
        pthread_join(sched, NULL);
    }
    for (int i = 0; i < n_conns; i++) conn_free(&s, conns[i]);
    if (lfd >= 0) close(lfd);
    if (s.wake_fd[0] >= 0) close(s.wake_fd[0]), close(s.wake_fd[1]);
    for (int i = 0; i < o.parallel; i++) fs_seq_free(s.slots[i].q);
    free(s.slots);
    free(s.queue);
    free(conns);
    free(pfd);
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.wake_sched);
    return rc;
}
