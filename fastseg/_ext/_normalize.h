/* Finiteness check of the per-slice standardisation (_normalize.pyx). */
#ifndef FASTSEG_NORMALIZE_H
#define FASTSEG_NORMALIZE_H

#include <Python.h>  /* Py_ssize_t */

#include <stdint.h>
#if defined(__GNUC__) || defined(__clang__)
typedef uint32_t __attribute__((__may_alias__)) fs_float_bits;
#else
typedef uint32_t fs_float_bits;
#endif
/* Whether all n floats are finite: a float is NaN or infinite exactly when its exponent bits are all
   ones, and adding 1 to the exponent field then carries into the sign bit. */
static inline int fs_all_finite(const float *x, Py_ssize_t n)
{
    const fs_float_bits *bits = (const fs_float_bits *)x;
    uint32_t carry = 0;
    Py_ssize_t i;
    for (i = 0; i < n; i++)
        carry |= (bits[i] & 0x7f800000u) + 0x00800000u;
    return (carry & 0x80000000u) == 0;
}

#endif /* FASTSEG_NORMALIZE_H */
