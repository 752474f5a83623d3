// Winograd F(2x2,3x3) for dense stride-1 3x3 convolutions, in three launches:
//   wino_input:  V[e][n][ci][t] = (B^T d B)[e] for each 4x4 input window d of output tile t (16 values e),
//   wino_gemm:   M[e][n][co][t] = sum_ci U[e][co][ci] * V[e][n][ci][t] (16 GEMMs over the channels; the
//                weights U = G g G^T are transformed once on the host, stored [e][co block][ci][TM]),
//   wino_output: y = A^T M A + bias, then the conv's fused epilogue.
// A 2x2 output tile costs 16 multiplies per input channel instead of 36; the transforms are additions
// whose cost is shared over all output (input transform) or input (output transform) channels.
// V and M are fp32 scratch buffers of the plan. Tiles are numbered t = ty * tiles_x + tx.
// Defines: TM, NV (wino_gemm: output channels x 8*NV tiles per work-item).

// wino_input: one work-item per 8 consecutive tiles of a tile row, for one (image, input channel).
__kernel void wino_input(__global const store_t* x, int x_off, int x_bs, __global float* v, int cin, int h,
                         int wd, int py, int px, int tiles_y, int tiles_x, int nbatch) {
    const int tx0 = get_global_id(0) * 8;
    const int ty = get_global_id(1);
    const int n = get_global_id(2) / cin, ci = get_global_id(2) % cin;
    if (tx0 >= tiles_x) return;
    const __global store_t* xc = x + x_off + n * x_bs + ci * h * wd;
    const int ix0 = tx0 * 2 - px;
    float8 d[4][4];  // d[row][col]: lane j holds the window of tile tx0 + j
#pragma unroll
    for (int r = 0; r < 4; r++) {
        const int iy = ty * 2 - py + r;
        if (iy < 0 || iy >= h) {
            d[r][0] = d[r][1] = d[r][2] = d[r][3] = (float8)(0.0f);
            continue;
        }
        const __global store_t* row = xc + iy * wd;
        const float8 lo = load_row8(row, ix0, 1, wd), mid = load_row8(row, ix0 + 8, 1, wd);
        const float8 hi = load_row8(row, ix0 + 16, 1, wd);
        d[r][0] = (float8)(lo.even, mid.even);
        d[r][1] = (float8)(lo.odd, mid.odd);
        d[r][2] = (float8)(lo.s246, mid.s0246, hi.s0);
        d[r][3] = (float8)(lo.s357, mid.s1357, hi.s1);
    }
    float8 t[4][4];  // B^T d: rows combined
#pragma unroll
    for (int c = 0; c < 4; c++) {
        t[0][c] = d[0][c] - d[2][c];
        t[1][c] = d[1][c] + d[2][c];
        t[2][c] = d[2][c] - d[1][c];
        t[3][c] = d[1][c] - d[3][c];
    }
    const int T = tiles_y * tiles_x;
    const int cnt = min(8, tiles_x - tx0);
    __global float* out = v + (n * cin + ci) * T + ty * tiles_x + tx0;
    const int estride = nbatch * cin * T;
#pragma unroll
    for (int r = 0; r < 4; r++) {  // (B^T d) B: columns combined
        const float8 e4[4] = {t[r][0] - t[r][2], t[r][1] + t[r][2], t[r][2] - t[r][1], t[r][1] - t[r][3]};
#pragma unroll
        for (int c = 0; c < 4; c++) {
            __global float* o = out + (r * 4 + c) * estride;
            if (cnt == 8) {
                vstore8(e4[c], 0, o);
            } else {
                float tmp[8];
                vstore8(e4[c], 0, tmp);
                for (int j = 0; j < cnt; j++) o[j] = tmp[j];
            }
        }
    }
}

#define TN (8 * NV)

INLINE float8 load8_tail(const __global float* p, int cnt) {
    if (cnt >= 8) return vload8(0, p);
    float tmp[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    for (int j = 0; j < cnt; j++) tmp[j] = p[j];
    return vload8(0, tmp);
}

// wino_gemm: one work-item computes TM output channels x 8*NV tiles of one (e, image).
__kernel void wino_gemm(__global const float* v, __global const float* u, __global float* m, int cin, int cout,
                        int co_pad, int T, int nbatch) {
    const int p0 = get_global_id(0) * TN;
    const int co0 = get_global_id(1) * TM;
    const int z = get_global_id(2);  // e * nbatch + n
    const int e = z / nbatch;
    if (p0 >= T || co0 >= cout) return;
    const __global float* vp = v + z * cin * T + p0;
    const __global float* wp = u + (e * co_pad + co0) * cin;  // [co block][ci][TM]: one contiguous run
    float8 acc[TM][NV];
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < NV; j++) acc[i][j] = (float8)(0.0f);
    const int left = T - p0;
    for (int k = 0; k < cin; k++) {
        float8 xv[NV];
        if (left >= TN) {
#pragma unroll
            for (int j = 0; j < NV; j++) xv[j] = vload8(0, vp + k * T + j * 8);
        } else {
#pragma unroll
            for (int j = 0; j < NV; j++) xv[j] = load8_tail(vp + k * T + j * 8, left - j * 8);
        }
        const __global float* wk = wp + k * TM;
#pragma unroll
        for (int i = 0; i < TM; i++) {
            const float wi = wk[i];
#pragma unroll
            for (int j = 0; j < NV; j++) acc[i][j] = MAD((float8)(wi), xv[j], acc[i][j]);
        }
    }
#pragma unroll
    for (int i = 0; i < TM; i++) {
        if (co0 + i >= cout) break;
        __global float* out = m + (z * cout + co0 + i) * T + p0;
#pragma unroll
        for (int j = 0; j < NV; j++) {
            const int cnt = left - j * 8;
            if (cnt >= 8) {
                vstore8(acc[i][j], 0, out + j * 8);
            } else if (cnt > 0) {
                float tmp[8];
                vstore8(acc[i][j], 0, tmp);
                for (int q = 0; q < cnt; q++) out[j * 8 + q] = tmp[q];
            }
        }
    }
}

// wino_output: one work-item per 8 consecutive tiles of a tile row (16 x 2 output pixels), for one
// (image, output channel); partial tiles at the right and bottom edges store only their pixels inside.
__kernel void wino_output(__global const float* m, __global const float* bias, __global store_t* y, int y_off,
                          int y_bs, int cout, int ho, int wo, int tiles_y, int tiles_x, int nbatch, EPI_ARGS) {
    const int tx0 = get_global_id(0) * 8;
    const int ty = get_global_id(1);
    const int n = get_global_id(2) / cout, co = get_global_id(2) % cout;
    if (tx0 >= tiles_x) return;
    const int T = tiles_y * tiles_x;
    const int cnt = min(8, tiles_x - tx0);
    const __global float* src = m + (n * cout + co) * T + ty * tiles_x + tx0;
    const int estride = nbatch * cout * T;
    float8 s[4][2];  // M A: columns combined
#pragma unroll
    for (int r = 0; r < 4; r++) {
        float8 q[4];
#pragma unroll
        for (int c = 0; c < 4; c++) q[c] = load8_tail(src + (r * 4 + c) * estride, cnt);
        s[r][0] = q[0] + q[1] + q[2];
        s[r][1] = q[1] - q[2] - q[3];
    }
    const float b = bias[co];
#pragma unroll
    for (int i = 0; i < 2; i++) {  // A^T (M A): rows combined
        const int oy = ty * 2 + i;
        if (oy >= ho) break;
        const float8 o0 = i == 0 ? s[0][0] + s[1][0] + s[2][0] : s[1][0] - s[2][0] - s[3][0];
        const float8 o1 = i == 0 ? s[0][1] + s[1][1] + s[2][1] : s[1][1] - s[2][1] - s[3][1];
        // lane j of o0 / o1 is the left / right pixel of tile tx0 + j: interleave into 16 pixels
        const float8 px[2] = {(float8)(o0.s0, o1.s0, o0.s1, o1.s1, o0.s2, o1.s2, o0.s3, o1.s3),
                              (float8)(o0.s4, o1.s4, o0.s5, o1.s5, o0.s6, o1.s6, o0.s7, o1.s7)};
#pragma unroll
        for (int half_ = 0; half_ < 2; half_++) {
            const int ox = tx0 * 2 + half_ * 8;
            if (ox < wo) {
                const int pcnt = min(8, wo - ox);
                const int idx = (co * ho + oy) * wo + ox;
                const float8 r = epi8(px[half_] + b, EPI_PASS, n, idx, pcnt);
                store8(r, y + y_off + n * y_bs, idx, pcnt);
            }
        }
    }
}
