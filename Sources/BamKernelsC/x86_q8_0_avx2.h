// The Q8_0 x Q8_0 dot product on 256-bit vectors (ggml's vec_dot_q8_0_q8_0), included by
// x86_avx2.c (maddubs + madd) and x86_avx2_vnni.c (vpdpbusd), which define:
//   BAM_Q8_TARGET   the target attribute of every function here,
//   BAM_Q8_DOT(a, s) eight int32 lanes, each the sum of four products a[j] * s[j] of unsigned
//                   bytes a and signed bytes s,
//   BAM_Q8_MATMUL   the name of the bam_matmul_fn defined here.
//
// x86 multiplies bytes only unsigned by signed, so each product w * x is formed as
// |w| * (x with w's sign): |w| <= 128 fits an unsigned byte even for w = -128 (which weights read
// from a file may hold), and x, quantized by the reference (|q| <= 127), can always be negated.
// Each pair sum is at most 2 * 128 * 127 < 32767, so maddubs never saturates and every block's
// integer dot product is exact; per lane it is converted to float (exact, < 2^24) and scaled by
// both half scales, whose product (two 11-bit significands) is itself exact in float32.
#include "kernels_internal.h"
#include "x86_intrinsics.h"

#define Q8_INLINE static inline __attribute__((always_inline)) BAM_Q8_TARGET

// R weight rows against T activation rows, blocks of 32 (compile-time R and T, as tile_widened).
// Each block of each row also prefetches the same block of the next tile's rows (`next`, R rows
// on; a prefetch never faults), as tile_widened does: BamBench decode at q8_0, builds with and
// without interleaved (EPYC Zen 3), 58M Llama 6.0-8.3 -> 5.6-5.9 ms per token, 4 x 58M Mixtral
// 8.0-9.4 -> 7.3-7.8, against the earlier prefetch 1 KiB ahead within each row.
Q8_INLINE void q8_tile(float *y, size_t ldy, const uint8_t *w, size_t w_stride, const uint8_t *next, const uint8_t *x,
                       size_t x_stride, const int R, const int T, const int nb) {
    __m256 acc[4][BAM_MATMUL_MAX_ROWS];
    for (int i = 0; i < R; i++)
        for (int t = 0; t < T; t++) acc[i][t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const size_t off = (size_t)b * BAM_Q8_0_BYTES;
        __m256i qw[4], aw[4];
        float dw[4];
        for (int i = 0; i < R; i++) {
            const uint8_t *p = w + (size_t)i * w_stride + off;
            _mm_prefetch((const char *)(next + (size_t)i * w_stride + off), _MM_HINT_T0);
            dw[i] = _cvtsh_ss(bam_load_u16(p));
            qw[i] = _mm256_loadu_si256((const __m256i *)(p + 2));
            aw[i] = _mm256_abs_epi8(qw[i]);
        }
        for (int t = 0; t < T; t++) {
            const uint8_t *p = x + (size_t)t * x_stride + off;
            const float dx = _cvtsh_ss(bam_load_u16(p));
            const __m256i qx = _mm256_loadu_si256((const __m256i *)(p + 2));
            for (int i = 0; i < R; i++) {
                const __m256i s = BAM_Q8_DOT(aw[i], _mm256_sign_epi8(qx, qw[i]));
                acc[i][t] = _mm256_fmadd_ps(_mm256_set1_ps(dw[i] * dx), _mm256_cvtepi32_ps(s), acc[i][t]);
            }
        }
    }
    for (int i = 0; i < R; i++)
        for (int t = 0; t < T; t++) y[(size_t)t * ldy + i] = bam_hsum8_ps(acc[i][t]);
}

#define Q8_RUN_TILES(R, T)                                                                                  \
    do {                                                                                                    \
        int r = 0;                                                                                          \
        for (; r + (R) <= rows; r += (R))                                                                   \
            q8_tile(y + r, ldy, wb + (size_t)r * w_stride, w_stride, wb + (size_t)(r + (R)) * w_stride, xb, x_stride, R, T, nb); \
        for (; r < rows; r++)                                                                               \
            q8_tile(y + r, ldy, wb + (size_t)r * w_stride, w_stride, wb + (size_t)(r + 1) * w_stride, xb, x_stride, 1, T, nb); \
    } while (0)

// One activation row against rows of at most BAM_AVX2_STREAM_ROW_MAX_BYTES, read as two
// sequential streams as the widening kernels do (rows r and half + r together, x86_avx2.c), each
// block prefetching BAM_STREAM_PREFETCH_BYTES further on in its stream (kernels_internal.h), even
// and odd blocks into separate accumulators.
Q8_INLINE void q8_rows(float *const y[2], const uint8_t *const row[2], const int n, const uint8_t *x, const int nb) {
    __m256 acc[2][2];
    for (int i = 0; i < n; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *q = x + (size_t)b * BAM_Q8_0_BYTES;
        const __m256i qx = _mm256_loadu_si256((const __m256i *)(q + 2));
        const float dx = _cvtsh_ss(bam_load_u16(q));
        for (int i = 0; i < n; i++) {
            const uint8_t *p = row[i] + (size_t)b * BAM_Q8_0_BYTES;
            _mm_prefetch((const char *)p + BAM_STREAM_PREFETCH_BYTES, _MM_HINT_T0);
            const __m256i qw = _mm256_loadu_si256((const __m256i *)(p + 2));
            const __m256i s = BAM_Q8_DOT(_mm256_abs_epi8(qw), _mm256_sign_epi8(qx, qw));
            const float d = _cvtsh_ss(bam_load_u16(p)) * dx;
            acc[i][b & 1] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(s), acc[i][b & 1]);
        }
    }
    for (int i = 0; i < n; i++) *y[i] = bam_hsum8_ps(_mm256_add_ps(acc[i][0], acc[i][1]));
}

Q8_INLINE void q8_stream(float *y, const uint8_t *w, size_t w_stride, const uint8_t *x, const int rows, const int nb) {
    BAM_TWO_STREAMS(y, w, w_stride, rows, q8_rows(ys, ws, n, x, nb));
}

BAM_Q8_TARGET void BAM_Q8_MATMUL(float *y, size_t ldy, const void *w, size_t w_stride, const void *x, size_t x_stride,
                                 int T, int rows, int cols) {
    const uint8_t *wb = w, *xb = x;
    const int nb = cols / BAM_Q8_0_BLOCK;
    switch (T) {
    case 1:
        if (w_stride <= BAM_AVX2_STREAM_ROW_MAX_BYTES) q8_stream(y, wb, w_stride, xb, rows, nb);
        else Q8_RUN_TILES(4, 1);
        break;
    case 2: Q8_RUN_TILES(2, 2); break;
    case 3: Q8_RUN_TILES(1, 3); break;
    case 4: Q8_RUN_TILES(1, 4); break;
    case 5: Q8_RUN_TILES(1, 5); break;
    case 6: Q8_RUN_TILES(1, 6); break;
    case 7: Q8_RUN_TILES(1, 7); break;
    default: Q8_RUN_TILES(1, 8); break;
    }
}
