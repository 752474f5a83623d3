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

// INLINE: the helpers below run inside register-blocked loops; PoCL's LLVM otherwise keeps epi8 as
// a real call (float8 arguments on the stack, every accumulator spilled around it), which cost
// as much as a 64-deep GEMM step per output tile.
#define INLINE inline __attribute__((always_inline))

// MAD: a*b + c in the kernels' inner loops. With -DUSE_FMA (the host saw hardware FMA) it is fma():
// PoCL compiles mad() as a separate multiply and add (twice the floating-point instructions and
// a longer dependency chain in every GEMM step); fma() becomes one vfmadd.
#if defined(USE_FMA) && USE_FMA
#define MAD(a, b, c) fma((a), (b), (c))
#else
#define MAD(a, b, c) mad((a), (b), (c))
#endif

// Sigmoid of the conv epilogue: the rational approximation onnxruntime's MLAS uses (logistic.cpp,
// |error| < 1e-6 absolute), 11 multiply-adds and one divide instead of a call to exp(), which PoCL
// runs at about a third of that speed; SiLU (x * sigmoid(x)) follows every conv of YOLOX, so this
// was a fifth of its device time. Inputs are clamped to [-18, 18], where sigmoid is 0 or 1 in fp32.
// Its one divide is the costliest instruction of a conv's epilogue; with precise floating point off
// (this function only: the GEMM loops keep strict IEEE order) LLVM makes it a reciprocal estimate
// refined by one Newton step on x86 (vrcpps and two FMAs, within 2 ulp).
#pragma float_control(push)
#pragma float_control(precise, off)
INLINE float8 sigmoid8(float8 v) {
    float8 x = select(v, (float8)(-18.0f), v < -18.0f);  // compare+blend: NaN stays NaN
    x = select(x, (float8)(18.0f), x > 18.0f);
    const float8 x2 = x * x;
    float8 p = MAD(x2, (float8)(4.37031012579801e-11f), (float8)(1.15627324459942e-07f));
    p = MAD(x2, p, (float8)(6.08574864600143e-05f));
    p = MAD(x2, p, (float8)(8.51377133304701e-03f));
    p = MAD(x2, p, (float8)(2.48287947061529e-01f));
    float8 q = MAD(x2, (float8)(6.10247389755681e-13f), (float8)(5.76102136993427e-09f));
    q = MAD(x2, q, (float8)(6.29106785017040e-06f));
    q = MAD(x2, q, (float8)(1.70198817374094e-03f));
    q = MAD(x2, q, (float8)(1.16817656904453e-01f));
    q = MAD(x2, q, (float8)(9.93151921023180e-01f));
    const float8 r = (x * p) / q + 0.5f;
    return select(r, (float8)(0.0f), r < 0.0f);  // as MLAS: the far tail rounds to -6e-8
}
#pragma float_control(pop)

// Activation codes (ACT_RELU, ...) are -D defines made from the table in kernels/opcodes.py.

INLINE float8 act8(float8 v, int act, float a, float b) {
    switch (act) {
    case ACT_RELU: return fmax(v, 0.0f);
    case ACT_CLIP: return fmin(fmax(v, a), b);
    case ACT_SIGMOID: return sigmoid8(v);
    case ACT_SILU: return v * sigmoid8(v);
    case ACT_LEAKYRELU: return select(v * a, v, v >= 0.0f);
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
INLINE float act_s(float v, float a, float b) {
#if ACT == ACT_RELU
    return fmax(v, 0.0f);
#elif ACT == ACT_CLIP
    return fmin(fmax(v, a), b);
#elif ACT == ACT_SIGMOID
    return 1.0f / (1.0f + exp(-v));
#elif ACT == ACT_SILU
    return v / (1.0f + exp(-v));
#elif ACT == ACT_LEAKYRELU
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
INLINE float8 fq8(float8 v, float s, float z, float lo, float hi) {
    return (fmin(fmax(rint(v / s) + z, lo), hi) - z) * s;
}

// The fused epilogue of conv kernels: bias is added by the caller, then activation 1, fake-quant 1,
// residual add (read through the residual's own view, when there is one), activation 2, fake-quant 2.
// acts = {act1, act2, fq1 on, fq2 on}; ap = {act1 a, act1 b, act2 a, act2 b};
// q = {scale1, zero1, lo1, hi1, scale2, zero2, lo2, hi2}.
#define EPI_ARGS int4 acts, float4 ap, float8 q, __global const store_t* res, int res_off, int res_bs
#define EPI_PASS acts, ap, q, res, res_off, res_bs

// EPI_STATIC (-D, set by the conv lowering): the epilogue's shape is fixed at build time
// (EPI_ACT1, EPI_ACT2, EPI_FQ1, EPI_FQ2, EPI_RES), so each of the unrolled tile's copies is straight
// code with no runtime switch: with the switch (every activation, tanh included, inlined per
// accumulator) SiLU took a third of a 1x1 conv's time on PoCL.
#ifdef EPI_STATIC
#define EPI_A1 EPI_ACT1
#define EPI_A2 EPI_ACT2
#define EPI_Q1 EPI_FQ1
#define EPI_Q2 EPI_FQ2
#define EPI_R(res) (EPI_RES)
#else
#define EPI_A1 acts.x
#define EPI_A2 acts.y
#define EPI_Q1 acts.z
#define EPI_Q2 acts.w
#define EPI_R(res) (res)
#endif

INLINE float8 epi8(float8 v, int4 acts, float4 ap, float8 q, __global const store_t* res, int res_off,
                   int res_bs, int n, int ridx, int cnt) {
    v = act8(v, EPI_A1, ap.x, ap.y);
    if (EPI_Q1) v = fq8(v, q.s0, q.s1, q.s2, q.s3);
    if (EPI_R(res)) {
        const __global store_t* r = res + res_off + n * res_bs + ridx;
        if (cnt == 8) {
            v += LD8(r, 0);
        } else {
            float t[8];
            vstore8(v, 0, t);
            for (int j = 0; j < cnt; j++) t[j] += LD(r, j);
            v = vload8(0, t);
        }
    }
    // act2 also follows fake-quant 1 with no residual: the QDQ pattern Conv -> Q/DQ -> Relu -> Q/DQ
    // of onnxruntime's quantiser (its activations left unquantised) runs as one launch
    v = act8(v, EPI_A2, ap.z, ap.w);
    if (EPI_Q2) v = fq8(v, q.s4, q.s5, q.s6, q.s7);
    return v;
}

INLINE void store8(float8 v, __global store_t* y, int idx, int cnt) {
    if (cnt == 8) {
        ST8(v, y, idx);
    } else {
        float t[8];
        vstore8(v, 0, t);
        for (int j = 0; j < cnt; j++) ST(t[j], y, idx + j);
    }
}

// Eight input pixels of one row: x positions ix0 + j*SX for j in 0..7, ``fill`` outside [0, w).
INLINE float8 load_row8_or(const __global store_t* row, int ix0, int sx, int w, float fill) {
    if (sx == 1 && ix0 >= 0 && ix0 + 8 <= w) return LD8(row, ix0);
    if (sx == 2 && ix0 >= 0 && ix0 + 16 <= w) {
        const float8 lo = LD8(row, ix0), hi = LD8(row, ix0 + 8);
        return (float8)(lo.even, hi.even);
    }
    // Edge of the row: a branch-free gather at clamped positions, out-of-row lanes filled.
    const int8 ix = (int8)(ix0) + (int8)(0, 1, 2, 3, 4, 5, 6, 7) * sx;
    const int8 ic = clamp(ix, 0, w - 1);
    const float8 v = (float8)(LD(row, ic.s0), LD(row, ic.s1), LD(row, ic.s2), LD(row, ic.s3), LD(row, ic.s4),
                              LD(row, ic.s5), LD(row, ic.s6), LD(row, ic.s7));
    return select((float8)(fill), v, (ix >= 0) & (ix < w));
}

// The same with zeros outside the row (convolution padding).
INLINE float8 load_row8(const __global store_t* row, int ix0, int sx, int w) {
    return load_row8_or(row, ix0, sx, w, 0.0f);
}
