// Shared by every kernel file (prepended by the loader): storage type, vector loads, epilogue.
// STORE_HALF: activations are stored as half (vload_half/vstore_half, no cl_khr_fp16 needed);
// compute is always fp32.
#ifdef STORE_HALF
typedef half store_t;
#define LD(p, i) vload_half((i), (p))
#define ST(v, p, i) vstore_half_rte((v), (i), (p))
#define LD8(p, i) vload_half8(0, (p) + (i))
#define ST8(v, p, i) vstore_half8_rte((v), 0, (p) + (i))
#else
typedef float store_t;
#define LD(p, i) ((p)[i])
#define ST(v, p, i) ((p)[i] = (v))
#define LD8(p, i) vload8(0, (p) + (i))
#define ST8(v, p, i) vstore8((v), 0, (p) + (i))
#endif

// Activation codes (match ops/epilogue.py).
#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_CLIP 2
#define ACT_SIGMOID 3
#define ACT_SILU 4
#define ACT_LEAKY 5
#define ACT_HARDSIGMOID 6
#define ACT_HARDSWISH 7
#define ACT_TANH 8

inline float8 act8(float8 v, int act, float a, float b) {
    switch (act) {
    case ACT_RELU: return fmax(v, 0.0f);
    case ACT_CLIP: return fmin(fmax(v, a), b);
    case ACT_SIGMOID: return 1.0f / (1.0f + exp(-v));
    case ACT_SILU: return v / (1.0f + exp(-v));
    case ACT_LEAKY: return select(v * a, v, v >= 0.0f);
    case ACT_HARDSIGMOID: return fmin(fmax(v * a + b, 0.0f), 1.0f);
    case ACT_HARDSWISH: return v * fmin(fmax(v * a + b, 0.0f), 1.0f);
    case ACT_TANH: return tanh(v);
    default: return v;
    }
}

// Scalar activation chosen at build time (-DACT=code): straight-line code that PoCL can vectorise
// across work-items, unlike a runtime switch.
#ifndef ACT
#define ACT ACT_NONE
#endif
inline float act_s(float v, float a, float b) {
#if ACT == ACT_RELU
    return fmax(v, 0.0f);
#elif ACT == ACT_CLIP
    return fmin(fmax(v, a), b);
#elif ACT == ACT_SIGMOID
    return 1.0f / (1.0f + exp(-v));
#elif ACT == ACT_SILU
    return v / (1.0f + exp(-v));
#elif ACT == ACT_LEAKY
    return v >= 0.0f ? v : v * a;
#elif ACT == ACT_HARDSIGMOID
    return fmin(fmax(v * a + b, 0.0f), 1.0f);
#elif ACT == ACT_HARDSWISH
    return v * fmin(fmax(v * a + b, 0.0f), 1.0f);
#elif ACT == ACT_TANH
    return tanh(v);
#else
    return v;
#endif
}

// Fake quantisation (QuantizeLinear then DequantizeLinear): rint is round-half-to-even, as ONNX says.
inline float8 fq8(float8 v, float s, float z, float lo, float hi) {
    return (fmin(fmax(rint(v / s) + z, lo), hi) - z) * s;
}

// The fused epilogue of conv kernels: bias is added by the caller, then activation 1, fake-quant 1,
// residual add (read through the residual's own view), activation 2, fake-quant 2.
// acts = {act1, act2, fq1 on, fq2 on}; ap = {act1 a, act1 b, act2 a, act2 b};
// q = {scale1, zero1, lo1, hi1, scale2, zero2, lo2, hi2}.
#define EPI_ARGS int4 acts, float4 ap, float8 q, __global const store_t* res, int res_off, int res_bs
#define EPI_PASS acts, ap, q, res, res_off, res_bs

inline float8 epi8(float8 v, int4 acts, float4 ap, float8 q, __global const store_t* res, int res_off,
                   int res_bs, int n, int ridx, int cnt) {
    v = act8(v, acts.x, ap.x, ap.y);
    if (acts.z) v = fq8(v, q.s0, q.s1, q.s2, q.s3);
    if (res) {
        const __global store_t* r = res + res_off + n * res_bs + ridx;
        if (cnt == 8) {
            v += LD8(r, 0);
        } else {
            float t[8];
            vstore8(v, 0, t);
            for (int j = 0; j < cnt; j++) t[j] += LD(r, j);
            v = vload8(0, t);
        }
        v = act8(v, acts.y, ap.z, ap.w);
    }
    if (acts.w) v = fq8(v, q.s4, q.s5, q.s6, q.s7);
    return v;
}

inline void store8(float8 v, __global store_t* y, int idx, int cnt) {
    if (cnt == 8) {
        ST8(v, y, idx);
    } else {
        float t[8];
        vstore8(v, 0, t);
        for (int j = 0; j < cnt; j++) ST(t[j], y, idx + j);
    }
}

// Eight input pixels of one row: x positions ix0 + j*SX for j in 0..7, zero outside [0, w).
inline float8 load_row8(const __global store_t* row, int ix0, int sx, int w) {
    if (sx == 1 && ix0 >= 0 && ix0 + 8 <= w) return LD8(row, ix0);
    if (sx == 2 && ix0 >= 0 && ix0 + 16 <= w) {
        const float8 lo = LD8(row, ix0), hi = LD8(row, ix0 + 8);
        return (float8)(lo.even, hi.even);
    }
    // Edge of the row: a branch-free gather at clamped positions, out-of-row lanes zeroed.
    const int8 ix = (int8)(ix0) + (int8)(0, 1, 2, 3, 4, 5, 6, 7) * sx;
    const int8 ic = clamp(ix, 0, w - 1);
    const float8 v = (float8)(LD(row, ic.s0), LD(row, ic.s1), LD(row, ic.s2), LD(row, ic.s3), LD(row, ic.s4),
                              LD(row, ic.s5), LD(row, ic.s6), LD(row, ic.s7));
    return select((float8)(0.0f), v, (ix >= 0) & (ix < w));
}
