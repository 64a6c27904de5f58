/* What the CPU running the process can execute, for choosing between the two builds of a kernel
   module (the baseline one and its AVX2 twin; see setup.py and fastseg._ext.for_this_cpu). */
#ifndef FASTSEG_SIMD_H
#define FASTSEG_SIMD_H

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
static inline int fs_cpu_has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
}

/* The instruction sets the AVX2 builds are compiled for (-mavx2 -mfma). */
static inline int fs_cpu_has_avx2_fma(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#else
static inline int fs_cpu_has_avx2(void) { return 0; }
static inline int fs_cpu_has_avx2_fma(void) { return 0; }
#endif

#endif /* FASTSEG_SIMD_H */
