// Gemm / MatMul: Y[b, m, n] = alpha * sum_k A[b, m, k] * B[b, k, n] + beta * C[m, n].
// Transposes and batch broadcasting are strides (sa = {batch, m, k}, sb = {batch, k, n},
// sc = {m, n}, stride 0 broadcasts). B is float (weights) when b_const, else storage type.
// One work-item per output element; ACT (build-time) is a fused activation.
__kernel void gemm(__global const store_t* a, int a_off, int4 sa, __global const store_t* bs, int b_off,
                   __global const float* bw, int4 sb, __global const float* cbias, int4 sc,
                   __global store_t* y, int y_off, int M, int N, int K, float alpha, float beta,
                   float act_a, float act_b) {
    const int n = get_global_id(0), m = get_global_id(1), b = get_global_id(2);
    if (n >= N || m >= M) return;
    const int ao = a_off + b * sa.x + m * sa.y;
    const int bo = b_off + b * sb.x + n * sb.z;
    float acc = 0.0f;
    if (bw) {
        for (int k = 0; k < K; k++) acc += LD(a, ao + k * sa.z) * bw[bo + k * sb.y];
    } else {
        for (int k = 0; k < K; k++) acc += LD(a, ao + k * sa.z) * LD(bs, bo + k * sb.y);
    }
    float v = alpha * acc;
    if (cbias) v += beta * cbias[m * sc.x + n * sc.y];
    ST(act_s(v, act_a, act_b), y, y_off + (b * M + m) * N + n);
}
