// The AVX2 decode kernels of Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL and IQ4_XS weights
// (block_dots.c states the integer sums they compute; the tests hold both against the naive
// twin). Every x86 table uses these: an AVX-512 CPU runs AVX2 too, and no AVX-512 variant has been measured yet
// (the development machine of these kernels was an EPYC Zen 3, AVX2 only).
//
// x86 multiplies bytes only unsigned by signed (maddubs). The codes of Q4_1, Q5_1 and the
// k-quants are unsigned (at most 6 bits), so they go in as they are, and the minimum (Q4_1, Q5_1,
// Q2_K, Q4_K, Q5_K) or offset (Q3_K's 4, Q6_K's 32) is applied through the sum of the activations (Q8_K keeps the
// sums of each 16); a pair sum is at most 2 * 63 * 127 < 32767, so maddubs never saturates.
// Q4_0 / Q5_0 codes minus their offset and the IQ4 levels are signed: |w| against x with w's
// sign, as the Q8_0 kernel does (IQ4 pairs: at most 2 * 127 * 127 < 32767). Every integer sum is
// exact; one row is a sequential stream through contiguous blocks, each block prefetching
// BAM_STREAM_PREFETCH_BYTES ahead.
#if defined(__x86_64__)
#include "kernels_internal.h"
#include "x86_intrinsics.h"

#define AVX2 BAM_TARGET("avx2,fma,f16c")
#define AVX2_INLINE static inline __attribute__((always_inline)) AVX2

// The 32 nibbles of 16 bytes as bytes: low nibbles first (values 0-15), then high ones (16-31).
AVX2_INLINE __m256i nibbles32(const uint8_t *p) {
    const __m128i q = _mm_loadu_si128((const __m128i *)p);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
}

// The IQ4 levels of 32 codes (as bytes 0-15): signed bytes from the codebook.
AVX2_INLINE __m256i iq4_levels(const __m256i codes) {
    return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)bam_iq4_levels)), codes);
}

// A block's 32 codes as bytes: Q4_0 codes minus 8 and Q5_0 codes (fifth bit j of the 32-bit qh
// on value j) minus 16 and IQ4_NL's levels, signed; Q4_1 and Q5_1 codes as they are (0-15, 0-31).
AVX2_INLINE __m256i legacy_codes(const uint8_t *w, const enum bam_legacy_type type) {
    const __m256i nibbles = nibbles32(w + bam_legacy_nibbles_at(type));
    switch (type) {
    case BAM_L_Q4_0: return _mm256_sub_epi8(nibbles, _mm256_set1_epi8(8));
    case BAM_L_Q4_1: return nibbles;
    case BAM_L_IQ4_NL: return iq4_levels(nibbles);
    default: break;
    }
    uint32_t qh;
    memcpy(&qh, w + bam_legacy_fifth_at(type), 4);
    // Byte j takes byte j / 8 of qh, then tests its bit j % 8.
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh),
                                               _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                                                 0x0101010101010101, 0x0000000000000000));
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    const __m256i fifth = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(16));
    const __m256i codes = _mm256_or_si256(nibbles, fifth);
    return type == BAM_L_Q5_0 ? _mm256_sub_epi8(codes, _mm256_set1_epi8(16)) : codes;
}

// One weight row of Q4_0 / Q5_0 / Q4_1 / Q5_1 / IQ4_NL blocks against T Q8_0 activation rows:
// per block d * dx * (codes . x), plus for Q4_1 / Q5_1 m * dx * sum(x).
AVX2_INLINE void legacy_row(float *y, size_t ldy, const uint8_t *w, const uint8_t *x, size_t x_stride, const int T,
                            const int nb, const enum bam_legacy_type type) {
    const int w_bytes = bam_legacy_bytes(type), with_min = bam_legacy_has_min(type);
    const __m256i ones16 = _mm256_set1_epi16(1), ones8 = _mm256_set1_epi8(1);
    __m256 acc[BAM_MATMUL_MAX_ROWS];
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *wb = w + (size_t)b * w_bytes;
        _mm_prefetch((const char *)wb + BAM_STREAM_PREFETCH_BYTES, _MM_HINT_T0);
        const __m256i q = legacy_codes(wb, type), aq = with_min ? q : _mm256_abs_epi8(q);
        const float dw = _cvtsh_ss(bam_load_u16(wb)), mw = with_min ? _cvtsh_ss(bam_load_u16(wb + 2)) : 0;
        for (int t = 0; t < T; t++) {
            const uint8_t *xb = x + (size_t)t * x_stride + (size_t)b * BAM_Q8_0_BYTES;
            const __m256i qx = _mm256_loadu_si256((const __m256i *)(xb + 2));
            const float dx = _cvtsh_ss(bam_load_u16(xb));
            const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(aq, with_min ? qx : _mm256_sign_epi8(qx, q)), ones16);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * dx), _mm256_cvtepi32_ps(s), acc[t]);
            if (with_min) {
                const __m256i u = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, qx), ones16);
                acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(mw * dx), _mm256_cvtepi32_ps(u), acc[t]);
            }
        }
    }
    for (int t = 0; t < T; t++) y[(size_t)t * ldy] = bam_hsum8_ps(acc[t]);
}

// Byte-shuffle patterns that spread 16-bit lane i of each 128-bit half over the whole half.
AVX2_INLINE __m256i lane16(const int i) { return _mm256_set1_epi16((short)(0x0100 * (2 * i + 1) + 2 * i)); }

// The pattern that spreads lane 2k over the low 128-bit half and lane 2k + 1 over the high one:
// for 32 consecutive values of sub-blocks of 16 (2k and 2k + 1), whose maddubs pair sums fill
// lanes 0-7 (the first 16 values) and 8-15 (the next 16).
AVX2_INLINE __m256i lane16_pair(const int k) {
    return _mm256_set_m128i(_mm256_castsi256_si128(lane16(2 * k + 1)), _mm256_castsi256_si128(lane16(2 * k)));
}

// One Q2_K or Q3_K block against one Q8_K block, added to acc. Both keep 2-bit codes of values
// 128h + 32j .. 128h + 32j + 31 in bits 2j, 2j + 1 of the 32 code bytes of half h, and (Q3_K) the
// third bit in bit 4h + j of the 32 hmask bytes; each sub-block of 16 values has a 4-bit scale and a
// 4-bit minimum (Q2_K: d * dx * sum_sub sc * (q . x) - dmin * dx * sum_sub m * sum(x)) or a 6-bit
// scale with an offset of 32 (Q3_K: d * dx * sum_sub (sc - 32) * (q . x - 4 * sum(x)), q of
// 3 bits). Codes of at most 3 bits keep maddubs' pair sums far below 32767.
AVX2_INLINE __m256 q2_K_q3_K_block(__m256 acc, const uint8_t *w, const uint8_t *x, const int third) {
    __m128i sc8, mn8 = _mm_setzero_si128();
    if (third) {
        // Q3_K's sixteen 6-bit scales (bam_q3_K_scales' layout) a 32-bit word at a time: scales
        // 0-3 and 4-7 are the low nibbles of bytes 0-3 and 4-7, scales 8-11 and 12-15 their high
        // nibbles, each with two bits of bytes 8-11 above (bits 0-1, 2-3, 4-5, 6-7).
        uint32_t u[3], o[4];
        memcpy(u, w + 96, 12);
        o[0] = (u[0] & 0x0f0f0f0fu) | ((u[2] & 0x03030303u) << 4);
        o[1] = (u[1] & 0x0f0f0f0fu) | (((u[2] >> 2) & 0x03030303u) << 4);
        o[2] = ((u[0] >> 4) & 0x0f0f0f0fu) | (((u[2] >> 4) & 0x03030303u) << 4);
        o[3] = ((u[1] >> 4) & 0x0f0f0f0fu) | (((u[2] >> 6) & 0x03030303u) << 4);
        sc8 = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)o), _mm_set1_epi8(32));
    } else {
        const __m128i packed = _mm_loadu_si128((const __m128i *)w);
        sc8 = _mm_and_si128(packed, _mm_set1_epi8(0x0F));
        mn8 = _mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0F));
    }
    const uint8_t *qs = w + (third ? 32 : 16);
    const __m256i hm = third ? _mm256_loadu_si256((const __m256i *)w) : _mm256_setzero_si256();
    const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * h));
        // This half's eight scales (signed for Q3_K) as 16-bit lanes, in both 128-bit halves.
        const __m128i half = h ? _mm_srli_si128(sc8, 8) : sc8;
        const __m256i scales = _mm256_broadcastsi128_si256(third ? _mm_cvtepi8_epi16(half) : _mm_cvtepu8_epi16(half));
        for (int j = 0; j < 4; j++) {
            __m256i codes = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3);
            if (third) codes = _mm256_or_si256(codes, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + j), one), 2));
            const __m256i xv = _mm256_loadu_si256((const __m256i *)(x + 4 + 128 * h + 32 * j));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(codes, xv), _mm256_shuffle_epi8(scales, lane16_pair(j))));
        }
    }
    // The Q8_K sums of each 16 against the minimums (Q2_K) or scales (Q3_K), lane by lane.
    const __m256i sums = _mm256_loadu_si256((const __m256i *)(x + 4 + BAM_QK_K));
    const float dx = bam_load_f32(x);
    if (third) {
        sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(_mm256_madd_epi16(sums, _mm256_cvtepi8_epi16(sc8)), 2));
        return _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(bam_load_u16(w + 108)) * dx), _mm256_cvtepi32_ps(sumi), acc);
    }
    const float d = _cvtsh_ss(bam_load_u16(w + 80)) * dx, dmin = _cvtsh_ss(bam_load_u16(w + 82)) * dx;
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    return _mm256_fnmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(_mm256_madd_epi16(sums, _mm256_cvtepu8_epi16(mn8))), acc);
}

// The eight 6-bit scales and eight minimums of a Q4_K block (12 bytes at s, bam_q4_K_scales'
// layout) as 16 bytes: scales in bytes 0-7, minimums in 8-15. Whole 32-bit words at a time: the
// low 6 bits of bytes 0-3 and 4-7 are scales and minimums 0-3; scales 4-7 are the low nibbles of
// bytes 8-11 with the top two bits of bytes 0-3 above them, minimums 4-7 the high nibbles of bytes
// 8-11 with the top two bits of bytes 4-7.
AVX2_INLINE __m128i q4_K_scales_mins(const uint8_t *s) {
    uint32_t u[3], o[4];
    memcpy(u, s, 12);
    o[0] = u[0] & 0x3f3f3f3fu;
    o[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
    o[2] = u[1] & 0x3f3f3f3fu;
    o[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
    return _mm_loadu_si128((const __m128i *)o);
}

// One Q4_K block (or with `fifth` a Q5_K block, whose fifth bits come first: bit 2j of byte l for
// value 64j + l, bit 2j + 1 for 64j + 32 + l) against one Q8_K block, added to acc:
// d * dx * sum_sub sc * (q . x) - dmin * dx * sum_sub m * sum(x), lane by lane. Codes of 5 bits
// keep a pair sum at most 2 * 31 * 127 < 32767.
AVX2_INLINE __m256 q4_K_block(__m256 acc, const uint8_t *w, const uint8_t *x, const int fifth) {
    const __m128i sm = q4_K_scales_mins(w + 4);
    // The scales as 16-bit lanes, in both halves (each pattern picks one from its own half).
    const __m256i scales = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    const __m256i qh = fifth ? _mm256_loadu_si256((const __m256i *)(w + 16)) : _mm256_setzero_si256();
    const uint8_t *qs = w + 16 + (fifth ? 32 : 0);
    __m256i sumi = _mm256_setzero_si256();
    for (int j = 0; j < 4; j++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
        const __m256i xl = _mm256_loadu_si256((const __m256i *)(x + 4 + 64 * j));
        const __m256i xh = _mm256_loadu_si256((const __m256i *)(x + 4 + 64 * j + 32));
        __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        if (fifth) {
            lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * j), one), 4));
            hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * j + 1), one), 4));
        }
        const __m256i pl = _mm256_maddubs_epi16(lo, xl);
        const __m256i ph = _mm256_maddubs_epi16(hi, xh);
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(pl, _mm256_shuffle_epi8(scales, lane16(2 * j))));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(ph, _mm256_shuffle_epi8(scales, lane16(2 * j + 1))));
    }
    // Sub-block s's minimum against the Q8_K sums of its two groups of 16 (lanes 2s, 2s + 1).
    const __m256i mins = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm));
    const __m256i sums = _mm256_loadu_si256((const __m256i *)(x + 4 + BAM_QK_K));
    const float dx = bam_load_f32(x);
    const float d = _cvtsh_ss(bam_load_u16(w)) * dx, dmin = _cvtsh_ss(bam_load_u16(w + 2)) * dx;
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    return _mm256_fnmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(_mm256_madd_epi16(sums, mins)), acc);
}

// One Q6_K block against one Q8_K block, added to acc: d * dx * sum_sub sc * (q . x - 32 * sum(x)).
AVX2_INLINE __m256 q6_K_block(__m256 acc, const uint8_t *w, const uint8_t *x) {
    const int8_t *sc = (const int8_t *)(w + 192);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
        const __m256i ql0 = _mm256_loadu_si256((const __m256i *)(w + 64 * h));
        const __m256i ql1 = _mm256_loadu_si256((const __m256i *)(w + 64 * h + 32));
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(w + 128 + 32 * h));
        // This half's eight scales as 16-bit lanes, in both 128-bit halves.
        const __m256i scales = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(sc + 8 * h))));
        // Values 32k..32k+31 of this half: a nibble of ql0 or ql1 and bits 2k, 2k + 1 of qh.
        __m256i q[4];
        q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4));
        q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4));
        q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4));
        q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4));
        for (int k = 0; k < 4; k++) {
            const __m256i xv = _mm256_loadu_si256((const __m256i *)(x + 4 + 128 * h + 32 * k));
            // Values 0-15 of the group are sub-block 2k, values 16-31 sub-block 2k + 1.
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], xv), _mm256_shuffle_epi8(scales, lane16_pair(k))));
        }
    }
    const float d = _cvtsh_ss(bam_load_u16(w + 208)) * bam_load_f32(x);
    const __m256i scales = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
    const __m256i sums = _mm256_loadu_si256((const __m256i *)(x + 4 + BAM_QK_K));
    // sum_sub sc * (q . x) - 32 * sum_sub sc * sum(x), both exact in int32 lanes.
    sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(_mm256_madd_epi16(sums, scales), 5));
    return _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
}

// One IQ4_XS block against one Q8_K block, added to acc: d * dx * sum_sub (ls - 32) * (k[q] . x).
// Levels are at most 127 in magnitude, so |w| x pairs stay below 32767.
AVX2_INLINE __m256 iq4_xs_block(__m256 acc, const uint8_t *w, const uint8_t *x) {
    const uint16_t scales_h = bam_load_u16(w + 2);
    __m256i sumi = _mm256_setzero_si256();
    for (int ib = 0; ib < 8; ib++) {
        const int ls = ((w[4 + ib / 2] >> (4 * (ib % 2))) & 0x0F) | (((scales_h >> (2 * ib)) & 3) << 4);
        const __m256i q = iq4_levels(nibbles32(w + 8 + 16 * ib));
        const __m256i xv = _mm256_loadu_si256((const __m256i *)(x + 4 + 32 * ib));
        const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(q), _mm256_sign_epi8(xv, q));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, _mm256_set1_epi16((short)(ls - 32))));
    }
    return _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(bam_load_u16(w)) * bam_load_f32(x)), _mm256_cvtepi32_ps(sumi), acc);
}

enum k_type { K_Q2, K_Q3, K_Q4, K_Q5, K_Q6, K_IQ4_XS };

// One weight row of Q2_K / Q3_K / Q4_K / Q5_K / Q6_K / IQ4_XS blocks against T Q8_K activation rows.
AVX2_INLINE void k_row(float *y, size_t ldy, const uint8_t *w, const uint8_t *x, size_t x_stride, const int T, const int nb,
                       const enum k_type type) {
    const int w_bytes = type == K_Q2 ? BAM_Q2_K_BYTES : type == K_Q3 ? BAM_Q3_K_BYTES : type == K_Q6 ? BAM_Q6_K_BYTES
                        : type == K_Q5 ? BAM_Q5_K_BYTES : type == K_IQ4_XS ? BAM_IQ4_XS_BYTES : BAM_Q4_K_BYTES;
    __m256 acc[BAM_MATMUL_MAX_ROWS];
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *wb = w + (size_t)b * w_bytes;
        _mm_prefetch((const char *)wb + BAM_STREAM_PREFETCH_BYTES, _MM_HINT_T0);
        _mm_prefetch((const char *)wb + BAM_STREAM_PREFETCH_BYTES + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)wb + BAM_STREAM_PREFETCH_BYTES + 128, _MM_HINT_T0);
        for (int t = 0; t < T; t++) {
            const uint8_t *xb = x + (size_t)t * x_stride + (size_t)b * BAM_Q8_K_BYTES;
            acc[t] = type == K_Q2 || type == K_Q3 ? q2_K_q3_K_block(acc[t], wb, xb, type == K_Q3)
                     : type == K_Q6 ? q6_K_block(acc[t], wb, xb)
                     : type == K_IQ4_XS ? iq4_xs_block(acc[t], wb, xb) : q4_K_block(acc[t], wb, xb, type == K_Q5);
        }
    }
    for (int t = 0; t < T; t++) y[(size_t)t * ldy] = bam_hsum8_ps(acc[t]);
}

// Each row with T a compile-time constant, so that the loops over T unroll.
#define BLOCK_ROWS(ROW, block_values)                                                                \
    do {                                                                                             \
        const uint8_t *wb = w, *xb = x;                                                              \
        const int nb = cols / (block_values);                                                        \
        for (int r = 0; r < rows; r++) {                                                             \
            const uint8_t *wr = wb + (size_t)r * w_stride;                                           \
            switch (T) {                                                                             \
            case 1: ROW(1); break;                                                                   \
            case 2: ROW(2); break;                                                                   \
            case 3: ROW(3); break;                                                                   \
            case 4: ROW(4); break;                                                                   \
            case 5: ROW(5); break;                                                                   \
            case 6: ROW(6); break;                                                                   \
            case 7: ROW(7); break;                                                                   \
            default: ROW(8); break;                                                                  \
            }                                                                                        \
        }                                                                                            \
    } while (0)

// The table's entry points: each type's row function over every row (block_values per block).
#define BLOCK_MATMUL(name, ROW_FN, block_values)                                                            \
    AVX2 void bam_avx2_matmul_##name(float *y, size_t ldy, const void *w, size_t w_stride, const void *x,   \
                                     size_t x_stride, int T, int rows, int cols) {                          \
        BLOCK_ROWS(ROW_FN, block_values);                                                                    \
    }
#define ROW_Q4_0(n) legacy_row(y + r, ldy, wr, xb, x_stride, n, nb, BAM_L_Q4_0)
#define ROW_Q5_0(n) legacy_row(y + r, ldy, wr, xb, x_stride, n, nb, BAM_L_Q5_0)
#define ROW_Q4_1(n) legacy_row(y + r, ldy, wr, xb, x_stride, n, nb, BAM_L_Q4_1)
#define ROW_Q5_1(n) legacy_row(y + r, ldy, wr, xb, x_stride, n, nb, BAM_L_Q5_1)
#define ROW_IQ4_NL(n) legacy_row(y + r, ldy, wr, xb, x_stride, n, nb, BAM_L_IQ4_NL)
#define ROW_Q2_K(n) k_row(y + r, ldy, wr, xb, x_stride, n, nb, K_Q2)
#define ROW_Q3_K(n) k_row(y + r, ldy, wr, xb, x_stride, n, nb, K_Q3)
#define ROW_Q4_K(n) k_row(y + r, ldy, wr, xb, x_stride, n, nb, K_Q4)
#define ROW_Q5_K(n) k_row(y + r, ldy, wr, xb, x_stride, n, nb, K_Q5)
#define ROW_Q6_K(n) k_row(y + r, ldy, wr, xb, x_stride, n, nb, K_Q6)
#define ROW_IQ4_XS(n) k_row(y + r, ldy, wr, xb, x_stride, n, nb, K_IQ4_XS)
BLOCK_MATMUL(q4_0, ROW_Q4_0, 32)
BLOCK_MATMUL(q5_0, ROW_Q5_0, 32)
BLOCK_MATMUL(q4_1, ROW_Q4_1, 32)
BLOCK_MATMUL(q5_1, ROW_Q5_1, 32)
BLOCK_MATMUL(iq4_nl, ROW_IQ4_NL, 32)
BLOCK_MATMUL(q2_K, ROW_Q2_K, BAM_QK_K)
BLOCK_MATMUL(q3_K, ROW_Q3_K, BAM_QK_K)
BLOCK_MATMUL(q4_K, ROW_Q4_K, BAM_QK_K)
BLOCK_MATMUL(q5_K, ROW_Q5_K, BAM_QK_K)
BLOCK_MATMUL(q6_K, ROW_Q6_K, BAM_QK_K)
BLOCK_MATMUL(iq4_xs, ROW_IQ4_XS, BAM_QK_K)
#endif
