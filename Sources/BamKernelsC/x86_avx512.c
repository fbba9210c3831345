// The AVX-512 family (F + BW + VL: Skylake-SP and later Xeons, AMD Zen 4 and later): the AVX2
// family's algorithms on 512-bit vectors, with masked loads for the tails of a row.
#if defined(__x86_64__)
#include "kernels_internal.h"
#include "x86_intrinsics.h"

#define AVX512 BAM_TARGET("avx512f,avx512bw,avx512vl,avx2,fma,f16c")
#define AVX512_INLINE static inline __attribute__((always_inline)) AVX512

enum stored { STORED_F32, STORED_F16, STORED_BF16 };

// Sixteen stored values widened to float32; the lanes outside `mask` read nothing and are zero.
AVX512_INLINE __m512 load16(const uint8_t *p, const enum stored kind, __mmask16 mask) {
    switch (kind) {
    case STORED_F32: return _mm512_maskz_loadu_ps(mask, p);
    case STORED_F16: return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, p));
    default: return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, p)), 16));
    }
}

// Columns c..c+15 of R weight rows against T activation rows, added into acc; the lanes outside
// `mask` read nothing (the tail of a row).
AVX512_INLINE void columns16(__m512 acc[4][BAM_MATMUL_MAX_ROWS], const uint8_t *w, size_t w_stride, const uint8_t *x,
                             size_t x_stride, const int R, const int T, const int c, const __mmask16 mask,
                             const enum stored kind, const size_t element_bytes) {
    __m512 wv[4];
    for (int i = 0; i < R; i++) wv[i] = load16(w + (size_t)i * w_stride + (size_t)c * element_bytes, kind, mask);
    for (int t = 0; t < T; t++) {
        const __m512 xv = _mm512_maskz_loadu_ps(mask, (const float *)(x + (size_t)t * x_stride) + c);
        for (int i = 0; i < R; i++) acc[i][t] = _mm512_fmadd_ps(wv[i], xv, acc[i][t]);
    }
}

// R weight rows against T activation rows with R * T accumulators (compile-time R and T). Each
// step takes 64 bytes of every weight row and prefetches the same 64 bytes of R rows from `next`:
// either the next tile's rows (R rows on, right after this tile in memory, as in the AVX2 family,
// x86_avx2.c) or, for one row streamed at a time, the bytes BAM_STREAM_PREFETCH_BYTES further on
// (RUN_STREAM). A decoder's rows are too short for the hardware prefetcher to ramp up within one.
AVX512_INLINE void tile_widened(float *y, size_t ldy, const uint8_t *w, size_t w_stride, const uint8_t *next,
                                const uint8_t *x, size_t x_stride, const int R, const int T, const int cols,
                                const enum stored kind, const size_t element_bytes) {
    __m512 acc[4][BAM_MATMUL_MAX_ROWS];
    for (int i = 0; i < R; i++)
        for (int t = 0; t < T; t++) acc[i][t] = _mm512_setzero_ps();
    const int step = (int)(64 / element_bytes);   // columns per 64 bytes of a row: 16 or 32
    int c = 0;
    for (; c + step <= cols; c += step) {
        for (int i = 0; i < R; i++) _mm_prefetch((const char *)(next + (size_t)i * w_stride + (size_t)c * element_bytes), _MM_HINT_T0);
        for (int h = 0; h < step; h += 16) columns16(acc, w, w_stride, x, x_stride, R, T, c + h, (__mmask16)0xffff, kind, element_bytes);
    }
    for (; c < cols; c += 16) {
        const __mmask16 mask = cols - c >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (cols - c)) - 1);
        columns16(acc, w, w_stride, x, x_stride, R, T, c, mask, kind, element_bytes);
    }
    for (int i = 0; i < R; i++)
        for (int t = 0; t < T; t++) y[(size_t)t * ldy + i] = _mm512_reduce_add_ps(acc[i][t]);
}

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

// One activation row against rows of at most BAM_AVX512_STREAM_ROW_MAX_BYTES: one weight row at a time,
// prefetching BAM_STREAM_PREFETCH_BYTES ahead in the one sequential stream (kernels_internal.h).
#define RUN_STREAM()                                                                                              \
    do {                                                                                                          \
        for (int r = 0; r < rows; r++)                                                                            \
            tile_widened(y + r, ldy, w + (size_t)r * w_stride, w_stride,                                          \
                         w + (size_t)r * w_stride + BAM_STREAM_PREFETCH_BYTES, x, x_stride, 1, 1, cols, kind, bytes); \
    } while (0)

// 32 vector registers: four weight rows at a time up to four activation rows, two beyond; one
// activation row streams short rows one by one (RUN_STREAM).
AVX512_INLINE void matmul_widened(float *y, size_t ldy, const uint8_t *w, size_t w_stride, const uint8_t *x,
                                  size_t x_stride, int T, int rows, int cols, const enum stored kind, const size_t bytes) {
    switch (T) {
    case 1:
        if (w_stride <= BAM_AVX512_STREAM_ROW_MAX_BYTES) RUN_STREAM();
        else RUN_TILES(4, 1);
        break;
    case 2: RUN_TILES(4, 2); break;
    case 3: RUN_TILES(4, 3); break;
    case 4: RUN_TILES(4, 4); break;
    case 5: RUN_TILES(2, 5); break;
    case 6: RUN_TILES(2, 6); break;
    case 7: RUN_TILES(2, 7); break;
    default: RUN_TILES(2, 8); break;
    }
}

// bf16 against one activation row in pairs, as the AVX2 family does (x86_avx2.c, matmul_bf16_x1):
// a 64-byte load holds sixteen 32-bit words, each the pair (element 2k low, 2k + 1 high); a 16-bit
// shift left gives the even elements as float32, masking off the low half the odd ones, against
// activations split once per call into even and odd elements. Exact, as the widening is.
AVX512_INLINE void deinterleave_pairs(float *even, float *odd, const float *x, int n) {
    const __m512i even_index = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd_index = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for (int c = 0; c + 32 <= n; c += 32) {
        const __m512 a = _mm512_loadu_ps(x + c), b = _mm512_loadu_ps(x + c + 16);
        _mm512_storeu_ps(even + c / 2, _mm512_permutex2var_ps(a, even_index, b));
        _mm512_storeu_ps(odd + c / 2, _mm512_permutex2var_ps(a, odd_index, b));
    }
}

AVX512_INLINE void tile_bf16_pairs(float *y, const uint8_t *w, size_t w_stride, const uint8_t *next, const float *even,
                                   const float *odd, const float *x, const int R, const int cols, const int paired) {
    const __m512i high = _mm512_set1_epi32((int)0xffff0000u);
    __m512 acc_even[4], acc_odd[4];
    for (int i = 0; i < R; i++) acc_even[i] = acc_odd[i] = _mm512_setzero_ps();
    for (int c = 0; c < paired; c += 32) {
        for (int i = 0; i < R; i++) _mm_prefetch((const char *)(next + (size_t)i * w_stride + (size_t)c * 2), _MM_HINT_T0);
        const __m512 xe = _mm512_loadu_ps(even + c / 2), xo = _mm512_loadu_ps(odd + c / 2);
        for (int i = 0; i < R; i++) {
            const __m512i v = _mm512_loadu_si512((const void *)(w + (size_t)i * w_stride + (size_t)c * 2));
            acc_even[i] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), xe, acc_even[i]);
            acc_odd[i] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v, high)), xo, acc_odd[i]);
        }
    }
    for (int i = 0; i < R; i++) {
        float s = _mm512_reduce_add_ps(_mm512_add_ps(acc_even[i], acc_odd[i]));
        for (int k = paired; k < cols; k++) s += bam_bf16_to_f32_1(bam_load_u16(w + (size_t)i * w_stride + (size_t)k * 2)) * x[k];
        y[i] = s;
    }
}

AVX512_INLINE void matmul_bf16_x1(float *y, const uint8_t *w, size_t w_stride, const float *x, int rows, int cols) {
    float even[BAM_BF16_PAIRED_MAX_COLS / 2] __attribute__((aligned(64)));
    float odd[BAM_BF16_PAIRED_MAX_COLS / 2] __attribute__((aligned(64)));
    const int paired = cols / 32 * 32;
    deinterleave_pairs(even, odd, x, paired);
    int r = 0;
    if (w_stride <= BAM_AVX512_STREAM_ROW_MAX_BYTES) {   // one sequential stream, as RUN_STREAM
        for (; r < rows; r++)
            tile_bf16_pairs(y + r, w + (size_t)r * w_stride, w_stride, w + (size_t)r * w_stride + BAM_STREAM_PREFETCH_BYTES,
                            even, odd, x, 1, cols, paired);
        return;
    }
    for (; r + 4 <= rows; r += 4)
        tile_bf16_pairs(y + r, w + (size_t)r * w_stride, w_stride, w + (size_t)(r + 4) * w_stride, even, odd, x, 4, cols, paired);
    for (; r < rows; r++)
        tile_bf16_pairs(y + r, w + (size_t)r * w_stride, w_stride, w + (size_t)(r + 1) * w_stride, even, odd, x, 1, cols, paired);
}

AVX512 void bam_avx512_matmul_f32(float *y, size_t ldy, const void *w, size_t w_stride, const void *x, size_t x_stride,
                                  int T, int rows, int cols) {
    matmul_widened(y, ldy, w, w_stride, x, x_stride, T, rows, cols, STORED_F32, 4);
}

AVX512 void bam_avx512_matmul_f16(float *y, size_t ldy, const void *w, size_t w_stride, const void *x, size_t x_stride,
                                  int T, int rows, int cols) {
    matmul_widened(y, ldy, w, w_stride, x, x_stride, T, rows, cols, STORED_F16, 2);
}

AVX512 void bam_avx512_matmul_bf16(float *y, size_t ldy, const void *w, size_t w_stride, const void *x, size_t x_stride,
                                   int T, int rows, int cols) {
    if (T == 1 && cols <= BAM_BF16_PAIRED_MAX_COLS) {
        matmul_bf16_x1(y, w, w_stride, x, rows, cols);
        return;
    }
    matmul_widened(y, ldy, w, w_stride, x, x_stride, T, rows, cols, STORED_BF16, 2);
}

// roundf on sixteen lanes (see x86_avx2.c).
AVX512_INLINE __m512 round_half_away(__m512 v) {
    const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m512 frac = _mm512_abs_ps(_mm512_sub_ps(v, t));
    const __m512 step = _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32((int)0x80000000u)), _mm512_castps_si512(_mm512_set1_ps(1.0f))));
    return _mm512_mask_add_ps(t, _mm512_cmp_ps_mask(frac, _mm512_set1_ps(0.5f), _CMP_GE_OQ), t, step);
}

AVX512 void bam_avx512_quantize_q8_0(void *dst, const float *src, size_t n) {
    for (size_t b = 0; b < n / BAM_Q8_0_BLOCK; b++) {
        const float *x = src + b * BAM_Q8_0_BLOCK;
        uint8_t *out = (uint8_t *)dst + b * BAM_Q8_0_BYTES;
        const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        const float d = amax / 127.0f;
        const float id = d != 0 ? 1.0f / d : 0.0f;
        const uint16_t dh = (uint16_t)_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        memcpy(out, &dh, 2);
        const __m512 idv = _mm512_set1_ps(id);
        // Signed saturation, so a NaN's "integer indefinite" becomes -128 as in the other families.
        const __m128i q0 = _mm512_cvtsepi32_epi8(_mm512_cvttps_epi32(round_half_away(_mm512_mul_ps(v0, idv))));
        const __m128i q1 = _mm512_cvtsepi32_epi8(_mm512_cvttps_epi32(round_half_away(_mm512_mul_ps(v1, idv))));
        _mm_storeu_si128((__m128i *)(out + 2), q0);
        _mm_storeu_si128((__m128i *)(out + 18), q1);
    }
}

AVX512 void bam_avx512_q8_0_to_f32(float *dst, const void *src, size_t n) {
    for (size_t b = 0; b < n / BAM_Q8_0_BLOCK; b++) {
        const uint8_t *blk = (const uint8_t *)src + b * BAM_Q8_0_BYTES;
        const __m512 d = _mm512_set1_ps(_cvtsh_ss(bam_load_u16(blk)));
        for (int k = 0; k < 2; k++) {
            const __m128i q = _mm_loadu_si128((const __m128i *)(blk + 2 + 16 * k));
            _mm512_storeu_ps(dst + b * BAM_Q8_0_BLOCK + 16 * k, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), d));
        }
    }
}

AVX512 void bam_avx512_f16_to_f32(float *dst, const void *src, size_t n) {
    const uint8_t *s = src;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s + 2 * i))));
    for (; i < n; i++) dst[i] = bam_f16_to_f32_1(bam_load_u16(s + 2 * i));
}

AVX512 void bam_avx512_f32_to_f16(void *dst, const float *src, size_t n) {
    uint8_t *d = dst;
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(d + 2 * i), _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) {
        const uint16_t h = bam_f32_to_f16_1(src[i]);
        memcpy(d + 2 * i, &h, 2);
    }
}

AVX512 void bam_avx512_bf16_to_f32(float *dst, const void *src, size_t n) {
    const uint8_t *s = src;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, load16(s + 2 * i, STORED_BF16, 0xffff));
    for (; i < n; i++) dst[i] = bam_bf16_to_f32_1(bam_load_u16(s + 2 * i));
}

AVX512 void bam_avx512_f32_to_bf16(void *dst, const float *src, size_t n) {
    uint8_t *d = dst;
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff), quiet = _mm512_set1_epi32(0x40);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(src + i);
        const __m512i u = _mm512_castps_si512(v);
        const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
        __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, bias), lsb), 16);
        r = _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), r, _mm512_or_si512(_mm512_srli_epi32(u, 16), quiet));
        _mm256_storeu_si256((__m256i *)(d + 2 * i), _mm512_cvtepi32_epi16(r));   // lanes hold 0...0xffff: exact
    }
    for (; i < n; i++) {
        const uint16_t h = bam_f32_to_bf16_1(src[i]);
        memcpy(d + 2 * i, &h, 2);
    }
}

// The Q8_0 dot product with maddubs + madd (x86_q8_0_avx512.h).
#define BAM_Q8_TARGET BAM_TARGET("avx512f,avx512bw,avx512vl,avx2,fma,f16c")
#define BAM_Q8_DOT(aw, sx) _mm512_madd_epi16(_mm512_maddubs_epi16(aw, sx), _mm512_set1_epi16(1))
#define BAM_Q8_MATMUL bam_avx512_matmul_q8_0
#include "x86_q8_0_avx512.h"

const bam_kernels bam_kernels_avx512 = {
    .name = "avx512",
    .matmul_f32 = bam_avx512_matmul_f32, .matmul_f16 = bam_avx512_matmul_f16, .matmul_bf16 = bam_avx512_matmul_bf16,
    .matmul_q8_0 = bam_avx512_matmul_q8_0,
    .matmul_q4_0 = bam_avx2_matmul_q4_0, .matmul_q5_0 = bam_avx2_matmul_q5_0, .matmul_q4_1 = bam_avx2_matmul_q4_1, .matmul_q5_1 = bam_avx2_matmul_q5_1, .matmul_q4_K = bam_avx2_matmul_q4_K,
    .matmul_q5_K = bam_avx2_matmul_q5_K,
    .matmul_q2_K = bam_avx2_matmul_q2_K, .matmul_q3_K = bam_avx2_matmul_q3_K,
    .matmul_q6_K = bam_avx2_matmul_q6_K, .matmul_iq4_nl = bam_avx2_matmul_iq4_nl,
    .matmul_iq4_xs = bam_avx2_matmul_iq4_xs, .quantize_q8_K = bam_quantize_q8_K,
    .quantize_q8_0 = bam_avx512_quantize_q8_0, .q8_0_to_f32 = bam_avx512_q8_0_to_f32,
    .f16_to_f32 = bam_avx512_f16_to_f32, .f32_to_f16 = bam_avx512_f32_to_f16,
    .bf16_to_f32 = bam_avx512_bf16_to_f32, .f32_to_bf16 = bam_avx512_f32_to_bf16,
    .f16_weighted_rows = bam_avx2_f16_weighted_rows, .f32_weighted_rows = bam_avx2_f32_weighted_rows,
};
#endif
