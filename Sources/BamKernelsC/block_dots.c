// The portable decode kernels of ggml's 2- to 6-bit weight blocks (Q4_0, Q4_1, Q5_0, Q5_1,
// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS)
// and the Q8_K quantization of activations they need. A GGUF model quantised by llama-quantize
// (Q4_K_M, the most downloaded kind) holds these types; reading them through a row dequantizer
// into float32 made a 58M Llama's Q4_K_M decode ten times slower than llama.cpp's (38.6 against
// 400 tok/s, EPYC Zen 3). Here, as in ggml's vec_dot_*_q8_0 / vec_dot_*_q8_K, each block's
// products are summed exactly in integers and only then scaled in float32: the activations are
// quantized to 8 bits per block first (Q8_0 for the blocks of 32, Q8_K for the super-blocks of 256).
//
// The integer sums of one block, the same in every family (x86_block_dots_avx2.c computes them
// with SIMD):
//   Q4_0 / Q5_0:  s = sum_j (q_j - 8 | 16) x_j,            block value dw * dx * s
//   Q4_1 / Q5_1:  s = sum_j q_j x_j, u = sum_j x_j,         block value dw * dx * s + m * dx * u
//   Q2_K, Q4_K, Q5_K:
//                 s = sum_sub sc_sub * sum_j q_j x_j,       block value dw * dx * s - dmin * dx * m
//                 m = sum_sub min_sub * (sum of x over the sub-block, from the Q8_K sums of 16)
//   IQ4_NL:       s = sum_j k[q_j] x_j,                     block value dw * dx * s
//   IQ4_XS:       s = sum_sub (ls_sub - 32) * sum_j k[q_j] x_j,  block value dw * dx * s
//   Q3_K:         s = sum_sub (sc_sub - 32) * sum_j q_j x_j - 4 * sum_sub (sc_sub - 32) * (sum of x over it)
//                                                           block value d * dx * s (q of 3 bits, 0-7)
//   Q6_K:         s = sum_sub sc_sub * sum_j q_j x_j - 32 * sum_sub sc_sub * (sum of x over it)
//                                                           block value d * dx * s
// The blocks' values are added in float32 in block order.
#include "kernels_internal.h"

// ggml's nearest_int: round to nearest, ties to even, through the float32 significand (valid for
// |v| < 2^22; the values here are at most 127 in magnitude, NaN gives a defined garbage value).
static inline int nearest_int(float v) {
    const float shifted = v + 12582912.0f;
    int i;
    memcpy(&i, &shifted, 4);
    return (i & 0x007fffff) - 0x00400000;
}

void bam_quantize_q8_K(void *dst, const float *src, size_t n) {
    for (size_t b = 0; b < n / BAM_QK_K; b++) {
        const float *x = src + b * BAM_QK_K;
        uint8_t *blk = (uint8_t *)dst + b * BAM_Q8_K_BYTES;
        int8_t *q = (int8_t *)(blk + 4);
        float amax = 0, max = 0;
        for (int j = 0; j < BAM_QK_K; j++) {
            const float a = fabsf(x[j]);
            if (a > amax) { amax = a; max = x[j]; }
        }
        float d = 0;
        if (amax == 0) {
            memset(q, 0, BAM_QK_K);
        } else {
            const float iscale = -127.0f / max;
            for (int j = 0; j < BAM_QK_K; j++) {
                const int v = nearest_int(iscale * x[j]);
                q[j] = (int8_t)(v < 127 ? v : 127);
            }
            d = 1 / iscale;
        }
        memcpy(blk, &d, 4);
        for (int g = 0; g < BAM_QK_K / 16; g++) {
            int16_t sum = 0;
            for (int j = 0; j < 16; j++) sum = (int16_t)(sum + q[16 * g + j]);
            memcpy(blk + 4 + BAM_QK_K + 2 * g, &sum, 2);
        }
    }
}

// The sum of the Q8_K block's 16-value group sums g0 and g0 + 1 ... over `groups` groups.
static inline int q8_K_group_sum(const uint8_t *xb, int g0, int groups) {
    int s = 0;
    for (int g = g0; g < g0 + groups; g++) {
        int16_t v;
        memcpy(&v, xb + 4 + BAM_QK_K + 2 * g, 2);
        s += v;
    }
    return s;
}

// Value j (0..31) of a block of 32 as the integer its scale multiplies: Q4_0 / Q5_0 codes less
// their offset, Q4_1 / Q5_1 codes as stored (their minimum is added apart), IQ4_NL's level.
static inline int legacy_code(const uint8_t *w, const enum bam_legacy_type type, const int j) {
    const uint8_t byte = w[bam_legacy_nibbles_at(type) + j % 16];
    int code = j < 16 ? byte & 0x0F : byte >> 4;
    if (bam_legacy_has_fifth(type)) {
        uint32_t qh;
        memcpy(&qh, w + bam_legacy_fifth_at(type), 4);
        code |= (int)((qh >> j) & 1) << 4;
    }
    switch (type) {
    case BAM_L_Q4_0: return code - 8;
    case BAM_L_Q5_0: return code - 16;
    case BAM_L_IQ4_NL: return bam_iq4_levels[code];
    default: return code;
    }
}

static inline float block_legacy(const uint8_t *w, const uint8_t *x, const enum bam_legacy_type type) {
    const int8_t *qx = (const int8_t *)(x + 2);
    int32_t s = 0, u = 0;
    for (int j = 0; j < 32; j++) {
        s += legacy_code(w, type, j) * qx[j];
        u += qx[j];
    }
    const float dx = bam_f16_to_f32_1(bam_load_u16(x)), d = bam_f16_to_f32_1(bam_load_u16(w)) * dx;
    if (!bam_legacy_has_min(type)) return d * (float)s;
    return d * (float)s + (bam_f16_to_f32_1(bam_load_u16(w + 2)) * dx) * (float)u;
}

static float block_q4_0(const uint8_t *w, const uint8_t *x) { return block_legacy(w, x, BAM_L_Q4_0); }
static float block_q5_0(const uint8_t *w, const uint8_t *x) { return block_legacy(w, x, BAM_L_Q5_0); }
static float block_q4_1(const uint8_t *w, const uint8_t *x) { return block_legacy(w, x, BAM_L_Q4_1); }
static float block_q5_1(const uint8_t *w, const uint8_t *x) { return block_legacy(w, x, BAM_L_Q5_1); }
static float block_iq4_nl(const uint8_t *w, const uint8_t *x) { return block_legacy(w, x, BAM_L_IQ4_NL); }

// Q2_K and Q3_K hold 256 values as 16 sub-blocks of 16. Sub-block `sub` (values 16 sub ..
// 16 sub + 15) lies in half h = sub / 8 of the 2-bit codes (32 bytes each), in the bytes 16 p ..
// 16 p + 15 of that half (p = sub % 2), at bits 2j, 2j + 1 (j = (sub % 8) / 2). Q3_K's third bit
// of the same value is bit 4h + j of the same byte index of its 32 bytes of hmask.
static float block_q2_K(const uint8_t *w, const uint8_t *x) {
    const int8_t *qx = (const int8_t *)(x + 4);
    int32_t s = 0, m = 0;
    for (int sub = 0; sub < 16; sub++) {
        const uint8_t *q = w + 16 + 32 * (sub / 8) + 16 * (sub % 2);
        const int shift = 2 * ((sub % 8) / 2);
        int32_t dot = 0;
        for (int l = 0; l < 16; l++) dot += ((q[l] >> shift) & 3) * qx[16 * sub + l];
        s += (w[sub] & 0x0F) * dot;
        m += (w[sub] >> 4) * q8_K_group_sum(x, sub, 1);
    }
    const float dx = bam_load_f32(x);
    const float d = bam_f16_to_f32_1(bam_load_u16(w + 80)) * dx, dmin = bam_f16_to_f32_1(bam_load_u16(w + 82)) * dx;
    return d * (float)s - dmin * (float)m;
}

static float block_q3_K(const uint8_t *w, const uint8_t *x) {
    const int8_t *qx = (const int8_t *)(x + 4);
    int8_t sc[16];
    bam_q3_K_scales(w + 96, sc);
    int32_t s = 0;
    for (int sub = 0; sub < 16; sub++) {
        const int h = sub / 8, j = (sub % 8) / 2;
        const uint8_t *q = w + 32 + 32 * h + 16 * (sub % 2), *hm = w + 16 * (sub % 2);
        int32_t dot = 0;
        for (int l = 0; l < 16; l++) dot += (((q[l] >> (2 * j)) & 3) | (((hm[l] >> (4 * h + j)) & 1) << 2)) * qx[16 * sub + l];
        s += sc[sub] * (dot - 4 * q8_K_group_sum(x, sub, 1));
    }
    return (bam_f16_to_f32_1(bam_load_u16(w + 108)) * bam_load_f32(x)) * (float)s;
}

// Q4_K, or with `fifth` Q5_K (whose nibbles follow 32 bytes of fifth bits: bit 2j of byte l is
// value 64j + l's, bit 2j + 1 value 64j + 32 + l's).
static inline float block_q4_K_q5_K(const uint8_t *w, const uint8_t *x, const int fifth) {
    const float dx = bam_load_f32(x);
    const int8_t *qx = (const int8_t *)(x + 4);
    uint8_t sc[8], mn[8];
    bam_q4_K_scales(w + 4, sc, mn);
    const uint8_t *qh = w + 16;
    int32_t s = 0, m = 0;
    for (int j = 0; j < 4; j++) {
        const uint8_t *q = w + 16 + (fifth ? 32 : 0) + 32 * j;
        int32_t lo = 0, hi = 0;
        for (int l = 0; l < 32; l++) {
            const int h0 = fifth ? ((qh[l] >> (2 * j)) & 1) << 4 : 0, h1 = fifth ? ((qh[l] >> (2 * j + 1)) & 1) << 4 : 0;
            lo += ((q[l] & 0x0F) | h0) * qx[64 * j + l];
            hi += ((q[l] >> 4) | h1) * qx[64 * j + 32 + l];
        }
        s += sc[2 * j] * lo + sc[2 * j + 1] * hi;
        m += mn[2 * j] * q8_K_group_sum(x, 4 * j, 2) + mn[2 * j + 1] * q8_K_group_sum(x, 4 * j + 2, 2);
    }
    const float d = bam_f16_to_f32_1(bam_load_u16(w)) * dx, dmin = bam_f16_to_f32_1(bam_load_u16(w + 2)) * dx;
    return d * (float)s - dmin * (float)m;
}

static float block_q4_K(const uint8_t *w, const uint8_t *x) { return block_q4_K_q5_K(w, x, 0); }
static float block_q5_K(const uint8_t *w, const uint8_t *x) { return block_q4_K_q5_K(w, x, 1); }

static float block_q6_K(const uint8_t *w, const uint8_t *x) {
    const int8_t *qx = (const int8_t *)(x + 4);
    const int8_t *sc = (const int8_t *)(w + 192);
    int32_t s = 0;
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = w + 64 * h, *qh = w + 128 + 32 * h;
        const int8_t *xh = qx + 128 * h;
        // Group k (0..3) holds values 32k..32k+31 of this half, sub-blocks 2k and 2k + 1.
        int32_t sub[8] = {0};
        for (int l = 0; l < 32; l++) {
            const int q0 = (ql[l] & 0x0F) | ((qh[l] & 3) << 4);
            const int q1 = (ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4);
            const int q2 = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
            const int q3 = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
            const int i = l / 16;
            sub[i] += q0 * xh[l];
            sub[2 + i] += q1 * xh[l + 32];
            sub[4 + i] += q2 * xh[l + 64];
            sub[6 + i] += q3 * xh[l + 96];
        }
        for (int i = 0; i < 8; i++) s += sc[8 * h + i] * (sub[i] - 32 * q8_K_group_sum(x, 8 * h + i, 1));
    }
    return (bam_f16_to_f32_1(bam_load_u16(w + 208)) * bam_load_f32(x)) * (float)s;
}

static float block_iq4_xs(const uint8_t *w, const uint8_t *x) {
    const int8_t *qx = (const int8_t *)(x + 4);
    const uint16_t scales_h = bam_load_u16(w + 2);
    int32_t s = 0;
    for (int ib = 0; ib < 8; ib++) {
        const int ls = ((w[4 + ib / 2] >> (4 * (ib % 2))) & 0x0F) | (((scales_h >> (2 * ib)) & 3) << 4);
        const uint8_t *q = w + 8 + 16 * ib;
        int32_t sub = 0;
        for (int j = 0; j < 16; j++)
            sub += bam_iq4_levels[q[j] & 0x0F] * qx[32 * ib + j] + bam_iq4_levels[q[j] >> 4] * qx[32 * ib + 16 + j];
        s += (ls - 32) * sub;
    }
    return (bam_f16_to_f32_1(bam_load_u16(w)) * bam_load_f32(x)) * (float)s;
}

typedef float (*block_fn)(const uint8_t *w, const uint8_t *x);

static void matmul_blocks(float *y, size_t ldy, const void *w, size_t w_stride, const void *x, size_t x_stride, int T,
                          int rows, int cols, block_fn block, int values, int w_bytes, int x_bytes) {
    const int nb = cols / values;
    for (int r = 0; r < rows; r++) {
        const uint8_t *wr = (const uint8_t *)w + (size_t)r * w_stride;
        for (int t = 0; t < T; t++) {
            const uint8_t *xr = (const uint8_t *)x + (size_t)t * x_stride;
            float acc = 0;
            for (int b = 0; b < nb; b++) acc += block(wr + (size_t)b * w_bytes, xr + (size_t)b * x_bytes);
            y[(size_t)t * ldy + r] = acc;
        }
    }
}

// The table's entry points: each type's block function over every row, with its block sizes.
#define BLOCK_MATMUL(name, values, w_bytes, x_bytes)                                                          \
    void bam_generic_matmul_##name(float *y, size_t ldy, const void *w, size_t w_stride, const void *x,         \
                                   size_t x_stride, int T, int rows, int cols) {                                \
        matmul_blocks(y, ldy, w, w_stride, x, x_stride, T, rows, cols, block_##name, values, w_bytes, x_bytes); \
    }
BLOCK_MATMUL(q4_0, 32, BAM_Q4_0_BYTES, BAM_Q8_0_BYTES)
BLOCK_MATMUL(q5_0, 32, BAM_Q5_0_BYTES, BAM_Q8_0_BYTES)
BLOCK_MATMUL(q4_1, 32, BAM_Q4_1_BYTES, BAM_Q8_0_BYTES)
BLOCK_MATMUL(q5_1, 32, BAM_Q5_1_BYTES, BAM_Q8_0_BYTES)
BLOCK_MATMUL(iq4_nl, 32, BAM_IQ4_NL_BYTES, BAM_Q8_0_BYTES)
BLOCK_MATMUL(q2_K, BAM_QK_K, BAM_Q2_K_BYTES, BAM_Q8_K_BYTES)
BLOCK_MATMUL(q3_K, BAM_QK_K, BAM_Q3_K_BYTES, BAM_Q8_K_BYTES)
BLOCK_MATMUL(q4_K, BAM_QK_K, BAM_Q4_K_BYTES, BAM_Q8_K_BYTES)
BLOCK_MATMUL(q5_K, BAM_QK_K, BAM_Q5_K_BYTES, BAM_Q8_K_BYTES)
BLOCK_MATMUL(q6_K, BAM_QK_K, BAM_Q6_K_BYTES, BAM_Q8_K_BYTES)
BLOCK_MATMUL(iq4_xs, BAM_QK_K, BAM_IQ4_XS_BYTES, BAM_Q8_K_BYTES)
