// Max / average pooling on NCHW (views with any batch stride). One work-item per output element.
// Build-time IS_MAX: 1 max, 0 average; runtime count_pad: the average divides by the window
// clipped to the padded input (count_include_pad) instead of the valid taps. KH/KW: the window as
// build-time defines (unrolled taps); without them the runtime kh/kw are used.
#ifdef KH
#define TAPS_UNROLL _Pragma("unroll")
#else
#define KH kh
#define KW kw
#define TAPS_UNROLL
#endif
__kernel void pool2d(__global const store_t* x, int x_off, int x_bs, __global store_t* y, int y_off, int y_bs,
                     int c, int h, int w, int ho, int wo, int kh, int kw, int sy, int sx, int py, int px,
                     int dy, int dx, int count_pad) {
    const int is_max = IS_MAX;
    const int ox = get_global_id(0), oy = get_global_id(1), z = get_global_id(2);
    if (ox >= wo || oy >= ho) return;
    const int ch = z % c, n = z / c;
    const __global store_t* xc = x + x_off + n * x_bs + ch * h * w;
    float acc = is_max ? -INFINITY : 0.0f;
    int cnt = 0;
    TAPS_UNROLL
    for (int ky = 0; ky < KH; ky++) {
        const int iy = oy * sy - py + ky * dy;
        if (iy < 0 || iy >= h) continue;
        TAPS_UNROLL
        for (int kx = 0; kx < KW; kx++) {
            const int ix = ox * sx - px + kx * dx;
            if (ix < 0 || ix >= w) continue;
            const float v = LD(xc, iy * w + ix);
            acc = is_max ? fmax(acc, v) : acc + v;
            cnt++;
        }
    }
    if (!is_max) {
        // With count_include_pad the divisor is the window clipped to the padded input.
        int full = 0;
        if (count_pad) {
            const int y0 = oy * sy - py, x0 = ox * sx - px;
            const int y1 = min(y0 + (kh - 1) * dy + 1, h + py), x1 = min(x0 + (kw - 1) * dx + 1, w + px);
            full = ((y1 - y0 + dy - 1) / dy) * ((x1 - x0 + dx - 1) / dx);
        }
        acc /= (float)(count_pad ? full : max(cnt, 1));
    }
    ST(acc, y + y_off + n * y_bs, (ch * ho + oy) * wo + ox);
}

// The arguments of every pool2d kernel, and the start of the eight-outputs-a-row variants: output
// pixels ox0..ox0+7 of row oy, channel plane xc of the input.
#define POOL_ARGS                                                                                      \
    __global const store_t *x, int x_off, int x_bs, __global store_t *y, int y_off, int y_bs, int c, int h, \
        int w, int ho, int wo, int kh, int kw, int sy, int sx, int py, int px, int dy, int dx, int count_pad
#define ROW8_START                                                                     \
    const int ox0 = get_global_id(0) * 8, oy = get_global_id(1), z = get_global_id(2); \
    if (ox0 >= wo) return;                                                             \
    const int ch = z % c, n = z / c;                                                   \
    const __global store_t* xc = x + x_off + n * x_bs + ch * h * w;

// Variant _max8 (max pooling without dilation, x stride SX of 1 or 2, window KH x KW built in):
// eight outputs of one row per work-item, each tap one vector load (-inf outside the row) and a
// vector max, instead of one output and KH*KW bounds-checked scalar loads per work-item.
#ifdef SX
__kernel void pool2d_max8(POOL_ARGS) {
    ROW8_START
    float8 acc = (float8)(-INFINITY);
    TAPS_UNROLL
    for (int ky = 0; ky < KH; ky++) {
        const int iy = oy * sy - py + ky;
        if (iy < 0 || iy >= h) continue;
        const __global store_t* row = xc + iy * w;
        TAPS_UNROLL
        for (int kx = 0; kx < KW; kx++) acc = fmax(acc, load_row8_or(row, ox0 * SX - px + kx, SX, w, -INFINITY));
    }
    store8(acc, y + y_off + n * y_bs, (ch * ho + oy) * wo + ox0, min(8, wo - ox0));
}
#endif

// Variant _sep (max pooling, stride 1, no dilation, window KH x KW built in: SPP's 5x5, 9x9 and
// 13x13 on a 13x13 map): eight outputs of one row per work-item, separably. First the column maxima
// of the KH input rows over the 8 + KW - 1 input columns the outputs need (one load per input
// pixel), then KW-wide maxima of those: KH * (KW + 7) loads and KW vector maxima instead of the
// _max8 kernel's KH * KW vector taps, each of which is an 8-lane gather on a row narrower than 16.
#ifdef SEP
#define SPAN (8 + KW - 1)
__kernel void pool2d_max_sep(POOL_ARGS) {
    ROW8_START
    const int ix0 = ox0 - px;
    const bool inside = ix0 >= 0 && ix0 + SPAN <= w;
    float col[SPAN + 8];  // 8 spare -inf lanes: the last vector read below stays inside the array
#pragma unroll
    for (int j = 0; j < SPAN + 8; j++) col[j] = -INFINITY;
    for (int ky = 0; ky < KH; ky++) {
        const int iy = oy - py + ky;
        if (iy < 0 || iy >= h) continue;
        const __global store_t* row = xc + iy * w;
#pragma unroll
        for (int j = 0; j < SPAN; j++) {
            const int ix = ix0 + j;
            if (inside || (ix >= 0 && ix < w)) col[j] = fmax(col[j], LD(row, ix));
        }
    }
    float8 acc = vload8(0, col);
#pragma unroll
    for (int kx = 1; kx < KW; kx++) acc = fmax(acc, vload8(0, col + kx));
    store8(acc, y + y_off + n * y_bs, (ch * ho + oy) * wo + ox0, min(8, wo - ox0));
}
#endif

// Global average / max pooling: one work-item per (n, c), reduces H*W.
__kernel void global_pool(__global const store_t* x, int x_off, int x_bs, __global store_t* y, int y_off,
                          int y_bs, int c, int hw) {
    const int is_max = IS_MAX;
    const int ch = get_global_id(0), n = get_global_id(1);
    if (ch >= c) return;
    const __global store_t* xc = x + x_off + n * x_bs + ch * hw;
    float acc = is_max ? -INFINITY : 0.0f;
    for (int i = 0; i < hw; i++) acc = is_max ? fmax(acc, LD(xc, i)) : acc + LD(xc, i);
    ST(is_max ? acc : acc / (float)hw, y + y_off + n * y_bs, ch);
}
