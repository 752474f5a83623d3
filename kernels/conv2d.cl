// General 2-D convolution (any kernel size, stride, padding, dilation, groups), direct and
// register-blocked: one work-item computes TM output channels x (8*NV) consecutive pixels of one
// output row. Weights are stored [group][co block of TM][ci][ky][kx][TM].
// Defines: TM, NV, KH, KW, SX (x stride), DY/DX (dilations).
#define TN (8 * NV)

__kernel void conv2d(__global const store_t* x, int x_off, int x_bs,
                     __global const float* w, __global const float* bias, int co_pad,
                     __global store_t* y, int y_off, int y_bs,
                     int cin_g, int cout_g, int groups, int h, int wd, int ho, int wo,
                     int sy, int py, int px, EPI_ARGS) {
    const int ox0 = get_global_id(0) * TN;
    // Range dim 1 walks (output row, channel block) with the block fastest: the work-groups
    // that read one input row band for every channel block run back to back, so the band is
    // still in L1/L2 for the second block instead of coming back from L3.
    const int ncob = (cout_g + TM - 1) / TM;
    const int oy = get_global_id(1) / ncob;
    const int cob = get_global_id(1) % ncob;
    const int z = get_global_id(2);
    const int g = z % groups;
    const int n = z / groups;
    if (ox0 >= wo) return;
    const int co0 = cob * TM;
    const __global store_t* xg = x + x_off + n * x_bs + g * cin_g * h * wd;
    // Weights are blocked by TM output channels: this work-item's weights are one contiguous run.
    const __global float* wg = w + (g * ncob + cob) * cin_g * KH * KW * TM;
    float8 acc[TM][NV];
#pragma unroll
    for (int m = 0; m < TM; m++)
#pragma unroll
        for (int v = 0; v < NV; v++) acc[m][v] = (float8)(0.0f);
    for (int ci = 0; ci < cin_g; ci++) {
        const __global store_t* xc = xg + ci * h * wd;
        for (int ky = 0; ky < KH; ky++) {
            const int iy = oy * sy - py + ky * DY;
            if (iy < 0 || iy >= h) continue;
            const __global store_t* row = xc + iy * wd;
#if SX == 1 && DX == 1 && KW <= 9
            // Stride 1: one bounds-checked strip load per row, each tap a constant shuffle of it.
            float8 strip[NV + 1];
#pragma unroll
            for (int v = 0; v <= NV; v++) strip[v] = load_row8(row, ox0 + v * 8 - px, 1, wd);
#endif
#pragma unroll
            for (int kx = 0; kx < KW; kx++) {
                float8 xv[NV];
#if SX == 1 && DX == 1 && KW <= 9
                const uint8 sel = (uint8)(0, 1, 2, 3, 4, 5, 6, 7) + (uint)kx;
#pragma unroll
                for (int v = 0; v < NV; v++) xv[v] = shuffle2(strip[v], strip[v + 1], sel);
#else
#pragma unroll
                for (int v = 0; v < NV; v++) xv[v] = load_row8(row, (ox0 + v * 8) * SX - px + kx * DX, SX, wd);
#endif
                const __global float* wk = wg + ((ci * KH + ky) * KW + kx) * TM;
#pragma unroll
                for (int m = 0; m < TM; m++) {
                    const float wm = wk[m];
#pragma unroll
                    for (int v = 0; v < NV; v++) acc[m][v] = MAD((float8)(wm), xv[v], acc[m][v]);
                }
            }
        }
    }
    const int cout = cout_g * groups;
#pragma unroll
    for (int m = 0; m < TM; m++) {
        const int col = co0 + m;
        if (col < cout_g) {
            const int co = g * cout_g + col;
            const float b = bias[co];
#pragma unroll
            for (int v = 0; v < NV; v++) {
                const int ox = ox0 + v * 8;
                if (ox < wo) {
                    const int cnt = min(8, wo - ox);
                    const int idx = (co * ho + oy) * wo + ox;
                    float8 r = epi8(acc[m][v] + b, EPI_PASS, n, idx, cnt);
                    store8(r, y + y_off + n * y_bs, idx, cnt);
                }
            }
        }
    }
}
