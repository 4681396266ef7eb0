/* serve_sched.c - fs serve's scheduler: slots, continuous batching, and
 * the response bytes (see serve.h for the picture, serve_job.h for what
 * the threads share).
 *
 * One turn of the loop:
 *
 *   1. drop      the jobs whose client went away (their slot is free
 *                at once: a disconnect costs at most the step in flight)
 *   2. admit     waiting jobs into free slots, each into the slot whose
 *                cache shares the longest prefix with its prompt
 *                (prefix caching), ties to the least recently used
 *   3. step      fs_engine_step over every busy slot whose client keeps
 *                up: one forward pass, one token per decoding job, a
 *                chunk of each prompt (at most step_tokens in all). New
 *                prompts go first: a step that starts one carries only
 *                the new prompts' first chunks, so a request's first
 *                token waits for its own prompt, not for 7 other tokens
 *                as well (the decoders lose one step; their next token
 *                comes no later than if the chunk had ridden along,
 *                plus that step)
 *   4. emit      each job's new text (and log-probabilities) as one
 *                server-sent event; a finished job gets its final event,
 *                or its whole response when it was not streamed
 *
 * Between 3 and 4 the engine calls back into the job (on_text, on_token)
 * with the text and ids the step produced; they land in the job's own
 * buffers, which only this thread touches. The shared lock is taken to
 * pick jobs and to hand bytes over, never during a forward pass.
 *
 * Docs: docs/serve.md
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "serve_job.h"

/* ---- the engine's callbacks: text and tokens into the job ---- */

static int job_text(void *user, const char *text, size_t len) {
    fs_job *j = user;
    if (j->req.kind == FS_API_CHAT) fs_think_feed(&j->think, text, len, &j->reasoning, &j->content);
    else fs_str_add(&j->content, text, len);
    return 0;
}

static void job_token(void *user, int id, const float *logits) {
    fs_job *j = user;
    if (j->t_first == 0) j->t_first = fs_now();
    if (j->n_tok_ids < j->cap_tok_ids) j->tok_ids[j->n_tok_ids++] = id;
    if (logits && j->n_lps < j->cap_lps) fs_api_logprob_of(logits, j->vocab, id, j->req.top_logprobs, &j->lps[j->n_lps++]);
}

/* ---- response bytes ---- */

/* Hand bytes to the network thread (mu held). The buffer was sized so a
 * step fits (event_bound); if one ever does not, it grows - correct, only
 * not allocation-free. */
static void job_put(fs_srv *s, fs_job *j, const char *data, size_t len) {
    if (j->n_out + len > j->out_cap) {
        j->out_cap = 2 * (j->n_out + len);
        j->out = fs_xrealloc(j->out, j->out_cap);
    }
    memcpy(j->out + j->n_out, data, len);
    j->n_out += len;
    fs_srv_wake(s);
}

/* The same for what j->frame holds, taking the lock. */
static void job_put_frame(fs_srv *s, fs_job *j) {
    if (!j->frame.n) return;
    pthread_mutex_lock(&s->mu);
    job_put(s, j, j->frame.p, j->frame.n);
    pthread_mutex_unlock(&s->mu);
    j->frame.n = 0;
}

static void usage_json(fs_str *ev, const fs_seq_stats *st) {
    fs_str_printf(ev,
                  "{\"prompt_tokens\": %d, \"completion_tokens\": %d, \"total_tokens\": %d, "
                  "\"prompt_tokens_details\": {\"cached_tokens\": %d}}",
                  st->prompt_tokens, st->generated, st->prompt_tokens + st->generated, st->reused);
}

/* llama-server's "timings", which the chat page shows as tokens/s */
static void timings_json(fs_str *ev, const fs_seq_stats *st) {
    fs_str_printf(ev,
                  "{\"prompt_n\": %d, \"prompt_ms\": %.3f, \"predicted_n\": %d, \"predicted_ms\": %.3f, "
                  "\"predicted_per_second\": %.3f}",
                  st->prefilled, st->prefill_s * 1e3, st->generated, st->decode_s * 1e3,
                  st->decode_s > 0 && st->generated > 1 ? (st->generated - 1) / st->decode_s : 0.0);
}

/* The completions API's older logprobs: parallel lists. */
static void legacy_logprobs_json(fs_srv *s, fs_job *j, fs_str *ev) {
    const fs_tokenizer *t = fs_engine_tokenizer(s->g);
    fs_str_puts(ev, "{\"tokens\": [");
    for (int i = 0; i < j->n_lps; i++) {
        size_t len = 0;
        const char *b = fs_tokenizer_token_bytes(t, j->lps[i].id, &len);
        if (i) fs_str_puts(ev, ", ");
        fs_str_json(ev, b ? b : "", b ? len : 0);
    }
    fs_str_puts(ev, "], \"token_logprobs\": [");
    for (int i = 0; i < j->n_lps; i++) {
        if (i) fs_str_puts(ev, ", ");
        fs_str_json_number(ev, j->lps[i].logprob);
    }
    fs_str_puts(ev, "], \"top_logprobs\": [");
    for (int i = 0; i < j->n_lps; i++) {
        fs_str_puts(ev, i ? ", {" : "{");
        for (int k = 0; k < j->lps[i].n_top; k++) {
            size_t len = 0;
            const char *b = fs_tokenizer_token_bytes(t, j->lps[i].top_id[k], &len);
            if (k) fs_str_puts(ev, ", ");
            fs_str_json(ev, b ? b : "", b ? len : 0);
            fs_str_puts(ev, ": ");
            fs_str_json_number(ev, j->lps[i].top_logprob[k]);
        }
        fs_str_puts(ev, "}");
    }
    fs_str_puts(ev, "], \"text_offset\": [");
    for (int i = 0; i < j->n_lps; i++) {
        size_t len = 0;
        fs_tokenizer_token_bytes(t, j->lps[i].id, &len);
        fs_str_printf(ev, i ? ", %zu" : "%zu", j->text_offset);
        j->text_offset += len;
    }
    fs_str_puts(ev, "]}");
}

static void logprobs_json(fs_srv *s, fs_job *j, fs_str *ev) {
    if (!j->req.logprobs) {
        fs_str_puts(ev, "null");
        return;
    }
    if (j->req.kind == FS_API_COMPLETION) return legacy_logprobs_json(s, j, ev);
    fs_str_puts(ev, "{\"content\": [");
    for (int i = 0; i < j->n_lps; i++) {
        if (i) fs_str_puts(ev, ", ");
        fs_api_logprob_json(ev, fs_engine_tokenizer(s->g), &j->lps[i]);
    }
    fs_str_puts(ev, "]}");
}

/* The text and logprobs gathered so far as a choice's fields:
 *   chat        "delta"/"message": {"reasoning_content": ..., "content": ...}, "logprobs": ...
 *   completion  "text": ..., "logprobs": ... */
static void choice_fields(fs_srv *s, fs_job *j, fs_str *ev, int streamed, int first) {
    if (j->req.kind == FS_API_CHAT) {
        fs_str_puts(ev, streamed ? "\"delta\": {" : "\"message\": {\"role\": \"assistant\", ");
        int any = 0;
        if (first) fs_str_puts(ev, "\"role\": \"assistant\""), any = 1;
        if (j->reasoning.n) {
            fs_str_puts(ev, any ? ", \"reasoning_content\": " : "\"reasoning_content\": ");
            fs_str_json(ev, j->reasoning.p, j->reasoning.n);
            any = 1;
        }
        if (j->content.n || first || !streamed) {
            fs_str_puts(ev, any ? ", \"content\": " : "\"content\": ");
            fs_str_json(ev, j->content.p, j->content.n);
        }
        fs_str_puts(ev, "}");
    } else {
        fs_str_puts(ev, "\"text\": ");
        fs_str_json(ev, j->content.p, j->content.n);
    }
    fs_str_puts(ev, ", \"logprobs\": ");
    logprobs_json(s, j, ev);
    if (j->req.return_token_ids) {
        fs_str_puts(ev, ", \"token_ids\": [");
        for (int i = 0; i < j->n_tok_ids; i++) fs_str_printf(ev, i ? ", %d" : "%d", j->tok_ids[i]);
        fs_str_puts(ev, "]");
    }
    j->reasoning.n = j->content.n = 0;
    j->n_lps = j->n_tok_ids = 0;
}

/* {"id": ..., "object": ..., "created": ..., "model": ..., "choices": [ */
static void object_start(fs_srv *s, fs_job *j, fs_str *ev, int streamed) {
    const char *object = j->req.kind == FS_API_COMPLETION ? "text_completion"
                         : streamed                       ? "chat.completion.chunk"
                                                          : "chat.completion";
    fs_str_printf(ev, "{\"id\": \"%s\", \"object\": \"%s\", \"created\": %lld, \"model\": ", j->id, object,
                  j->created);
    fs_str_json(ev, s->model_name, strlen(s->model_name));
    fs_str_puts(ev, ", \"system_fingerprint\": \"fs\", \"choices\": [");
}

/* One server-sent event holding json[0..len), framed for HTTP into j->frame. */
static void sse_frame(fs_job *j, const char *json, size_t len) {
    char pre[32];
    size_t body = 6 + len + 2; /* "data: " json "\n\n" */
    int k = j->minor == 1 ? snprintf(pre, sizeof pre, "%zx\r\n", body) : 0;
    fs_str_add(&j->frame, pre, (size_t)k);
    fs_str_add(&j->frame, "data: ", 6);
    fs_str_add(&j->frame, json, len);
    fs_str_add(&j->frame, "\n\n", 2);
    if (j->minor == 1) fs_str_add(&j->frame, "\r\n", 2);
}

/* A streamed job's event for this step: only when it has something. */
static void stream_step(fs_srv *s, fs_job *j, int first) {
    if (!first && !j->reasoning.n && !j->content.n && !j->n_lps && !j->n_tok_ids) return;
    fs_str *ev = &j->ev;
    ev->n = 0;
    object_start(s, j, ev, 1);
    fs_str_puts(ev, "{\"index\": 0, ");
    choice_fields(s, j, ev, 1, first);
    fs_str_puts(ev, ", \"finish_reason\": null}]");
    if (j->req.include_usage) fs_str_puts(ev, ", \"usage\": null");
    fs_str_puts(ev, "}");
    sse_frame(j, ev->p, ev->n);
}

/* A whole response, head and body, into j->frame. */
static void whole_response(fs_job *j, int status, const fs_str *body) {
    fs_http_head(&j->frame, status, j->minor, "application/json", (long long)body->n, j->keep_alive,
                 "Access-Control-Allow-Origin: *\r\n");
    fs_str_add(&j->frame, body->p, body->n);
}

/* The job's last bytes, once its sequence stopped, into j->frame: the
 * final event (finish_reason, timings), the usage event when asked for,
 * [DONE] and the end of the chunked body; or the whole response. */
static void finish_bytes(fs_srv *s, fs_job *j, const fs_seq_stats *st) {
    if (j->req.kind == FS_API_CHAT) fs_think_end(&j->think, &j->reasoning, &j->content);
    const char *finish = fs_api_finish_reason(st->stop);
    fs_str *ev = &j->ev;
    ev->n = 0;
    if (st->stop == FS_STOP_ERROR && !j->req.stream) {
        fs_api_error(ev, "the forward pass failed", "server_error", NULL, NULL);
        return whole_response(j, 500, ev);
    }
    object_start(s, j, ev, j->req.stream);
    fs_str_puts(ev, "{\"index\": 0, ");
    choice_fields(s, j, ev, j->req.stream, 0);
    fs_str_puts(ev, ", \"finish_reason\": ");
    fs_str_json(ev, finish, strlen(finish));
    fs_str_puts(ev, "}], \"timings\": ");
    timings_json(ev, st);
    if (!j->req.stream || j->req.include_usage) {
        fs_str_puts(ev, ", \"usage\": ");
        if (j->req.stream) fs_str_puts(ev, "null");
        else usage_json(ev, st);
    }
    fs_str_puts(ev, "}");
    if (!j->req.stream) return whole_response(j, 200, ev);
    sse_frame(j, ev->p, ev->n);
    if (j->req.include_usage) { /* OpenAI's last chunk: no choices, the usage */
        ev->n = 0;
        object_start(s, j, ev, 1);
        fs_str_puts(ev, "], \"usage\": ");
        usage_json(ev, st);
        fs_str_puts(ev, "}");
        sse_frame(j, ev->p, ev->n);
    }
    sse_frame(j, "[DONE]", 6);
    fs_http_chunk(&j->frame, j->minor, "", 0);
}

/* ---- slots ---- */

static int common_prefix(fs_seq *q, const int *ids, int n) {
    int m;
    const int *have = fs_seq_tokens(q, &m);
    int p = 0;
    while (p < m && p < n && have[p] == ids[p]) p++;
    return p;
}

/* The free slot for j: the longest cached prefix, then the least recently used. */
static fs_slot *pick_slot(fs_srv *s, const fs_job *j) {
    fs_slot *best = NULL;
    int best_p = -1;
    for (int i = 0; i < s->o->parallel; i++) {
        fs_slot *sl = &s->slots[i];
        if (sl->job) continue;
        int p = common_prefix(sl->q, j->ids, j->n_ids);
        if (p > best_p || (p == best_p && sl->last_used < best->last_used)) best = sl, best_p = p;
    }
    return best;
}

/* Start j on its slot (mu not held): its first bytes into j->frame - a
 * stream's head and the event with the role, as OpenAI sends it first.
 * Returns 0, or -1 with an error response there instead. */
static int start_job(fs_srv *s, fs_slot *sl, fs_job *j) {
    fs_err e = {{0}};
    fs_seq_gen go = {0};
    go.max_new_tokens = j->max_new;
    go.stop_strings = j->req.stops;
    go.n_stop_strings = j->req.n_stops;
    go.on_text = job_text;
    go.on_token = job_token;
    go.want_logits = j->req.logprobs;
    go.user = j;
    if (fs_seq_set_sampler_params(sl->q, &j->sp, &e) ||
        fs_seq_start(sl->q, j->ids, j->n_ids, j->req.kind == FS_API_CHAT, &go, &e)) {
        j->ev.n = 0;
        fs_api_error(&j->ev, e.msg, "invalid_request_error", NULL, NULL);
        whole_response(j, 400, &j->ev);
        return -1;
    }
    if (j->req.stream) {
        fs_http_head(&j->frame, 200, j->minor, "text/event-stream", -1, j->keep_alive && j->minor == 1,
                     "Cache-Control: no-cache\r\nAccess-Control-Allow-Origin: *\r\n");
        if (j->req.kind == FS_API_CHAT) stream_step(s, j, 1);
    }
    return 0;
}

/* The job of slot sl is over (mu not held): its last bytes (none for a
 * client that left), and the slot is free. */
static void end_job(fs_srv *s, fs_slot *sl, int started) {
    fs_job *j = sl->job;
    const fs_seq_stats *st = fs_seq_status(sl->q);
    if (started && !j->gone) finish_bytes(s, j, st);
    if (s->o->log && started)
        fprintf(s->o->log, "%s slot %d: prompt %d (%d cached), %d tokens, first after %.0f ms, %.1f tok/s, %s%s\n",
                j->id, j->slot, st->prompt_tokens, st->reused, st->generated,
                j->t_first > 0 ? 1e3 * (j->t_first - j->t_queued) : 0.0,
                st->decode_s > 0 && st->generated > 1 ? (st->generated - 1) / st->decode_s : 0.0,
                fs_api_finish_reason(st->stop), j->gone ? " (client gone)" : "");
    pthread_mutex_lock(&s->mu);
    if (!j->gone) job_put(s, j, j->frame.p, j->frame.n);
    j->frame.n = 0;
    j->done = 1;
    fs_srv_wake(s);
    sl->job = NULL;
    sl->last_used = fs_now();
    s->busy--;
    s->served++;
    fs_job_release(j);
    pthread_mutex_unlock(&s->mu);
}

/* ---- the loop ---- */

void *fs_sched_main(void *arg) {
    fs_srv *s = arg;
    int P = s->o->parallel;
    fs_seq *run[FS_MAX_SEQS];
    fs_slot *run_slot[FS_MAX_SEQS];

    pthread_mutex_lock(&s->mu);
    for (;;) {
        /* 1. drop: the client went away, or the server stops (a client
         * still there gets a clean end of its stream) */
        for (int i = 0; i < P; i++) {
            fs_slot *sl = &s->slots[i];
            if (!sl->job || !(sl->job->gone || s->quit)) continue;
            pthread_mutex_unlock(&s->mu);
            fs_seq_stop(sl->q);
            end_job(s, sl, 1);
            pthread_mutex_lock(&s->mu);
        }
        if (s->quit) break;

        /* 2. admit */
        fs_slot *sl;
        while (s->n_queue > 0 && (sl = pick_slot(s, s->queue[0])) != NULL) {
            fs_job *j = s->queue[0];
            memmove(s->queue, s->queue + 1, (size_t)--s->n_queue * sizeof *s->queue);
            sl->job = j;
            j->slot = (int)(sl - s->slots);
            s->busy++;
            pthread_mutex_unlock(&s->mu);
            if (start_job(s, sl, j)) end_job(s, sl, 0);
            else job_put_frame(s, j);
            pthread_mutex_lock(&s->mu);
        }

        /* 3. step: the new prompts alone, or every busy slot whose
         * client has room for what it makes */
        int n = 0, fresh = 0;
        for (int i = 0; i < P; i++)
            fresh |= s->slots[i].job && !s->slots[i].job->gone && !s->slots[i].job->stepped;
        for (int i = 0; i < P; i++) {
            fs_slot *x = &s->slots[i];
            if (!x->job || x->job->gone || (fresh && x->job->stepped)) continue;
            if (x->job->req.stream && x->job->out_cap - x->job->n_out < 2 * x->job->event_bound) continue;
            x->job->stepped = 1;
            run[n] = x->q;
            run_slot[n++] = x;
        }
        if (n == 0) {
            if (s->busy == 0 && s->n_queue == 0) {
                pthread_cond_wait(&s->wake_sched, &s->mu);
            } else { /* stalled clients: look again when one drains, or soon */
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 20 * 1000000L;
                if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
                pthread_cond_timedwait(&s->wake_sched, &s->mu, &ts);
            }
            continue;
        }
        pthread_mutex_unlock(&s->mu);
        fs_err e = {{0}};
        if (fs_engine_step(s->g, run, n, s->o->step_tokens, &e) < 0 && s->o->log)
            fprintf(s->o->log, "fs serve: step failed: %s\n", e.msg);

        /* 4. emit */
        for (int i = 0; i < n; i++) {
            fs_slot *x = run_slot[i];
            fs_job *j = x->job;
            if (fs_seq_running(x->q)) {
                if (j->req.stream) {
                    stream_step(s, j, 0);
                    job_put_frame(s, j);
                }
            } else {
                end_job(s, x, 1);
            }
        }
        pthread_mutex_lock(&s->mu);
    }
    /* stop: the waiting jobs are answered 503 */
    while (s->n_queue > 0) {
        fs_job *j = s->queue[--s->n_queue];
        fs_str body = {0}, head = {0};
        fs_api_error(&body, "the server is shutting down", "server_error", NULL, NULL);
        fs_http_head(&head, 503, j->minor, "application/json", (long long)body.n, 0, NULL);
        job_put(s, j, head.p, head.n);
        job_put(s, j, body.p, body.n);
        fs_str_free(&body);
        fs_str_free(&head);
        j->done = 1;
        fs_job_release(j);
    }
    fs_srv_wake(s);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}
