// ReduceMean / ReduceSum / ReduceMax / ReduceMin over the middle axis of a contiguous
// [outer, len, inner] tensor (the reduced axes are merged into one). op: 0 sum, 1 mean, 2 max, 3 min.
__kernel void reduce(__global const store_t* x, int x_off, __global store_t* y, int y_off,
                     int outer, int len, int inner, int op) {
    const int i = get_global_id(0), o = get_global_id(1);
    if (i >= inner || o >= outer) return;
    const int base = x_off + o * len * inner + i;
    float acc = op == 2 ? -INFINITY : (op == 3 ? INFINITY : 0.0f);
    for (int k = 0; k < len; k++) {
        const float v = LD(x, base + k * inner);
        acc = op == 2 ? fmax(acc, v) : (op == 3 ? fmin(acc, v) : acc + v);
    }
    ST(op == 1 ? acc / (float)len : acc, y, y_off + o * inner + i);
}
