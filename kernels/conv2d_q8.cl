// Int8 2-D convolution of QDQ graphs (any kernel size, stride, padding, dilation, groups: dense,
// depthwise and 1x1, which the host runs as one row of H*W pixels). Activations are stored as
// 8 bits (uchar: a uint8 tensor as is, an int8 one shifted by +128), weights as 8 bits (char: int8
// as is, uint8 shifted by -128), the zero points shifted alike. One work-item computes TM output
// channels x (8*NV) consecutive pixels of one output row, like conv2d.cl: each step loads a packed
// uchar8 of input pixels once, takes its zero point off in int32 lanes and multiplies it into TM
// int32 accumulators by the (zero-point corrected) weight of each channel. Sums of 8-bit products
// in int32 are exact: the result is the integer sum onnxruntime's QLinearConv forms.
//
// Epilogue: acc + int32 bias, times sx * sw[co] gives the real value; then the fused float epilogue
// (activation, fake-quant, residual, activation, fake-quant, as for float convs) and, with OUT_Q8,
// the requantisation of the final stage to 8 bits (round half to even, saturate), stored as uchar
// for the next int8 op. Without OUT_Q8 the output is stored as float (store_t).
// mode 1 (the kernels' last argument; 0 is the generic epilogue): the common epilogue (Relu/Clip, then requantise; optionally + an 8-bit residual and
// requantise again) computed as onnxruntime's QLinearConv and QLinearAdd do: the int32 sum times
// one multiplier sx*sw/sy, rounded, plus the zero point, clamped (Relu and Clip become the clamp's
// bounds); the residual add as q1*s1/s2 + qr*sr/s2 + a fixed part, rounded. Its arguments reuse
// the generic ones: mult = sx*sw/s1, q = {s1, z1, lo1, hi1, s1/s2, sr/s2, fixed, -}, oq = {-, -, lo2, hi2}.
// mode 2: other epilogues that start with Relu/Clip (or nothing) and a fake-quant (Conv -> Q/DQ ->
// SiLU -> Q/DQ: YOLOX) take that first step the same integer way, then go on in fp32.
// Weights are stored [group][co block of TM][ci][ky][kx][TM] (char).
// Defines: TM, NV, KH, KW, SX, DY, DX, OUT_Q8 (0/1), RES (0 none, 1 float, 2 8-bit).
// (The epilogue's mode is an argument, not a define: one build fewer per conv shape on a cold start.)
// FACC (CPU devices; 0 elsewhere): the sums in fp32 instead of int32, exact: every product of an
// 8-bit input (|x - zx| <= 255) and a corrected weight (|w - zw| <= 255) is an integer below 2^24,
// and the host picks FACC only for convs whose every partial sum is bounded below 2^24
// (255 * the largest sum of |w - zw| of an output channel), where fp32 holds every integer
// exactly, so the float sum is the int32 sum. On PoCL an fp32 FMA costs less than an int32
// multiply-add (vpmulld); the general kernel then reads its weights as float (w - zw, zw = 0).
// ENTRY (1 conv2d_q8, 2 conv2d_1x1_q8, 3 conv2d_dw_q8, 4 conv2d_1x1_q8dot; ops/conv_q8.py sets it): the
// one kernel a build holds. PoCL compiles every kernel of a program to machine code when its binary
// is read (for the disk cache), so a build holding all four cost four compiles on a cold start.
#define TN (8 * NV)
#ifndef FACC
#define FACC 0
#endif
#if FACC
typedef float16 EDGE16;
typedef float8 acc8_t;
typedef float w_t;
#define ACC8(v) convert_float8(v)
#else
typedef int16 EDGE16;
typedef int8 acc8_t;
typedef char w_t;
#define ACC8(v) (v)
#endif
#if OUT_Q8
typedef uchar out_t;
#else
typedef store_t out_t;
#endif
#if RES == 2
typedef uchar res_t;
#else
typedef store_t res_t;
#endif

// Eight input pixels of one 8-bit row minus the zero point: x positions ix0 + j*sx, j in 0..7;
// outside [0, w) the padding is the real value 0, i.e. 0 once the zero point is taken off.
INLINE int8 load_row8_q(const __global uchar* row, int ix0, int sx, int w, int zx) {
    if (sx == 1 && ix0 >= 0 && ix0 + 8 <= w) return convert_int8(vload8(0, row + ix0)) - zx;
    if (sx == 2 && ix0 >= 0 && ix0 + 16 <= w) return convert_int8(vload16(0, row + ix0).even) - zx;
    const int8 ix = (int8)(ix0) + (int8)(0, 1, 2, 3, 4, 5, 6, 7) * sx;
    const int8 ic = clamp(ix, 0, w - 1);
    const int8 v = (int8)(row[ic.s0], row[ic.s1], row[ic.s2], row[ic.s3], row[ic.s4], row[ic.s5], row[ic.s6],
                          row[ic.s7]) - zx;
    return select((int8)(0), v, (ix >= 0) & (ix < w));
}

// The fused epilogue on real values; the residual is read as float or as 8 bits (rq: scale, zero).
INLINE float8 epi8_q(float8 v, int4 acts, float4 ap, float8 q, const __global res_t* res, int res_off, int res_bs,
                     float2 rq, int n, int ridx, int cnt, int mode) {
    if (mode == 2) {  // fake-quant 1 as QLinearConv's requantisation: v = acc * sx*sw/s1, act 1 in the bounds
        v = (fmin(fmax(rint(v) + q.s1, q.s2), q.s3) - q.s1) * q.s0;
    } else {
        v = act8(v, acts.x, ap.x, ap.y);
        if (acts.z) v = fq8(v, q.s0, q.s1, q.s2, q.s3);
    }
#if RES
    const __global res_t* r = res + res_off + n * res_bs + ridx;
    float t[8];
    vstore8(v, 0, t);
    for (int j = 0; j < cnt; j++) {
#if RES == 2
        t[j] += ((float)r[j] - rq.y) * rq.x;
#else
        t[j] += LD(r, j);
#endif
    }
    v = vload8(0, t);
#endif
    v = act8(v, acts.y, ap.z, ap.w);
    if (acts.w) v = fq8(v, q.s4, q.s5, q.s6, q.s7);
    return v;
}


// The integer epilogue (mode 1): stored 8-bit values, as floats holding integers.
INLINE float8 epi8_int(int8 acc, float mult, float8 q, float4 oq, const __global res_t* res, int res_off,
                       int res_bs, int n, int ridx, int cnt) {
    float8 v = fmin(fmax(rint(convert_float8(acc) * mult) + q.s1, q.s2), q.s3);
#if RES == 2
    const __global uchar* r = res + res_off + n * res_bs + ridx;
    float8 rv;
    if (cnt == 8) {
        rv = convert_float8(vload8(0, r));
    } else {
        float t[8] = {0};
        for (int j = 0; j < cnt; j++) t[j] = r[j];
        rv = vload8(0, t);
    }
    v = fmin(fmax(rint(fma(rv, (float8)(q.s5), fma(v, (float8)(q.s4), (float8)(q.s6)))), oq.z), oq.w);
#endif
    return v;
}

// oq: the output grid {scale, stored zero point, lowest, highest stored value} (OUT_Q8).
INLINE void store8_q(float8 v, __global out_t* y, int idx, int cnt, float4 oq, int mode) {
#if OUT_Q8
    // mode 1 computed the stored values already
    const uchar8 u = convert_uchar8_sat(mode == 1 ? v : fmin(fmax(rint(v / oq.x) + oq.y, oq.z), oq.w));
    if (cnt == 8) {
        vstore8(u, 0, y + idx);
    } else {
        uchar t[8];
        vstore8(u, 0, t);
        for (int j = 0; j < cnt; j++) y[idx + j] = t[j];
    }
#else
    store8(v, y, idx, cnt);
#endif
}

// One vector of 8 results: the int32 sum (+ bias) through the epilogue of ``mode``, stored. (With
// FACC the float sums convert to int exactly: integers below 2^24.)
#define Q8_EPI_PASS acts, ap, q, oq, res, res_off, res_bs, rq, mode
INLINE void finish8_q(int8 a, float s, __global out_t* yn, int n, int idx, int cnt, int4 acts, float4 ap, float8 q,
                      float4 oq, const __global res_t* res, int res_off, int res_bs, float2 rq, int mode) {
    const float8 r = mode == 1 ? epi8_int(a, s, q, oq, res, res_off, res_bs, n, idx, cnt)
                               : epi8_q(convert_float8(a) * s, acts, ap, q, res, res_off, res_bs, rq, n, idx, cnt, mode);
    store8_q(r, yn, idx, cnt, oq, mode);
}

#if !defined(ENTRY) || ENTRY == 1
__kernel void conv2d_q8(__global const uchar* x, int x_off, int x_bs, int zx,
                        __global const w_t* w, int zw, __global const int* bias, __global const float* mult,
                        int co_pad, __global out_t* y, int y_off, int y_bs, float4 oq,
                        int cin_g, int cout_g, int groups, int h, int wd, int ho, int wo, int sy, int py, int px,
                        int4 acts, float4 ap, float8 q, __global const res_t* res, int res_off, int res_bs,
                        float2 rq, int mode) {
    const int ox0 = get_global_id(0) * TN;
    const int ncob = (cout_g + TM - 1) / TM;
    const int oy = get_global_id(1) / ncob;
    const int cob = get_global_id(1) % ncob;
    const int z = get_global_id(2);
    const int g = z % groups;
    const int n = z / groups;
    if (ox0 >= wo) return;
    const int co0 = cob * TM;
    const __global uchar* xg = x + x_off + n * x_bs + g * cin_g * h * wd;
    const __global w_t* wg = w + (g * ncob + cob) * cin_g * KH * KW * TM;
    acc8_t acc[TM][NV];
#pragma unroll
    for (int m = 0; m < TM; m++)
#pragma unroll
        for (int v = 0; v < NV; v++) acc[m][v] = (acc8_t)(0);
    for (int ci = 0; ci < cin_g; ci++) {
        const __global uchar* xc = xg + ci * h * wd;
        for (int ky = 0; ky < KH; ky++) {
            const int iy = oy * sy - py + ky * DY;
            if (iy < 0 || iy >= h) continue;
            const __global uchar* row = xc + iy * wd;
#pragma unroll
            for (int kx = 0; kx < KW; kx++) {
                acc8_t xv[NV];
#pragma unroll
                for (int v = 0; v < NV; v++)
                    xv[v] = ACC8(load_row8_q(row, (ox0 + v * 8) * SX - px + kx * DX, SX, wd, zx));
                const __global w_t* wk = wg + ((ci * KH + ky) * KW + kx) * TM;
#pragma unroll
                for (int m = 0; m < TM; m++) {
#if FACC
                    const float wm = wk[m];
#pragma unroll
                    for (int v = 0; v < NV; v++) acc[m][v] = MAD((float8)(wm), xv[v], acc[m][v]);
#else
                    const int wm = (int)wk[m] - zw;
#pragma unroll
                    for (int v = 0; v < NV; v++) acc[m][v] += xv[v] * wm;
#endif
                }
            }
        }
    }
#pragma unroll
    for (int m = 0; m < TM; m++) {
        const int col = co0 + m;
        if (col < cout_g) {
            const int co = g * cout_g + col;
            const int b = bias[co];
            const float s = mult[co];
#pragma unroll
            for (int v = 0; v < NV; v++) {
                const int ox = ox0 + v * 8;
                if (ox < wo) {
                    const int cnt = min(8, wo - ox);
                    const int idx = (co * ho + oy) * wo + ox;
                    finish8_q(convert_int8(acc[m][v]) + b, s, y + y_off + n * y_bs, n, idx, cnt, Q8_EPI_PASS);
                }
            }
        }
    }
}
#endif

// 1x1 stride 1 on CPU devices (FACC): the float 1x1 GEMM of conv2d_1x1.cl on 8-bit inputs. One
// work-item computes TM channels x (8*NV) pixels (of the row of H*W), or with CO_INNER every
// channel block of its pixels (its column of X stays in L1). The input's zero point is folded
// into the bias on the host (sum (x - zx) w' = sum x w' - zx sum w', no padding in a 1x1 conv), so
// the inner loop is a uchar8 load, its conversion and fp32 FMAs with weights w' = w - zw stored as
// float [co block][ci][TM] (exact integers; the bound in FACC's note above holds with x in 0..255).
#ifndef CO_INNER
#define CO_INNER 0
#endif
#define Q8_1X1_STEPS(LOAD)                                                                       \
    for (int k = 0; k < cin_g; k++) {                                                            \
        float8 xv[NV];                                                                           \
        _Pragma("unroll") for (int v = 0; v < NV; v++) xv[v] = LOAD;                             \
        _Pragma("unroll") for (int m = 0; m < TM; m++) {                                         \
            const float wm = wp[k * TM + m];                                                     \
            _Pragma("unroll") for (int v = 0; v < NV; v++) acc[m][v] = MAD((float8)(wm), xv[v], acc[m][v]); \
        }                                                                                        \
    }
#if !defined(ENTRY) || ENTRY == 2
__kernel void conv2d_1x1_q8(__global const uchar* x, int x_off, int x_bs, int zx, __global const float* w, int zw,
                            __global const int* bias, __global const float* mult, int co_pad, __global out_t* y,
                            int y_off, int y_bs, float4 oq, int cin_g, int cout_g, int groups, int h, int hw,
                            int ho, int wo, int sy, int py, int px, int4 acts, float4 ap, float8 q,
                            __global const res_t* res, int res_off, int res_bs, float2 rq, int mode) {
    const int p0 = get_global_id(0) * TN;
    const int n = get_global_id(2);
    const __global uchar* xp = x + x_off + n * x_bs + p0;
    __global out_t* yn = y + y_off + n * y_bs;
#if CO_INNER
    if (p0 >= hw) return;
    for (int co0 = 0; co0 < cout_g; co0 += TM) {
#else
    const int co0 = get_global_id(1) * TM;
    if (p0 >= hw || co0 >= cout_g) return;
    {
#endif
        const __global float* wp = w + co0 * cin_g;
        float8 acc[TM][NV];
#pragma unroll
        for (int m = 0; m < TM; m++)
#pragma unroll
            for (int v = 0; v < NV; v++) acc[m][v] = (float8)(0.0f);
        if (p0 + TN <= hw) {
            Q8_1X1_STEPS(convert_float8(vload8(0, xp + k * hw + v * 8)))
        } else {  // the row's last pixels: bounds-checked loads, zeros beyond it
            Q8_1X1_STEPS(convert_float8(load_row8_q(xp + k * hw, v * 8, 1, hw - p0, 0)))
        }
#pragma unroll
        for (int m = 0; m < TM; m++) {
            const int co = co0 + m;
            if (co < cout_g) {
                const int b = bias[co];
                const float s = mult[co];
#pragma unroll
                for (int v = 0; v < NV; v++) {
                    const int p = p0 + v * 8;
                    if (p < hw) {
                        const int cnt = min(8, hw - p);
                        const int idx = co * hw + p;
                        finish8_q(convert_int8(acc[m][v]) + b, s, yn, n, idx, cnt, Q8_EPI_PASS);
                    }
                }
            }
        }
    }
}
#endif

// Depthwise (one filter per channel, no dilation, any stride SX x SY): one work-item computes ROWS
// whole output rows of one channel, 8 pixels at a time, its KH*KW weights held in registers (zero
// point taken off once). Each input row is loaded once per chunk and feeds every output row it
// touches; chunks whose taps all lie inside the row load plain vectors, the two edge chunks go
// through the bounds-checked load. Range: (row blocks, channels, batch). Weights [c][ky][kx].
#ifndef ROWS
#define ROWS 1
#endif
#ifndef SY
#define SY 1
#endif
#if SX == 1
#define LOAD_IN(row, ix) convert_int8(vload8(0, (row) + (ix)))
#else
#define LOAD_IN(row, ix) convert_int8(vload16(0, (row) + (ix)).even)
#endif
#define DW_Q8_CHUNK(PREP, LOAD)                                                             \
    for (int r = 0; r < (ROWS - 1) * SY + KH; r++) {                                        \
        const int iy = oy0 * SY - py + r;                                                   \
        if (iy < 0 || iy >= h) continue;                                                    \
        const __global uchar* row = xc + iy * wd;                                           \
        PREP                                                                                \
        _Pragma("unroll") for (int kx = 0; kx < KW; kx++) {                                 \
            const acc8_t xv = LOAD;                                                         \
            _Pragma("unroll") for (int j = 0; j < ROWS; j++) {                              \
                const int ky = r - j * SY;                                                  \
                if (ky >= 0 && ky < KH) acc[j] += xv * wk[ky * KW + kx];                    \
            }                                                                               \
        }                                                                                   \
    }

#if !defined(ENTRY) || ENTRY == 3
__kernel void conv2d_dw_q8(__global const uchar* x, int x_off, int x_bs, int zx,
                           __global const char* w, int zw, __global const int* bias, __global const float* mult,
                           int co_pad, __global out_t* y, int y_off, int y_bs, float4 oq,
                           int cin_g, int cout_g, int groups, int h, int wd, int ho, int wo, int sy, int py,
                           int px, int4 acts, float4 ap, float8 q, __global const res_t* res, int res_off,
                           int res_bs, float2 rq, int mode) {
    const int oy0 = get_global_id(0) * ROWS;
    const int ch = get_global_id(1);
    const int n = get_global_id(2);
    if (oy0 >= ho) return;
    const __global uchar* xc = x + x_off + n * x_bs + ch * h * wd;
#if FACC
    float wk[KH * KW];  // (the depthwise kernel reads char weights and widens them here)
#else
    int wk[KH * KW];
#endif
#pragma unroll
    for (int i = 0; i < KH * KW; i++) wk[i] = (int)w[ch * KH * KW + i] - zw;
    const int b = bias[ch];
    const float s = mult[ch];
    __global out_t* yn = y + y_off + n * y_bs;
#if FACC
    // Chunks inside the row read raw 8-bit values: sum (x - zx) w = sum x w - zx * (the sum of the
    // weights of the taps whose input row lies in the map), the same for every chunk of an output
    // row, so it starts the sum instead of a subtraction per loaded vector. (Exact: |partial sums|
    // stay under 2 * 255 * 255 * KH * KW, below 2^24 for kernels up to 9x9.)
    float start[ROWS];
#pragma unroll
    for (int j = 0; j < ROWS; j++) {
        float taps = 0.0f;
        for (int ky = 0; ky < KH; ky++) {
            const int iy = (oy0 + j) * SY - py + ky;
            if (iy >= 0 && iy < h)
                for (int kx = 0; kx < KW; kx++) taps += wk[ky * KW + kx];
        }
        start[j] = -taps * zx;
    }
#endif
    for (int ox0 = 0; ox0 < wo; ox0 += 8) {
        acc8_t acc[ROWS];
        const int ix0 = ox0 * SX - px;
        if (ix0 >= 0 && ix0 + 8 * SX + KW - 1 <= wd) {  // inside the row: plain vector loads
#if FACC
#pragma unroll
            for (int j = 0; j < ROWS; j++) acc[j] = (acc8_t)(start[j]);
#if SX == 2 && KW <= 9
            // stride 2: the row's 16 + KW - 1 pixels converted once, each tap a shuffle of them
            DW_Q8_CHUNK(const float8 e0 = convert_float8(vload8(0, row + ix0));
                        const float8 e1 = convert_float8(vload8(0, row + ix0 + 8));
                        const float8 e2 = convert_float8(load_row8_q(row, ix0 + 16, 1, wd, 0));,
                        shuffle2((float16)(e0, e1), (float16)(e2, e2), (uint8)(0, 2, 4, 6, 8, 10, 12, 14) + (uint)kx))
#else
            DW_Q8_CHUNK(, ACC8(LOAD_IN(row, ix0 + kx)))
#endif
#else
#pragma unroll
            for (int j = 0; j < ROWS; j++) acc[j] = (acc8_t)(0);
            DW_Q8_CHUNK(, ACC8(LOAD_IN(row, ix0 + kx) - zx))
#endif
        } else {
#pragma unroll
            for (int j = 0; j < ROWS; j++) acc[j] = (acc8_t)(0);
#if KW <= 9
            // The first chunk of a row and the last (every chunk of a 7- or 14-wide map): the
            // row's 8 * SX + KW - 1 pixels from ix0 as three bounds-checked vectors loaded once,
            // each tap a constant shuffle of them, instead of a clamped gather per tap.
            DW_Q8_CHUNK(const acc8_t e0 = ACC8(load_row8_q(row, ix0, 1, wd, zx));
                        const acc8_t e1 = ACC8(load_row8_q(row, ix0 + 8, 1, wd, zx));
                        const acc8_t e2 = SX == 1 ? (acc8_t)(0) : ACC8(load_row8_q(row, ix0 + 16, 1, wd, zx));,
                        shuffle2((EDGE16)(e0, e1), (EDGE16)(e2, e2), (uint8)(0, 1, 2, 3, 4, 5, 6, 7) * SX + (uint)kx))
#else
            DW_Q8_CHUNK(, ACC8(load_row8_q(row, ix0 + kx, SX, wd, zx)))
#endif
        }
        const int cnt = min(8, wo - ox0);
#pragma unroll
        for (int j = 0; j < ROWS; j++) {
            const int oy = oy0 + j;
            if (oy < ho) {
                const int idx = (ch * ho + oy) * wo + ox0;
                finish8_q(convert_int8(acc[j]) + b, s, yn, n, idx, cnt, Q8_EPI_PASS);
            }
        }
    }
}
#endif

// 1x1 stride 1 on x86 CPUs with AVX-512 VNNI (DOT, PoCL): vpdpbusd multiplies 4 unsigned bytes by
// 4 signed bytes and adds the 4 products to an int32 lane, 64 multiply-adds per instruction
// against an fp32 FMA's 16. LLVM 15 does not form it from OpenCL C (engine/README.md), so the tile
// is a function compiled for the avx512vnni feature that calls clang's builtin; noinline keeps it
// out of PoCL's work-group function, which is compiled for the device's CPU name (skylake-avx512,
// no VNNI). The host defines DOT only where the CPU has avx512_vnni (ops/conv_q8.py).
// One work-item: TM channels x 16*NV pixels of the row of H*W. A step packs 4 input channels'
// 16 pixels into one int16 (byte j of lane p: channel k+j at pixel p) and adds one vpdpbusd per
// channel with its 4 weights (char4 as an int, [co block][k/4][TM]) broadcast. With stored values
// (x: uchar, w: char, zero points zx, zw) sum (x - zx)(w - zw) = sum x w - zw sum x - zx sum (w - zw):
// the host folds the last term into the bias, and with ZW (zw != 0) sum x per pixel is one more
// vpdpbusd with bytes of 1. int32 sums are exact (|x w| <= 255 * 128).
#if DOT
#define DOT_FN __attribute__((target("avx512vnni"), noinline))
#define DP4(acc, x, w) __builtin_ia32_vpdpbusd512((acc), (x), (w))
#define DOT_ONES ((int16)(0x01010101))
#ifndef ZW
#define ZW 0
#endif

// 16 pixels of one channel from p (count cnt: zeros past it), widened to int lanes
INLINE int16 load16_dot(const __global uchar* p, int cnt) {
    if (cnt >= 16) return convert_int16(vload16(0, p));
    uchar t[16];
    for (int j = 0; j < 16; j++) t[j] = j < cnt ? p[j] : 0;
    return convert_int16(vload16(0, t));
}

// 4 channels' rows (from k, rows past cin read as 0) packed: byte j of lane p = channel k + j
INLINE int16 pack4_dot(const __global uchar* xp, int hw, int k, int cin, int cnt) {
    int16 r = load16_dot(xp + k * hw, cnt);
#pragma unroll
    for (int j = 1; j < 4; j++)
        if (k + j < cin) r |= load16_dot(xp + (k + j) * hw, cnt) << (8 * j);
    return r;
}

#define DOT_STEP(PACK)                                                                            \
    {                                                                                             \
        int16 xq[NV];                                                                             \
        _Pragma("unroll") for (int v = 0; v < NV; v++) {                                          \
            xq[v] = PACK;                                                                         \
            if (ZW) xs[v] = DP4(xs[v], xq[v], DOT_ONES);                                          \
        }                                                                                         \
        _Pragma("unroll") for (int m = 0; m < TM; m++) {                                          \
            const int16 wv = (int16)(wp[(k >> 2) * TM + m]);                                      \
            _Pragma("unroll") for (int v = 0; v < NV; v++) acc[m][v] = DP4(acc[m][v], xq[v], wv); \
        }                                                                                         \
    }

// mode 1 with 8-bit output on 16 whole results: epi8_int and store8_q's arithmetic, 16 lanes wide
// (the small-K layers spend more on the epilogue than on the sums)
// (cnt < 16: the first cnt results of a tile at the end of the row)
INLINE void finish16_int(int16 acc, float mult, __global uchar* y, float8 q, float4 oq,
                         const __global res_t* res, int cnt) {
#if RES == 2
    float16 v = fmin(fmax(rint(convert_float16(acc) * mult) + q.s1, q.s2), q.s3);
    float16 rv;
    if (cnt >= 16) {
        rv = convert_float16(vload16(0, res));
    } else {
        uchar t[16] = {0};
        for (int j = 0; j < cnt; j++) t[j] = res[j];
        rv = convert_float16(vload16(0, t));
    }
    v = fmin(fmax(rint(fma(rv, (float16)(q.s5), fma(v, (float16)(q.s4), (float16)(q.s6)))), oq.z), oq.w);
    const uchar16 u = convert_uchar16(convert_int16(v));
#else
    // rint and the conversion in one instruction (round to nearest even), the clamp in int lanes
    const uchar16 u = convert_uchar16(clamp(convert_int16_rte(convert_float16(acc) * mult) + (int)q.s1, (int)q.s2, (int)q.s3));
#endif
    if (cnt >= 16) {
        vstore16(u, 0, y);
    } else {
        uchar t[16];
        vstore16(u, 0, t);
        for (int j = 0; j < cnt; j++) y[j] = t[j];
    }
}

DOT_FN void q8_1x1_dot_tile(const __global uchar* xp, const __global int* wp, int zw, const __global int* bias,
                            const __global float* mult, __global out_t* yn, int n, int p0, int co0, int cin,
                            int cout, int hw, int4 acts, float4 ap, float8 q, float4 oq,
                            const __global res_t* res, int res_off, int res_bs, float2 rq, int mode) {
    int16 acc[TM][NV], xs[NV];
#pragma unroll
    for (int v = 0; v < NV; v++) {
        xs[v] = (int16)(0);
#pragma unroll
        for (int m = 0; m < TM; m++) acc[m][v] = (int16)(0);
    }
    const int k4 = cin & ~3;
    int k = 0;
    if (p0 + 16 * NV <= hw) {
        for (; k < k4; k += 4)
            DOT_STEP(convert_int16(vload16(0, xp + k * hw + 16 * v)) |
                     (convert_int16(vload16(0, xp + (k + 1) * hw + 16 * v)) << 8) |
                     (convert_int16(vload16(0, xp + (k + 2) * hw + 16 * v)) << 16) |
                     (convert_int16(vload16(0, xp + (k + 3) * hw + 16 * v)) << 24))
    }
    for (; k < cin; k += 4)  // the row's last pixels, and the last channels when cin % 4 != 0
        DOT_STEP(pack4_dot(xp + 16 * v, hw, k, cin, hw - p0 - 16 * v))
#pragma unroll
    for (int m = 0; m < TM; m++) {
        const int co = co0 + m;
        if (co < cout) {
            const int b = bias[co];
            const float s = mult[co];
#pragma unroll
            for (int v = 0; v < NV; v++) {
                const int16 sum = acc[m][v] - zw * xs[v] + b;
#if OUT_Q8 && RES != 1
                if (mode == 1 && p0 + 16 * (v + 1) <= hw) {
                    const int idx = co * hw + p0 + 16 * v;
                    finish16_int(sum, s, yn + idx, q, oq, res + res_off + n * res_bs + idx, 16);
                    continue;
                }
#endif
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const int p = p0 + 16 * v + 8 * h;
                    if (p < hw)
                        finish8_q(h ? sum.hi : sum.lo, s, yn, n, co * hw + p, min(8, hw - p), Q8_EPI_PASS);
                }
            }
        }
    }
}

#if !defined(ENTRY) || ENTRY == 4
__kernel void conv2d_1x1_q8dot(__global const uchar* x, int x_off, int x_bs, int zx, __global const int* w, int zw,
                               __global const int* bias, __global const float* mult, int co_pad, __global out_t* y,
                               int y_off, int y_bs, float4 oq, int cin_g, int cout_g, int groups, int h, int hw,
                               int ho, int wo, int sy, int py, int px, int4 acts, float4 ap, float8 q,
                               __global const res_t* res, int res_off, int res_bs, float2 rq, int mode) {
    const int p0 = get_global_id(0) * 16 * NV;
    const int co0 = get_global_id(1) * TM;
    const int n = get_global_id(2);
    if (p0 >= hw || co0 >= cout_g) return;
    q8_1x1_dot_tile(x + x_off + n * x_bs + p0, w + co0 * ((cin_g + 3) / 4), zw, bias, mult,
                    y + y_off + n * y_bs, n, p0, co0, cin_g, cout_g, hw, acts, ap, q, oq, res, res_off, res_bs, rq,
                    mode);
}
#endif

// ENTRY 5: a depthwise 3x3 conv (stride SD, 1 or 2) and the VNNI 1x1 conv that alone reads it,
// in one launch (MobileNetV2's inverted residual: depthwise, projection, + the block's input): the
// depthwise output never goes through memory. One work-item takes up to 16 consecutive output
// pixels: with SD 1, 16 pixels of the row of H*W (a tile may span rows, so 7x7 and 14x14 maps fill
// every lane); with SD 2, 16 pixels of one output row (each tap reads every second input pixel,
// taken from two loaded vectors by a shuffle). For each of the cmid depthwise channels it sums the
// 9 taps in fp32 (exact integers, as conv2d_dw_q8's FACC), requantises them with the same float
// operations as that kernel's mode 1 (so to the same stored values) and packs them 4 channels to
// an int lane, as the 1x1 kernel's step does; the packed column (cmid bytes per pixel, at most
// DWPW_MAX) stays in private memory. Then each block of TM output channels is one vpdpbusd per 4
// channels, and the 1x1 conv's integer epilogue (+ its 8-bit residual with RES 2). A tap outside
// the map reads the input's zero point (a real 0; lanes are masked by their row and column): the
// host folds -zx * (the sum of each channel's 9 weights) into its depthwise bias (sum (x - zx) w =
// sum x w - zx sum w). Loads stray a row and a few pixels beyond the tile into neighbouring bytes
// of the pool (masked lanes); only where that would leave the pool ([0, lim) bytes) are the taps
// read byte by byte.
#define DWPW_MAX 1024
#ifndef SD
#define SD 1
#endif

INLINE float16 load16_within(const __global uchar* p, int at, int lim, float fill) {
    float t[16];
    for (int i = 0; i < 16; i++) t[i] = at + i >= 0 && at + i < lim ? (float)p[i] : fill;
    return vload16(0, t);
}

// the depthwise sum (+ bias) requantised as conv2d_dw_q8's mode 1 does, as int lanes 0..255
INLINE int16 dw_requant(float16 acc, int bias, float mult, float4 qd) {
    const int16 a = convert_int16(acc) + bias;
    return clamp(convert_int16_rte(convert_float16(a) * mult) + (int)qd.x, (int)qd.y, (int)qd.z);
}

#if SD == 1
#define DWPW_TAPS(LOAD)                                                                    \
    _Pragma("unroll") for (int t = 0; t < 9; t++) {                                        \
        const int o = (t / 3 - 1) * w + t % 3 - 1;                                         \
        float16 v = LOAD;                                                                  \
        if (t != 4) v = select((float16)(zxf), v, mask[t]);                                \
        acc = MAD(v, (float16)(wc[t]), acc);                                               \
    }
#else
// stride 2: per kernel row, 32 input pixels from the tile's first tap (two loads) hold taps 0
// and 1 of every lane at even and odd positions; tap 2 is tap 0 moved one lane, plus pixel 32
#define DWPW_TAPS(LOAD)                                                                    \
    _Pragma("unroll") for (int ky = 0; ky < 3; ky++) {                                     \
        const int o = ky * w;                                                              \
        const float16 a = LOAD, b = (LOAD##_HI);                                           \
        float16 v[3];                                                                      \
        v[0] = shuffle2(a, b, (uint16)(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)); \
        v[1] = shuffle2(a, b, (uint16)(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)); \
        v[2] = shuffle2(v[0], (float16)(LOAD##_LAST), (uint16)(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)); \
        _Pragma("unroll") for (int kx = 0; kx < 3; kx++)                                   \
            acc = MAD(select((float16)(zxf), v[kx], mask[ky * 3 + kx]), (float16)(wc[ky * 3 + kx]), acc); \
    }
#endif
#define FAST convert_float16(vload16(0, xc + o))
#define FAST_HI convert_float16(vload16(0, xc + o + 16))
#define FAST_LAST (float)xc[o + 32]
#define SLOW load16_within(xc + o, at + o, lim, zxf)
#define SLOW_HI load16_within(xc + o + 16, at + o + 16, lim, zxf)
#define SLOW_LAST (at + o + 32 >= 0 && at + o + 32 < lim ? (float)xc[o + 32] : zxf)

DOT_FN void q8_dwpw_tile(const __global uchar* xn, int x_at, int lim, float zxf, const __global float* wd,
                         const __global int* bd, const __global float* md, float4 qd, const __global int* wp,
                         int zw, const __global int* bp, const __global float* mp, __global uchar* yn,
                         const __global res_t* rn, int tile, int cmid, int cout, int h, int w, int ho, int wo,
                         int pt, int pl, float8 q, float4 oq) {
    const int16 lane = (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
#if SD == 1
    // 16 pixels of the row of H*W; the taps' offsets from each pixel are the same
    const int p0 = tile * 16, cnt = min(16, ho * wo - p0), first = p0;
    const int16 py = (p0 + lane) / wo, px = p0 + lane - py * wo;
    const int16 up = py > 0, down = py < h - 1, left = px > 0, right = px < w - 1;
    const int16 mask[9] = {up & left, up, up & right, left, (int16)(-1), right, down & left, down, down & right};
    const int lo = -w - 1, span = 2 * w + 18;  // the bytes read: [first + lo, first + lo + span)
#else
    // 16 pixels of output row oy: tap (ky, kx) of lane l reads input (2 oy + ky - pt, 2 (ox0 + l) + kx - pl)
    const int tiles = (wo + 15) / 16, oy = tile / tiles, ox0 = tile % tiles * 16;
    const int p0 = oy * wo + ox0, cnt = min(16, wo - ox0);
    const int iy = 2 * oy - pt, ix = 2 * ox0 - pl;
    const int16 cx = ix + 2 * lane;
    int16 mask[9];
#pragma unroll
    for (int t = 0; t < 9; t++) {
        const int16 col = cx + t % 3;
        mask[t] = (col >= 0) & (col < w) & (int16)(iy + t / 3 >= 0 && iy + t / 3 < h ? -1 : 0);
    }
    const int first = iy * w + ix;  // the tile's first tap (ky = kx = 0)
    const int lo = 0, span = 2 * w + 33;
#endif
    const int cmid4 = (cmid + 3) / 4;
    int16 col[DWPW_MAX / 4];
    int16 xs = (int16)(0);
    for (int k = 0; k < cmid4; k++) {
        int16 packed = (int16)(0);
        for (int j = 0; j < 4 && 4 * k + j < cmid; j++) {
            const int c = 4 * k + j;
            const __global uchar* xc = xn + c * h * w + first;
            const int at = x_at + c * h * w + first;
            if (at + lo >= 0 && at + lo + span <= lim) {
                float16 acc = (float16)(0.0f);
                const __global float* wc = wd + c * 9;
                DWPW_TAPS(FAST)
                packed |= dw_requant(acc, bd[c], md[c], qd) << (8 * j);
            } else {
                float16 acc = (float16)(0.0f);
                const __global float* wc = wd + c * 9;
                DWPW_TAPS(SLOW)
                packed |= dw_requant(acc, bd[c], md[c], qd) << (8 * j);
            }
        }
        col[k] = packed;
        if (ZW) xs = DP4(xs, packed, DOT_ONES);
    }
    for (int co0 = 0; co0 < cout; co0 += TM) {
        int16 acc[TM];
#pragma unroll
        for (int m = 0; m < TM; m++) acc[m] = (int16)(0);
        const __global int* wb = wp + co0 * cmid4;
        for (int k = 0; k < cmid4; k++) {
            const int16 xq = col[k];
#pragma unroll
            for (int m = 0; m < TM; m++) acc[m] = DP4(acc[m], xq, (int16)(wb[k * TM + m]));
        }
        const int hw = ho * wo;
#pragma unroll
        for (int m = 0; m < TM; m++) {
            const int co = co0 + m;
            if (co < cout)
                finish16_int(acc[m] - zw * xs + bp[co], mp[co], yn + co * hw + p0, q, oq, rn + co * hw + p0, cnt);
        }
    }
}

#if !defined(ENTRY) || ENTRY == 5
// (h, w: the depthwise input; ho, wo: its output and the 1x1 conv's; pt, pl: its top and left padding)
__kernel void conv2d_dwpw_q8dot(__global const uchar* x, int x_off, int x_bs, float zxf, int lim,
                                __global const float* wd, __global const int* bd, __global const float* md,
                                float4 qd, __global const int* wp, int zw, __global const int* bp,
                                __global const float* mp, __global uchar* y, int y_off, int y_bs, float8 q,
                                float4 oq, __global const res_t* res, int res_off, int res_bs, int cmid, int cout,
                                int h, int w, int ho, int wo, int pt, int pl) {
    const int tile = get_global_id(0);
    const int n = get_global_id(2);
    if (tile >= (SD == 1 ? (ho * wo + 15) / 16 : ho * ((wo + 15) / 16))) return;
    q8_dwpw_tile(x + x_off + n * x_bs, x_off + n * x_bs, lim, zxf, wd, bd, md, qd, wp, zw, bp, mp,
                 y + y_off + n * y_bs, res + res_off + n * res_bs, tile, cmid, cout, h, w, ho, wo, pt, pl, q, oq);
}
#endif
#endif
