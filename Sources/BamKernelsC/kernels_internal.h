// Scalar helpers shared by every kernel family (the portable family, and the tails of the SIMD
// loops), and the per-family tables the dispatcher hands out.
#ifndef BAM_KERNELS_INTERNAL_H
#define BAM_KERNELS_INTERNAL_H

#include "bam_kernels.h"
#include <math.h>
#include <string.h>

// How the AVX-512 and AVX2 kernels stream one activation row (decode) against short rows: one
// weight row after the other in sequential streams (AVX-512: one, each step prefetching
// BAM_STREAM_PREFETCH_BYTES further on in it, into the rows that follow; AVX2: two, see below). Longer rows, and two to
// eight activation rows, keep four-row tiles that prefetch the next tile's rows. How short
// depends on the CPU, each measured with tools/kernel-ab (a two-thread decode of a 256 MiB
// matrix, both forms alternating in one process):
// - AVX-512, on an EPYC Zen 4: the stream beat the tiles on rows of 512 and 2048 columns (bf16
//   by 15-95 %, Q8_0 by 25-35 %, f32 by 25 % at 512 columns and equal at 2048); on rows of
//   11-22 KiB (5632 columns of f32 or bf16) the tiles were ahead by about 8 %.
// - AVX2, on an EPYC Zen 3 (machine otherwise idle): the stream was ahead only on rows up to
//   about 2 KiB (bf16 at 512 and 1024 columns by 33 % and 9 %, Q8_0 at 512-2048 columns by
//   13-40 %, f32 at 512 by 3 %) and behind from 2.8 KiB on (bf16 at 1408-2048 columns by 4-5 %,
//   f32 at 1024-5632 by 15-19 %, bf16 and Q8_0 at 5632 by 18 % and 10 %); prefetch distances of
//   1, 2 and 4 KiB did alike (while another job ran). Later on the same machine: the AVX2 stream
//   reads a worker's rows as TWO sequential streams (rows r and half + r together), which took
//   Q8_0 rows of 512-1024 columns 7-17 % faster and whole decode 10-30 % (x86_avx2.c), and the
//   f32/f16/bf16 streams dropped their software prefetch (f32 rows of 512 columns 10-18 % faster
//   without it; f16 and bf16 equal); the Q8_0 stream keeps it (12-20 % slower without).
#define BAM_AVX512_STREAM_ROW_MAX_BYTES 8192
#define BAM_AVX2_STREAM_ROW_MAX_BYTES 2560
#define BAM_STREAM_PREFETCH_BYTES 4096

// Runs ROWS over a block of `rows` weight rows (row r at w + r * w_stride, its result at y[r]) as
// the AVX2 stream kernels read them, two sequential streams: rows r and half + r together, then
// the odd row left over. ROWS is a call that reads `ys`, `ws` and `n`, which the macro defines:
// the result pointers, the row pointers and how many are used, a constant (2, or 1 for the
// leftover row) so that each inlined call unrolls for its own n.
#define BAM_TWO_STREAMS(y, w, w_stride, rows, ROWS)                                                              \
    do {                                                                                                        \
        const int half_ = (rows) / 2;                                                                           \
        for (int r_ = 0; r_ < half_; r_++) {                                                                    \
            float *const ys[2] = {(y) + r_, (y) + half_ + r_};                                                  \
            const uint8_t *const ws[2] = {(w) + (size_t)r_ * (w_stride), (w) + (size_t)(half_ + r_) * (w_stride)}; \
            const int n = 2;                                                                                    \
            ROWS;                                                                                               \
        }                                                                                                       \
        if ((rows) % 2) {                                                                                       \
            float *const ys[2] = {(y) + (rows) - 1, 0};                                                         \
            const uint8_t *const ws[2] = {(w) + (size_t)((rows) - 1) * (w_stride), 0};                          \
            const int n = 1;                                                                                    \
            ROWS;                                                                                               \
        }                                                                                                       \
    } while (0)

// The bf16 kernels for one activation row (AVX2 and AVX-512, "in pairs") split the activations
// into even and odd elements on the stack, up to this many columns (2 x 16 KiB); wider rows (the
// down projections of 7B-class models) keep the widening loop, whose rows are long enough for the
// hardware prefetcher anyway.
#define BAM_BF16_PAIRED_MAX_COLS 8192

// Unaligned loads: weights come straight from a file mapping.
static inline uint16_t bam_load_u16(const void *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline float bam_load_f32(const void *p) { float v; memcpy(&v, p, 4); return v; }
static inline uint32_t bam_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float bam_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static inline float bam_bf16_to_f32_1(uint16_t h) { return bam_bits_f32((uint32_t)h << 16); }

// Round to nearest even; a NaN keeps its sign and top payload bits and is made quiet (so that
// truncating the payload cannot turn it into infinity).
static inline uint16_t bam_f32_to_bf16_1(float f) {
    uint32_t u = bam_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

#if defined(__aarch64__)
// arm64 converts halves in hardware (fcvt: exact widening, round-to-nearest-even narrowing), the
// same instructions Swift's Float16 conversions use there.
static inline float bam_f16_to_f32_1(uint16_t h) { _Float16 f; memcpy(&f, &h, 2); return (float)f; }
static inline uint16_t bam_f32_to_f16_1(float f) { _Float16 h = (_Float16)f; uint16_t u; memcpy(&u, &h, 2); return u; }
#else
// IEEE binary16 -> binary32, exact. A NaN is quieted, as F16C's vcvtph2ps does.
static inline float bam_f16_to_f32_1(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
    if (exponent == 0x1f) return bam_bits_f32(sign | 0x7f800000u | (mantissa << 13) | (mantissa ? 0x00400000u : 0));
    if (exponent != 0) return bam_bits_f32(sign | ((exponent + 112) << 23) | (mantissa << 13));
    // Zero or subnormal: mantissa * 2^-24, exact in float32.
    float v = (float)mantissa * 0x1p-24f;
    return sign ? -v : v;
}

// binary32 -> binary16, round to nearest even (what vcvtps2ph with _MM_FROUND_TO_NEAREST_INT does).
static inline uint16_t bam_f32_to_f16_1(float f) {
    uint32_t u = bam_f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u | (uint16_t)((a >> 13) & 0x3ffu);  // NaN, quiet
    if (a >= 0x477ff000u) return sign | 0x7c00u;   // >= 65520 (half-way past 65504) -> infinity
    if (a >= 0x38800000u) {                          // a normal half (>= 2^-14): rebias, round 13 bits
        uint32_t r = a - 0x38000000u;
        return sign | (uint16_t)((r + 0x0fffu + ((r >> 13) & 1u)) >> 13);
    }
    if (a < 0x33000000u) return sign;                // < 2^-25 (or exactly it: a tie to even) -> zero
    // Subnormal half: value / 2^-24 rounded to nearest even. value = m * 2^(e - 150).
    uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e;                        // e in [102, 112] -> shift in [14, 24]
    uint32_t q = m >> shift, rest = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rest > half || (rest == half && (q & 1u))) q++;
    return sign | (uint16_t)q;
}
#endif

// One Q8_0 block from 32 floats, as ggml's quantize_row_q8_0_ref (and gguf-py) define it.
static inline void bam_quantize_block_q8_0(uint8_t *dst, const float *x) {
    float amax = 0;
    for (int j = 0; j < BAM_Q8_0_BLOCK; j++) amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    uint16_t dh = bam_f32_to_f16_1(d);
    memcpy(dst, &dh, 2);
    for (int j = 0; j < BAM_Q8_0_BLOCK; j++) {
        float v = roundf(x[j] * id);
        // |x * id| <= 127 up to rounding; NaN (from a NaN input) becomes -128 as the SIMD
        // conversions' "integer indefinite" does, instead of undefined behaviour.
        int q = (v >= -128.0f && v <= 127.0f) ? (int)v : (v > 0 ? 127 : -128);
        dst[2 + j] = (uint8_t)(int8_t)q;
    }
}

// The 6-bit scale and minimum of sub-block j (0..7) of a Q4_K block from its 12 scale bytes
// (ggml's get_scale_min_k4): j < 4 in the low 6 bits of bytes j and j + 4; j >= 4 a nibble of
// byte j + 4 and the top 2 bits of bytes j - 4 and j.
static inline void bam_q4_K_scales(const uint8_t *s, uint8_t sc[8], uint8_t mn[8]) {
    for (int j = 0; j < 4; j++) {
        sc[j] = s[j] & 63;
        mn[j] = s[j + 4] & 63;
        sc[j + 4] = (uint8_t)((s[j + 8] & 0x0F) | ((s[j] >> 6) << 4));
        mn[j + 4] = (uint8_t)((s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4));
    }
}

// The sixteen 6-bit scales of a Q3_K block from its 12 scale bytes, less their offset of 32: the
// low 4 bits of scale i are nibble i / 8 of byte i % 8, its top 2 bits are bits 2 (i / 4) of byte
// 8 + i % 4 (the layout ggml's dequantize_row_q3_K unpacks with kmask1 / kmask2).
static inline void bam_q3_K_scales(const uint8_t *s, int8_t sc[16]) {
    for (int i = 0; i < 16; i++) {
        const int low = (s[i % 8] >> (4 * (i / 8))) & 0x0F, high = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
        sc[i] = (int8_t)((low | (high << 4)) - 32);
    }
}

// ggml's blocks of 32 whose decode kernels multiply Q8_0 activations, and where a block keeps its
// parts: a half scale d, for the _1 types a half minimum m, for the 5-bit types 32 fifth bits
// (`bam_legacy_fifth_at`), then 16 bytes of nibbles (`bam_legacy_nibbles_at`).
enum bam_legacy_type { BAM_L_Q4_0, BAM_L_Q5_0, BAM_L_Q4_1, BAM_L_Q5_1, BAM_L_IQ4_NL };
static inline int bam_legacy_has_min(const enum bam_legacy_type t) { return t == BAM_L_Q4_1 || t == BAM_L_Q5_1; }
static inline int bam_legacy_has_fifth(const enum bam_legacy_type t) { return t == BAM_L_Q5_0 || t == BAM_L_Q5_1; }
static inline int bam_legacy_fifth_at(const enum bam_legacy_type t) { return bam_legacy_has_min(t) ? 4 : 2; }
static inline int bam_legacy_nibbles_at(const enum bam_legacy_type t) {
    return bam_legacy_fifth_at(t) + (bam_legacy_has_fifth(t) ? 4 : 0);
}
static inline int bam_legacy_bytes(const enum bam_legacy_type t) { return bam_legacy_nibbles_at(t) + 16; }

// The block-quantized decode kernels (block_dots.c: portable; x86_block_dots_avx2.c: AVX2, which
// every x86 family's table uses) and the one Q8_K quantizer all families share (a decode step
// quantizes a few thousand activations; the weights' bytes bound it).
void bam_quantize_q8_K(void *dst, const float *src, size_t n);
#define BAM_BLOCK_DOT_ENTRIES(prefix) \
    void prefix##_matmul_q4_0(float *, size_t, const void *, size_t, const void *, size_t, int, int, int); \
    void prefix##_matmul_q5_0(float *, size_t, const void *, size_t, const void *, size_t, int, int, int); \
    void prefix##_matmul_q4_1(float *, size_t, const void *, size_t, const void *, size_t, int, int, int); \
    void prefix##_matmul_q5_1(float *, size_t, const void *, size_t, const void *, size_t, int, int, int); \
    void prefix##_matmul_q2_K(float *, size_t, const void *, size_t, const void *, size_t, int, int, int); \
    void prefix##_matmul_q3_K(float *, size_t, const void *, size_t, const void *, size_t, int, int, int); \
    void prefix##_matmul_q4_K(float *, size_t, const void *, size_t, const void *, size_t, int, int, int); \
    void prefix##_matmul_q5_K(float *, size_t, const void *, size_t, const void *, size_t, int, int, int); \
    void prefix##_matmul_q6_K(float *, size_t, const void *, size_t, const void *, size_t, int, int, int); \
    void prefix##_matmul_iq4_nl(float *, size_t, const void *, size_t, const void *, size_t, int, int, int); \
    void prefix##_matmul_iq4_xs(float *, size_t, const void *, size_t, const void *, size_t, int, int, int);

// ggml's kvalues_iq4nl: the 16 levels an IQ4_NL / IQ4_XS code indexes.
static const int8_t bam_iq4_levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
BAM_BLOCK_DOT_ENTRIES(bam_generic)
#if defined(__x86_64__)
BAM_BLOCK_DOT_ENTRIES(bam_avx2)
#endif

// The family tables (generic.c, x86_avx2*.c, x86_avx512*.c). The VNNI tables differ from their
// family only in the Q8_0 dot product and share the other entries, declared here.
extern const bam_kernels bam_kernels_generic;
#if defined(__x86_64__)
extern const bam_kernels bam_kernels_avx2;
extern const bam_kernels bam_kernels_avx2_vnni;
extern const bam_kernels bam_kernels_avx512;
extern const bam_kernels bam_kernels_avx512_vnni;

#define BAM_SHARED_ENTRIES(prefix) \
    void prefix##_matmul_f32(float *, size_t, const void *, size_t, const void *, size_t, int, int, int); \
    void prefix##_matmul_f16(float *, size_t, const void *, size_t, const void *, size_t, int, int, int); \
    void prefix##_matmul_bf16(float *, size_t, const void *, size_t, const void *, size_t, int, int, int); \
    void prefix##_quantize_q8_0(void *, const float *, size_t); \
    void prefix##_q8_0_to_f32(float *, const void *, size_t); \
    void prefix##_f16_to_f32(float *, const void *, size_t); \
    void prefix##_f32_to_f16(void *, const float *, size_t); \
    void prefix##_bf16_to_f32(float *, const void *, size_t); \
    void prefix##_f32_to_bf16(void *, const float *, size_t);
BAM_SHARED_ENTRIES(bam_avx2)
// The AVX-512 families use the AVX2 kernel (every AVX-512 CPU has AVX2, FMA and F16C): one query
// row's P V reads a value cache of a few hundred KiB at most per head, and the reads bound it.
void bam_avx2_f16_weighted_rows(float *, const void *, size_t, const float *, int, int, int);
void bam_avx2_f32_weighted_rows(float *, const void *, size_t, const float *, int, int, int);
BAM_SHARED_ENTRIES(bam_avx512)
#endif

#endif
