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

// The 8-bit storage of int8 graphs (conv2d_q8.cl): a real-valued tensor to 8 bits (quantize8: round
// half to even, saturate to the stored range lo..hi; zero point z as stored) and back (dequant8),
// where an op without an int8 kernel reads or writes an 8-bit tensor. Range: (ceil(inner / 8), batch).
__kernel void quantize8(int inner, float s, float z, float lo, float hi, __global const store_t* x, int x_off,
                        int x_bs, __global uchar* y, int y_off, int y_bs) {
    const int i = get_global_id(0) * 8, n = get_global_id(1);
    if (i >= inner) return;
    const __global store_t* src = x + x_off + n * x_bs + i;
    __global uchar* dst = y + y_off + n * y_bs + i;
    if (i + 8 <= inner) {
        vstore8(convert_uchar8_sat(fmin(fmax(rint(LD8(src, 0) / s) + z, lo), hi)), 0, dst);
    } else {
        for (int j = 0; i + j < inner; j++) dst[j] = convert_uchar_sat(fmin(fmax(rint(LD(src, j) / s) + z, lo), hi));
    }
}

__kernel void dequant8(int inner, float s, float z, __global const uchar* x, int x_off, int x_bs,
                       __global store_t* y, int y_off, int y_bs) {
    const int i = get_global_id(0) * 8, n = get_global_id(1);
    if (i >= inner) return;
    const __global uchar* src = x + x_off + n * x_bs + i;
    __global store_t* dst = y + y_off + n * y_bs + i;
    if (i + 8 <= inner) {
        ST8((convert_float8(vload8(0, src)) - z) * s, dst, 0);
    } else {
        for (int j = 0; i + j < inner; j++) ST(((float)src[j] - z) * s, dst, j);
    }
}
