/* persist.c - the persistent decode step, host side: what becomes a
 * program, and when it is launched (the kernel, and why it exists:
 * persist.cu).
 *
 * While a one-token step is recorded (backend_cuda.c, cu_record), the
 * matmuls, rope_kv and attention that ops_cuda.c is asked for are not
 * launched: each becomes an instruction (kernel_args.h, fs_cu_instr) with
 * the very arguments its own kernel would have had. The first launch of
 * anything else - the argmax that closes the step - or the end of the
 * record first sends the instructions gathered so far as one launch of
 * decode_persist. A decode step of Qwen3-0.6B is then three launches in
 * its graph: embed, the program (28 layers x 6 ops + the lm_head), argmax.
 *
 * The instructions' device memory belongs to the record (two counters of
 * the kernel's barriers, then the program) and is filled once the capture
 * has ended: the kernel reads it when the graph is replayed. An op the
 * kernel does not take (a weight row wider than a slot, a head dim above
 * 128, an input row larger than its shared memory) is launched as usual,
 * after the instructions before it: the step stays correct, only slower.
 * FS_CUDA_PERSIST=0 records every op as its own launch (for A/B runs).
 *
 * Docs: docs/gpu.md
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_private.h"
#include "util.h"

#define CEIL_DIV(a, b) (((a) + (b) - 1) / (b))
#define PS_SYNC_BYTES 256   /* the counters, in front of the instructions */

long fs_cuda_persist_launches;

static int elems_per_vec(int dt) { return dt == FS_CU_F32 ? 4 : dt == FS_CU_Q8_0 ? 16 : dt == FS_CU_Q4_0 ? 32 : 8; }

/* The shared memory a block gets: as many 16 KB weight slots as fit
 * beside the region (the largest matmul input row this reserve allows,
 * or decode attention's scores at its n_ctx, whichever is larger) and the
 * kernel's own ~9 KB; at least 4 slots, or the GPU does not run it. */
void fs_cuda_persist_init(cuda_ctx *c) {
    c->ps_slots = 0;
    if (!c->persist || c->cc_major < 9 || !c->k.decode_persist || c->Hkv < 1) return;
    int group = c->Hq / c->Hkv;
    size_t region = fs_cuda_gemv_smem(c->max_K);
    int n_split = fs_cuda_attn_splits(c->n_ctx, group, c->D), chunk = CEIL_DIV(c->n_ctx, n_split);
    int grow = c->att_min_keys < c->n_ctx ? c->att_min_keys : c->n_ctx;
    if (grow > chunk && fs_cuda_attn_smem(grow, 1, group, c->D) <= 40960) chunk = grow;
    size_t att = fs_cuda_attn_smem(chunk, 1, group, c->D);
    if (att > region) region = att;
    region = (region + 15) & ~(size_t)15;
    int optin = 0;
    c->cu.DeviceGetAttribute(&optin, FS_CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, c->dev);
    for (int slots = FS_CU_PS_MAX_SLOTS; slots >= 4; slots--) {
        size_t bytes = (size_t)slots * FS_CU_PS_SLOT + region;
        if (bytes > (size_t)optin) continue;
        if (c->cu.FuncSetAttribute(c->k.decode_persist, FS_CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, (int)bytes))
            continue;   /* with the kernel's static shared memory, too much */
        c->ps_slots = slots;
        c->ps_region = (int)region;
        if (!strstr(c->desc, "persistent"))   /* fs bench's backend line says so */
            snprintf(c->desc + strlen(c->desc), sizeof c->desc - strlen(c->desc), ", persistent decode step");
        return;
    }
}

/* FS_CUDA_PERSIST_PROF: three timestamps per instruction per block,
 * after the program */
static size_t prof_bytes(const cuda_ctx *c) {
    return c->ps_prof ? (size_t)c->prog_cap * (size_t)c->sm_count * 3 * sizeof(unsigned long long) : 0;
}
static CUdeviceptr prof_at(const cuda_ctx *c, CUdeviceptr prog, int cap, int i) {
    return prog + PS_SYNC_BYTES + (size_t)cap * sizeof(fs_cu_instr) + (size_t)i * (size_t)c->sm_count * 3 * 8;
}

/* Before a record's capture begins (its memory is allocated and its
 * counters zeroed outside the capture). Without memory, nothing is
 * persisted: the ops launch as usual. */
void fs_cuda_persist_begin(cuda_ctx *c) {
    c->n_prog = c->prog_sent = 0;
    c->prog_dev = 0;
    if (!c->ps_slots) return;
    if (c->prog_cap < 64) c->prog_cap = 512;
    c->prog = fs_xrealloc(c->prog, (size_t)c->prog_cap * sizeof *c->prog);
    if (c->cu.MemAlloc(&c->prog_dev, PS_SYNC_BYTES + (size_t)c->prog_cap * sizeof(fs_cu_instr) + prof_bytes(c))) {
        c->prog_dev = 0;
        return;
    }
    fs_cuda_check(c, c->cu.MemsetD32Async(c->prog_dev, 0, PS_SYNC_BYTES / 4, c->stream), "persistent step (counters)");
}

/* The next instruction of the program being recorded, or NULL: not
 * recording one, or it is full (the rest of this step launches as usual;
 * the next record gets twice the room). */
static fs_cu_instr *next_instr(cuda_ctx *c, int op) {
    if (!c->capturing || !c->prog_dev || c->T != 1) return NULL;
    if (c->n_prog >= c->prog_cap) {
        c->prog_full = 1;   /* the next record gets twice the room (this one's memory is fixed) */
        return NULL;
    }
    fs_cu_instr *in = &c->prog[c->n_prog++];
    memset(in, 0, sizeof *in);
    in->op = op;
    return in;
}

int fs_cuda_persist_mm(cuda_ctx *c, const fs_cu_mm *a) {
    if (!c->capturing || !c->prog_dev || a->T != 1) return 0;
    int E = elems_per_vec(a->dtype), quant = a->dtype == FS_CU_Q8_0 || a->dtype == FS_CU_Q4_0;
    if (a->K % 4 || a->K % E || (quant && a->K % 256)) return 0;   /* whole vectors; scale rows in 16 bytes */
    size_t wrow = (size_t)a->K / (size_t)E * 16, srow = quant ? (size_t)a->K / 16 : 0;
    if (wrow + srow > FS_CU_PS_SLOT || fs_cuda_gemv_smem(a->K) > (size_t)c->ps_region) return 0;
    for (int i = 0; i < a->n_out; i++)
        if (a->out[i].w % 16 || (quant && a->out[i].scales % 16)) return 0;   /* the bulk copies' alignment */
    fs_cu_instr *in = next_instr(c, FS_CU_OP_MM);
    if (!in) return 0;
    in->u.mm = *a;
    return 1;
}

int fs_cuda_persist_rope(cuda_ctx *c, const fs_cu_rope *a) {
    if (!c->capturing || !c->prog_dev || a->D > 256) return 0;
    fs_cu_instr *in = next_instr(c, FS_CU_OP_ROPE);
    if (!in) return 0;
    in->u.rope = *a;
    return 1;
}

int fs_cuda_persist_attn(cuda_ctx *c, const fs_cu_attn *a, size_t smem) {
    if (!c->capturing || !c->prog_dev || a->D > 128 || smem > (size_t)c->ps_region) return 0;
    fs_cu_instr *in = next_instr(c, FS_CU_OP_ATTN);
    if (!in) return 0;
    in->u.attn = *a;
    return 1;
}

/* The instructions not yet launched, as one launch: one block per SM. */
void fs_cuda_persist_flush(cuda_ctx *c) {
    int n = c->n_prog - c->prog_sent;
    if (n <= 0) return;
    fs_cu_persist p = {0};
    p.prog = c->prog_dev + PS_SYNC_BYTES + (size_t)c->prog_sent * sizeof(fs_cu_instr);
    p.sync = c->prog_dev;
    p.n = n;
    p.n_slot = c->ps_slots;
    p.region = c->ps_region;
    p.flags = (c->persist >= 2 ? FS_CU_PS_LIGHT_BARRIER : 0) | (c->persist >= 3 ? FS_CU_PS_FUSE_ROPE : 0);
    p.prof = c->ps_prof ? prof_at(c, c->prog_dev, c->prog_cap, c->prog_sent) : 0;
    c->prog_sent = c->n_prog;   /* first: the launch below must not flush again */
    void *params[] = {&p};
    fs_cuda_launch(c, c->k.decode_persist, (unsigned)c->sm_count, 1, FS_CU_PS_THREADS,
                   (unsigned)((size_t)c->ps_slots * FS_CU_PS_SLOT + (size_t)c->ps_region), params,
                   "decode step (persistent)");
    fs_cuda_persist_launches++;
}

/* After the capture: the program into the record's memory (ok), which
 * the record keeps; or freed (the record failed, or nothing persisted). */
CUdeviceptr fs_cuda_persist_end(cuda_ctx *c, int ok, int **prof_info, int *n_out) {
    CUdeviceptr d = c->prog_dev;
    int n = c->n_prog, cap = c->prog_cap;
    if (prof_info) *prof_info = NULL;
    if (n_out) *n_out = n;
    c->prog_dev = 0;
    c->n_prog = c->prog_sent = 0;
    if (c->prog_full) c->prog_cap *= 2;
    c->prog_full = 0;
    if (!d) return 0;
    if (!ok || n == 0) {
        c->cu.MemFree(d);
        return 0;
    }
    fs_cuda_check(c, c->cu.MemcpyHtoDAsync(d + PS_SYNC_BYTES, c->prog, (size_t)n * sizeof(fs_cu_instr), c->stream),
                  "persistent step (program upload)");
    fs_cuda_check(c, c->cu.StreamSynchronize(c->stream), "persistent step (program upload)");
    if (c->ps_prof && prof_info) {   /* what each instruction is; the cap rides along (the stamps' offset) */
        int *info = fs_xmalloc((size_t)(3 * n + 1) * sizeof(int));
        info[0] = cap;
        for (int i = 0; i < n; i++) {
            const fs_cu_instr *in = &c->prog[i];
            info[1 + 3 * i] = in->op;
            info[2 + 3 * i] = in->op == FS_CU_OP_MM ? in->u.mm.N_total : 0;
            info[3 + 3 * i] = in->op == FS_CU_OP_MM ? in->u.mm.K : 0;
        }
        *prof_info = info;
    }
    return d;
}

/* The report: per kind of instruction (op, rows, K), the mean over its
 * occurrences of: work = the last block's end - the first block's start;
 * input = the last block's input ready - the first start (matmuls);
 * wait = the next instruction's first start - this one's last end (the
 * barrier); skew = the last start - the first start. */
void fs_cuda_persist_report(cuda_ctx *c, CUdeviceptr prog, int n, int *info) {
    int G = c->sm_count, cap = info[0];
    size_t per = (size_t)G * 3;
    unsigned long long *t = fs_xmalloc((size_t)n * per * sizeof *t);
    if (c->cu.MemcpyDtoHAsync(t, prof_at(c, prog, cap, 0), (size_t)n * per * sizeof *t, c->stream) ||
        c->cu.StreamSynchronize(c->stream)) {
        free(t);
        free(info);
        return;
    }
    struct kind {
        int op, N, K, count;
        double work, input, wait, skew;
    } kind[32];
    int n_kind = 0;
    double first = 1e300, last = 0;
    for (int i = 0; i < n; i++) {
        const unsigned long long *ti = t + (size_t)i * per;
        double s0 = 1e300, s1 = 0, in1 = 0, e1 = 0;
        for (int b = 0; b < G; b++) {
            double a = (double)ti[3 * b], m = (double)ti[3 * b + 1], z = (double)ti[3 * b + 2];
            if (a < s0) s0 = a;
            if (a > s1) s1 = a;
            if (m > in1) in1 = m;
            if (z > e1) e1 = z;
        }
        double next = s0;
        if (i + 1 < n) {
            next = 1e300;
            for (int b = 0; b < G; b++)
                if ((double)t[(size_t)(i + 1) * per + 3 * b] < next) next = (double)t[(size_t)(i + 1) * per + 3 * b];
        }
        if (s0 < first) first = s0;
        if (e1 > last) last = e1;
        int op = info[1 + 3 * i], N = info[2 + 3 * i], K = info[3 + 3 * i], k = 0;
        while (k < n_kind && (kind[k].op != op || kind[k].N != N || kind[k].K != K)) k++;
        if (k == n_kind) {
            if (n_kind == 32) continue;
            kind[n_kind++] = (struct kind){op, N, K, 0, 0, 0, 0, 0};
        }
        kind[k].count++;
        kind[k].work += e1 - s0;
        kind[k].input += in1 - s0;
        kind[k].wait += i + 1 < n ? next - e1 : 0;
        kind[k].skew += s1 - s0;
    }
    fprintf(stderr, "persistent step: %d instructions, %.1f us from the first start to the last end (last replay)\n", n,
            (last - first) / 1e3);
    fprintf(stderr, "  %-22s %5s %9s %9s %9s %9s %10s\n", "instruction", "count", "work us", "input us", "wait us",
            "skew us", "total us");
    static const char *names[4] = {"?", "matmul", "rope_kv", "attention"};
    for (int k = 0; k < n_kind; k++) {
        char label[64];
        if (kind[k].op == FS_CU_OP_MM) snprintf(label, sizeof label, "matmul N=%d K=%d", kind[k].N, kind[k].K);
        else snprintf(label, sizeof label, "%s", names[kind[k].op & 3]);
        double m = kind[k].count;
        fprintf(stderr, "  %-22s %5d %9.2f %9.2f %9.2f %9.2f %10.1f\n", label, kind[k].count, kind[k].work / m / 1e3,
                kind[k].input / m / 1e3, kind[k].wait / m / 1e3, kind[k].skew / m / 1e3,
                (kind[k].work + kind[k].wait) / 1e3);
    }
    free(t);
    free(info);
}
