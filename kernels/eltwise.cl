// Elementwise ops with NumPy broadcasting over up to 6 dims. meta (ints): dims[6], then the
// strides (in elements) of out, a and b for those dims; a broadcast dim has stride 0. Views
// (slices of a concat, transposes) are just other strides, so no copy is needed before an op.
// The op is a build-time define (straight-line code PoCL vectorises across work-items), one of the
// codes of kernels/opcodes.py, which every build gets as -D defines (OP_ADD, OP_EXP, ACT_RELU, ...):
// binary OP: add, sub, mul, div, max, min, pow, prelu (a>0?a:a*b), then ACT.
// unary OP: an activation code, or exp, log, sqrt, neg, abs, reciprocal, floor, ceil, erf,
// fake-quant, quantize, dequantize.

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
#if OP == OP_ADD
    return a + b;
#elif OP == OP_SUB
    return a - b;
#elif OP == OP_MUL
    return a * b;
#elif OP == OP_DIV
    return a / b;
#elif OP == OP_MAX
    return fmax(a, b);
#elif OP == OP_MIN
    return fmin(a, b);
#elif OP == OP_POW
    return pow(a, b);
#else  // OP_PRELU
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
#if OP == OP_EXP
    return exp(x);
#elif OP == OP_LOG
    return log(x);
#elif OP == OP_SQRT
    return sqrt(x);
#elif OP == OP_NEG
    return -x;
#elif OP == OP_ABS
    return fabs(x);
#elif OP == OP_RECIPROCAL
    return 1.0f / x;
#elif OP == OP_FLOOR
    return floor(x);
#elif OP == OP_CEIL
    return ceil(x);
#elif OP == OP_ERF
    return erf(x);
#elif OP == OP_FAKEQUANT
    return (fmin(fmax(rint(x / p0) + p1, p2), p3) - p1) * p0;
#elif OP == OP_QUANTIZELINEAR
    return fmin(fmax(rint(x / p0) + p1, p2), p3);
#elif OP == OP_DEQUANTIZELINEAR
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
