// Strided copies over up to 6 dims: Transpose, Slice, Split, Concat inputs that could not be
// written in place, Expand (stride 0), Pad's interior. meta: dims[6], dst strides[6], src strides[6].
// 3-d range: dim 0 the last axis, dim 1 the one before, dim 2 the outer axes flattened.
// Adds the offsets of the outer axes (dims 0-3, flattened into ``rest``) to the source and
// destination offsets.
INLINE void add_outer_offsets(__constant int* meta, int rest, int* so, int* d_o) {
#ifdef RANK3  // dims merged down to 3 on the host: no division
    *d_o += rest * meta[9];
    *so += rest * meta[15];
#else
    for (int d = 3; d >= 0; d--) {
        const int c = rest % meta[d];
        rest /= meta[d];
        *d_o += c * meta[6 + d];
        *so += c * meta[12 + d];
    }
#endif
}

__kernel void copy_nd(__constant int* meta, int total, __global const store_t* src, int src_off,
                      __global store_t* dst, int dst_off) {
    const int i5 = get_global_id(0), i4 = get_global_id(1);
    const int rest = get_global_id(2);
    if (i5 >= meta[5]) return;
    int so = i5 * meta[17] + i4 * meta[16], d_o = i5 * meta[11] + i4 * meta[10];
    add_outer_offsets(meta, rest, &so, &d_o);
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

// Variant _run: RUN consecutive elements of the last axis per work-item, so the index arithmetic
// (and the meta reads) are paid once per RUN elements instead of per element; the last axis's
// strides are build-time constants when SRC_STEP / DST_STEP are non-zero (1 or 2, so the compiler
// can use vector loads / stores), else read from meta. Range dim 0 is ceil(len / RUN).
#ifndef RUN
#define RUN 8
#endif
#ifndef SRC_STEP
#define SRC_STEP 0
#endif
#ifndef DST_STEP
#define DST_STEP 0
#endif
__kernel void copy_nd_run(__constant int* meta, int total, __global const store_t* src, int src_off,
                          __global store_t* dst, int dst_off) {
    const int i4 = get_global_id(1);
    const int rest = get_global_id(2);
    const int len = meta[5];
    const int ss = SRC_STEP ? SRC_STEP : meta[17], ds = DST_STEP ? DST_STEP : meta[11];
    int so = src_off + i4 * meta[16], d_o = dst_off + i4 * meta[10];
    // The host gives each work-item a whole row (range dim 0 of 1), so the outer dims' divisions
    // are paid once per row, not once per run.
    add_outer_offsets(meta, rest, &so, &d_o);
    // Runs r0, r0 + step, ...: one run per work-item when range dim 0 covers the row.
    for (int r = get_global_id(0) * RUN; r < len; r += get_global_size(0) * RUN) {
        if (r + RUN <= len) {
            float v[RUN];
#pragma unroll
            for (int j = 0; j < RUN; j++) v[j] = LD(src, so + (r + j) * ss);
#pragma unroll
            for (int j = 0; j < RUN; j++) ST(v[j], dst, d_o + (r + j) * ds);
        } else {
            for (int j = r; j < len; j++) ST(LD(src, so + j * ss), dst, d_o + j * ds);
        }
    }
}
