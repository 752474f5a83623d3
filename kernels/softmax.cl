// Softmax / LogSoftmax over the middle axis of a contiguous [outer, axis, inner] tensor:
// one work-item per (outer, inner) line; subtracts the max first for stability.
__kernel void softmax(__global const store_t* x, int x_off, __global store_t* y, int y_off,
                      int outer, int len, int inner, int log_mode) {
    const int i = get_global_id(0), o = get_global_id(1);
    if (i >= inner || o >= outer) return;
    const int base = o * len * inner + i;
    float m = -INFINITY;
    for (int k = 0; k < len; k++) m = fmax(m, LD(x, x_off + base + k * inner));
    float s = 0.0f;
    for (int k = 0; k < len; k++) s += exp(LD(x, x_off + base + k * inner) - m);
    for (int k = 0; k < len; k++) {
        const float e = LD(x, x_off + base + k * inner) - m;
        ST(log_mode ? e - log(s) : exp(e) / s, y, y_off + base + k * inner);
    }
}
