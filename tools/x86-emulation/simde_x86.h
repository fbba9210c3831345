// The x86 intrinsics the kernels use, from SIMDe (portable C), for tools/check_x86_kernels.sh.
// SIMDe 0.7.4 lacks a few; they are written here lane by lane from Intel's descriptions.
#ifndef BAM_SIMDE_X86_H
#define BAM_SIMDE_X86_H
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <simde/x86/f16c.h>
#include <simde/x86/fma.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EMU static inline
#define LANES(type, n, name, v) type name[n]; memcpy(name, &(v), sizeof(name))
#define PACK(vtype, arr) ({ vtype r_; memcpy(&r_, arr, sizeof(r_)); r_; })

EMU float emu_mm512_reduce_add_ps(simde__m512 v) { LANES(float, 16, f, v); float s = 0; for (int i = 0; i < 16; i++) s += f[i]; return s; }
EMU float emu_mm512_reduce_max_ps(simde__m512 v) { LANES(float, 16, f, v); float m = f[0]; for (int i = 1; i < 16; i++) m = f[i] > m ? f[i] : m; return m; }
EMU simde__m512 emu_mm512_maskz_loadu_ps(simde__mmask16 k, const void *p) {
    float f[16]; for (int i = 0; i < 16; i++) { f[i] = 0; if ((k >> i) & 1) memcpy(&f[i], (const char *)p + 4 * i, 4); }
    return PACK(simde__m512, f);
}
EMU simde__m256i emu_mm256_maskz_loadu_epi16(simde__mmask16 k, const void *p) {
    uint16_t h[16]; for (int i = 0; i < 16; i++) { h[i] = 0; if ((k >> i) & 1) memcpy(&h[i], (const char *)p + 2 * i, 2); }
    return PACK(simde__m256i, h);
}
EMU simde__m256i emu_mm512_cvtepi32_epi16(simde__m512i v) { LANES(int32_t, 16, a, v); int16_t h[16]; for (int i = 0; i < 16; i++) h[i] = (int16_t)a[i]; return PACK(simde__m256i, h); }
EMU simde__m512 emu_mm512_cvtph_ps(simde__m256i v) {
    LANES(uint16_t, 16, h, v); float f[16];
    for (int i = 0; i < 16; i++) f[i] = bam_f16_to_f32_1(h[i]);
    return PACK(simde__m512, f);
}
EMU simde__m256i emu_mm512_cvtps_ph(simde__m512 v) {
    LANES(float, 16, f, v); uint16_t h[16];
    for (int i = 0; i < 16; i++) h[i] = bam_f32_to_f16_1(f[i]);
    return PACK(simde__m256i, h);
}
EMU simde__m512i emu_mm512_cvtepu16_epi32(simde__m256i v) { LANES(uint16_t, 16, h, v); int32_t a[16]; for (int i = 0; i < 16; i++) a[i] = h[i]; return PACK(simde__m512i, a); }
EMU simde__m512i emu_mm512_cvtepi8_epi32(simde__m128i v) { LANES(int8_t, 16, b, v); int32_t a[16]; for (int i = 0; i < 16; i++) a[i] = b[i]; return PACK(simde__m512i, a); }
EMU simde__m512i emu_mm512_cvttps_epi32(simde__m512 v) {
    LANES(float, 16, f, v); int32_t a[16];
    for (int i = 0; i < 16; i++) a[i] = (f[i] > -2147483904.0f && f[i] < 2147483648.0f) ? (int32_t)f[i] : INT32_MIN;
    return PACK(simde__m512i, a);
}

EMU simde__m512 emu_mm512_cvtepi32_ps(simde__m512i v) { LANES(int32_t, 16, a, v); float f[16]; for (int i = 0; i < 16; i++) f[i] = (float)a[i]; return PACK(simde__m512, f); }
EMU simde__m512i emu_mm512_madd_epi16(simde__m512i a, simde__m512i b) {
    LANES(int16_t, 32, x, a); LANES(int16_t, 32, y, b); int32_t r[16];
    for (int i = 0; i < 16; i++) r[i] = (int32_t)x[2 * i] * y[2 * i] + (int32_t)x[2 * i + 1] * y[2 * i + 1];
    return PACK(simde__m512i, r);
}
// SIMDe 0.7.4 returns its input unchanged for a scale of 0 (integer rounding); the kernels use
// only truncation (_MM_FROUND_TO_ZERO).
EMU simde__m512 emu_mm512_roundscale_ps(simde__m512 v, int imm) {
    LANES(float, 16, f, v);
    if ((imm & 0xf3) != 3) abort();
    for (int i = 0; i < 16; i++) f[i] = truncf(f[i]);
    return PACK(simde__m512, f);
}

#undef _mm512_roundscale_ps
#define _mm512_roundscale_ps emu_mm512_roundscale_ps
#undef _mm512_madd_epi16
#define _mm512_madd_epi16 emu_mm512_madd_epi16
#undef _mm512_cvtepi32_ps
#define _mm512_cvtepi32_ps emu_mm512_cvtepi32_ps
#define _mm512_reduce_add_ps emu_mm512_reduce_add_ps
#define _mm512_reduce_max_ps emu_mm512_reduce_max_ps
#define _mm512_maskz_loadu_ps emu_mm512_maskz_loadu_ps
#define _mm256_maskz_loadu_epi16 emu_mm256_maskz_loadu_epi16
#define _mm512_cvtepi32_epi16 emu_mm512_cvtepi32_epi16
#define _mm512_cvtph_ps emu_mm512_cvtph_ps
#define _mm512_cvtps_ph(v, rounding) emu_mm512_cvtps_ph(v)
#define _mm512_cvtepu16_epi32 emu_mm512_cvtepu16_epi32
#define _mm512_cvtepi8_epi32 emu_mm512_cvtepi8_epi32
#define _mm512_cvttps_epi32 emu_mm512_cvttps_epi32
#define _cvtsh_ss(h) bam_f16_to_f32_1(h)
#define _cvtss_sh(f, rounding) bam_f32_to_f16_1(f)
#define _mm256_dpbusd_avx_epi32 _mm256_dpbusd_epi32
#ifndef _MM_FROUND_NO_EXC
#define _MM_FROUND_NO_EXC SIMDE_MM_FROUND_NO_EXC
#endif
#ifndef _CMP_GE_OQ
#define _CMP_GE_OQ SIMDE_CMP_GE_OQ
#endif
#ifndef _CMP_UNORD_Q
#define _CMP_UNORD_Q SIMDE_CMP_UNORD_Q
#endif
#define __mmask16 simde__mmask16
#define __mmask64 simde__mmask64
#endif
