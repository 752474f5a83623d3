// Strided copies over up to 6 dims: Transpose, Slice, Split, Concat inputs that could not be
// written in place, Expand (stride 0), Pad's interior. meta: dims[6], dst strides[6], src strides[6].
// 3-d range: dim 0 the last axis, dim 1 the one before, dim 2 the outer axes flattened.
__kernel void copy_nd(__constant int* meta, int total, __global const store_t* src, int src_off,
                      __global store_t* dst, int dst_off) {
    const int i5 = get_global_id(0), i4 = get_global_id(1);
    int rest = get_global_id(2);
    if (i5 >= meta[5]) return;
    int so = i5 * meta[17] + i4 * meta[16], d_o = i5 * meta[11] + i4 * meta[10];
#ifdef RANK3  // dims merged down to 3 on the host: no division
    d_o += rest * meta[9];
    so += rest * meta[15];
#else
    for (int d = 3; d >= 0; d--) {
        const int c = rest % meta[d];
        rest /= meta[d];
        d_o += c * meta[6 + d];
        so += c * meta[12 + d];
    }
#endif
    ST(LD(src, src_off + so), dst, dst_off + d_o);
}

__kernel void fill(int total, float value, __global store_t* dst, int dst_off) {
    const int i = get_global_id(0);
    if (i < total) ST(value, dst, dst_off + i);
}

// Gather along one axis with constant indices: out[o, j, i] = in[o, idx[j], i] (contiguous).
__kernel void gather(int outer, int nidx, int inner, int axis_len, __global const int* idx,
                     __global const store_t* src, int src_off, __global store_t* dst, int dst_off) {
    const int t = get_global_id(0);
    if (t >= outer * nidx * inner) return;
    const int i = t % inner;
    const int j = (t / inner) % nidx;
    const int o = t / (inner * nidx);
    ST(LD(src, src_off + (o * axis_len + idx[j]) * inner + i), dst, dst_off + t);
}
