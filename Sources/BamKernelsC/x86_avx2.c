// The AVX2 family (AVX2 + FMA + F16C: Haswell and later, every AMD Zen). Compiled with
// per-function target attributes, so the rest of the program keeps the baseline x86-64 flags;
// dispatch.c hands the table out only after cpuid has confirmed the features.
#if defined(__x86_64__)
#include "kernels_internal.h"
#include "x86_intrinsics.h"

#define AVX2 BAM_TARGET("avx2,fma,f16c")
#define AVX2_INLINE static inline __attribute__((always_inline)) AVX2

enum stored { STORED_F32, STORED_F16, STORED_BF16 };

// Eight stored values widened to float32 in registers (f16 through F16C, bf16 by a 16-bit shift).
AVX2_INLINE __m256 load8(const uint8_t *p, const enum stored kind) {
    switch (kind) {
    case STORED_F32: return _mm256_loadu_ps((const float *)p);
    case STORED_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    default: return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
    }
}

AVX2_INLINE float load1(const uint8_t *p, const enum stored kind) {
    switch (kind) {
    case STORED_F32: return bam_load_f32(p);
    case STORED_F16: return bam_f16_to_f32_1(bam_load_u16(p));
    default: return bam_bf16_to_f32_1(bam_load_u16(p));
    }
}

// Columns c..c+7 of R weight rows against T activation rows, added into acc.
AVX2_INLINE void columns8(__m256 acc[4][BAM_MATMUL_MAX_ROWS], const uint8_t *w, size_t w_stride, const uint8_t *x,
                          size_t x_stride, const int R, const int T, const int c, const enum stored kind,
                          const size_t element_bytes) {
    __m256 wv[4];
    for (int i = 0; i < R; i++) wv[i] = load8(w + (size_t)i * w_stride + (size_t)c * element_bytes, kind);
    for (int t = 0; t < T; t++) {
        const __m256 xv = _mm256_loadu_ps((const float *)(x + (size_t)t * x_stride) + c);
        for (int i = 0; i < R; i++) acc[i][t] = _mm256_fmadd_ps(wv[i], xv, acc[i][t]);
    }
}

// R weight rows against T activation rows: R * T accumulators stay in registers, each weight
// vector is loaded once and used T times, each activation vector once and used R times. R and T
// are compile-time constants at every call site (the switch below), so the loops unroll fully.
//
// The main loop takes 64 bytes of each weight row per step and prefetches the same 64 bytes of
// the next tile's rows (`next`, R rows further on, in memory right after this tile). The rows of
// a decoder's matrices are short (1-3 KiB at hidden sizes of 512-1408), too short for the hardware
// prefetcher to ramp up within one row, while the tiles follow each other in memory. A prefetch
// never faults, so the last tile may point `next` past its rows. Measured with BamBench decode on
// the 58M Llama (EPYC Zen 3, builds with and without, interleaved): see docs/performance.md,
// "Decode kernels".
AVX2_INLINE void tile_widened(float *y, size_t ldy, const uint8_t *w, size_t w_stride, const uint8_t *next,
                              const uint8_t *x, size_t x_stride, const int R, const int T, const int cols,
                              const enum stored kind, const size_t element_bytes) {
    __m256 acc[4][BAM_MATMUL_MAX_ROWS];
    for (int i = 0; i < R; i++)
        for (int t = 0; t < T; t++) acc[i][t] = _mm256_setzero_ps();
    const int step = (int)(64 / element_bytes);   // columns per 64 bytes of a row: 16 or 32
    // Except for one f32 activation row, whose tiles (rows over BAM_AVX2_STREAM_ROW_MAX_BYTES)
    // read 3-21 % faster without it on an EPYC Zen 3 (tools/kernel-ab, rows of 1024-8192 columns):
    // two FMAs per 64 bytes leave the prefetches no time to pay off, and the hardware prefetcher
    // follows four rows of 5.5 KiB or more on its own. bf16 and Q8_0 tiles lost 10-25 % without.
    const int prefetch = !(kind == STORED_F32 && T == 1);
    int c = 0;
    for (; c + step <= cols; c += step) {
        if (prefetch)
            for (int i = 0; i < R; i++) _mm_prefetch((const char *)(next + (size_t)i * w_stride + (size_t)c * element_bytes), _MM_HINT_T0);
        for (int h = 0; h < step; h += 8) columns8(acc, w, w_stride, x, x_stride, R, T, c + h, kind, element_bytes);
    }
    for (; c + 8 <= cols; c += 8) columns8(acc, w, w_stride, x, x_stride, R, T, c, kind, element_bytes);
    for (int i = 0; i < R; i++) {
        for (int t = 0; t < T; t++) {
            float s = bam_hsum8_ps(acc[i][t]);
            const float *xt = (const float *)(x + (size_t)t * x_stride);
            for (int k = c; k < cols; k++) s += load1(w + (size_t)i * w_stride + (size_t)k * element_bytes, kind) * xt[k];
            y[(size_t)t * ldy + i] = s;
        }
    }
}

// One activation row against rows of at most BAM_AVX2_STREAM_ROW_MAX_BYTES, read as TWO
// sequential streams: the worker's rows are cut in halves, and row r of the first half is read
// together with row r of the second (`rows_widened` with n = 2), so that the hardware prefetcher
// runs two streams at once. On an EPYC Zen 3 tools/kernel-ab showed no difference for these
// types on a 256 MiB matrix, but whole decode of the 58M Llama (BamBench decode, the builds
// interleaved) ran 0-13 % faster at f32 and 3-30 % at bf16, and the Q8_0 kernel gained 7-17 %
// even in kernel-ab (see docs/performance.md, "Decode kernels"). No software prefetch: on the
// same machine prefetching 4 KiB ahead in the stream cost f32 rows of 512 columns 10-18 % and
// gained bf16 and f16 nothing. Each 8-column group of a 64-byte step has its own accumulator
// per row (two for f32, four for f16/bf16) to hide the FMA latency.
AVX2_INLINE void rows_widened(float *const y[2], const uint8_t *const row[2], const int n, const float *x, const int cols,
                              const enum stored kind, const size_t element_bytes) {
    const int step = (int)(64 / element_bytes);
    __m256 acc[2][4];
    for (int i = 0; i < n; i++)
        for (int a = 0; a < 4; a++) acc[i][a] = _mm256_setzero_ps();
    int c = 0;
    for (; c + step <= cols; c += step)
        for (int h = 0; h < step; h += 8) {
            const __m256 xv = _mm256_loadu_ps(x + c + h);
            for (int i = 0; i < n; i++)
                acc[i][h / 8] = _mm256_fmadd_ps(load8(row[i] + (size_t)(c + h) * element_bytes, kind), xv, acc[i][h / 8]);
        }
    for (; c + 8 <= cols; c += 8) {
        const __m256 xv = _mm256_loadu_ps(x + c);
        for (int i = 0; i < n; i++) acc[i][0] = _mm256_fmadd_ps(load8(row[i] + (size_t)c * element_bytes, kind), xv, acc[i][0]);
    }
    for (int i = 0; i < n; i++) {
        float s = bam_hsum8_ps(_mm256_add_ps(_mm256_add_ps(acc[i][0], acc[i][1]), _mm256_add_ps(acc[i][2], acc[i][3])));
        for (int k = c; k < cols; k++) s += load1(row[i] + (size_t)k * element_bytes, kind) * x[k];
        *y[i] = s;
    }
}

AVX2_INLINE void stream_widened(float *y, const uint8_t *w, size_t w_stride, const float *x, const int rows,
                                const int cols, const enum stored kind, const size_t element_bytes) {
    BAM_TWO_STREAMS(y, w, w_stride, rows, rows_widened(ys, ws, n, x, cols, kind, element_bytes));
}

// Four weight rows at a time for one activation row (four independent FMA chains), two for two
// to four rows, one beyond (T accumulators are enough chains then).
#define RUN_TILES(R, T)                                                                                           \
    do {                                                                                                          \
        int r = 0;                                                                                                \
        for (; r + (R) <= rows; r += (R))                                                                         \
            tile_widened(y + r, ldy, w + (size_t)r * w_stride, w_stride, w + (size_t)(r + (R)) * w_stride, x,     \
                         x_stride, R, T, cols, kind, bytes);                                                      \
        for (; r < rows; r++)                                                                                     \
            tile_widened(y + r, ldy, w + (size_t)r * w_stride, w_stride, w + (size_t)(r + 1) * w_stride, x,       \
                         x_stride, 1, T, cols, kind, bytes);                                                      \
    } while (0)

AVX2_INLINE void matmul_widened(float *y, size_t ldy, const uint8_t *w, size_t w_stride, const uint8_t *x,
                                size_t x_stride, int T, int rows, int cols, const enum stored kind, const size_t bytes) {
    switch (T) {
    case 1:
        if (w_stride <= BAM_AVX2_STREAM_ROW_MAX_BYTES) stream_widened(y, w, w_stride, (const float *)x, rows, cols, kind, bytes);
        else RUN_TILES(4, 1);
        break;
    case 2: RUN_TILES(2, 2); break;
    case 3: RUN_TILES(2, 3); break;
    case 4: RUN_TILES(2, 4); break;
    case 5: RUN_TILES(1, 5); break;
    case 6: RUN_TILES(1, 6); break;
    case 7: RUN_TILES(1, 7); break;
    default: RUN_TILES(1, 8); break;
    }
}

// bf16 against one activation row without widening instructions: a 32-byte load holds eight
// 32-bit words, word k being the pair (element 2k in its low half, 2k+1 in its high half), so a
// 16-bit left shift gives the even elements as float32 and masking off the low half the odd ones.
// The activations are split into even and odd elements once per call (`even`, `odd`), and each
// 64 bytes of a row cost two loads, two shifts/masks and four FMAs instead of four widening loads
// and four shifts (measured as above, with the next-tile prefetch).
AVX2_INLINE void deinterleave_pairs(float *even, float *odd, const float *x, int n) {
    for (int c = 0; c + 16 <= n; c += 16) {
        const __m256 a = _mm256_loadu_ps(x + c), b = _mm256_loadu_ps(x + c + 8);
        // shuffle_ps per 128-bit lane gives a0 a2 b0 b2 | a4 a6 b4 b6; the 64-bit permute (0, 2, 1, 3)
        // restores the order x0 x2 x4 ... x14 (and x1 x3 ... x15 for the odd selector).
        _mm256_storeu_ps(even + c / 2, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xd8)));
        _mm256_storeu_ps(odd + c / 2, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xdd)), 0xd8)));
    }
}

AVX2_INLINE void tile_bf16_pairs(float *y, const uint8_t *w, size_t w_stride, const uint8_t *next, const float *even,
                                 const float *odd, const float *x, const int R, const int cols, const int paired) {
    const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
    __m256 acc_even[4], acc_odd[4];
    for (int i = 0; i < R; i++) acc_even[i] = acc_odd[i] = _mm256_setzero_ps();
    for (int c = 0; c < paired; c += 32) {
        for (int i = 0; i < R; i++) _mm_prefetch((const char *)(next + (size_t)i * w_stride + (size_t)c * 2), _MM_HINT_T0);
        for (int h = 0; h < 32; h += 16) {
            const __m256 xe = _mm256_loadu_ps(even + (c + h) / 2), xo = _mm256_loadu_ps(odd + (c + h) / 2);
            for (int i = 0; i < R; i++) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(w + (size_t)i * w_stride + (size_t)(c + h) * 2));
                acc_even[i] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v, 16)), xe, acc_even[i]);
                acc_odd[i] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v, high)), xo, acc_odd[i]);
            }
        }
    }
    for (int i = 0; i < R; i++) {
        float s = bam_hsum8_ps(_mm256_add_ps(acc_even[i], acc_odd[i]));
        for (int k = paired; k < cols; k++) s += bam_bf16_to_f32_1(bam_load_u16(w + (size_t)i * w_stride + (size_t)k * 2)) * x[k];
        y[i] = s;
    }
}

// The stream form of tile_bf16_pairs (see stream_widened: two streams, rows r and half + r read
// together): each 32-byte half of a 64-byte step has its own even and odd accumulators per row.
AVX2_INLINE void rows_bf16_pairs(float *const y[2], const uint8_t *const row[2], const int n, const float *even,
                                 const float *odd, const float *x, const int cols, const int paired) {
    const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
    __m256 acc[2][4];
    for (int i = 0; i < n; i++)
        for (int a = 0; a < 4; a++) acc[i][a] = _mm256_setzero_ps();
    for (int c = 0; c < paired; c += 32)
        for (int h = 0; h < 32; h += 16) {
            const __m256 xe = _mm256_loadu_ps(even + (c + h) / 2), xo = _mm256_loadu_ps(odd + (c + h) / 2);
            const int a = h / 8;
            for (int i = 0; i < n; i++) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(row[i] + (size_t)(c + h) * 2));
                acc[i][a] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v, 16)), xe, acc[i][a]);
                acc[i][a + 1] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v, high)), xo, acc[i][a + 1]);
            }
        }
    for (int i = 0; i < n; i++) {
        float s = bam_hsum8_ps(_mm256_add_ps(_mm256_add_ps(acc[i][0], acc[i][1]), _mm256_add_ps(acc[i][2], acc[i][3])));
        for (int k = paired; k < cols; k++) s += bam_bf16_to_f32_1(bam_load_u16(row[i] + (size_t)k * 2)) * x[k];
        *y[i] = s;
    }
}

AVX2_INLINE void stream_bf16_pairs(float *y, const uint8_t *w, size_t w_stride, const float *even, const float *odd,
                                   const float *x, const int rows, const int cols, const int paired) {
    BAM_TWO_STREAMS(y, w, w_stride, rows, rows_bf16_pairs(ys, ws, n, even, odd, x, cols, paired));
}

AVX2_INLINE void matmul_bf16_x1(float *y, const uint8_t *w, size_t w_stride, const float *x, int rows, int cols) {
    float even[BAM_BF16_PAIRED_MAX_COLS / 2] __attribute__((aligned(32)));
    float odd[BAM_BF16_PAIRED_MAX_COLS / 2] __attribute__((aligned(32)));
    const int paired = cols / 32 * 32;
    deinterleave_pairs(even, odd, x, paired);
    if (w_stride <= BAM_AVX2_STREAM_ROW_MAX_BYTES) {
        stream_bf16_pairs(y, w, w_stride, even, odd, x, rows, cols, paired);
        return;
    }
    int r = 0;
    for (; r + 4 <= rows; r += 4)
        tile_bf16_pairs(y + r, w + (size_t)r * w_stride, w_stride, w + (size_t)(r + 4) * w_stride, even, odd, x, 4, cols, paired);
    for (; r < rows; r++)
        tile_bf16_pairs(y + r, w + (size_t)r * w_stride, w_stride, w + (size_t)(r + 1) * w_stride, even, odd, x, 1, cols, paired);
}

AVX2 void bam_avx2_matmul_f32(float *y, size_t ldy, const void *w, size_t w_stride, const void *x, size_t x_stride,
                              int T, int rows, int cols) {
    matmul_widened(y, ldy, w, w_stride, x, x_stride, T, rows, cols, STORED_F32, 4);
}

AVX2 void bam_avx2_matmul_f16(float *y, size_t ldy, const void *w, size_t w_stride, const void *x, size_t x_stride,
                              int T, int rows, int cols) {
    matmul_widened(y, ldy, w, w_stride, x, x_stride, T, rows, cols, STORED_F16, 2);
}

AVX2 void bam_avx2_matmul_bf16(float *y, size_t ldy, const void *w, size_t w_stride, const void *x, size_t x_stride,
                               int T, int rows, int cols) {
    if (T == 1 && cols <= BAM_BF16_PAIRED_MAX_COLS) {
        matmul_bf16_x1(y, w, w_stride, x, rows, cols);
        return;
    }
    matmul_widened(y, ldy, w, w_stride, x, x_stride, T, rows, cols, STORED_BF16, 2);
}

// roundf on eight lanes: truncate, then step away from zero where the dropped fraction is at
// least one half (v - trunc(v) is exact). _mm256_round_ps has no half-away-from-zero mode, and
// the reference quantizer uses roundf.
AVX2_INLINE __m256 round_half_away(__m256 v) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    const __m256 step = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0f));
    return _mm256_add_ps(t, _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ), step));
}

// Q8_0 quantization of activations or weights, bit for bit the reference's (kernels_internal.h):
// the same max, the same d = amax / 127 and id = 1 / d, the same products, the same rounding.
AVX2 void bam_avx2_quantize_q8_0(void *dst, const float *src, size_t n) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (size_t b = 0; b < n / BAM_Q8_0_BLOCK; b++) {
        const float *x = src + b * BAM_Q8_0_BLOCK;
        uint8_t *out = (uint8_t *)dst + b * BAM_Q8_0_BYTES;
        __m256 v[4];
        for (int k = 0; k < 4; k++) v[k] = _mm256_loadu_ps(x + 8 * k);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
                                 _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float d = amax / 127.0f;
        const float id = d != 0 ? 1.0f / d : 0.0f;
        const uint16_t dh = (uint16_t)_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        memcpy(out, &dh, 2);
        const __m256 idv = _mm256_set1_ps(id);
        __m256i q[4];
        for (int k = 0; k < 4; k++) q[k] = _mm256_cvttps_epi32(round_half_away(_mm256_mul_ps(v[k], idv)));
        // Saturating packs interleave the 128-bit lanes; the permutation restores element order.
        __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        _mm256_storeu_si256((__m256i *)(out + 2), _mm256_permutevar8x32_epi32(packed, order));
    }
}

AVX2 void bam_avx2_q8_0_to_f32(float *dst, const void *src, size_t n) {
    for (size_t b = 0; b < n / BAM_Q8_0_BLOCK; b++) {
        const uint8_t *blk = (const uint8_t *)src + b * BAM_Q8_0_BYTES;
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(bam_load_u16(blk)));
        for (int k = 0; k < 4; k++) {
            const __m128i q = _mm_loadl_epi64((const __m128i *)(blk + 2 + 8 * k));
            _mm256_storeu_ps(dst + b * BAM_Q8_0_BLOCK + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d));
        }
    }
}

AVX2 void bam_avx2_f16_to_f32(float *dst, const void *src, size_t n) {
    const uint8_t *s = src;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + 2 * i))));
    for (; i < n; i++) dst[i] = bam_f16_to_f32_1(bam_load_u16(s + 2 * i));
}

AVX2 void bam_avx2_f32_to_f16(void *dst, const float *src, size_t n) {
    uint8_t *d = dst;
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(d + 2 * i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) {
        const uint16_t h = bam_f32_to_f16_1(src[i]);
        memcpy(d + 2 * i, &h, 2);
    }
}

AVX2 void bam_avx2_bf16_to_f32(float *dst, const void *src, size_t n) {
    const uint8_t *s = src;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load8(s + 2 * i, STORED_BF16));
    for (; i < n; i++) dst[i] = bam_bf16_to_f32_1(bam_load_u16(s + 2 * i));
}

// Round to nearest even as bam_f32_to_bf16_1 does, eight lanes at a time; NaN lanes keep their
// top bits and are made quiet.
AVX2 void bam_avx2_f32_to_bf16(void *dst, const float *src, size_t n) {
    uint8_t *d = dst;
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff), quiet = _mm256_set1_epi32(0x40);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(src + i);
        const __m256i u = _mm256_castps_si256(v);
        const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), one);
        __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, bias), lsb), 16);
        const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        r = _mm256_blendv_epi8(r, _mm256_or_si256(_mm256_srli_epi32(u, 16), quiet), nan);
        // Every lane holds 0...0xffff, so the unsigned-saturating pack is exact.
        _mm_storeu_si128((__m128i *)(d + 2 * i), _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1)));
    }
    for (; i < n; i++) {
        const uint16_t h = bam_f32_to_bf16_1(src[i]);
        memcpy(d + 2 * i, &h, 2);
    }
}

// Blocks of 64 columns (a head of 64 in one pass over the rows) in eight accumulators, so that
// eight independent FMA chains hide the FMA latency; then blocks of 8; then single columns.
// The 64-column blocks read two streams, as the matrix kernels do for short rows: row r of the
// first half of the rows together with row r of the second half (into the same accumulators), so
// that the prefetcher follows two sequential streams. The values of a head are such short rows
// (256 bytes in f32): two streams read them 6-12 % faster than one at 256 to 4096 positions, f32
// and f16 alike (tools/kernel-ab pv_f32 / pv_f16, EPYC Zen 3).
AVX2_INLINE void weighted_rows(float *y, const void *w, size_t w_stride, const float *p, int rows, int cols,
                               int accumulate, const enum stored kind, const size_t element_bytes) {
    const uint8_t *base = w;
    const int half = rows / 2;
    int c = 0;
    for (; c + 64 <= cols; c += 64) {
        __m256 acc[8];
        for (int k = 0; k < 8; k++) acc[k] = accumulate ? _mm256_loadu_ps(y + c + 8 * k) : _mm256_setzero_ps();
        const uint8_t *first = base + (size_t)c * element_bytes, *second = first + (size_t)half * w_stride;
        for (int r = 0; r < half; r++) {
            const uint8_t *row0 = first + (size_t)r * w_stride, *row1 = second + (size_t)r * w_stride;
            const __m256 p0 = _mm256_set1_ps(p[r]), p1 = _mm256_set1_ps(p[half + r]);
            for (int k = 0; k < 8; k++) {
                acc[k] = _mm256_fmadd_ps(load8(row0 + 8 * k * element_bytes, kind), p0, acc[k]);
                acc[k] = _mm256_fmadd_ps(load8(row1 + 8 * k * element_bytes, kind), p1, acc[k]);
            }
        }
        if (rows % 2) {
            const uint8_t *row = first + (size_t)(rows - 1) * w_stride;
            const __m256 pr = _mm256_set1_ps(p[rows - 1]);
            for (int k = 0; k < 8; k++) acc[k] = _mm256_fmadd_ps(load8(row + 8 * k * element_bytes, kind), pr, acc[k]);
        }
        for (int k = 0; k < 8; k++) _mm256_storeu_ps(y + c + 8 * k, acc[k]);
    }
    for (; c + 8 <= cols; c += 8) {
        __m256 acc = accumulate ? _mm256_loadu_ps(y + c) : _mm256_setzero_ps();
        for (int r = 0; r < rows; r++)
            acc = _mm256_fmadd_ps(load8(base + (size_t)r * w_stride + (size_t)c * element_bytes, kind), _mm256_set1_ps(p[r]), acc);
        _mm256_storeu_ps(y + c, acc);
    }
    for (; c < cols; c++) {
        float acc = accumulate ? y[c] : 0.0f;
        for (int r = 0; r < rows; r++) acc += p[r] * load1(base + (size_t)r * w_stride + (size_t)c * element_bytes, kind);
        y[c] = acc;
    }
}

AVX2 void bam_avx2_f16_weighted_rows(float *y, const void *w, size_t w_stride, const float *p, int rows, int cols,
                                     int accumulate) {
    weighted_rows(y, w, w_stride, p, rows, cols, accumulate, STORED_F16, 2);
}

AVX2 void bam_avx2_f32_weighted_rows(float *y, const void *w, size_t w_stride, const float *p, int rows, int cols,
                                     int accumulate) {
    weighted_rows(y, w, w_stride, p, rows, cols, accumulate, STORED_F32, 4);
}

// The Q8_0 dot product with maddubs + madd (x86_q8_0_avx2.h).
#define BAM_Q8_TARGET BAM_TARGET("avx2,fma,f16c")
#define BAM_Q8_DOT(aw, sx) _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sx), _mm256_set1_epi16(1))
#define BAM_Q8_MATMUL bam_avx2_matmul_q8_0
#include "x86_q8_0_avx2.h"

const bam_kernels bam_kernels_avx2 = {
    .name = "avx2",
    .matmul_f32 = bam_avx2_matmul_f32, .matmul_f16 = bam_avx2_matmul_f16, .matmul_bf16 = bam_avx2_matmul_bf16,
    .matmul_q8_0 = bam_avx2_matmul_q8_0,
    .matmul_q4_0 = bam_avx2_matmul_q4_0, .matmul_q5_0 = bam_avx2_matmul_q5_0, .matmul_q4_1 = bam_avx2_matmul_q4_1, .matmul_q5_1 = bam_avx2_matmul_q5_1, .matmul_q4_K = bam_avx2_matmul_q4_K,
    .matmul_q5_K = bam_avx2_matmul_q5_K,
    .matmul_q2_K = bam_avx2_matmul_q2_K, .matmul_q3_K = bam_avx2_matmul_q3_K,
    .matmul_q6_K = bam_avx2_matmul_q6_K, .matmul_iq4_nl = bam_avx2_matmul_iq4_nl,
    .matmul_iq4_xs = bam_avx2_matmul_iq4_xs, .quantize_q8_K = bam_quantize_q8_K,
    .quantize_q8_0 = bam_avx2_quantize_q8_0, .q8_0_to_f32 = bam_avx2_q8_0_to_f32,
    .f16_to_f32 = bam_avx2_f16_to_f32, .f32_to_f16 = bam_avx2_f32_to_f16,
    .bf16_to_f32 = bam_avx2_bf16_to_f32, .f32_to_bf16 = bam_avx2_f32_to_bf16,
    .f16_weighted_rows = bam_avx2_f16_weighted_rows, .f32_weighted_rows = bam_avx2_f32_weighted_rows,
};
#endif
