// bam-mix low-precision weight kernels, chosen at run time from the CPU's flags.
//
// Weights stay in their stored type (f32, f16, bf16, ggml's Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K, IQ4_NL, IQ4_XS) and are read by:
//  - decode kernels (`matmul_*`): one to eight activation rows against a range of weight rows,
//    each weight row read once for all activation rows, widened or dequantized in registers;
//  - panel converters (`*_to_f32`): a block of weight rows widened into an f32 buffer that an
//    sgemm then reuses for every activation row (prefill), and the bulk f16/bf16 <-> f32
//    conversions used when loading or saving.
//
// Every kernel exists once per family (portable C, AVX2+FMA+F16C, AVX-512F/BW/VL, and VNNI
// variants of the Q8_0 dot product); `bam_kernels_for` returns a family's table when this CPU and
// build can run it. No global -m flags: the x86 families are compiled with per-function
// `target` attributes and only ever called after the cpuid check, so the same binary runs on any
// x86-64, and arm64 builds contain only the portable C family. AVX512_BF16 is detected for
// reports only: its dot product (vdpbf16ps) needs the activations rounded to bf16, which would
// lose the exactness of widening bf16 weights, and decode is memory-bound anyway.
//
// Pointers to stored weights and quantized activations are `const void *` because a file mapping
// need not align them (safetensors data starts at any byte); the kernels load them unaligned.
#ifndef BAM_KERNELS_H
#define BAM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// ggml's Q8_0 block (ggml-common.h `block_q8_0`): an IEEE half scale d, then 32 int8 q; x = d * q.
#define BAM_Q8_0_BLOCK 32
#define BAM_Q8_0_BYTES 34

/// ggml's 4- and 5-bit blocks of 32 that decode multiplies by Q8_0 activations, as llama.cpp does:
/// Q4_0 (half d, 16 bytes of nibbles; x = d * (q - 8)), Q5_0 (half d, 32 fifth bits, 16 bytes of
/// nibbles; x = d * (q - 16)), and Q4_1 / Q5_1 (half d and half m before the bits; x = d * q + m).
/// Values 0-15 of a block are the low nibbles, 16-31 the high ones.
#define BAM_Q4_0_BYTES 18
#define BAM_Q5_0_BYTES 22
#define BAM_Q4_1_BYTES 20
#define BAM_Q5_1_BYTES 24

/// ggml's non-linear 4-bit types, each code an index into a 16-entry codebook of int8 levels
/// (kvalues_iq4nl): IQ4_NL (half d, 16 bytes of codes; x = d * k[q]), multiplied by Q8_0
/// activations, and IQ4_XS (256 values: half d, 16 bits of high scale bits, 4 bytes of low scale
/// nibbles, 128 bytes of codes; x = d * (ls - 32) * k[q] per sub-block of 32), by Q8_K ones.
#define BAM_IQ4_NL_BYTES 18
#define BAM_IQ4_XS_BYTES 136

/// ggml's k-quant super-blocks of 256 values (ggml-common.h): Q2_K (16 bytes of 4-bit scale and
/// min pairs, 64 bytes of 2-bit codes, half d, dmin; x = d * sc * q - dmin * m per sub-block of
/// 16), Q3_K (32 bytes of third bits, 64 bytes of low 2-bit pairs, 12 bytes of sixteen 6-bit
/// scales, half d; x = d * (sc - 32) * (q - 4) per sub-block of 16, q of 3 bits), Q4_K (half d, dmin, 12 bytes of
/// eight 6-bit scales and mins, 128 bytes of nibbles; x = d * sc * q - dmin * m per sub-block of
/// 32), Q5_K (Q4_K's header, then 32 bytes of fifth bits before the nibbles) and Q6_K (128 bytes of low nibbles, 64 of high 2-bit pairs, 16 int8 scales, half d;
/// x = d * sc * (q - 32) per sub-block of 16). Decode multiplies them by Q8_K activations:
/// float d, 256 int8 q, and the int16 sums of each 16 q (what ggml's quantize_row_q8_K_ref writes).
#define BAM_QK_K 256
#define BAM_Q2_K_BYTES 84
#define BAM_Q3_K_BYTES 110
#define BAM_Q4_K_BYTES 144
#define BAM_Q5_K_BYTES 176
#define BAM_Q6_K_BYTES 210
#define BAM_Q8_K_BYTES 292

/// The most activation rows one `matmul_*` call takes (the decode kernels keep one accumulator
/// per activation row and weight row in registers).
#define BAM_MATMUL_MAX_ROWS 8

/// Kernel families, in the order the automatic choice prefers them (last supported wins).
typedef enum bam_family {
    BAM_FAMILY_GENERIC = 0,      // portable C (every CPU; the only family on arm64)
    BAM_FAMILY_AVX2 = 1,         // AVX2 + FMA + F16C
    BAM_FAMILY_AVX2_VNNI = 2,    // AVX2 family, Q8_0 dot through AVX-VNNI (vpdpbusd, VEX)
    BAM_FAMILY_AVX512 = 3,       // AVX-512 F + BW + VL (+ the AVX2 set)
    BAM_FAMILY_AVX512_VNNI = 4,  // AVX-512 family, Q8_0 dot through AVX512_VNNI
    BAM_FAMILY_COUNT = 5
} bam_family;

/// Y[t * ldy + r] = sum_c W[r][c] * X[t][c] for r in [0, rows), t in [0, T), 1 <= T <= 8.
/// W: `rows` rows of `cols` stored values, row r at w + r * w_stride bytes. X: T rows, row t at
/// x + t * x_stride bytes: float32 for the f32/f16/bf16 kernels, Q8_0 blocks (from
/// `quantize_q8_0`, cols a multiple of 32) for the Q8_0 kernel. Y is overwritten.
typedef void (*bam_matmul_fn)(float *y, size_t ldy, const void *w, size_t w_stride, const void *x, size_t x_stride,
                              int T, int rows, int cols);

typedef struct bam_kernels {
    const char *name;   // "generic", "avx2", "avx2-vnni", "avx512", "avx512-vnni"
    bam_matmul_fn matmul_f32;
    bam_matmul_fn matmul_f16;
    bam_matmul_fn matmul_bf16;
    bam_matmul_fn matmul_q8_0;
    /// Q4_0, Q4_1, Q5_0 and Q5_1 weights against Q8_0 activation rows (cols a multiple of 32), Q2_K..Q6_K
    /// weights against Q8_K activation rows (from `quantize_q8_K`, cols a multiple of 256): each
    /// block's products summed exactly in integers, then scaled in float32, as ggml's
    /// vec_dot_*_q8_0 / vec_dot_*_q8_K.
    bam_matmul_fn matmul_q4_0;
    bam_matmul_fn matmul_q5_0;
    bam_matmul_fn matmul_q4_1;
    bam_matmul_fn matmul_q5_1;
    bam_matmul_fn matmul_q2_K;
    bam_matmul_fn matmul_q3_K;
    bam_matmul_fn matmul_q4_K;
    bam_matmul_fn matmul_q5_K;
    bam_matmul_fn matmul_q6_K;
    bam_matmul_fn matmul_iq4_nl;   // Q8_0 activations
    bam_matmul_fn matmul_iq4_xs;   // Q8_K activations
    /// n values (a multiple of 32) -> n / 32 Q8_0 blocks, exactly as ggml's reference
    /// quantize_row_q8_0_ref and gguf-py: d = max|x| / 127, q = roundf(x / d) (half away from zero).
    void (*quantize_q8_0)(void *dst, const float *src, size_t n);
    /// n values (a multiple of 256) -> n / 256 Q8_K blocks, exactly as ggml's quantize_row_q8_K_ref:
    /// per block the value of largest magnitude `max` (the first of equals), q = nearest_int(-127 /
    /// max * x) (ties to even), d = 1 / (-127 / max), and the sums of each 16 q.
    void (*quantize_q8_K)(void *dst, const float *src, size_t n);
    /// n / 32 Q8_0 blocks -> n values (d * q, exact in float32).
    void (*q8_0_to_f32)(float *dst, const void *src, size_t n);
    /// IEEE half -> float32 (exact); float32 -> half rounds to nearest even, NaN stays NaN.
    void (*f16_to_f32)(float *dst, const void *src, size_t n);
    void (*f32_to_f16)(void *dst, const float *src, size_t n);
    /// bfloat16 -> float32 (exact); float32 -> bfloat16 rounds to nearest even, NaN stays NaN.
    void (*bf16_to_f32)(float *dst, const void *src, size_t n);
    void (*f32_to_bf16)(void *dst, const float *src, size_t n);
    /// y[c] = sum_r p[r] * W[r][c] for c in [0, cols), added to y when `accumulate` is nonzero,
    /// else overwriting it: the weighted sum of `rows` IEEE-half rows (row r at w + r * w_stride
    /// bytes), summed in float32 (the AVX2 kernel interleaves the first and second halves of the
    /// rows, so the order differs from row order). Attention's P V for one query row over an f16
    /// value cache, reading it in place.
    void (*f16_weighted_rows)(float *y, const void *w, size_t w_stride, const float *p, int rows, int cols, int accumulate);
    /// The same over float32 rows: attention's P V for one query row over an f32 value cache.
    void (*f32_weighted_rows)(float *y, const void *w, size_t w_stride, const float *p, int rows, int cols, int accumulate);
} bam_kernels;

/// The family's table, or NULL when this CPU (or this build's architecture) cannot run it.
const bam_kernels *bam_kernels_for(bam_family family);

/// CPU features the dispatcher looked at, as flags (cpuid + xgetbv, read once).
enum {
    BAM_CPU_AVX2 = 1 << 0, BAM_CPU_FMA = 1 << 1, BAM_CPU_F16C = 1 << 2,
    BAM_CPU_AVX512F = 1 << 3, BAM_CPU_AVX512BW = 1 << 4, BAM_CPU_AVX512VL = 1 << 5,
    BAM_CPU_AVX512_VNNI = 1 << 6, BAM_CPU_AVX_VNNI = 1 << 7, BAM_CPU_AVX512_BF16 = 1 << 8,
};
unsigned bam_cpu_features(void);

/// The CPU's spin-wait hint (x86 `pause`, Arm `yield`), for the worker pool's busy-wait
/// (Sources/BamTensors/WorkerPool.swift): it lets a sibling hyper-thread run and saves power while
/// a worker polls for the next hand-off.
static inline void bam_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield");
#endif
}

#ifdef __cplusplus
}
#endif
#endif
