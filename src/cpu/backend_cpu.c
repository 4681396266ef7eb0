/* backend_cpu.c - the CPU backend ("cpu"): memory, reserve, the op table.
 *
 * It is the reference backend ("cpu-ref", backend_ref.c) with the hot ops
 * replaced. The same host memory, except that big buffers - repacked
 * quantized weights, copies of file-backed weights, the KV cache - live in
 * huge-page arenas (below), and the same cheap ops (copy, argmax, the
 * step), plus
 *   matmul     SIMD (AVX2 / NEON / scalar) on all threads, the input's
 *              rmsnorm / SwiGLU and the residual add folded in
 *                                                   matmul_cpu.c, matmul_float.c, matmul_quant.c
 *   attention  threads; GEMM tiles for a prompt     attention_cpu.c
 *   rope_kv    threads over tokens                  rope_kv_cpu.c
 *   rmsnorm    AVX2 (still summing squares in double)  rmsnorm_cpu.c
 *
 * Everything it needs is allocated before the first op: the thread pool
 * when the backend is created (no thread is ever started per op), the
 * scratch of every op by reserve().
 *
 * Docs: docs/forward.md
 */
#if defined(__APPLE__)
#define _DARWIN_C_SOURCE   /* MAP_ANON, madvise */
#else
#define _DEFAULT_SOURCE    /* MAP_ANONYMOUS, madvise */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cpu_backend.h"
#include "safetensors.h"

/* ---- which kernels ---- */

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* The state components the OS saves for this process (XCR0): a vector or
 * tile register the OS does not save on a context switch must not be used,
 * whatever cpuid says. */
static uint64_t xcr0(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1)) return 0;   /* OSXSAVE */
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static int have_avx2(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int f16c = (c >> 29) & 1, fma = (c >> 12) & 1;
    /* __builtin_cpu_supports also checks that the OS saves the YMM state */
    return f16c && fma && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
/* AVX-VNNI (VEX-encoded vpdpbusd: Zen 5, Intel Alder Lake and later):
 * cpuid leaf 7, subleaf 1, EAX bit 4. The YMM state check is have_avx2's. */
static int have_avx_vnni(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    return (a >> 4) & 1;
}
/* AVX-512 as the decode kernels use it: F, DQ, BW, VL (leaf 7 EBX bits 16,
 * 17, 30, 31) and VNNI (ECX bit 11), with the opmask and ZMM state saved by
 * the OS (XCR0 bits 5-7). Intel since Ice Lake, AMD since Zen 4. */
static int have_avx512(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1, vnni = (c >> 11) & 1;
    return f && dq && bw && vl && vnni && (xcr0() & 0xe0) == 0xe0;
}
/* AVX512_BF16 (vdpbf16ps): leaf 7 subleaf 1 EAX bit 5. */
static int have_avx512_bf16(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    return (a >> 5) & 1;
}
/* AMX: tiles, int8 and bf16 (leaf 7 EDX bits 24, 25, 22), the tile state
 * in XCR0 (bits 17, 18) - and Linux's permission. The tile data is 8 KiB of
 * register state, so Linux (5.16 and later) only saves it for a process
 * that asked: arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA). Without
 * the permission the first tile instruction kills the process (SIGILL);
 * where the request is refused (an older kernel, a sandbox) the AVX-512 and
 * AVX2 kernels run instead. The permission is the process's and lasts. */
static int have_amx(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int tile = (d >> 24) & 1, int8 = (d >> 25) & 1, bf16 = (d >> 22) & 1;
    if (!tile || !int8 || !bf16 || (xcr0() & 0x60000) != 0x60000) return 0;
#if defined(__linux__) && defined(__x86_64__) && defined(SYS_arch_prctl)
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
    return 0;
#endif
}
#endif

#if defined(__aarch64__)
#if defined(__linux__)
#include <sys/auxv.h>
#ifndef AT_HWCAP2
#define AT_HWCAP2 26   /* older C libraries' headers lack it */
#endif
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif
/* The dot product (sdot) and int8 matrix multiply (smmla) extensions:
 * optional in ARMv8.2 / v8.6 and not implied by the architecture level a
 * core reports (Cortex-A55 has sdot, Apple M1 sdot but not smmla, M2 and
 * Graviton 3 both), so they are asked of the OS: Linux's HWCAP bits
 * (ASIMDDP: AT_HWCAP bit 20; I8MM: AT_HWCAP2 bit 13), macOS's sysctl
 * hw.optional.arm.FEAT_*. A binary compiled for them (-march=...+dotprod)
 * runs only where they exist, so it has them. */
__attribute__((unused)) static int arm_feature(int hwcap2, unsigned long bit, const char *sysctl_name) {
#if defined(__linux__)
    (void)sysctl_name;
    return (getauxval(hwcap2 ? AT_HWCAP2 : AT_HWCAP) & bit) != 0;
#elif defined(__APPLE__)
    (void)hwcap2, (void)bit;
    int v = 0;
    size_t n = sizeof v;
    return sysctlbyname(sysctl_name, &v, &n, NULL, 0) == 0 && v;
#else
    (void)hwcap2, (void)bit, (void)sysctl_name;
    return 0;
#endif
}
static int have_dotprod(void) {
#if defined(__ARM_FEATURE_DOTPROD)
    return 1;
#else
    return arm_feature(0, 1ul << 20, "hw.optional.arm.FEAT_DotProd");
#endif
}
static int have_i8mm(void) {
#if defined(__ARM_FEATURE_MATMUL_INT8)
    return 1;
#else
    return arm_feature(1, 1ul << 13, "hw.optional.arm.FEAT_I8MM");
#endif
}
#endif

/* FS_ISA caps the kernel set: each level includes the ones before it.
 *   scalar   the portable C kernels
 *   avx2     AVX2 + FMA + F16C
 *   avx-vnni and AVX-VNNI
 *   avx512   and AVX-512 (+ BF16 where the CPU has it)
 *   amx      and AMX (the default: everything the CPU has)
 * On aarch64:
 *   neon     NEON (every aarch64 CPU)
 *   dotprod  and the dot product extension (sdot)
 *   i8mm     and the int8 matrix multiply (smmla) (the default) */
#if defined(__aarch64__)
#define ISA_LEVELS "scalar, neon, dotprod, i8mm"
static const char *const levels[] = {"scalar", "neon", "dotprod", "i8mm"};
#else
#define ISA_LEVELS "scalar, avx2, avx-vnni, avx512, amx"
static const char *const levels[] = {"scalar", "avx2", "avx-vnni", "avx512", "amx"};
#endif
#define N_LEVELS ((int)(sizeof levels / sizeof levels[0]))

/* The level FS_ISA names: 0 .. N_LEVELS - 1, N_LEVELS - 1 when unset, -1
 * for a name that is no level of this architecture (FS_ISA=avx2 on
 * aarch64, a typo): fs_backend_cpu_new refuses it rather than run
 * something else than asked. */
static int isa_cap(void) {
    const char *force = getenv("FS_ISA");
    if (!force || !*force) return N_LEVELS - 1;
    for (int i = 0; i < N_LEVELS; i++)
        if (!strcmp(force, levels[i])) return i;
    return -1;
}

fs_cpu_kernels fs_cpu_detect(void) {
    fs_cpu_kernels k = {FS_ISA_SCALAR, 0, 0, 0, 0, 0, 0};
    int cap = isa_cap();
    if (cap < 0) cap = N_LEVELS - 1;
    if (cap == 0) return k;
#if defined(__x86_64__) || defined(__i386__)
    if (!have_avx2()) return k;
    k.isa = FS_ISA_AVX2;
    k.vnni = cap >= 2 && FS_HAVE_VNNI_TARGET && have_avx_vnni();
    k.avx512 = cap >= 3 && FS_HAVE_AVX512_TARGET && have_avx512();
    k.bf16 = k.avx512 && have_avx512_bf16();
    k.amx = cap >= 4 && k.avx512 && k.bf16 && have_amx();
#elif defined(__ARM_NEON) && defined(__aarch64__)
    k.isa = FS_ISA_NEON;
    k.dotprod = cap >= 2 && FS_HAVE_DOTPROD_TARGET && have_dotprod();
    k.i8mm = cap >= 3 && k.dotprod && FS_HAVE_I8MM_TARGET && have_i8mm();
#elif defined(__ARM_NEON)
    k.isa = FS_ISA_NEON;
#endif
    return k;
}

const char *fs_cpu_kernels_name(fs_cpu_kernels k, char *buf, size_t n) {
    const char *base = k.isa == FS_ISA_AVX2 ? "avx2" : k.isa == FS_ISA_NEON ? "neon" : "scalar";
    snprintf(buf, n, "%s%s%s%s%s%s%s", base, k.vnni ? "+avx-vnni" : "", k.avx512 ? "+avx512" : "",
             k.bf16 ? "+bf16" : "", k.amx ? "+amx" : "", k.dotprod ? "+dotprod" : "", k.i8mm ? "+i8mm" : "");
    return buf;
}

/* ---- arenas ---- */

/* Repacked weights and big activation buffers go to arenas: anonymous
 * mappings of at least ARENA_BYTES, 2 MiB aligned and marked for
 * transparent huge pages, handed out front to back. A decode step streams
 * every weight once, and with 4 KiB pages that is a TLB miss every 4 KiB -
 * 155k page walks per Q8_0 token, each a two-level (guest + host) walk in
 * a VM; measured, decode speed with 4 KiB pages fell apart whenever the
 * host was busy (docs/bench.md). An arena is reset when its last buffer is
 * freed; all are unmapped with the backend. */
#define ARENA_BYTES (64u << 20)
#define HUGE_PAGE (2u << 20)

/* len bytes of zero-filled anonymous memory, marked for transparent huge
 * pages (advice: without THP, plain pages); NULL if it cannot be mapped. */
static void *map_huge(size_t len) {
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    if (p == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, len, MADV_HUGEPAGE);
#endif
    return p;
}

/* Room for element n of an array of *cap elements of elem bytes: arr
 * itself, or arr grown to twice its capacity (first: the first one) - the
 * caller stores the result; NULL, arr untouched, when out of memory (the
 * upload path returns an error then rather than abort). */
static void *grow(void *arr, int *cap, int n, int first, size_t elem) {
    if (n < *cap) return arr;
    int c = *cap ? 2 * *cap : first;
    void *p = realloc(arr, (size_t)c * elem);
    if (p) *cap = c;
    return p;
}

static void *arena_alloc(fs_cpu *f, size_t bytes, int *arena) {
    bytes = (bytes + 63) / 64 * 64;
    struct fs_arena *a = f->n_arenas ? &f->arenas[f->n_arenas - 1] : NULL;
    if (!a || a->len - a->used < bytes) {
        struct fs_arena *grown = grow(f->arenas, &f->cap_arenas, f->n_arenas, 8, sizeof *f->arenas);
        if (!grown) return NULL;
        f->arenas = grown;
        size_t len = bytes > ARENA_BYTES ? (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE : ARENA_BYTES;
        size_t map_len = len + HUGE_PAGE;   /* room to align the start */
        char *map = map_huge(map_len);
        if (!map) return NULL;
        char *base = (char *)(((uintptr_t)map + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE);
        a = &f->arenas[f->n_arenas++];
        *a = (struct fs_arena){map, base, map_len, len, 0, 0};
    }
    void *p = a->base + a->used;
    a->used += bytes;
    a->live++;
    *arena = (int)(a - f->arenas) + 1;
    return p;
}

static void arena_free(fs_cpu *f, int arena) {
    struct fs_arena *a = &f->arenas[arena - 1];
    if (--a->live > 0) return;
    madvise(a->base, a->used, MADV_DONTNEED);   /* give the memory back, keep the range */
    a->used = 0;
}

/* ---- buffers ---- */

/* Weights. The reference backend's weights are views into the mmap'd file,
 * which the kernel maps with 4 KiB pages. This backend moves every weight
 * that is file-backed into the huge-page arenas above:
 *   - Q8_0 / Q4_0 matrices, when the AVX2 or NEON kernels run, repacked
 *     into the x8 layout (repack.c) on the way - the same number of bytes;
 *   - everything else (bf16, f16, f32 matrices, quantized ones x8 cannot
 *     take, the 1-D norm weights) copied as it is, where the OS has
 *     transparent huge pages (Linux; elsewhere a copy would buy nothing,
 *     and they stay views).
 * The file's pages are then released (fs_st_release_pages), so the process
 * does not hold the weights twice, and nothing reads the file afterwards:
 * the session releases the whole mapping once every weight is uploaded
 * (fs_model_release_pages). That matters for the small ones too: the page
 * cache may hold the file in 2 MiB folios, and a fault maps a whole folio
 * - the 112 norm weights of Qwen3-0.6B, 2-4 KiB each, read as views, kept
 * 160 MB of the Q8_0 file mapped (docs/bench.md). A tensor uploaded twice
 * (Qwen3's tied embedding and lm_head) shares one copy: uploads of the
 * same data are counted in buf->refs. The big ones are moved in pieces of
 * MOVE_PIECE bytes (whole groups of 8 rows): a piece of the file is read
 * in, moved, and released, so at most a piece is resident twice, not the
 * 165 MB Q8_0 embedding. */
#define MOVE_PIECE (8u << 20)
/* Weights below SMALL_MOVE bytes (the norms) are copied to the heap, not
 * the arenas: squeezed between the big matrices they would shift them off
 * the 2 MiB boundaries, and every arena would end in a part-used huge
 * page (+28 MB of RSS for bf16). */
#define SMALL_MOVE (1u << 20)

static fs_cpu_buf *new_buf(fs_dtype dt, size_t n, int cols, void *data) {
    fs_cpu_buf *buf = calloc(1, sizeof *buf);
    if (!buf) return NULL;
    buf->base.dtype = dt;
    buf->base.n = n;
    buf->base.cols = cols;
    buf->base.data = data;
    buf->refs = 1;
    return buf;
}

static fs_buf *cpu_upload(fs_backend *b, const fs_tensor *t, fs_err *e) {
    fs_cpu *f = cpu_ctx(b);
    if (!t->data) {
        fs_errf(e, "cpu backend: tensor %s has no data", t->name ? t->name : "(unnamed)");
        return NULL;
    }
    int64_t N = t->ndim >= 1 ? t->shape[0] : 1, cols = t->ndim == 2 ? t->shape[1] : 0;
    size_t numel = 1;
    for (int i = 0; i < t->ndim; i++) numel *= (size_t)t->shape[i];
    int x8 = (f->isa == FS_ISA_AVX2 || f->isa == FS_ISA_NEON) && fs_x8_ok(t);
#ifdef MADV_HUGEPAGE
    int copy = !x8 && t->file_backed && t->ndim >= 1 && t->ndim <= 2;   /* memory we own is not also in the file's pages */
#else
    int copy = 0;
#endif
    if (!x8 && !copy) {   /* a view, as the reference's */
        fs_cpu_buf *buf = new_buf(t->dtype, numel, (int)cols, (void *)t->data);
        if (!buf) goto oom;
        buf->base.is_view = 1;
        return &buf->base;
    }
    for (int i = 0; i < f->n_moved; i++) {
        fs_cpu_buf *m = f->moved[i].buf;
        if (f->moved[i].src == t->data && m->base.dtype == t->dtype && m->base.cols == (int)cols &&
            m->base.n == numel && m->x8 == x8) {
            m->refs++;
            return &m->base;
        }
    }
    struct fs_moved *grown = grow(f->moved, &f->cap_moved, f->n_moved, 64, sizeof *f->moved);
    if (!grown) goto oom;
    f->moved = grown;
    int arena = 0;
    void *data = NULL;
    if (t->nbytes >= SMALL_MOVE) data = arena_alloc(f, t->nbytes, &arena);
    else data = aligned_alloc(64, (t->nbytes + 63) / 64 * 64);
    fs_cpu_buf *buf = data ? new_buf(t->dtype, numel, (int)cols, data) : NULL;
    if (!buf) {
        if (arena) arena_free(f, arena);
        else free(data);
        goto oom;
    }
    if (t->ndim == 1) N = 1;   /* one row */
    size_t row_bytes = t->nbytes / (size_t)N;
    int64_t rows = (int64_t)(MOVE_PIECE / row_bytes) / 8 * 8;
    if (rows < 8) rows = 8;
    for (int64_t r0 = 0; r0 < N; r0 += rows) {
        int64_t r1 = r0 + rows < N ? r0 + rows : N;
        const char *src = (const char *)t->data + (size_t)r0 * row_bytes;
        size_t n = (size_t)(r1 - r0) * row_bytes;
        if (t->file_backed) fs_st_prefault_pages(src, n);
        if (x8) fs_x8_repack(t, data, r0 / 8, r1 / 8);
        else memcpy((char *)data + (size_t)r0 * row_bytes, src, n);
        if (t->file_backed) fs_st_release_pages(src, n);   /* not resident twice */
    }
    buf->x8 = x8;
    buf->arena = arena;
    f->moved[f->n_moved].src = t->data;
    f->moved[f->n_moved++].buf = buf;
    return &buf->base;
oom:
    fs_errf(e, "cpu backend: out of memory %s %s (%zu bytes)", x8 ? "repacking" : copy ? "copying" : "uploading",
            t->name ? t->name : "a weight", t->nbytes);
    return NULL;
}

/* Big activation buffers - the KV cache, 2 x n_ctx x Hkv x D floats per
 * layer, and a prefill's activations - go to the arenas too: zero-filled
 * and only backed by memory where written, like calloc, but in 2 MiB
 * pages. A decode step writes one new K and V row per layer, 4 KiB each
 * for Qwen3-0.6B, and attention reads each kv head's rows, 512 B every
 * 4 KiB: with 4 KiB pages the step faults whenever the rows are new and
 * walks the page tables at every row (a two-level walk in a VM); measured
 * on the K and V stores and on attention, docs/bench.md. One arena holds
 * many layers' caches, so even a small cache gets huge pages. */
#define ARENA_MIN_ACT (256u << 10)

static fs_buf *cpu_alloc(fs_backend *b, size_t n, fs_err *e) {
    fs_cpu *f = cpu_ctx(b);
    size_t bytes;
    if (!fs_mul_size(n, sizeof(float), &bytes)) {
        fs_errf(e, "cpu backend: buffer of %zu floats overflows size_t", n);
        return NULL;
    }
    int arena = 0;
    void *data = bytes < ARENA_MIN_ACT ? calloc(n ? n : 1, sizeof(float)) : arena_alloc(f, bytes, &arena);
    fs_cpu_buf *buf = data ? new_buf(FS_DTYPE_F32, n, 0, data) : NULL;
    if (!buf) {
        if (arena) arena_free(f, arena);
        else free(data);
        fs_errf(e, "cpu backend: out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    buf->arena = arena;
    return &buf->base;
}

/* One layer's KV cache (ref.h's layout): each position padded by
 * FS_KV_PAD elements (cpu_backend.h says why); f32, or f16 (half the
 * bytes) when reserve's kv_dtype asked for it. */
static fs_buf *cpu_kv_alloc(fs_backend *b, int n_ctx, int Hkv, int D, fs_err *e) {
    size_t stride = (size_t)Hkv * (size_t)D + FS_KV_PAD, n;
    if (n_ctx < 1 || !fs_mul_size(stride, 2 * (size_t)n_ctx, &n)) {
        fs_errf(e, "cpu backend: KV cache of %d positions x %d x %d floats is not possible", n_ctx, Hkv, D);
        return NULL;
    }
    fs_dtype dt = cpu_ctx(b)->ref.kv_dtype;   /* reserve's: F32 or F16 */
    fs_buf *buf = cpu_alloc(b, dt == FS_DTYPE_F16 ? (n + 1) / 2 : n, e);   /* in floats */
    if (!buf) return NULL;
    buf->dtype = dt;
    buf->n = n;
    buf->n_ctx = n_ctx;
    buf->kv_stride = stride;
    return buf;
}

static void cpu_free_buf(fs_backend *b, fs_buf *base) {
    fs_cpu *f = cpu_ctx(b);
    if (!base) return;
    fs_cpu_buf *buf = (fs_cpu_buf *)base;
    if (buf->refs > 1) {   /* a weight uploaded twice: freed with its last user */
        buf->refs--;
        return;
    }
    for (int i = 0; i < f->n_moved; i++)
        if (f->moved[i].buf == buf) {
            f->moved[i] = f->moved[--f->n_moved];
            break;
        }
    if (buf->arena) arena_free(f, buf->arena);
    else if (!base->is_view) free(base->data);
    free(buf);
}

static size_t cpu_buf_bytes(const fs_backend *b, const fs_buf *buf) {
    (void)b;
    size_t row = buf->cols ? (size_t)buf->cols : buf->n;   /* a weight's rows, or one row */
    return buf->is_view || !row ? 0 : fs_dtype_row_bytes(buf->dtype, (int64_t)row) * (buf->n / row);
}

/* ---- reserve ---- */

static void free_scratch(fs_cpu *f) {
    free(f->pack);
    free(f->qx);
    free(f->qxs);
    free(f->qpack);
    free(f->attn);
    free(f->attn_part);
    free(f->y_add);
    free(f->xs);
    free(f->qxe);
    free(f->tpack);
    f->pack = f->attn = f->attn_part = f->y_add = NULL;
    f->qx = NULL;
    f->qxs = NULL;
    f->qpack = f->tpack = NULL;
    f->xs = NULL;
    f->qxe = NULL;
    f->qpack_stride = f->attn_stride = f->y_add_n = f->tpack_stride = 0;
    f->reserved = 0;
}

/* The scratch of every op, for the largest shapes (backend.h), allocated
 * for the kernels this backend picked at creation. */
static int cpu_reserve(fs_backend *b, const fs_reserve *rs, fs_err *e) {
    fs_cpu *f = cpu_ctx(b);
    free_scratch(f);
    if (fs_ref_reserve(&f->ref, rs, 0, e)) return -1;
    size_t nth = (size_t)f->nth, T = (size_t)rs->max_T, nb = (size_t)rs->max_K / FS_QK;
    int avx2 = f->isa == FS_ISA_AVX2, amx = avx2 && f->amx && rs->max_T >= FS_AMX_MIN_T;
    /* The AMX GEMMs read whole blocks of 16 (quantized) or 32 (bf16) tokens:
     * rows past T are read but never stored, so the input has room for them. */
    size_t Tq = amx ? (T + 15) / 16 * 16 : T, Ts = amx ? (T + 31) / 32 * 32 : FS_GEMM_MIN_T;
    size_t Kp = ((size_t)rs->max_K + 31) / 32 * 32;
    /* Outputs that are added (the residual, fs_linear.add) are computed
     * here first. They add to the residual stream, whose width is some
     * matmul's input width, so max_T * max_K holds them; a call with more
     * runs in slabs of tokens (matmul_cpu.c). */
    f->y_add_n = T * (size_t)rs->max_K > (size_t)rs->max_N ? T * (size_t)rs->max_K : (size_t)rs->max_N;
    int q_gemm = (f->isa == FS_ISA_AVX2 || f->isa == FS_ISA_NEON) && rs->max_T >= FS_GEMM_MIN_T;
    f->qpack_stride = q_gemm ? (fs_cpu_qpack_bytes(rs->max_K) + 63) / 64 * 64 : 0;
    int f16 = rs->kv_dtype == FS_DTYPE_F16;
    f->attn_stride = fs_cpu_attn_tiled(f->isa, rs->max_T, rs->D) ? fs_cpu_attn_stride(rs->n_ctx, rs->D, f16) : 0;
    /* with AMX, the products on tiles: their packs (12 bytes a key and
     * dimension) where they stay within FS_AMX_ATTN_MAX_BYTES a thread */
    f->amx_attn = f->attn_stride && avx2 && f->amx && rs->D % 32 == 0 && !f->no_amx_attn &&
                  fs_amx_attn_bytes(rs->n_ctx, rs->D) <= FS_AMX_ATTN_MAX_BYTES;
    if (f->amx_attn) {
        size_t need = (fs_amx_attn_bytes(rs->n_ctx, rs->D) + 63) / 64 * 16;   /* floats, 64-byte rows */
        if (need > f->attn_stride) f->attn_stride = need;
    }
    size_t *n = &f->reserved;
    if (!(f->pack = fs_ref_scratch(nth * 2 * FS_PANEL_K * FS_PANEL_N, sizeof(float), n, "GEMM panels", e)) ||
        !(f->qx = fs_ref_scratch(Tq * nb, sizeof *f->qx, n, "the quantized matmul input", e)) ||
        !(f->qxs = fs_ref_scratch(Tq * nb, sizeof *f->qxs, n, "the quantized matmul input's sums", e)) ||
        (avx2 && f->avx512 &&
         !(f->qxe = fs_ref_scratch((size_t)FS_GEMM_MIN_T * nb * 512, 1, n, "the AVX-512 decode input", e))) ||
        (avx2 && (amx || f->bf16) &&
         !(f->xs = fs_ref_scratch(3 * Ts * Kp, sizeof *f->xs, n, "the input's bf16 parts", e))) ||
        (amx && !(f->tpack = fs_ref_scratch(nth * fs_amx_pack_bytes(rs->max_K), 1, n, "AMX weight tiles", e))) ||
        (q_gemm && !(f->qpack = fs_ref_scratch(nth * f->qpack_stride, 1, n, "quantized GEMM panels", e))) ||
        (f->attn_stride && !(f->attn = fs_ref_scratch(nth * f->attn_stride, sizeof(float), n, "prefill attention", e))) ||
        !(f->attn_part = fs_ref_scratch((size_t)FS_ATTN_MAX_PARTS(f->nth) * FS_ATTN_MAX_GROUP * (size_t)(rs->D + 2),
                                        sizeof(float), n, "split attention", e)) ||
        !(f->y_add = fs_ref_scratch(f->y_add_n, sizeof(float), n, "matmul outputs before the residual add", e))) {
        free_scratch(f);
        fs_ref_free(&f->ref);
        return -1;
    }
    if (Tq > T) {   /* rows the AMX GEMM reads past T (and never stores) */
        memset(f->qx + T * nb, 0, (Tq - T) * nb * sizeof *f->qx);
        memset(f->qxs + T * nb, 0, (Tq - T) * nb * sizeof *f->qxs);
    }
    if (amx) f->tpack_stride = fs_amx_pack_bytes(rs->max_K);
    /* The weights are uploaded: measure (or look up) how their decode runs
     * best on this machine (tune_cpu.c), and say so in describe. */
    fs_cpu_tune(f);
    fs_cpu_describe(f);
    return 0;
}

static size_t cpu_reserved_bytes(const fs_backend *b) {
    const fs_cpu *f = b->ctx;
    return f->reserved + f->ref.reserved;
}

/* ---- the ops this file holds ---- */

/* embed: a row of an x8 table is spread over its group's superblocks. */
static void cpu_embed(fs_backend *b, const fs_buf *table, int H, fs_buf *out) {
    const fs_ref *r = ref_ctx(b);
    if (!cpu_buf(table)->x8) {
        fs_ref_embed(b, table, H, out);
        return;
    }
    for (int t = 0; t < r->T; t++)
        fs_x8_dequant_row(table->data, table->dtype, (int64_t)(table->n / (size_t)H), H, r->ids[t],
                          buf_f32_mut(out) + (size_t)t * (size_t)H);
}

/* argmax: argmax.c's rule on vectors (vec_cpu.c); a batch's rows a
 * chunk each of the pool's loop (8 rows of 151,936 logits are a
 * millisecond on one core with the scalar loop). */
static int cpu_argmax(fs_backend *b, const fs_buf *x, int n) {
    return fs_vargmax(cpu_ctx(b)->isa, buf_f32(x), n);
}

typedef struct {
    fs_isa isa;
    const float *x;
    int n, *out;
} argmax_job;

static void argmax_chunk(void *arg, int r, int tid) {
    (void)tid;
    const argmax_job *j = arg;
    j->out[r] = fs_vargmax(j->isa, j->x + (size_t)r * (size_t)j->n, j->n);
}

static void cpu_argmax_rows(fs_backend *b, const fs_buf *x, int rows, int n, int *out) {
    fs_cpu *f = cpu_ctx(b);
    argmax_job j = {f->isa, buf_f32(x), n, out};
    if (rows == 1) argmax_chunk(&j, 0, 0);
    else fs_threadpool_for(f->pool, rows, argmax_chunk, &j);
}

/* Queued (backend.h): known at once on the CPU, kept as the reference
 * keeps it (argmax.c) for the next set_step with no ids and argmax_take. */
static void cpu_argmax_queue(fs_backend *b, const fs_buf *x, int n, int slot) {
    fs_cpu *f = cpu_ctx(b);
    f->ref.argmax_slot[slot & 1] = f->ref.argmax_last = fs_vargmax(f->isa, buf_f32(x), n);
}

static void cpu_destroy(fs_backend *b) {
    fs_cpu *f = cpu_ctx(b);
    if (f) {
        fs_threadpool_free(f->pool);
        free_scratch(f);
        fs_ref_free(&f->ref);
        free(f->bw_sums);
        free(f->moved);
        for (int i = 0; i < f->n_arenas; i++) munmap(f->arenas[i].map, f->arenas[i].map_len);
        free(f->arenas);
        free(f);
    }
    free(b);
}

fs_backend *fs_backend_cpu_new(int n_threads, fs_err *e) {
    fs_backend *b = calloc(1, sizeof *b);
    fs_cpu *f = calloc(1, sizeof *f);
    if (!b || !f) {
        free(b);
        free(f);
        fs_errf(e, "cpu backend: out of memory");
        return NULL;
    }
    b->ctx = f;
    b->destroy = cpu_destroy;
    if (isa_cap() < 0) {
        fs_errf(e, "cpu backend: FS_ISA=%s is not a kernel set of this architecture (one of " ISA_LEVELS ")",
                getenv("FS_ISA"));
        cpu_destroy(b);
        return NULL;
    }
    f->pool = fs_threadpool_new(n_threads, e);
    if (!f->pool) {
        cpu_destroy(b);
        return NULL;
    }
    f->nth = fs_threadpool_size(f->pool);
    /* FS_ATTN_ALL_HEADS=0: decode attention at long contexts keeps one kv
     * head a chunk (attention_cpu.c), to measure what taking them all buys */
    const char *ah = getenv("FS_ATTN_ALL_HEADS");
    f->attn_all_heads = !ah || strcmp(ah, "0") != 0;
    /* FS_AMX_ATTN=0: prefill attention stays on AVX-512 where AMX could
     * take its products (attention_amx.c), to measure what the tiles buy */
    const char *ax = getenv("FS_AMX_ATTN");
    f->no_amx_attn = ax && !strcmp(ax, "0");
    /* FS_ATTN_AHEAD=BYTES: decode attention's L2 prefetch distance
     * (attention_cpu.c; 0 turns it off) */
    const char *aa = getenv("FS_ATTN_AHEAD");
    f->attn_ahead = FS_ATTN_AHEAD;
    if (aa && *aa) {   /* set and not empty */
        char *end;
        long v = strtol(aa, &end, 10);
        if (end == aa || *end || v < 0 || v > (1 << 20)) {
            cpu_destroy(b);
            fs_errf(e, "FS_ATTN_AHEAD=%s: want a byte count from 0 to 1048576", aa);
            return NULL;
        }
        f->attn_ahead = (int)v;
    }
    fs_cpu_set_kernels(f, fs_cpu_detect());
    fs_cpu_plan_defaults(f);
    f->bw_sums = calloc((size_t)f->nth * 8, sizeof *f->bw_sums);
    if (!f->bw_sums) {
        cpu_destroy(b);
        fs_errf(e, "cpu backend: out of memory");
        return NULL;
    }
    fs_cpu_describe(f);
    b->name = "cpu";
    b->kv_default = FS_DTYPE_F16;
    b->alloc = cpu_alloc;
    b->upload = cpu_upload;
    b->kv_alloc = cpu_kv_alloc;
    b->free_buf = cpu_free_buf;
    b->reserve = cpu_reserve;
    b->write = fs_ref_write;
    b->read = fs_ref_read;
    b->buf_bytes = cpu_buf_bytes;
    b->set_step = fs_ref_set_step;
    b->embed = cpu_embed;
    b->rmsnorm = fs_cpu_rmsnorm;
    b->matmul = fs_cpu_matmul;
    b->rope_kv = fs_cpu_rope_kv;
    b->attention = fs_cpu_attention;
    b->copy = fs_ref_copy;
    b->argmax = cpu_argmax;
    b->argmax_rows = cpu_argmax_rows;
    b->argmax_queue = cpu_argmax_queue;
    b->argmax_take = fs_ref_argmax_take;
    b->sync = fs_ref_sync;
    b->describe = fs_ref_describe;
    b->reserved_bytes = cpu_reserved_bytes;
    b->bandwidth = fs_cpu_bandwidth;
    return b;
}
