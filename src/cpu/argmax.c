/* argmax.c - the index of the largest logit: greedy decoding's choice.
 *
 *   argmax(x) = the lowest i < n with x[i] = max x;   -1 if any x[i] is NaN
 *
 * Lowest on ties, so every backend picks the same token from the same
 * logits; a NaN anywhere means the forward pass went wrong, and the caller
 * is told instead of being handed an arbitrary token. The reference uses
 * this loop. It is one chain - compare with the best so far, branch - at
 * ~3 ns an element: 0.4 ms for Qwen3's 151,936 logits on CPU D, 6% of a
 * Q4_0 token there, so the cpu backend runs the same rule on vectors
 * (fs_vargmax, vec_cpu.c), and a batch's rows on its threads.
 *
 * Docs: docs/forward.md
 */
#include "ref.h"

int fs_ref_argmax_of(const float *v, int n) {
    int best = 0;
    for (int i = 0; i < n; i++) {
        if (v[i] != v[i]) return -1;   /* NaN */
        if (v[i] > v[best]) best = i;
    }
    return n > 0 ? best : -1;
}

int fs_ref_argmax(fs_backend *b, const fs_buf *x, int n) {
    (void)b;
    return fs_ref_argmax_of(buf_f32(x), n);
}

/* Each of a batch's rows in turn: on the CPU a row is no cheaper in a
 * batch (there is nothing to wait for). */
void fs_ref_argmax_rows(fs_backend *b, const fs_buf *x, int rows, int n, int *out) {
    (void)b;
    for (int r = 0; r < rows; r++) out[r] = fs_ref_argmax_of(buf_f32(x) + (size_t)r * (size_t)n, n);
}

/* Queued argmax (backend.h): on the CPU the answer is known at once; it
 * is kept for the next set_step with no ids and for argmax_take. */
void fs_ref_argmax_queue(fs_backend *b, const fs_buf *x, int n, int slot) {
    fs_ref *r = ref_ctx(b);
    r->argmax_slot[slot & 1] = r->argmax_last = fs_ref_argmax_of(buf_f32(x), n);
}

int fs_ref_argmax_take(fs_backend *b, int slot) { return ref_ctx(b)->argmax_slot[slot & 1]; }
