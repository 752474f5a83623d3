// 1x1 stride-1 convolution as a register-blocked GEMM: Y[co, p] = sum_k W[k, co] * X[k, p].
// One work-item computes TM output channels x (8*NV) consecutive pixels; the weights are stored
// [co block][k][TM] (padded to a multiple of TM) so a work-item reads one contiguous run of them
// with no bounds checks.
// Defines: TM (channels per work-item), NV (float8 vectors of pixels per work-item), and CO_INNER:
// when 1 a work-item loops over every channel block itself (global dim 1 is 1), so its pixel
// columns of X stay in L1 across the blocks instead of being re-read from L2 by other groups.
#define TN (8 * NV)
#ifndef CO_INNER
#define CO_INNER 0
#endif

__kernel void conv2d_1x1(__global const store_t* x, int x_off, int x_bs,
                         __global const float* w, __global const float* bias, int co_pad,
                         __global store_t* y, int y_off, int y_bs,
                         int K, int cout, int hw, EPI_ARGS) {
    const int p0 = get_global_id(0) * TN;
    const int n = get_global_id(2);
    const __global store_t* xp = x + x_off + n * x_bs + p0;
#if CO_INNER
    if (p0 >= hw) return;
    for (int co0 = 0; co0 < cout; co0 += TM) {
#else
    const int co0 = get_global_id(1) * TM;
    if (p0 >= hw || co0 >= cout) return;
    {
#endif
    const __global float* wp = w + co0 * K;  // blocked [co block][k][TM]: one contiguous run
    float8 acc[TM][NV];
#pragma unroll
    for (int m = 0; m < TM; m++)
#pragma unroll
        for (int v = 0; v < NV; v++) acc[m][v] = (float8)(0.0f);
    if (p0 + TN <= hw) {
        for (int k = 0; k < K; k++) {
            float8 xv[NV];
#pragma unroll
            for (int v = 0; v < NV; v++) xv[v] = LD8(xp, k * hw + v * 8);
#pragma unroll
            for (int m = 0; m < TM; m++) {
                const float wm = wp[k * TM + m];
#pragma unroll
                for (int v = 0; v < NV; v++) acc[m][v] = MAD((float8)(wm), xv[v], acc[m][v]);
            }
        }
    } else {
        for (int k = 0; k < K; k++) {
            float8 xv[NV];
#pragma unroll
            for (int v = 0; v < NV; v++) xv[v] = load_row8(xp + k * hw, v * 8, 1, hw - p0);
#pragma unroll
            for (int m = 0; m < TM; m++) {
                const float wm = wp[k * TM + m];
#pragma unroll
                for (int v = 0; v < NV; v++) acc[m][v] = MAD((float8)(wm), xv[v], acc[m][v]);
            }
        }
    }
    // Constant trip counts and no early exit: the accumulators stay in registers (a dynamic
    // index would force the whole array onto the stack).
#pragma unroll
    for (int m = 0; m < TM; m++) {
        const int co = co0 + m;
        if (co < cout) {
            const float b = bias[co];
#pragma unroll
            for (int v = 0; v < NV; v++) {
                const int p = p0 + v * 8;
                if (p < hw) {
                    const int cnt = min(8, hw - p);
                    float8 r = epi8(acc[m][v] + b, EPI_PASS, n, co * hw + p, cnt);
                    store8(r, y + y_off + n * y_bs, co * hw + p, cnt);
                }
            }
        }
    }
    }
}
