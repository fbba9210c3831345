// The AVX-512 family with AVX512_VNNI (Cascade Lake and later Xeons, AMD Zen 4 and later): the
// Q8_0 dot product's maddubs + madd pair becomes one vpdpbusd. Every other entry is the AVX-512
// family's.
#if defined(__x86_64__)
#include "kernels_internal.h"
#include "x86_intrinsics.h"

#define BAM_Q8_TARGET BAM_TARGET("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")
#define BAM_Q8_DOT(aw, sx) _mm512_dpbusd_epi32(_mm512_setzero_si512(), aw, sx)
#define BAM_Q8_MATMUL bam_avx512_vnni_matmul_q8_0
#include "x86_q8_0_avx512.h"

const bam_kernels bam_kernels_avx512_vnni = {
    .name = "avx512-vnni",
    .matmul_f32 = bam_avx512_matmul_f32, .matmul_f16 = bam_avx512_matmul_f16, .matmul_bf16 = bam_avx512_matmul_bf16,
    .matmul_q8_0 = bam_avx512_vnni_matmul_q8_0,
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
