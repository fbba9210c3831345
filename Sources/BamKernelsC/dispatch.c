// Which kernel families this CPU can run: cpuid for the instruction sets, xgetbv for whether the
// operating system saves the wide registers (a CPU can support AVX-512 while the OS does not
// enable it). Read once; the answer never changes during a run.
#include "kernels_internal.h"

#if defined(__x86_64__)
#include <cpuid.h>

static unsigned long long read_xcr0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static unsigned detect(void) {
    unsigned a, b, c, d, flags = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx) return 0;
    const unsigned long long xcr0 = read_xcr0();
    const int ymm_state = (xcr0 & 0x6) == 0x6;              // SSE and AVX state
    const int zmm_state = ymm_state && (xcr0 & 0xe0) == 0xe0;  // opmask, ZMM0-15 upper halves, ZMM16-31
    if (!ymm_state) return 0;
    if ((c >> 12) & 1) flags |= BAM_CPU_FMA;
    if ((c >> 29) & 1) flags |= BAM_CPU_F16C;
    unsigned max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        if ((b >> 5) & 1) flags |= BAM_CPU_AVX2;
        if (zmm_state) {
            if ((b >> 16) & 1) flags |= BAM_CPU_AVX512F;
            if ((b >> 30) & 1) flags |= BAM_CPU_AVX512BW;
            if ((b >> 31) & 1) flags |= BAM_CPU_AVX512VL;
            if ((c >> 11) & 1) flags |= BAM_CPU_AVX512_VNNI;
        }
        const unsigned subleaves = a;
        if (subleaves >= 1) {
            __cpuid_count(7, 1, a, b, c, d);
            if ((a >> 4) & 1) flags |= BAM_CPU_AVX_VNNI;
            if (zmm_state && ((a >> 5) & 1)) flags |= BAM_CPU_AVX512_BF16;
        }
    }
    return flags;
}
#else
static unsigned detect(void) { return 0; }
#endif

unsigned bam_cpu_features(void) {
    // Racing first calls compute the same value; a plain static is enough.
    static int known = 0;
    static unsigned flags = 0;
    if (!__atomic_load_n(&known, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&flags, detect(), __ATOMIC_RELAXED);
        __atomic_store_n(&known, 1, __ATOMIC_RELEASE);
    }
    return __atomic_load_n(&flags, __ATOMIC_RELAXED);
}

const bam_kernels *bam_kernels_for(bam_family family) {
    const unsigned f = bam_cpu_features();
    const unsigned avx2 = BAM_CPU_AVX2 | BAM_CPU_FMA | BAM_CPU_F16C;
    const unsigned avx512 = avx2 | BAM_CPU_AVX512F | BAM_CPU_AVX512BW | BAM_CPU_AVX512VL;
    (void)f; (void)avx2; (void)avx512;
    switch (family) {
    case BAM_FAMILY_GENERIC: return &bam_kernels_generic;
#if defined(__x86_64__)
    case BAM_FAMILY_AVX2: return (f & avx2) == avx2 ? &bam_kernels_avx2 : NULL;
    case BAM_FAMILY_AVX2_VNNI:
        return (f & (avx2 | BAM_CPU_AVX_VNNI)) == (avx2 | BAM_CPU_AVX_VNNI) ? &bam_kernels_avx2_vnni : NULL;
    case BAM_FAMILY_AVX512: return (f & avx512) == avx512 ? &bam_kernels_avx512 : NULL;
    case BAM_FAMILY_AVX512_VNNI:
        return (f & (avx512 | BAM_CPU_AVX512_VNNI)) == (avx512 | BAM_CPU_AVX512_VNNI) ? &bam_kernels_avx512_vnni : NULL;
#endif
    default: return NULL;
    }
}
