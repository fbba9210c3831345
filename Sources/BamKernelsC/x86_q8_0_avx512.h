// The Q8_0 x Q8_0 dot product on 512-bit vectors, two blocks per vector, included by
// x86_avx512.c (maddubs + madd) and x86_avx512_vnni.c (vpdpbusd), which define BAM_Q8_TARGET,
// BAM_Q8_DOT and BAM_Q8_MATMUL as for x86_q8_0_avx2.h (whose comment explains why the products
// are exact). AVX-512 has no byte sign instruction, so x takes w's sign through a masked negation.
#include "kernels_internal.h"
#include "x86_intrinsics.h"

#define Q8_INLINE static inline __attribute__((always_inline)) BAM_Q8_TARGET

// Blocks b and b + 1 of a row (32 quants each, after their 2-byte scales); with `two` false only
// block b, the upper half zero (a row with an odd number of blocks).
Q8_INLINE __m512i q8_load_pair(const uint8_t *p, const int two) {
    const __m256i lo = _mm256_loadu_si256((const __m256i *)(p + 2));
    const __m256i hi = two ? _mm256_loadu_si256((const __m256i *)(p + 2 + BAM_Q8_0_BYTES)) : _mm256_setzero_si256();
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

Q8_INLINE float q8_scale(const uint8_t *p) { return _cvtsh_ss(bam_load_u16(p)); }

// R weight rows against T activation rows, two blocks per step (compile-time R and T). Each step
// prefetches, per row, the same two blocks of R rows from `next`: the next tile's rows (R rows
// on, right after this tile in memory, as the AVX2 kernel does) or, for one activation row
// against rows of at most BAM_AVX512_STREAM_ROW_MAX_BYTES, streamed one at a time, the bytes
// BAM_STREAM_PREFETCH_BYTES further on (kernels_internal.h says what was measured).
Q8_INLINE void q8_tile(float *y, size_t ldy, const uint8_t *w, size_t w_stride, const uint8_t *next, const uint8_t *x,
                       size_t x_stride, const int R, const int T, const int nb) {
    __m512 acc[4][BAM_MATMUL_MAX_ROWS];
    for (int i = 0; i < R; i++)
        for (int t = 0; t < T; t++) acc[i][t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b += 2) {
        const int two = b + 1 < nb;
        const size_t off = (size_t)b * BAM_Q8_0_BYTES;
        __m512i aw[4];
        __mmask64 negative[4];
        float dw0[4], dw1[4];
        for (int i = 0; i < R; i++) {
            const uint8_t *p = w + (size_t)i * w_stride + off;
            // Two blocks are 68 bytes, so each step also prefetches the line after.
            _mm_prefetch((const char *)(next + (size_t)i * w_stride + off), _MM_HINT_T0);
            _mm_prefetch((const char *)(next + (size_t)i * w_stride + off) + 64, _MM_HINT_T0);
            const __m512i qw = q8_load_pair(p, two);
            dw0[i] = q8_scale(p);
            dw1[i] = two ? q8_scale(p + BAM_Q8_0_BYTES) : 0.0f;
            aw[i] = _mm512_abs_epi8(qw);
            negative[i] = _mm512_movepi8_mask(qw);
        }
        for (int t = 0; t < T; t++) {
            const uint8_t *p = x + (size_t)t * x_stride + off;
            const __m512i qx = q8_load_pair(p, two);
            const float dx0 = q8_scale(p), dx1 = two ? q8_scale(p + BAM_Q8_0_BYTES) : 0.0f;
            for (int i = 0; i < R; i++) {
                const __m512i sx = _mm512_mask_sub_epi8(qx, negative[i], _mm512_setzero_si512(), qx);
                const __m512i s = BAM_Q8_DOT(aw[i], sx);
                const __m512 d = _mm512_mask_blend_ps((__mmask16)0xff00, _mm512_set1_ps(dw0[i] * dx0), _mm512_set1_ps(dw1[i] * dx1));
                acc[i][t] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(s), acc[i][t]);
            }
        }
    }
    for (int i = 0; i < R; i++)
        for (int t = 0; t < T; t++) y[(size_t)t * ldy + i] = _mm512_reduce_add_ps(acc[i][t]);
}

#define Q8_RUN_TILES(R, T)                                                                                  \
    do {                                                                                                    \
        int r = 0;                                                                                          \
        for (; r + (R) <= rows; r += (R))                                                                   \
            q8_tile(y + r, ldy, wb + (size_t)r * w_stride, w_stride, wb + (size_t)(r + (R)) * w_stride, xb, x_stride, R, T, nb); \
        for (; r < rows; r++)                                                                               \
            q8_tile(y + r, ldy, wb + (size_t)r * w_stride, w_stride, wb + (size_t)(r + 1) * w_stride, xb, x_stride, 1, T, nb); \
    } while (0)
#define Q8_RUN_STREAM()                                                                                     \
    do {                                                                                                    \
        for (int r = 0; r < rows; r++)                                                                      \
            q8_tile(y + r, ldy, wb + (size_t)r * w_stride, w_stride, wb + (size_t)r * w_stride + BAM_STREAM_PREFETCH_BYTES, xb, x_stride, 1, 1, nb); \
    } while (0)

BAM_Q8_TARGET void BAM_Q8_MATMUL(float *y, size_t ldy, const void *w, size_t w_stride, const void *x, size_t x_stride,
                                 int T, int rows, int cols) {
    const uint8_t *wb = w, *xb = x;
    const int nb = cols / BAM_Q8_0_BLOCK;
    switch (T) {
    case 1:
        if (w_stride <= BAM_AVX512_STREAM_ROW_MAX_BYTES) Q8_RUN_STREAM();
        else Q8_RUN_TILES(4, 1);
        break;
    case 2: Q8_RUN_TILES(2, 2); break;
    case 3: Q8_RUN_TILES(2, 3); break;
    case 4: Q8_RUN_TILES(2, 4); break;
    case 5: Q8_RUN_TILES(1, 5); break;
    case 6: Q8_RUN_TILES(1, 6); break;
    case 7: Q8_RUN_TILES(1, 7); break;
    default: Q8_RUN_TILES(1, 8); break;
    }
}
