// Fake quantisation (QuantizeLinear then DequantizeLinear with one scale and zero point) of a
// tensor whose dims after the batch are contiguous: eight elements per work-item with the vector
// fq8 of common.cl. The generic unary kernel (one element per work-item through the N-d index
// table) ran these at about 1 GB/s on PoCL, a third of an int8 YOLOX-nano's device time.
// Range: (ceil(inner / 8), batch).
__kernel void fake_quant8(int inner, float s, float z, float lo, float hi, __global const store_t* x,
                          int x_off, int x_bs, __global store_t* y, int y_off, int y_bs) {
    const int i = get_global_id(0) * 8, n = get_global_id(1);
    if (i >= inner) return;
    const __global store_t* src = x + x_off + n * x_bs + i;
    __global store_t* dst = y + y_off + n * y_bs + i;
    if (i + 8 <= inner) {
        ST8(fq8(LD8(src, 0), s, z, lo, hi), dst, 0);
    } else {
        for (int j = 0; i + j < inner; j++) {
            ST((fmin(fmax(rint(LD(src, j) / s) + z, lo), hi) - z) * s, dst, j);
        }
    }
}
