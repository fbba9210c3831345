// Runs every x86 kernel family, compiled against SIMDe (simde_x86.h), against the portable
// family: conversions and Q8_0 quantization bit for bit, the decode kernels within the
// summation-order bound of each dot product (n * 2^-24 * sum |terms|). Built and run by
// tools/check_x86_kernels.sh; prints "N passed, N failed".
#include "kernels_internal.h"
#include <stdio.h>
#include <stdlib.h>

static int passed = 0, failed = 0;
static void check(int ok, const char *family, const char *what) {
    if (ok) passed++; else { failed++; printf("FAIL %s: %s\n", family, what); }
}

static uint64_t state = 12345;
static uint64_t next(void) {
    state += 0x9E3779B97F4A7C15ull;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static float uniform(void) { return (float)(next() >> 40) / (float)(1 << 24) * 2 - 1; }

static void conversions(const bam_kernels *k) {
    const bam_kernels *g = &bam_kernels_generic;
    enum { N = 65536 };
    static uint8_t halves[2 * N + 1];
    static float a[N], b[N];
    for (int i = 0; i < N; i++) { uint16_t h = (uint16_t)i; memcpy(halves + 1 + 2 * i, &h, 2); }
    k->f16_to_f32(a, halves + 1, N); g->f16_to_f32(b, halves + 1, N);
    int bad = 0;
    for (int i = 0; i < N; i++) if (a[i] != a[i] ? b[i] == b[i] : bam_f32_bits(a[i]) != bam_f32_bits(b[i])) bad++;
    check(bad == 0, k->name, "f16 -> f32, every bit pattern");
    k->bf16_to_f32(a, halves + 1, N); g->bf16_to_f32(b, halves + 1, N);
    check(memcmp(a, b, sizeof(a)) == 0, k->name, "bf16 -> f32, every bit pattern");

    enum { M = 1037 };
    static float x[M];
    static uint8_t o1[2 * M + 1], o2[2 * M + 1];
    for (int i = 0; i < M; i++) x[i] = bam_bits_f32((uint32_t)next());
    x[0] = 65520.0f; x[1] = 0x1p-25f; x[2] = 1.0f + 0x1p-11f; x[3] = -0.0f;
    k->f32_to_bf16(o1 + 1, x, M); g->f32_to_bf16(o2 + 1, x, M);
    check(memcmp(o1, o2, sizeof(o1)) == 0, k->name, "f32 -> bf16");
    k->f32_to_f16(o1 + 1, x, M); g->f32_to_f16(o2 + 1, x, M);
    bad = 0;
    for (int i = 0; i < M; i++) {
        uint16_t h1 = bam_load_u16(o1 + 1 + 2 * i), h2 = bam_load_u16(o2 + 1 + 2 * i);
        if (x[i] != x[i] ? (h1 & 0x7c00) != 0x7c00 || !(h1 & 0x3ff) : h1 != h2) bad++;
    }
    check(bad == 0, k->name, "f32 -> f16");

    enum { B = 47 };
    static float v[B * 32], d1[B * 32], d2[B * 32];
    static uint8_t q1[B * 34 + 1], q2[B * 34 + 1];
    for (int i = 0; i < B * 32; i++) v[i] = uniform() * (float)(1 << (i / 32 % 12));
    for (int i = 0; i < 32; i++) v[i] = (float)(i - 16) + 0.5f;   // ties: roundf goes away from zero
    v[31] = 127;
    for (int i = 32; i < 64; i++) v[i] = 0;
    k->quantize_q8_0(q1 + 1, v, B * 32); g->quantize_q8_0(q2 + 1, v, B * 32);
    check(memcmp(q1, q2, sizeof(q1)) == 0, k->name, "quantize Q8_0");
    for (int i = 0; i < B * 34; i++) if (i % 34 > 1) q1[1 + i] = (uint8_t)next();   // any int8, -128 included
    k->q8_0_to_f32(d1, q1 + 1, B * 32); g->q8_0_to_f32(d2, q1 + 1, B * 32);
    check(memcmp(d1, d2, sizeof(d1)) == 0, k->name, "Q8_0 -> f32");
}

// Short rows, and rows over 8 KiB, which the AVX-512 and AVX2 kernels stream differently for one
// activation row (kernels_internal.h, BAM_*_STREAM_ROW_MAX_BYTES).
static void matmul(const bam_kernels *k, int type, int long_rows) {
    static const char *names[] = {"f32", "f16", "bf16", "q8_0"};
    const int rows = 13, T = BAM_MATMUL_MAX_ROWS, ldy = rows + 3;
    const int cols = long_rows ? (type == 3 ? 7712 : type == 0 ? 2085 : 4133) : (type == 3 ? 160 : 133);
    const size_t esize = type == 0 ? 4 : 2;
    const size_t w_stride = type == 3 ? (size_t)cols / 32 * 34 + 5 : (size_t)cols * esize + 6;
    const size_t x_stride = type == 3 ? (size_t)cols / 32 * 34 + 3 : (size_t)cols * 4 + 12;
    uint8_t *w = calloc(rows * w_stride + 1, 1), *x = calloc(T * x_stride + 16, 1);
    float *wf = malloc(sizeof(float) * rows * cols), *xf = malloc(sizeof(float) * T * cols);
    float *row = malloc(sizeof(float) * cols);
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) row[c] = uniform() * (r % 3 + 1);
        uint8_t *dst = w + 1 + r * w_stride;
        switch (type) {
        case 0: memcpy(dst, row, 4 * cols); break;
        case 1: bam_kernels_generic.f32_to_f16(dst, row, cols); break;
        case 2: bam_kernels_generic.f32_to_bf16(dst, row, cols); break;
        default: bam_kernels_generic.quantize_q8_0(dst, row, cols); dst[2 + 7] = 0x80; break;   // a -128
        }
        if (type == 3) bam_kernels_generic.q8_0_to_f32(wf + r * cols, dst, cols);
        else if (type == 0) memcpy(wf + r * cols, row, 4 * cols);
        else if (type == 1) bam_kernels_generic.f16_to_f32(wf + r * cols, dst, cols);
        else bam_kernels_generic.bf16_to_f32(wf + r * cols, dst, cols);
    }
    for (int t = 0; t < T; t++) {
        for (int c = 0; c < cols; c++) row[c] = uniform() * 2;
        uint8_t *dst = x + 16 + t * x_stride;   // float rows aligned, as Swift hands them over
        if (type == 3) { bam_kernels_generic.quantize_q8_0(dst, row, cols); bam_kernels_generic.q8_0_to_f32(xf + t * cols, dst, cols); }
        else { memcpy(dst, row, 4 * cols); memcpy(xf + t * cols, row, 4 * cols); }
    }
    float *y = malloc(sizeof(float) * T * ldy);
    for (int n = 1; n <= T; n++) {
        for (int i = 0; i < T * ldy; i++) y[i] = -1e30f;
        bam_matmul_fn fn = type == 0 ? k->matmul_f32 : type == 1 ? k->matmul_f16 : type == 2 ? k->matmul_bf16 : k->matmul_q8_0;
        fn(y, ldy, w + 1, w_stride, x + 16, x_stride, n, rows, cols);
        int ok = 1;
        for (int t = 0; t < n; t++) {
            for (int r = 0; r < rows; r++) {
                double exact = 0, absolute = 0;
                for (int c = 0; c < cols; c++) {
                    double p = (double)wf[r * cols + c] * (double)xf[t * cols + c];
                    exact += p; absolute += p < 0 ? -p : p;
                }
                double err = y[t * ldy + r] - exact;
                if (!((err < 0 ? -err : err) <= (cols + 2) * 0x1p-24 * absolute + 1e-30)) ok = 0;
            }
            for (int r = rows; r < ldy; r++) if (y[t * ldy + r] != -1e30f) ok = 0;
        }
        char what[64];
        snprintf(what, sizeof(what), "matmul %s %s rows T=%d", names[type], long_rows ? "long" : "short", n);
        check(ok, k->name, what);
    }
    free(w); free(x); free(wf); free(xf); free(row); free(y);
}

int main(void) {
    const bam_kernels *families[] = {&bam_kernels_avx2, &bam_kernels_avx2_vnni, &bam_kernels_avx512, &bam_kernels_avx512_vnni};
    for (int f = 0; f < 4; f++) {
        conversions(families[f]);
        for (int type = 0; type < 4; type++) { matmul(families[f], type, 0); matmul(families[f], type, 1); }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
