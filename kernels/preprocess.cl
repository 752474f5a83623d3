// Image preprocessing on the device: a uint8 HxWx3 image in, the model's float input out.
// Letterbox: the image is resized to new_w x new_h (bilinear with pixel centres aligned, as
// OpenCV's INTER_LINEAR; sx/sy = new size / old size), placed at (left, top) of the out_h x out_w
// canvas filled with the pixel value `pad`; every pixel becomes v * mul[c] + add[c] after an optional
// BGR<->RGB swap. nchw selects the output layout.
__kernel void letterbox(__global const uchar* img, int h, int w, __global float* y, int y_off, int out_h,
                        int out_w, float scale_x, float scale_y, int left, int top, int new_w, int new_h,
                        float pad, int swap_rb, float4 mul, float4 add, int nchw) {
    const int ox = get_global_id(0), oy = get_global_id(1);
    if (ox >= out_w || oy >= out_h) return;
    float px[3];
    const int rx = ox - left, ry = oy - top;
    const int inside = !(rx < 0 || ry < 0 || rx >= new_w || ry >= new_h);
    if (!inside) {
        px[0] = px[1] = px[2] = pad;
    } else {
        const float sx = clamp((rx + 0.5f) / scale_x - 0.5f, 0.0f, (float)(w - 1));
        const float sy = clamp((ry + 0.5f) / scale_y - 0.5f, 0.0f, (float)(h - 1));
        const int x0 = (int)sx, y0 = (int)sy;
        const int x1 = min(x0 + 1, w - 1), y1 = min(y0 + 1, h - 1);
        const float fx = sx - x0, fy = sy - y0;
        for (int ch = 0; ch < 3; ch++) {
            const float a = img[(y0 * w + x0) * 3 + ch], b = img[(y0 * w + x1) * 3 + ch];
            const float c = img[(y1 * w + x0) * 3 + ch], d = img[(y1 * w + x1) * 3 + ch];
            px[ch] = (a * (1.0f - fx) + b * fx) * (1.0f - fy) + (c * (1.0f - fx) + d * fx) * fy;
        }
    }
    const float m[3] = {mul.x, mul.y, mul.z}, ad[3] = {add.x, add.y, add.z};
    for (int ch = 0; ch < 3; ch++) {
        const float raw = px[swap_rb ? 2 - ch : ch];
        const float v = raw * m[ch] + ad[ch];
        const int idx = nchw ? (ch * out_h + oy) * out_w + ox : (oy * out_w + ox) * 3 + ch;
        y[y_off + idx] = v;
    }
}
