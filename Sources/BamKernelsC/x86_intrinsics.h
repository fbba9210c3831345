// The x86 intrinsics and target attributes of the x86 families. tools/check_x86_kernels.sh
// defines BAM_KERNELS_SIMDE to compile the very same kernels against SIMDe (portable C
// implementations of the intrinsics), so that families this CPU lacks, AVX-512 and VNNI, are
// checked against the portable family on any x86-64 machine.
#ifndef BAM_X86_INTRINSICS_H
#define BAM_X86_INTRINSICS_H
#if defined(BAM_KERNELS_SIMDE)
#include "simde_x86.h"   // tools/x86-emulation/, on that script's include path only
#define BAM_TARGET(features)
#else
#include <immintrin.h>
#define BAM_TARGET(features) __attribute__((target(features)))
#endif

// The sum of a vector's eight floats (AVX), for the 256-bit kernels of every family: inlined into
// callers compiled for AVX2, AVX-VNNI or AVX-512, which all include AVX.
static inline __attribute__((always_inline)) BAM_TARGET("avx") float bam_hsum8_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif
