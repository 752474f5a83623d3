// Depthwise 2-D convolution (groups == channels, one filter per channel): one work-item computes
// (8*NV) consecutive pixels of one output row of one channel (any dilation). Weights [c][ky][kx].
// Defines: NV, KH, KW, SX, DY, DX, and ROWS, SY for the _full variant.
#define TN (8 * NV)
#ifndef ROWS
#define ROWS 1
#endif

__kernel void conv2d_dw(__global const store_t* x, int x_off, int x_bs,
                        __global const float* w, __global const float* bias,
                        __global store_t* y, int y_off, int y_bs,
                        int c, int h, int wd, int ho, int wo, int sy, int py, int px, EPI_ARGS) {
    const int ox0 = get_global_id(0) * TN;
    const int oy = get_global_id(1);
    const int z = get_global_id(2);
    const int ch = z % c;
    const int n = z / c;
    if (ox0 >= wo) return;
    const __global store_t* xc = x + x_off + n * x_bs + ch * h * wd;
    const __global float* wc = w + ch * KH * KW;
    float8 acc[NV];
#pragma unroll
    for (int v = 0; v < NV; v++) acc[v] = (float8)(0.0f);
#pragma unroll
    for (int ky = 0; ky < KH; ky++) {
        const int iy = oy * sy - py + ky * DY;
        if (iy < 0 || iy >= h) continue;
        const __global store_t* row = xc + iy * wd;
#if SX == 1 && DX == 1 && KW <= 9
        // Stride 1: load the row strip once (NV + 1 vectors, bounds-checked once) and form each
        // tap's vector with a constant shuffle, instead of KW unaligned, bounds-checked loads.
        float8 strip[NV + 1];
#pragma unroll
        for (int v = 0; v <= NV; v++) strip[v] = load_row8(row, ox0 + v * 8 - px, 1, wd);
#pragma unroll
        for (int kx = 0; kx < KW; kx++) {
            const float wk = wc[ky * KW + kx];
            const uint8 sel = (uint8)(0, 1, 2, 3, 4, 5, 6, 7) + (uint)kx;
#pragma unroll
            for (int v = 0; v < NV; v++) acc[v] = MAD((float8)(wk), shuffle2(strip[v], strip[v + 1], sel), acc[v]);
        }
#else
#pragma unroll
        for (int kx = 0; kx < KW; kx++) {
            const float wk = wc[ky * KW + kx];
#pragma unroll
            for (int v = 0; v < NV; v++)
                acc[v] = MAD((float8)(wk), load_row8(row, (ox0 + v * 8) * SX - px + kx * DX, SX, wd), acc[v]);
        }
#endif
    }
    const float b = bias[ch];
#pragma unroll
    for (int v = 0; v < NV; v++) {
        const int ox = ox0 + v * 8;
        if (ox < wo) {
            const int cnt = min(8, wo - ox);
            const int idx = (ch * ho + oy) * wo + ox;
            float8 r = epi8(acc[v] + b, EPI_PASS, n, idx, cnt);
            store8(r, y + y_off + n * y_bs, idx, cnt);
        }
    }
}

#if DY == 1 && DX == 1
// Variant _full (no dilation, any stride SX x SY): one work-item computes ROWS whole output rows
// of one channel, 8 pixels at a time. A chunk whose taps all lie inside the row (every chunk but
// the first and last) reads each tap as a plain vector load, with no bounds checks and no
// shuffles; each input row is loaded once per chunk and feeds every output row it touches
// ((ROWS - 1) * SY + KH rows for ROWS outputs). Range: (row blocks, channels, batch).
#ifndef SY
#define SY 1
#endif
#define DW_CHUNK(PREP, LOAD, UNROLL_ROWS)                                                     \
    _Pragma(UNROLL_ROWS) for (int r = 0; r < (ROWS - 1) * SY + KH; r++) {                     \
        const int iy = oy0 * SY - py + r;                                                     \
        if (iy < 0 || iy >= h) continue;                                                      \
        const __global store_t* row = xc + iy * wd;                                           \
        PREP                                                                                  \
        _Pragma("unroll") for (int kx = 0; kx < KW; kx++) {                                   \
            const float8 xv = LOAD;                                                           \
            _Pragma("unroll") for (int j = 0; j < ROWS; j++) {                                \
                const int ky = r - j * SY;                                                    \
                if (ky >= 0 && ky < KH) acc[j] = MAD((float8)(wk[ky * KW + kx]), xv, acc[j]); \
            }                                                                                 \
        }                                                                                     \
    }

__kernel void conv2d_dw_full(__global const store_t* x, int x_off, int x_bs,
                             __global const float* w, __global const float* bias,
                             __global store_t* y, int y_off, int y_bs,
                             int c, int h, int wd, int ho, int wo, int sy, int py, int px, EPI_ARGS) {
    const int oy0 = get_global_id(0) * ROWS;
    const int ch = get_global_id(1);
    const int n = get_global_id(2);
    if (oy0 >= ho) return;
    const __global store_t* xc = x + x_off + n * x_bs + ch * h * wd;
    float wk[KH * KW];
#pragma unroll
    for (int i = 0; i < KH * KW; i++) wk[i] = w[ch * KH * KW + i];
    const float b = bias[ch];
    __global store_t* yn = y + y_off + n * y_bs;
    for (int ox0 = 0; ox0 < wo; ox0 += 8) {
        float8 acc[ROWS];
#pragma unroll
        for (int j = 0; j < ROWS; j++) acc[j] = (float8)(b);
        const int ix0 = ox0 * SX - px;
        if (ix0 >= 0 && ix0 + 8 * SX + KW - 1 <= wd) {
#if SX == 1
            DW_CHUNK(, LD8(row, ix0 + kx), "unroll")
#else
            DW_CHUNK(, ((float8)(LD8(row, ix0 + kx).even, LD8(row, ix0 + kx + 8).even)), "unroll")
#endif
        } else {
#if SX == 1 && KW <= 9
            // The first chunk of a row and the last (two of seven on a 52-wide map, both on a
            // 13-wide one): the row's 16 pixels from ix0 as two vectors, each bounds-checked once
            // (a plain load where it lies inside the row), and each tap a constant shuffle of them,
            // instead of a clamped gather per tap.
            DW_CHUNK(const float8 lo = load_row8(row, ix0, 1, wd); const float8 hi = load_row8(row, ix0 + 8, 1, wd);,
                     shuffle2(lo, hi, (uint8)(0, 1, 2, 3, 4, 5, 6, 7) + (uint)kx), "unroll")
#elif SX == 2 && KW <= 9
            // Stride 2, first and last chunk (both chunks of a 13-wide output row, two of four on
            // 26): the row's 24 pixels from ix0 as three bounds-checked vectors, split once into
            // even and odd pixels; tap kx is the even (kx even) or odd run shifted by kx / 2, a
            // constant shuffle, instead of a clamped gather per tap in a loop that kept the
            // accumulators on the stack.
            DW_CHUNK(const float8 lo = load_row8(row, ix0, 1, wd); const float8 mid = load_row8(row, ix0 + 8, 1, wd);
                     const float8 hi = load_row8(row, ix0 + 16, 1, wd);
                     const float8 ev0 = (float8)(lo.even, mid.even); const float8 od0 = (float8)(lo.odd, mid.odd);
                     const float8 ev1 = (float8)(hi.even, hi.even); const float8 od1 = (float8)(hi.odd, hi.odd);,
                     shuffle2((kx & 1) ? od0 : ev0, (kx & 1) ? od1 : ev1, (uint8)(0, 1, 2, 3, 4, 5, 6, 7) + (uint)(kx >> 1)),
                     "unroll")
#else
            DW_CHUNK(, load_row8(row, ix0 + kx, SX, wd), "unroll 1")  // rare: compact code
#endif
        }
        const int cnt = min(8, wo - ox0);
#pragma unroll
        for (int j = 0; j < ROWS; j++) {
            const int oy = oy0 + j;
            if (oy < ho) {
                const int idx = (ch * ho + oy) * wo + ox0;
                store8(epi8(acc[j], EPI_PASS, n, idx, cnt), yn, idx, cnt);
            }
        }
    }
}
#endif
