// Depthwise 2-D convolution (groups == channels, one filter per channel): one work-item computes
// (8*NV) consecutive pixels of one output row of one channel. Weights [c][ky][kx].
// Defines: NV, KH, KW, SX, DY, DX, and ROWS for the _rows variant.
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
            for (int v = 0; v < NV; v++) acc[v] = mad((float8)(wk), shuffle2(strip[v], strip[v + 1], sel), acc[v]);
        }
#else
#pragma unroll
        for (int kx = 0; kx < KW; kx++) {
            const float wk = wc[ky * KW + kx];
#pragma unroll
            for (int v = 0; v < NV; v++)
                acc[v] = mad((float8)(wk), load_row8(row, (ox0 + v * 8) * SX - px + kx * DX, SX, wd), acc[v]);
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

#if SX == 1 && DX == 1 && DY == 1 && KW <= 9
// Variant _rows (stride 1, no dilation): ROWS output rows per work-item. Each input row strip is
// loaded once and used by every output row it touches (KH + ROWS - 1 strips instead of
// KH * ROWS), and the per-work-item index and epilogue set-up is shared by ROWS rows.
__kernel void conv2d_dw_rows(__global const store_t* x, int x_off, int x_bs,
                             __global const float* w, __global const float* bias,
                             __global store_t* y, int y_off, int y_bs,
                             int c, int h, int wd, int ho, int wo, int sy, int py, int px, EPI_ARGS) {
    const int ox0 = get_global_id(0) * TN;
    const int oy0 = get_global_id(1) * ROWS;
    const int z = get_global_id(2);
    const int ch = z % c;
    const int n = z / c;
    if (ox0 >= wo) return;
    const __global store_t* xc = x + x_off + n * x_bs + ch * h * wd;
    float wk[KH * KW];
#pragma unroll
    for (int i = 0; i < KH * KW; i++) wk[i] = w[ch * KH * KW + i];
    float8 acc[ROWS][NV];
#pragma unroll
    for (int j = 0; j < ROWS; j++)
#pragma unroll
        for (int v = 0; v < NV; v++) acc[j][v] = (float8)(0.0f);
#pragma unroll
    for (int r = 0; r < KH + ROWS - 1; r++) {
        const int iy = oy0 - py + r;
        if (iy < 0 || iy >= h) continue;
        const __global store_t* row = xc + iy * wd;
        float8 strip[NV + 1];
#pragma unroll
        for (int v = 0; v <= NV; v++) strip[v] = load_row8(row, ox0 + v * 8 - px, 1, wd);
#pragma unroll
        for (int j = 0; j < ROWS; j++) {
            const int ky = r - j;
            if (ky >= 0 && ky < KH) {
#pragma unroll
                for (int kx = 0; kx < KW; kx++) {
                    const uint8 sel = (uint8)(0, 1, 2, 3, 4, 5, 6, 7) + (uint)kx;
#pragma unroll
                    for (int v = 0; v < NV; v++)
                        acc[j][v] = mad((float8)(wk[ky * KW + kx]), shuffle2(strip[v], strip[v + 1], sel), acc[j][v]);
                }
            }
        }
    }
    const float b = bias[ch];
#pragma unroll
    for (int j = 0; j < ROWS; j++) {
        const int oy = oy0 + j;
#pragma unroll
        for (int v = 0; v < NV; v++) {
            const int ox = ox0 + v * 8;
            if (oy < ho && ox < wo) {
                const int cnt = min(8, wo - ox);
                const int idx = (ch * ho + oy) * wo + ox;
                float8 r = epi8(acc[j][v] + b, EPI_PASS, n, idx, cnt);
                store8(r, y + y_off + n * y_bs, idx, cnt);
            }
        }
    }
}
#endif
