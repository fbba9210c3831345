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
#endif
