// Resize on NCHW. Build-time defines: MODE 0 nearest, 1 (bi)linear; COORD 0 half_pixel,
// 1 asymmetric, 2 align_corners, 3 pytorch_half_pixel, 4 tf_half_pixel_for_nn; NEAREST
// 0 round_prefer_floor, 1 round_prefer_ceil, 2 floor, 3 ceil. Scales are output/input (ONNX).
// FY/FX: the integer factors of the _nearest_int variant.
#ifndef MODE
#define MODE 0
#endif
#ifndef COORD
#define COORD 1
#endif
#ifndef NEAREST
#define NEAREST 2
#endif
#ifndef FY
#define FY 1
#define FX 1
#endif
inline float src_coord(int o, float scale, int in_len, int out_len) {
    switch (COORD) {
    case 1: return o / scale;
    case 2: return out_len > 1 ? o * (float)(in_len - 1) / (float)(out_len - 1) : 0.0f;
    case 3: return out_len > 1 ? (o + 0.5f) / scale - 0.5f : 0.0f;
    case 4: return (o + 0.5f) / scale;
    default: return (o + 0.5f) / scale - 0.5f;
    }
}

inline int nearest_idx(float s, int len) {
    int i;
    switch (NEAREST) {
    case 1: i = (int)floor(s + 0.5f); break;
    case 2: i = (int)floor(s); break;
    case 3: i = (int)ceil(s); break;
    default: i = (s - floor(s) == 0.5f) ? (int)floor(s) : (int)floor(s + 0.5f); break;
    }
    return clamp(i, 0, len - 1);
}

__kernel void resize2d(__global const store_t* x, int x_off, int x_bs, __global store_t* y, int y_off, int y_bs,
                       int c, int h, int w, int ho, int wo, float scale_y, float scale_x) {
    const int ox = get_global_id(0), oy = get_global_id(1), z = get_global_id(2);
    if (ox >= wo || oy >= ho) return;
    const int ch = z % c, n = z / c;
    const __global store_t* xc = x + x_off + n * x_bs + ch * h * w;
    const float sy = src_coord(oy, scale_y, h, ho), sx = src_coord(ox, scale_x, w, wo);
    float v;
#if MODE == 0
    v = LD(xc, nearest_idx(sy, h) * w + nearest_idx(sx, w));
#else
    {
        const float cy = clamp(sy, 0.0f, (float)(h - 1)), cx = clamp(sx, 0.0f, (float)(w - 1));
        const int y0 = (int)floor(cy), x0 = (int)floor(cx);
        const int y1 = min(y0 + 1, h - 1), x1 = min(x0 + 1, w - 1);
        const float fy = cy - y0, fx = cx - x0;
        const float top = LD(xc, y0 * w + x0) * (1.0f - fx) + LD(xc, y0 * w + x1) * fx;
        const float bot = LD(xc, y1 * w + x0) * (1.0f - fx) + LD(xc, y1 * w + x1) * fx;
        v = top * (1.0f - fy) + bot * fy;
    }
#endif
    ST(v, y + y_off + n * y_bs, (ch * ho + oy) * wo + ox);
}

// Variant _nearest_int: nearest with integer factors FY, FX where the source is floor(o / F)
// (asymmetric + floor, or half_pixel + round_prefer_*: no ties ever occur there). Eight outputs per
// work-item, one vector store; no float coordinates.
__kernel void resize2d_nearest_int(__global const store_t* x, int x_off, int x_bs, __global store_t* y, int y_off,
                                   int y_bs, int c, int h, int w, int ho, int wo) {
    const int ox0 = get_global_id(0) * 8, oy = get_global_id(1), z = get_global_id(2);
    if (ox0 >= wo) return;
    const int ch = z % c, n = z / c;
    const __global store_t* row = x + x_off + n * x_bs + (ch * h + oy / FY) * w;
    float t[8];
#pragma unroll
    for (int j = 0; j < 8; j++) t[j] = LD(row, min((ox0 + j) / FX, w - 1));
    store8(vload8(0, t), y + y_off + n * y_bs, (ch * ho + oy) * wo + ox0, min(8, wo - ox0));
}
