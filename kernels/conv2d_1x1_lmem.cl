// 1x1 stride-1 convolution as a GEMM tiled through local memory (the GPU variant of conv2d_1x1):
// a work-group computes a BM (output channels) x BN (pixels) tile of Y; each step the group copies
// a BK-deep slice of W [K][co_pad] and X [K][hw] into local memory, then every work-item
// accumulates TM channels x 8 pixels from it (register blocking). The group is (BN/8) x (BM/TM).
// Defines: TM, BM, BN, BK.
#define LX (BN / 8)
#define LY (BM / TM)

__kernel __attribute__((reqd_work_group_size(LX, LY, 1)))
void conv2d_1x1_lmem(__global const store_t* x, int x_off, int x_bs,
                     __global const float* w, __global const float* bias, int co_pad,
                     __global store_t* y, int y_off, int y_bs,
                     int K, int cout, int hw, EPI_ARGS) {
    __local float ws[BK][BM];
    __local float xs[BK][BN];
    const int lx = get_local_id(0), ly = get_local_id(1);
    const int p_base = get_group_id(0) * BN, co_base = get_group_id(1) * BM;
    const int n = get_global_id(2);
    const int tid = ly * LX + lx;
    const __global store_t* xn = x + x_off + n * x_bs;
    float8 acc[TM];
#pragma unroll
    for (int m = 0; m < TM; m++) acc[m] = (float8)(0.0f);
    for (int k0 = 0; k0 < K; k0 += BK) {
        for (int i = tid; i < BK * BM; i += LX * LY) {
            const int kk = i / BM, mm = i % BM;
            ws[kk][mm] = (k0 + kk < K) ? w[(k0 + kk) * co_pad + co_base + mm] : 0.0f;
        }
        for (int i = tid; i < BK * BN; i += LX * LY) {
            const int kk = i / BN, pp = i % BN;
            xs[kk][pp] = (k0 + kk < K && p_base + pp < hw) ? LD(xn, (k0 + kk) * hw + p_base + pp) : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll 4
        for (int kk = 0; kk < BK; kk++) {
            const float8 xv = vload8(lx, xs[kk]);
#pragma unroll
            for (int m = 0; m < TM; m++) acc[m] = MAD((float8)(ws[kk][ly * TM + m]), xv, acc[m]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const int p = p_base + lx * 8;
#pragma unroll
    for (int m = 0; m < TM; m++) {
        const int co = co_base + ly * TM + m;
        if (co < cout && p < hw) {
            const int cnt = min(8, hw - p);
            float8 r = epi8(acc[m] + bias[co], EPI_PASS, n, co * hw + p, cnt);
            store8(r, y + y_off + n * y_bs, co * hw + p, cnt);
        }
    }
}
