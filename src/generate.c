/* generate.c - prefill, then sample / detokenize / match stop strings /
 * decode one token at a time (see generate.h).
 *
 * Docs: docs/generate.md
 */
#include "generate.h"

#include <stdlib.h>
#include <string.h>

const char *fs_stop_reason_name(fs_stop_reason r) {
    switch (r) {
    case FS_STOP_EOS: return "eos";
    case FS_STOP_STRING: return "stop_string";
    case FS_STOP_MAX_TOKENS: return "max_tokens";
    case FS_STOP_CTX_FULL: return "context_full";
    case FS_STOP_CANCELLED: return "cancelled";
    case FS_STOP_ERROR: return "error";
    case FS_STOP_NONE: break;
    }
    return "none";
}

/* --- stop strings --- */

int fs_stopper_init(fs_stopper *m, const char *const *stops, int n_stops, size_t max_piece,
                    fs_err *e) {
    memset(m, 0, sizeof *m);
    if (n_stops < 0 || (n_stops > 0 && !stops)) return fs_errf(e, "stop strings: bad list");
    m->stop_len = fs_xcalloc(n_stops > 0 ? (size_t)n_stops : 1, sizeof *m->stop_len);
    for (int k = 0; k < n_stops; k++) {
        size_t len = stops[k] ? strlen(stops[k]) : 0;
        if (len == 0) {
            fs_stopper_free(m);
            return fs_errf(e, "stop string %d is empty", k + 1);
        }
        for (size_t i = 0; i < len;) {
            uint32_t cp;
            int n = fs_utf8_decode((const unsigned char *)stops[k] + i, len - i, &cp);
            if (n == 0) {
                fs_stopper_free(m);
                return fs_errf(e, "stop string %d is not valid UTF-8 (byte %zu)", k + 1, i);
            }
            i += (size_t)n;
        }
        m->stop_len[k] = len;
        if (len > m->max_stop) m->max_stop = len;
    }
    m->stops = stops;
    m->n_stops = n_stops;
    /* at least one whole character per slice, so slicing can always advance */
    m->max_piece = max_piece < 8 ? 8 : max_piece;
    m->held = fs_xmalloc(m->max_stop + m->max_piece);
    return 0;
}

void fs_stopper_free(fs_stopper *m) {
    free(m->stop_len);
    free(m->held);
    memset(m, 0, sizeof *m);
}

static int emit_text(fs_emit_fn emit, void *user, const char *text, size_t len) {
    if (len == 0 || !emit) return FS_STOPPER_GO;
    return emit(user, text, len) ? FS_STOPPER_CANCELLED : FS_STOPPER_GO;
}

/* Look at the held text: a whole stop string ends it; otherwise emit all
 * but the shortest tail that is still a proper prefix of some stop string. */
static int stopper_scan(fs_stopper *m, fs_emit_fn emit, void *user) {
    size_t n = m->n_held;
    for (size_t p = 0; p < n; p++)
        for (int k = 0; k < m->n_stops; k++)
            if (m->stop_len[k] <= n - p && memcmp(m->held + p, m->stops[k], m->stop_len[k]) == 0) {
                m->n_held = 0;
                emit_text(emit, user, m->held, p);
                return FS_STOPPER_MATCHED;
            }
    size_t q = n > m->max_stop - 1 ? n - (m->max_stop - 1) : 0;
    for (; q < n; q++) {
        int prefix = 0;
        for (int k = 0; k < m->n_stops && !prefix; k++)
            prefix = n - q < m->stop_len[k] && memcmp(m->held + q, m->stops[k], n - q) == 0;
        if (prefix) break;
    }
    int r = emit_text(emit, user, m->held, q);
    memmove(m->held, m->held + q, n - q);
    m->n_held = n - q;
    return r;
}

int fs_stopper_feed(fs_stopper *m, const char *text, size_t len, fs_emit_fn emit, void *user) {
    if (m->n_stops == 0) return emit_text(emit, user, text, len);
    while (len > 0) {
        /* after every scan at most max_stop - 1 bytes are held, so a slice
         * of max_piece bytes always fits */
        size_t n = len;
        if (n > m->max_piece) {
            n = m->max_piece;
            while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80) n--; /* a character boundary */
            if (n == 0) n = m->max_piece; /* not UTF-8 at all: any cut will do */
        }
        memcpy(m->held + m->n_held, text, n);
        m->n_held += n;
        text += n;
        len -= n;
        int r = stopper_scan(m, emit, user);
        if (r != FS_STOPPER_GO) return r;
    }
    return FS_STOPPER_GO;
}

int fs_stopper_flush(fs_stopper *m, fs_emit_fn emit, void *user) {
    size_t n = m->n_held;
    m->n_held = 0;
    return emit_text(emit, user, m->held, n);
}

/* --- the loop --- */

static int is_stop_id(const fs_gen_opts *o, int id) {
    for (int i = 0; i < o->n_stop_ids; i++)
        if (o->stop_ids[i] == id) return 1;
    return 0;
}

int fs_prefill(fs_session *s, const int *ids, int n, const fs_gen_opts *o, fs_err *e) {
    if (o->on_prefill) o->on_prefill(o->user, 0, n);
    for (int done = 0; done < n;) {
        if (o->cancel && *o->cancel) return FS_EVAL_CANCELLED;
        int T = n - done < FS_PREFILL_CHUNK ? n - done : FS_PREFILL_CHUNK;
        int r = fs_session_eval(s, ids + done, T, e);
        if (r) return r == FS_EVAL_CANCELLED ? r : -1;
        done += T;
        if (o->on_prefill) o->on_prefill(o->user, done, n);
    }
    return 0;
}

int fs_generate(fs_session *s, const fs_tokenizer *t, fs_sampler *smp, const int *prompt,
                int n_prompt, const fs_gen_opts *o, fs_gen_stats *st, fs_err *e) {
    memset(st, 0, sizeof *st);
    st->stop = FS_STOP_ERROR;
    st->stop_id = -1;
    st->prompt_tokens = n_prompt;
    const fs_model *model = fs_session_model(s);
    int V = model->cfg.vocab;

    if (n_prompt < 1 || !prompt) return fs_errf(e, "empty prompt: there is nothing to predict from");
    if (o->max_new_tokens < 0) return fs_errf(e, "max_new_tokens must be >= 0, got %d", o->max_new_tokens);
    if (fs_sampler_n_vocab(smp) != V)
        return fs_errf(e, "the sampler was made for %d tokens, the model has V = %d",
                       fs_sampler_n_vocab(smp), V);
    int used = fs_session_pos(s), n_ctx = fs_session_n_ctx(s);
    if (n_prompt > n_ctx - used)
        return fs_errf(e, "the prompt (%d tokens) does not fit in the context (%d tokens, %d in use)",
                       n_prompt, n_ctx, used);
    /* Greedy with no penalties needs no logits on the host: the argmax is
     * computed where they are. */
    int greedy = fs_sampler_is_greedy(smp);

    /* Everything the loop needs, allocated now. */
    size_t piece_cap = FS_DETOK_MAX_OUT(fs_tokenizer_max_token_bytes(t));
    char *piece = fs_xmalloc(piece_cap);
    fs_stopper stopper;
    if (fs_stopper_init(&stopper, o->stop_strings, o->n_stop_strings, piece_cap, e)) {
        free(piece);
        return -1;
    }
    fs_detok detok;
    fs_detok_init(&detok);

    fs_stop_reason why = FS_STOP_NONE;
    int text_state = FS_STOPPER_GO; /* MATCHED drops the held text, else flush it */
    int prefilled = 0;
    /* Greedy on a backend that queues its work (a GPU): the argmax stays
     * where the logits are, and the step for the token it picks is queued
     * before the host has read the token - so the GPU goes on to the next
     * step instead of waiting for the host's round trip. */
    int queued = greedy && fs_session_queues(s);
    int slot = 0, ahead = 0;   /* the argmax slot to read next; a step queued past the text */
    int prev = prompt[n_prompt - 1];   /* the token at the cache's last position */
    double t0 = fs_now(), t1 = t0;
    int r = fs_prefill(s, prompt, n_prompt, o, e);
    t1 = fs_now();
    st->prefill_s = t1 - t0;
    for (int i = 0; i < fs_session_pos(s) - used; i++) fs_sampler_accept(smp, prompt[i], 0);
    if (r == FS_EVAL_CANCELLED) {
        st->stop = FS_STOP_CANCELLED;
        goto done;
    }
    if (r) {
        fs_err_prefix(e, "prefill");
        goto done;
    }
    prefilled = 1;

    /* (queued) If a token ends the text, the step queued for it is undone
     * at the end (`ahead`: the cache holds one token more than the text). */
    if (queued) fs_session_argmax_queue(s, slot);
    while (why == FS_STOP_NONE) {
        if (st->generated_tokens >= o->max_new_tokens) { why = FS_STOP_MAX_TOKENS; break; }
        if (o->cancel && *o->cancel) { why = FS_STOP_CANCELLED; break; }

        int id;
        if (queued) {
            if (st->generated_tokens + 1 < o->max_new_tokens && fs_session_pos(s) < n_ctx) {
                if ((r = fs_session_eval_queued(s, e)) == FS_EVAL_CANCELLED) { why = FS_STOP_CANCELLED; break; }
                if (r) {
                    fs_err_prefix(e, "decode step %d", st->generated_tokens + 1);
                    goto done;
                }
                ahead = 1;
                fs_session_argmax_queue(s, slot ^ 1);
            }
            id = fs_session_argmax_take(s, slot);
            slot ^= 1;
        } else if (greedy) {
            id = fs_session_argmax(s);
        } else {
            id = fs_sampler_sample(smp, fs_session_logits(s), e);
        }
        if (greedy && id < 0) fs_errf(e, "a logit is NaN: the forward pass is broken");
        if (id < 0) {
            fs_err_prefix(e, "sampling token %d", st->generated_tokens + 1);
            goto done;
        }
        fs_sampler_accept(smp, id, 1);
        if (o->ids_out) o->ids_out[st->generated_tokens] = id;
        st->generated_tokens++;

        if (is_stop_id(o, id)) {
            st->stop_id = id;
            why = FS_STOP_EOS;
            break;
        }
        size_t n = fs_detok_push(&detok, t, id, piece, piece_cap);
        text_state = fs_stopper_feed(&stopper, piece, n, o->on_text, o->user);
        if (text_state == FS_STOPPER_MATCHED) why = FS_STOP_STRING;
        else if (text_state == FS_STOPPER_CANCELLED) why = FS_STOP_CANCELLED;
        else if (st->generated_tokens >= o->max_new_tokens) why = FS_STOP_MAX_TOKENS;
        else if (queued) {
            if (!ahead) why = FS_STOP_CTX_FULL;   /* (not queued: the context was full) */
            ahead = 0;   /* the text goes on: the step queued for id is its own */
            prev = id;
        } else if (fs_session_pos(s) >= n_ctx) why = FS_STOP_CTX_FULL;
        else if ((r = fs_session_eval(s, &id, 1, e)) == FS_EVAL_CANCELLED) why = FS_STOP_CANCELLED;
        else if (r) {
            fs_err_prefix(e, "decode step %d", st->generated_tokens);
            goto done;
        }
    }
    /* The text is complete (unless a stop string cut it or the receiver
     * went away): bytes of an unfinished character become U+FFFD, and text
     * held back for a stop string that never came is released. */
    if (text_state == FS_STOPPER_GO) {
        size_t n = fs_detok_flush(&detok, piece, piece_cap);
        if (fs_stopper_feed(&stopper, piece, n, o->on_text, o->user) == FS_STOPPER_MATCHED)
            why = FS_STOP_STRING;
        else
            fs_stopper_flush(&stopper, o->on_text, o->user);
    }
    st->stop = why;

done:
    if (ahead) {
        /* The step queued for the token that ended the text is undone, and
         * the one before it evaluated again: the cache and the logits are
         * then exactly what the unqueued loop leaves (one more step at the
         * end of a reply; fs_session_truncate alone would keep the undone
         * step's logits). */
        if (st->stop == FS_STOP_ERROR) {
            fs_session_truncate(s, fs_session_pos(s) - 1);
        } else {
            fs_session_truncate(s, fs_session_pos(s) - 2);
            int r2 = fs_session_eval(s, &prev, 1, e);
            if (r2 == FS_EVAL_CANCELLED) st->stop = FS_STOP_CANCELLED;   /* the cache is one token short: still true */
            else if (r2) {
                fs_err_prefix(e, "the last decode step");
                st->stop = FS_STOP_ERROR;
            }
        }
    }
    if (queued && prefilled) fs_session_sync(s);
    if (prefilled) st->decode_s = fs_now() - t1;
    free(piece);
    fs_stopper_free(&stopper);
    return st->stop == FS_STOP_ERROR ? -1 : 0;
}
