// The portable family: plain C that any compiler and CPU run (the only family on arm64). Every
// family is a complete table of its own; the x86 ones share only the scalar helpers of
// kernels_internal.h, for loop tails. Written so that an optimising compiler can vectorise it without reassociating floating-point
// sums: eight fixed partial sums per dot product.
#include "kernels_internal.h"

// Weight rows are widened into a small float buffer CHUNK values at a time, then dotted with
// every activation row while the chunk is in L1.
#define CHUNK 256

typedef void (*widen_fn)(float *dst, const uint8_t *src, int n);

static void widen_f32(float *dst, const uint8_t *src, int n) { memcpy(dst, src, (size_t)n * 4); }

static void widen_f16(float *dst, const uint8_t *src, int n) {
    for (int i = 0; i < n; i++) dst[i] = bam_f16_to_f32_1(bam_load_u16(src + 2 * i));
}

static void widen_bf16(float *dst, const uint8_t *src, int n) {
    for (int i = 0; i < n; i++) dst[i] = bam_bf16_to_f32_1(bam_load_u16(src + 2 * i));
}

static void matmul_widened(float *y, size_t ldy, const uint8_t *w, size_t w_stride, const uint8_t *x, size_t x_stride,
                           int T, int rows, int cols, widen_fn widen, size_t element_bytes) {
    float chunk[CHUNK];
    for (int r = 0; r < rows; r++) {
        float acc[BAM_MATMUL_MAX_ROWS][8];
        memset(acc, 0, sizeof(acc));
        const uint8_t *wr = w + (size_t)r * w_stride;
        for (int c0 = 0; c0 < cols; c0 += CHUNK) {
            const int n = cols - c0 < CHUNK ? cols - c0 : CHUNK;
            widen(chunk, wr + (size_t)c0 * element_bytes, n);
            for (int t = 0; t < T; t++) {
                float xt[CHUNK];
                memcpy(xt, x + (size_t)t * x_stride + (size_t)c0 * 4, (size_t)n * 4);
                float *a = acc[t];
                int c = 0;
                for (; c + 8 <= n; c += 8)
                    for (int k = 0; k < 8; k++) a[k] += chunk[c + k] * xt[c + k];
                for (; c < n; c++) a[0] += chunk[c] * xt[c];
            }
        }
        for (int t = 0; t < T; t++) {
            const float *a = acc[t];
            y[(size_t)t * ldy + r] = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
        }
    }
}

static void matmul_f32(float *y, size_t ldy, const void *w, size_t w_stride, const void *x, size_t x_stride, int T,
                       int rows, int cols) {
    matmul_widened(y, ldy, w, w_stride, x, x_stride, T, rows, cols, widen_f32, 4);
}

static void matmul_f16(float *y, size_t ldy, const void *w, size_t w_stride, const void *x, size_t x_stride, int T,
                       int rows, int cols) {
    matmul_widened(y, ldy, w, w_stride, x, x_stride, T, rows, cols, widen_f16, 2);
}

static void matmul_bf16(float *y, size_t ldy, const void *w, size_t w_stride, const void *x, size_t x_stride, int T,
                        int rows, int cols) {
    matmul_widened(y, ldy, w, w_stride, x, x_stride, T, rows, cols, widen_bf16, 2);
}

// ggml's vec_dot_q8_0_q8_0: per block the int8 products are summed exactly in int32, then scaled
// by both blocks' half scales.
static void matmul_q8_0(float *y, size_t ldy, const void *w, size_t w_stride, const void *x, size_t x_stride, int T,
                        int rows, int cols) {
    const int nb = cols / BAM_Q8_0_BLOCK;
    for (int r = 0; r < rows; r++) {
        const uint8_t *wr = (const uint8_t *)w + (size_t)r * w_stride;
        float acc[BAM_MATMUL_MAX_ROWS] = {0};
        for (int b = 0; b < nb; b++) {
            const uint8_t *wb = wr + (size_t)b * BAM_Q8_0_BYTES;
            const float dw = bam_f16_to_f32_1(bam_load_u16(wb));
            const int8_t *qw = (const int8_t *)(wb + 2);
            for (int t = 0; t < T; t++) {
                const uint8_t *xb = (const uint8_t *)x + (size_t)t * x_stride + (size_t)b * BAM_Q8_0_BYTES;
                const int8_t *qx = (const int8_t *)(xb + 2);
                int32_t s = 0;
                for (int j = 0; j < BAM_Q8_0_BLOCK; j++) s += (int32_t)qw[j] * (int32_t)qx[j];
                acc[t] += (dw * bam_f16_to_f32_1(bam_load_u16(xb))) * (float)s;
            }
        }
        for (int t = 0; t < T; t++) y[(size_t)t * ldy + r] = acc[t];
    }
}

static void quantize_q8_0(void *dst, const float *src, size_t n) {
    for (size_t b = 0; b < n / BAM_Q8_0_BLOCK; b++)
        bam_quantize_block_q8_0((uint8_t *)dst + b * BAM_Q8_0_BYTES, src + b * BAM_Q8_0_BLOCK);
}

static void q8_0_to_f32(float *dst, const void *src, size_t n) {
    for (size_t b = 0; b < n / BAM_Q8_0_BLOCK; b++) {
        const uint8_t *blk = (const uint8_t *)src + b * BAM_Q8_0_BYTES;
        const float d = bam_f16_to_f32_1(bam_load_u16(blk));
        for (int j = 0; j < BAM_Q8_0_BLOCK; j++) dst[b * BAM_Q8_0_BLOCK + j] = d * (float)(int8_t)blk[2 + j];
    }
}

static void f16_to_f32(float *dst, const void *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = bam_f16_to_f32_1(bam_load_u16((const uint8_t *)src + 2 * i));
}

static void f32_to_f16(void *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint16_t h = bam_f32_to_f16_1(src[i]);
        memcpy((uint8_t *)dst + 2 * i, &h, 2);
    }
}

static void bf16_to_f32(float *dst, const void *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = bam_bf16_to_f32_1(bam_load_u16((const uint8_t *)src + 2 * i));
}

static void f32_to_bf16(void *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint16_t h = bam_f32_to_bf16_1(src[i]);
        memcpy((uint8_t *)dst + 2 * i, &h, 2);
    }
}

static void f16_weighted_rows(float *y, const void *w, size_t w_stride, const float *p, int rows, int cols, int accumulate) {
    if (!accumulate) memset(y, 0, (size_t)cols * sizeof(float));
    for (int r = 0; r < rows; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * w_stride;
        for (int c = 0; c < cols; c++) y[c] += p[r] * bam_f16_to_f32_1(bam_load_u16(row + 2 * c));
    }
}

static void f32_weighted_rows(float *y, const void *w, size_t w_stride, const float *p, int rows, int cols, int accumulate) {
    if (!accumulate) memset(y, 0, (size_t)cols * sizeof(float));
    for (int r = 0; r < rows; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * w_stride;
        for (int c = 0; c < cols; c++) y[c] += p[r] * bam_load_f32(row + 4 * c);
    }
}

const bam_kernels bam_kernels_generic = {
    .name = "generic",
    .matmul_f32 = matmul_f32, .matmul_f16 = matmul_f16, .matmul_bf16 = matmul_bf16, .matmul_q8_0 = matmul_q8_0,
    .matmul_q4_0 = bam_generic_matmul_q4_0, .matmul_q5_0 = bam_generic_matmul_q5_0, .matmul_q4_1 = bam_generic_matmul_q4_1, .matmul_q5_1 = bam_generic_matmul_q5_1, .matmul_q4_K = bam_generic_matmul_q4_K,
    .matmul_q5_K = bam_generic_matmul_q5_K,
    .matmul_q2_K = bam_generic_matmul_q2_K, .matmul_q3_K = bam_generic_matmul_q3_K,
    .matmul_q6_K = bam_generic_matmul_q6_K, .matmul_iq4_nl = bam_generic_matmul_iq4_nl,
    .matmul_iq4_xs = bam_generic_matmul_iq4_xs, .quantize_q8_K = bam_quantize_q8_K,
    .quantize_q8_0 = quantize_q8_0, .q8_0_to_f32 = q8_0_to_f32,
    .f16_to_f32 = f16_to_f32, .f32_to_f16 = f32_to_f16, .bf16_to_f32 = bf16_to_f32, .f32_to_bf16 = f32_to_bf16,
    .f16_weighted_rows = f16_weighted_rows, .f32_weighted_rows = f32_weighted_rows,
};
