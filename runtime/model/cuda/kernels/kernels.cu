// The CUDA backend's kernels (runtime/model/cuda), compiled at run time by
// NVRTC for the device's compute capability. Activations are channel-major,
// [C][N][H][W], as in runtime/model/cpu, whose arithmetic every kernel
// repeats in the same order, so results match it closely (to the bit where
// the CPU backend sums serially too).
//
// Determinism rules (kernels_test.go lints them): no atomics, no
// __syncthreads-based reductions, no warp shuffles; every reduction is one
// thread summing in a fixed order, so two runs on one GPU agree bit for
// bit. Every kernel is a 1-D launch over its outputs: thread i =
// blockIdx.x*blockDim.x + threadIdx.x, returning when i >= its count.
// Built with --fmad=false: no fused multiply-adds, as on the CPU.

#define FS_I (blockIdx.x * blockDim.x + threadIdx.x)
#define FS_ACT_NONE 0
#define FS_ACT_RELU 1
#define FS_ACT_RELU6 2

__device__ float fs_act(float v, int act) {
    if (act == FS_ACT_RELU) return v < 0 ? 0.0f : v;
    if (act == FS_ACT_RELU6) return v < 0 ? 0.0f : (v > 6 ? 6.0f : v);
    return v;
}

// NCHW batch -> channel-major: y[(c*n+s)*hw+p] = x[(s*C+c)*hw+p].
extern "C" __global__ void fs_to_channel_major(const float* x, float* y, int n, int C, int hw) {
    long long i = FS_I, total = (long long)n * C * hw;
    if (i >= total) return;
    int p = i % hw; long long r = i / hw; int s = r % n; int c = r / n;
    y[i] = x[((long long)s * C + c) * hw + p];
}

// y[j*rows+i] = x[i*cols+j]: a rows x cols matrix transposed.
extern "C" __global__ void fs_transpose(const float* x, float* y, int rows, int cols) {
    long long i = FS_I, total = (long long)rows * cols;
    if (i >= total) return;
    int r = i / cols, c = i % cols;
    y[(long long)c * rows + r] = x[i];
}

// Channel-major [C][n][hw] -> sample-major [n][C*hw] (a linear layer's
// flattened input), and back with fs_unflatten.
extern "C" __global__ void fs_flatten(const float* x, float* y, int C, int n, int hw) {
    long long i = FS_I, total = (long long)C * n * hw;
    if (i >= total) return;
    int p = i % hw; long long r = i / hw; int s = r % n; int c = r / n;
    y[(long long)s * C * hw + (long long)c * hw + p] = x[i];
}

extern "C" __global__ void fs_unflatten(const float* y, float* x, int C, int n, int hw) {
    long long i = FS_I, total = (long long)C * n * hw;
    if (i >= total) return;
    int p = i % hw; long long r = i / hw; int s = r % n; int c = r / n;
    x[i] = y[(long long)s * C * hw + (long long)c * hw + p];
}

// im2col: row (c,ki,kj), column (s,oy,ox) of col holds the input pixel that
// output (oy,ox) of sample s sees through tap (ki,kj), or 0 in the padding.
extern "C" __global__ void fs_im2col(const float* x, float* col, int n, int C, int H, int W,
                                     int k, int st, int pad, int OH, int OW) {
    long long i = FS_I, cols = (long long)n * OH * OW, total = (long long)C * k * k * cols;
    if (i >= total) return;
    long long q = i % cols; int row = i / cols;
    int kj = row % k, ki = (row / k) % k, c = row / (k * k);
    int ox = q % OW, oy = (q / OW) % OH, s = q / (OW * OH);
    int iy = oy * st + ki - pad, ix = ox * st + kj - pad;
    float v = 0;
    if (iy >= 0 && iy < H && ix >= 0 && ix < W) v = x[(((long long)c * n + s) * H + iy) * W + ix];
    col[i] = v;
}

// col2im, im2col's adjoint, gathered: each input pixel sums the column
// entries that copied it, taps in (ki,kj) order as the CPU's scatter adds
// them.
extern "C" __global__ void fs_col2im(const float* dcol, float* dx, int n, int C, int H, int W,
                                     int k, int st, int pad, int OH, int OW) {
    long long i = FS_I, total = (long long)C * n * H * W, cols = (long long)n * OH * OW;
    if (i >= total) return;
    int ix = i % W, iy = (i / W) % H, s = (i / ((long long)W * H)) % n, c = i / ((long long)W * H * n);
    float acc = 0;
    for (int ki = 0; ki < k; ki++) {
        int ty = iy + pad - ki;
        if (ty < 0 || ty % st != 0 || ty / st >= OH) continue;
        int oy = ty / st;
        for (int kj = 0; kj < k; kj++) {
            int tx = ix + pad - kj;
            if (tx < 0 || tx % st != 0 || tx / st >= OW) continue;
            int ox = tx / st;
            acc += dcol[((long long)(c * k + ki) * k + kj) * cols + ((long long)s * OH + oy) * OW + ox];
        }
    }
    dx[i] = acc;
}

// y[o*n+j] += b[o].
extern "C" __global__ void fs_add_bias(float* y, const float* b, int rows, int n) {
    long long i = FS_I, total = (long long)rows * n;
    if (i >= total) return;
    y[i] += b[i / n];
}

// db[o] = the serial sum of row o of dy: a bias's gradient.
extern "C" __global__ void fs_row_sums(const float* dy, float* db, int rows, int n) {
    long long o = FS_I;
    if (o >= rows) return;
    const float* r = dy + o * n;
    float s = 0;
    for (int j = 0; j < n; j++) s += r[j];
    db[o] = s;
}

// Activation in place; NaN passes through (v < 0 is false for it).
extern "C" __global__ void fs_act_fwd(float* y, long long n, int act) {
    long long i = FS_I;
    if (i >= n) return;
    y[i] = fs_act(y[i], act);
}

// d = dy passed back through activation act whose output was y (d may be y).
extern "C" __global__ void fs_act_bwd(float* d, const float* dy, const float* y, long long n, int act) {
    long long i = FS_I;
    if (i >= n) return;
    float v = y[i], g = dy[i];
    if (act == FS_ACT_RELU) g = v > 0 ? g : 0.0f;
    else if (act == FS_ACT_RELU6) g = (v > 0 && v < 6) ? g : 0.0f;
    d[i] = g;
}

// Batch norm's reductions run in two levels with a fixed shape, so they
// are parallel and still deterministic: thread (c, j) sums chunk j (values
// [j*FS_CHUNK, (j+1)*FS_CHUNK) of channel c) in order, in double; then one
// thread per channel sums its chunks' partials in order.
#define FS_CHUNK 256

// part[c*chunks+j] = the sum of chunk j of channel c: of x when center is
// null, else of (x - center[c])^2.
extern "C" __global__ void fs_bn_part(const float* x, const double* center, double* part, int C, long long M, int chunks) {
    long long t = FS_I;
    if (t >= (long long)C * chunks) return;
    int c = t / chunks, j = t % chunks;
    const float* xs = x + (long long)c * M;
    long long lo = (long long)j * FS_CHUNK, hi = min(lo + FS_CHUNK, M);
    double s = 0;
    if (center == 0) {
        for (long long i = lo; i < hi; i++) s += (double)xs[i];
    } else {
        double mu = center[c];
        for (long long i = lo; i < hi; i++) { double d = (double)xs[i] - mu; s += d * d; }
    }
    part[t] = s;
}

// meanD[c] = the mean of channel c from its partial sums.
extern "C" __global__ void fs_bn_mean(const double* part, double* meanD, int C, long long M, int chunks) {
    int c = FS_I;
    if (c >= C) return;
    double s = 0;
    for (int j = 0; j < chunks; j++) s += part[(long long)c * chunks + j];
    meanD[c] = s / (double)M;
}

// From the partial sums of squares: mean, 1/std and the running statistics
// (momentum 0.1, unbiased variance), as the CPU backend.
extern "C" __global__ void fs_bn_finish(const double* part, const double* meanD, float* mean, float* invstd,
                                        float* rm, float* rv, int C, long long M, int chunks) {
    int c = FS_I;
    if (c >= C) return;
    double ss = 0;
    for (int j = 0; j < chunks; j++) ss += part[(long long)c * chunks + j];
    double mu = meanD[c], var = ss / (double)M;
    double inv = 1 / sqrt(var + 1e-5);
    invstd[c] = (float)inv;
    mean[c] = (float)mu;
    rm[c] = (float)(0.9 * (double)rm[c] + 0.1 * mu);
    rv[c] = (float)(0.9 * (double)rv[c] + 0.1 * var * (double)M / (double)(M - 1));
}

// Training-mode normalisation with the fused activation.
extern "C" __global__ void fs_bn_fwd(const float* x, float* y, const float* mean, const float* invstd,
                                     const float* w, const float* b, int C, long long M, int act) {
    long long i = FS_I;
    if (i >= (long long)C * M) return;
    int c = i / M;
    y[i] = fs_act((x[i] - mean[c]) * invstd[c] * w[c] + b[c], act);
}

// Evaluation-mode normalisation by the running statistics.
extern "C" __global__ void fs_bn_eval(const float* x, float* y, const float* w, const float* b,
                                      const float* rm, const float* rv, int C, long long M, int act) {
    long long i = FS_I;
    if (i >= (long long)C * M) return;
    int c = i / M;
    double inv = 1 / sqrt((double)rv[c] + 1e-5);
    float alpha = (float)(inv * (double)w[c]);
    float beta = (float)((double)b[c] - (double)rm[c] * inv * (double)w[c]);
    y[i] = fs_act(x[i] * alpha + beta, act);
}

// Backward partials: part[2t] = the chunk's sum of d, part[2t+1] of
// d * xhat, thread t = (c, chunk j) as in fs_bn_part.
extern "C" __global__ void fs_bn_bwd_part(const float* d, const float* x, const float* mean, const float* invstd,
                                          double* part, int C, long long M, int chunks) {
    long long t = FS_I;
    if (t >= (long long)C * chunks) return;
    int c = t / chunks, j = t % chunks;
    const float* ds = d + (long long)c * M;
    const float* xs = x + (long long)c * M;
    float fm = mean[c], fi = invstd[c];
    long long lo = (long long)j * FS_CHUNK, hi = min(lo + FS_CHUNK, M);
    double sdy = 0, sdyh = 0;
    for (long long i = lo; i < hi; i++) {
        sdy += (double)ds[i];
        sdyh += (double)ds[i] * (double)((xs[i] - fm) * fi);
    }
    part[2 * t] = sdy;
    part[2 * t + 1] = sdyh;
}

// Per channel: sums[2c] = sum(d), sums[2c+1] = sum(d * xhat) from the
// partials; db and dw are their float32 values.
extern "C" __global__ void fs_bn_bwd_sums(const double* part, double* sums, float* dw, float* db, int C, int chunks) {
    int c = FS_I;
    if (c >= C) return;
    double sdy = 0, sdyh = 0;
    for (int j = 0; j < chunks; j++) {
        sdy += part[2 * ((long long)c * chunks + j)];
        sdyh += part[2 * ((long long)c * chunks + j) + 1];
    }
    sums[2 * c] = sdy;
    sums[2 * c + 1] = sdyh;
    db[c] = (float)sdy;
    dw[c] = (float)sdyh;
}

// The input gradient, written over d.
extern "C" __global__ void fs_bn_bwd_dx(float* d, const float* x, const float* mean, const float* invstd,
                                        const float* w, const double* sums, int C, long long M) {
    long long i = FS_I;
    if (i >= (long long)C * M) return;
    int c = i / M;
    float fm = mean[c], fi = invstd[c];
    float k = (float)((double)w[c] * (double)invstd[c]);
    float mdy = (float)(sums[2 * c] / (double)M), mdyh = (float)(sums[2 * c + 1] / (double)M);
    d[i] = k * (d[i] - mdy - (x[i] - fm) * fi * mdyh);
}

// num_batches_tracked += 1 (a float in the runtime's tensors).
extern "C" __global__ void fs_inc(float* v) {
    if (FS_I == 0) v[0] += 1;
}

// Max pooling without padding selected; the first of equal values wins and
// a NaN wins at once, as in PyTorch's CPU kernel. arg is the input offset
// within its plane.
extern "C" __global__ void fs_maxpool_fwd(const float* x, float* y, int* arg, long long planes, int H, int W,
                                          int OH, int OW, int k, int st, int pad) {
    long long i = FS_I;
    if (i >= planes * OH * OW) return;
    int ox = i % OW, oy = (i / OW) % OH;
    long long pl = i / ((long long)OW * OH);
    const float* p = x + pl * H * W;
    int y0 = max(oy * st - pad, 0), y1 = min(oy * st - pad + k, H);
    int x0 = max(ox * st - pad, 0), x1 = min(ox * st - pad + k, W);
    float best = -__int_as_float(0x7f800000); // -Inf
    int bi = y0 * W + x0;
    for (int iy = y0; iy < y1; iy++) {
        for (int ix = x0; ix < x1; ix++) {
            float v = p[iy * W + ix];
            if (v > best || v != v) {
                best = v;
                bi = iy * W + ix;
                if (v != v) goto done;
            }
        }
    }
done:
    y[i] = best;
    arg[i] = bi;
}

// The pooling's input gradient, gathered: each input pixel sums, in output
// order, the gradients of the outputs that took it.
extern "C" __global__ void fs_maxpool_bwd(const float* dy, const int* arg, float* dx, long long planes, int H, int W,
                                          int OH, int OW, int k, int st, int pad) {
    long long i = FS_I;
    if (i >= planes * H * W) return;
    int off = i % (H * W);
    long long pl = i / ((long long)H * W);
    int iy = off / W, ix = off % W;
    // Outputs whose window holds (iy,ix): oy*st-pad <= iy < oy*st-pad+k.
    int ty = iy + pad - k + 1, tx = ix + pad - k + 1;
    int oy0 = ty <= 0 ? 0 : (ty + st - 1) / st, oy1 = min(OH - 1, (iy + pad) / st);
    int ox0 = tx <= 0 ? 0 : (tx + st - 1) / st, ox1 = min(OW - 1, (ix + pad) / st);
    float acc = 0;
    for (int oy = oy0; oy <= oy1; oy++) {
        for (int ox = ox0; ox <= ox1; ox++) {
            long long q = pl * OH * OW + oy * OW + ox;
            if (arg[q] == off) acc += dy[q];
        }
    }
    dx[i] = acc;
}

// Global average pooling: one serial float sum per plane.
extern "C" __global__ void fs_gap_fwd(const float* x, float* y, long long planes, int hw) {
    long long pl = FS_I;
    if (pl >= planes) return;
    const float* p = x + pl * hw;
    float s = 0;
    for (int j = 0; j < hw; j++) s += p[j];
    y[pl] = s / (float)hw;
}

extern "C" __global__ void fs_gap_bwd(const float* dy, float* dx, long long planes, int hw) {
    long long i = FS_I;
    if (i >= planes * hw) return;
    dx[i] = dy[i / hw] * (1 / (float)hw);
}

__device__ unsigned long long fs_splitmix64(unsigned long long x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

// Dropout on feature-major [f][n] activations: element (j,s) is kept when
// model.DropoutUniform(seed, step, layer, s*f+j) >= p, and scaled by
// 1/(1-p); mask receives the factor.
extern "C" __global__ void fs_dropout_fwd(const float* x, float* y, float* mask, int f, int n, float p,
                                          unsigned long long seed, int step, int layer) {
    long long i = FS_I;
    if (i >= (long long)f * n) return;
    int j = i / n, s = i % n;
    unsigned long long h = fs_splitmix64(seed ^ ((unsigned long long)step << 48) ^ ((unsigned long long)layer << 40) ^
                                         (unsigned long long)((long long)s * f + j));
    float u = (float)(h >> 40) / 16777216.0f;
    float v = u >= p ? 1 / (1 - p) : 0.0f;
    mask[i] = v;
    y[i] = x[i] * v;
}

// y = a * b, element-wise (dropout's backward pass).
extern "C" __global__ void fs_mul(const float* a, const float* b, float* y, long long n) {
    long long i = FS_I;
    if (i >= n) return;
    y[i] = a[i] * b[i];
}

// y = a + b (a residual block's sum).
extern "C" __global__ void fs_add(const float* a, const float* b, float* y, long long n) {
    long long i = FS_I;
    if (i >= n) return;
    y[i] = a[i] + b[i];
}

// ShuffleNetV2's channel shuffle of two halves of `half` channel blocks of
// blk values each: y's block 2j is b1's block j, 2j+1 is b2's.
extern "C" __global__ void fs_shuffle_fwd(const float* b1, const float* b2, float* y, int half, long long blk) {
    long long i = FS_I;
    if (i >= 2 * half * blk) return;
    long long b = i / blk, o = i % blk;
    y[i] = (b % 2 == 0 ? b1 : b2)[(b / 2) * blk + o];
}

extern "C" __global__ void fs_shuffle_bwd(const float* dy, float* d1, float* d2, int half, long long blk) {
    long long i = FS_I;
    if (i >= 2 * half * blk) return;
    long long b = i / blk, o = i % blk;
    (b % 2 == 0 ? d1 : d2)[(b / 2) * blk + o] = dy[i];
}

// Depthwise convolution (one k x k kernel per channel, no bias): each
// output sums its taps in (ki,kj) order.
extern "C" __global__ void fs_dwconv_fwd(const float* x, const float* w, float* y, int C, int n, int H, int W,
                                         int OH, int OW, int k, int st, int pad) {
    long long i = FS_I;
    if (i >= (long long)C * n * OH * OW) return;
    int ox = i % OW, oy = (i / OW) % OH;
    long long pl = i / ((long long)OW * OH);
    int c = pl / n;
    const float* p = x + pl * H * W;
    const float* wc = w + c * k * k;
    float acc = 0;
    for (int ki = 0; ki < k; ki++) {
        int iy = oy * st + ki - pad;
        if (iy < 0 || iy >= H) continue;
        for (int kj = 0; kj < k; kj++) {
            int ix = ox * st + kj - pad;
            if (ix < 0 || ix >= W) continue;
            acc += wc[ki * k + kj] * p[iy * W + ix];
        }
    }
    y[i] = acc;
}

// The depthwise weight gradient: one thread per weight (c,ki,kj) sums, per
// plane and output row, the row's products, in the CPU backend's order.
extern "C" __global__ void fs_dwconv_bwd_w(const float* dy, const float* x, float* dw, int C, int n, int H, int W,
                                           int OH, int OW, int k, int st, int pad) {
    long long t = FS_I;
    if (t >= (long long)C * k * k) return;
    int kj = t % k, ki = (t / k) % k, c = t / (k * k);
    float total = 0;
    for (int s = 0; s < n; s++) {
        long long pl = (long long)c * n + s;
        for (int oy = 0; oy < OH; oy++) {
            int iy = oy * st + ki - pad;
            if (iy < 0 || iy >= H) continue;
            float acc = 0;
            for (int ox = 0; ox < OW; ox++) {
                int ix = ox * st + kj - pad;
                if (ix < 0 || ix >= W) continue;
                acc += dy[pl * OH * OW + oy * OW + ox] * x[pl * H * W + iy * W + ix];
            }
            total += acc;
        }
    }
    dw[t] = total;
}

// The depthwise input gradient, gathered in the CPU backend's order
// (output row, then kernel row, then kernel column).
extern "C" __global__ void fs_dwconv_bwd_x(const float* dy, const float* w, float* dx, int C, int n, int H, int W,
                                           int OH, int OW, int k, int st, int pad) {
    long long i = FS_I;
    if (i >= (long long)C * n * H * W) return;
    int ix = i % W, iy = (i / W) % H;
    long long pl = i / ((long long)W * H);
    int c = pl / n;
    const float* wc = w + c * k * k;
    float acc = 0;
    for (int oy = 0; oy < OH; oy++) {
        int ki = iy - oy * st + pad;
        if (ki < 0 || ki >= k) continue;
        for (int kj = 0; kj < k; kj++) {
            int tx = ix + pad - kj;
            if (tx < 0 || tx % st != 0 || tx / st >= OW) continue;
            acc += wc[ki * k + kj] * dy[pl * OH * OW + oy * OW + tx / st];
        }
    }
    dx[i] = acc;
}

// Softmax cross-entropy of sample-major logits [n][classes], in double
// after subtracting the largest logit: loss[s] per sample and, when dz is
// not null, the gradient of the batch mean, softmax - onehot over n.
extern "C" __global__ void fs_xent(const float* logits, const int* y, float* dz, double* loss, int n, int classes) {
    int s = FS_I;
    if (s >= n) return;
    const float* z = logits + (long long)s * classes;
    float m = z[0];
    for (int j = 1; j < classes; j++) if (z[j] > m) m = z[j];
    double mf = m, sum = 0;
    for (int j = 0; j < classes; j++) sum += exp((double)z[j] - mf);
    int lbl = y[s];
    loss[s] = log(sum) - ((double)z[lbl] - mf);
    if (dz == 0) return;
    double inv = 1 / (double)n;
    for (int j = 0; j < classes; j++) {
        double p = exp((double)z[j] - mf) / sum;
        if (j == lbl) p -= 1;
        dz[(long long)s * classes + j] = (float)(p * inv);
    }
}

// Top-1 and top-k hits per sample: a class ranks ahead of the label when
// its logit is larger, or equal with a lower index; a NaN label logit is
// never a hit. hits[2s] is top-1, hits[2s+1] top-k.
extern "C" __global__ void fs_topk(const float* logits, const int* y, int* hits, int n, int classes, int k) {
    int s = FS_I;
    if (s >= n) return;
    const float* z = logits + (long long)s * classes;
    int lbl = y[s];
    float zy = z[lbl];
    hits[2 * s] = 0;
    hits[2 * s + 1] = 0;
    if (zy != zy) return;
    int rank = 0;
    for (int j = 0; j < classes; j++)
        if (z[j] > zy || (z[j] == zy && j < lbl)) rank++;
    hits[2 * s] = rank < 1;
    hits[2 * s + 1] = rank < k;
}

// One torch.optim.SGD step with weight decay, FedProx's proximal term (when
// anchor is not null) and momentum (buf is taken as zero on the first step).
extern "C" __global__ void fs_sgd(float* w, const float* g, float* buf, const float* anchor, long long n,
                                  float lr, float mom, float wd, float mu, int first) {
    long long i = FS_I;
    if (i >= n) return;
    float v = w[i];
    float d = g[i] + wd * v;
    if (anchor != 0) d = d + mu * (v - anchor[i]);
    if (!first) d += mom * buf[i];
    buf[i] = d;
    w[i] = v - lr * d;
}

// Finite check, first pass: flags[t] = 1 when any of x[t], x[t+T], ... is
// NaN or infinite (T threads).
extern "C" __global__ void fs_nonfinite(const float* x, long long n, int* flags, int T) {
    int t = FS_I;
    if (t >= T) return;
    int bad = 0;
    for (long long j = t; j < n; j += T) {
        float v = x[j];
        if (v != v || v - v != 0) bad = 1;
    }
    flags[t] = bad;
}

// Finite check, second pass: one thread ORs the flags into out[0].
extern "C" __global__ void fs_any(const int* flags, int T, int* out) {
    if (FS_I != 0) return;
    int bad = 0;
    for (int t = 0; t < T; t++) bad |= flags[t];
    out[0] = bad;
}
