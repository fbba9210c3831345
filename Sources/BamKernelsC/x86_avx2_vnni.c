// The AVX2 family with AVX-VNNI (Alder Lake and later Intel cores, AMD Zen 5): the Q8_0 dot
// product's maddubs + madd pair becomes one vpdpbusd (VEX encoding), which also cannot saturate.
// Every other entry is the AVX2 family's.
#if defined(__x86_64__)
#include "kernels_internal.h"
#include "x86_intrinsics.h"

#define BAM_Q8_TARGET BAM_TARGET("avx2,fma,f16c,avxvnni")
#define BAM_Q8_DOT(aw, sx) _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), aw, sx)
#define BAM_Q8_MATMUL bam_avx2_vnni_matmul_q8_0
#include "x86_q8_0_avx2.h"

const bam_kernels bam_kernels_avx2_vnni = {
    .name = "avx2-vnni",
    .matmul_f32 = bam_avx2_matmul_f32, .matmul_f16 = bam_avx2_matmul_f16, .matmul_bf16 = bam_avx2_matmul_bf16,
    .matmul_q8_0 = bam_avx2_vnni_matmul_q8_0,
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
