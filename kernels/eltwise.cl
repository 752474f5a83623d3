// Elementwise ops with NumPy broadcasting over up to 6 dims. meta (ints): dims[6], then the
// strides (in elements) of out, a and b for those dims; a broadcast dim has stride 0. Views
// (slices of a concat, transposes) are just other strides, so no copy is needed before an op.
// The op is a build-time define (straight-line code PoCL vectorises across work-items):
// binary OP: 0 add, 1 sub, 2 mul, 3 div, 4 max, 5 min, 6 pow, 7 prelu (a>0?a:a*b), then ACT.
// unary OP: activation codes of common.cl, then 20 exp, 21 log, 22 sqrt, 23 neg, 24 abs,
// 25 reciprocal, 26 floor, 27 ceil, 28 erf, 29 fake-quant, 30 quantize, 31 dequantize.

// The N-d kernels run on a 3-d range: dim 0 walks the last axis, dim 1 the one before, dim 2 the
// rest flattened, so only the outer axes need integer division (slow on CPUs) and it is uniform
// across a work-group row.
inline int offset6(int i5, int i4, int rest, __constant int* meta, int which) {
    int off = i5 * meta[6 * which + 5] + i4 * meta[6 * which + 4];
    for (int d = 3; d >= 0; d--) {
        const int dim = meta[d];
        off += (rest % dim) * meta[6 * which + d];
        rest /= dim;
    }
    return off;
}

// OFFSET: with -DRANK3 (the host merged the operands' dims down to 3, the usual case) there is no
// division at all.
#ifdef RANK3
#define OFFSET(which) (i5 * meta[6 * (which) + 5] + i4 * meta[6 * (which) + 4] + rest * meta[6 * (which) + 3])
#else
#define OFFSET(which) offset6(i5, i4, rest, meta, which)
#endif

#define ND_IDS                                                          \
    const int i5 = get_global_id(0), i4 = get_global_id(1), rest = get_global_id(2); \
    if (i5 >= meta[5]) return;

inline float binop(float a, float b) {
#if OP == 0
    return a + b;
#elif OP == 1
    return a - b;
#elif OP == 2
    return a * b;
#elif OP == 3
    return a / b;
#elif OP == 4
    return fmax(a, b);
#elif OP == 5
    return fmin(a, b);
#elif OP == 6
    return pow(a, b);
#else
    return a > 0.0f ? a : a * b;
#endif
}

__kernel void binary(__constant int* meta, int total, __global const store_t* a, int a_off,
                     __global const store_t* b, int b_off, __global store_t* y, int y_off, float act_a,
                     float act_b) {
    ND_IDS
    const float v = binop(LD(a, a_off + OFFSET(2)), LD(b, b_off + OFFSET(3)));
    ST(act_s(v, act_a, act_b), y, y_off + OFFSET(1));
}

// Same-shape contiguous operands (or b a scalar when b_step is 0): no index arithmetic.
__kernel void binary_flat(int total, __global const store_t* a, int a_off, __global const store_t* b, int b_off,
                          int b_step, __global store_t* y, int y_off, float act_a, float act_b) {
    const int i = get_global_id(0);
    if (i >= total) return;
    const float v = binop(LD(a, a_off + i), LD(b, b_off + i * b_step));
    ST(act_s(v, act_a, act_b), y, y_off + i);
}

inline float unop(float x, float p0, float p1, float p2, float p3) {
#if OP == 20
    return exp(x);
#elif OP == 21
    return log(x);
#elif OP == 22
    return sqrt(x);
#elif OP == 23
    return -x;
#elif OP == 24
    return fabs(x);
#elif OP == 25
    return 1.0f / x;
#elif OP == 26
    return floor(x);
#elif OP == 27
    return ceil(x);
#elif OP == 28
    return erf(x);
#elif OP == 29
    return (fmin(fmax(rint(x / p0) + p1, p2), p3) - p1) * p0;
#elif OP == 30
    return fmin(fmax(rint(x / p0) + p1, p2), p3);
#elif OP == 31
    return (x - p1) * p0;
#else
    return act_s(x, p0, p1);  // OP is an activation code; ACT is set to the same code
#endif
}

__kernel void unary(__constant int* meta, int total, float p0, float p1, float p2, float p3,
                    __global const store_t* a, int a_off, __global store_t* y, int y_off) {
    ND_IDS
    ST(unop(LD(a, a_off + OFFSET(2)), p0, p1, p2, p3), y, y_off + OFFSET(1));
}
