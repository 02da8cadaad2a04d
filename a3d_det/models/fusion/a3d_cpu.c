/* A3D's slice fusion (paper Eq. 1) for float32 CPU tensors, forward and
 * backward, built and loaded by a3d_cpu.py (see there for the contract).
 *
 * Per channel plane of D slices of n pixels, X (D, n), with the channel's
 * mixing matrix M (D, D) (M[k][j] = P[j, k, c]):
 *   forward   Z = M @ relu?(X * a + b)   (a, b: batch norm in eval mode;
 *                                         the ReLU can be written back to X)
 *   backward  dX = mask? (M^T @ G),  dM += G @ Y^T
 * A vector of W pixels of all D slices is held in registers while the D
 * outputs are formed, so every feature map is read and written once; batched
 * GEMM reads the input twice (packing) and is about 2x slower at these shapes.
 */
#include <stdint.h>
#include <string.h>

#define MAX_SLICES 9
#define W 16                                  /* floats per vector */

typedef float vf __attribute__((vector_size(4 * W), aligned(4)));
typedef int32_t vi __attribute__((vector_size(4 * W), aligned(4)));

static inline vf load(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline void store(float *p, vf v) { memcpy(p, &v, sizeof v); }

/* max(v, 0) with NaN kept, as torch.relu */
static inline vf relu_v(vf v) { return (vf)((vi)v & ((v > 0.f) | (v != v))); }
static inline float relu_s(float v) { return v > 0.f || v != v ? v : 0.f; }

/* Forward of one plane: the input is x, or x * scale + shift where affine,
 * rectified where relu; x_out: NULL, or where that input is written (may be x). */
static inline __attribute__((always_inline))
void forward_plane(const int d, const float *x, float *x_out, const float *m,
                   float *out, int64_t n, int64_t sx, int64_t so,
                   int affine, float scale, float shift, int relu)
{
    int64_t i = 0;
    for (; i + W <= n; i += W) {
        vf v[MAX_SLICES];
        for (int j = 0; j < d; ++j) {
            v[j] = load(x + j * sx + i);
            if (affine)
                v[j] = v[j] * scale + shift;
            if (relu)
                v[j] = relu_v(v[j]);
            if (x_out)
                store(x_out + j * sx + i, v[j]);
        }
        for (int k = 0; k < d; ++k) {
            vf a = m[k * d] * v[0];
            for (int j = 1; j < d; ++j)
                a += m[k * d + j] * v[j];
            store(out + k * so + i, a);
        }
    }
    for (; i < n; ++i) {
        float v[MAX_SLICES];
        for (int j = 0; j < d; ++j) {
            v[j] = x[j * sx + i];
            if (affine)
                v[j] = v[j] * scale + shift;
            if (relu)
                v[j] = relu_s(v[j]);
            if (x_out)
                x_out[j * sx + i] = v[j];
        }
        for (int k = 0; k < d; ++k) {
            float a = m[k * d] * v[0];
            for (int j = 1; j < d; ++j)
                a += m[k * d + j] * v[j];
            out[k * so + i] = a;
        }
    }
}

/* Backward of one plane: grad_in (may be g) = M^T @ g, zero where y <= 0 if
 * mask; acc[k * d + j] += sum over pixels of g[k] * y[j] if acc (vector
 * lanes; acc_s the same for the pixels after the last full vector). */
static inline __attribute__((always_inline))
void backward_plane(const int d, const float *g, const float *y, const float *m,
                    float *grad_in, int64_t n, int64_t sg, int64_t sy, int64_t si,
                    int mask, vf *acc, float *acc_s)
{
    int64_t i = 0;
    for (; i + W <= n; i += W) {
        vf gv[MAX_SLICES], yv[MAX_SLICES];
        for (int j = 0; j < d; ++j) {
            gv[j] = load(g + j * sg + i);
            yv[j] = load(y + j * sy + i);
        }
        if (acc)
            for (int k = 0; k < d; ++k)
                for (int j = 0; j < d; ++j)
                    acc[k * d + j] += gv[k] * yv[j];
        for (int j = 0; j < d; ++j) {
            vf a = m[j] * gv[0];
            for (int k = 1; k < d; ++k)
                a += m[k * d + j] * gv[k];
            if (mask)
                a = (vf)((vi)a & ~(yv[j] <= 0.f));
            store(grad_in + j * si + i, a);
        }
    }
    for (; i < n; ++i) {
        float gv[MAX_SLICES], yv[MAX_SLICES];
        for (int j = 0; j < d; ++j) {
            gv[j] = g[j * sg + i];
            yv[j] = y[j * sy + i];
        }
        if (acc)
            for (int k = 0; k < d; ++k)
                for (int j = 0; j < d; ++j)
                    acc_s[k * d + j] += gv[k] * yv[j];
        for (int j = 0; j < d; ++j) {
            float a = m[j] * gv[0];
            for (int k = 1; k < d; ++k)
                a += m[k * d + j] * gv[k];
            grad_in[j * si + i] = mask && yv[j] <= 0.f ? 0.f : a;
        }
    }
}

/* one case per slice count, so that the loops over d are unrolled */
#define DISPATCH(CALL)                                                      \
    switch (d) {                                                            \
    case 1: CALL(1); break; case 2: CALL(2); break; case 3: CALL(3); break; \
    case 4: CALL(4); break; case 5: CALL(5); break; case 6: CALL(6); break; \
    case 7: CALL(7); break; case 8: CALL(8); break; case 9: CALL(9); break; \
    }

/* Feature maps are (batch, channels, d, n) with the n pixels contiguous and
 * the strides of the first three axes in s* (elements); mix: (channels, d, d),
 * contiguous. The return value is -1 for d outside 1..MAX_SLICES. */

/* out = mix @ x' per plane, x' = x, times scale[c] plus shift[c] where scale
 * is not NULL (batch norm in eval mode), rectified where relu; x' is written
 * to x_out unless it is NULL (x_out = x: in place) */
int a3d_fusion_forward(const float *x, const int64_t *sx, float *x_out,
                       const float *scale, const float *shift, int relu,
                       const float *mix, float *out, const int64_t *so,
                       int64_t batch, int64_t channels, int64_t d, int64_t n,
                       int threads)
{
    if (d < 1 || d > MAX_SLICES)
        return -1;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t p = 0; p < batch * channels; ++p) {
        const int64_t b = p / channels, c = p % channels;
        const int64_t ox = b * sx[0] + c * sx[1], oo = b * so[0] + c * so[1];
        const float *m = mix + c * d * d;
        const int affine = scale != NULL;
        const float sc = affine ? scale[c] : 1.f, sh = affine ? shift[c] : 0.f;
#define FORWARD(D) forward_plane(D, x + ox, x_out ? x_out + ox : NULL, m, out + oo, \
                                 n, sx[2], so[2], affine, sc, sh, relu)
        DISPATCH(FORWARD)
#undef FORWARD
    }
    return 0;
}

/* grad_in = mix^T @ g per plane (grad_in may be g), masked where y <= 0 if
 * mask; grad_mix (NULL: not computed) += sum over batch and pixels g y^T */
int a3d_fusion_backward(const float *g, const int64_t *sg, const float *y,
                        const int64_t *sy, const float *mix, float *grad_mix,
                        float *grad_in, const int64_t *si, int mask,
                        int64_t batch, int64_t channels, int64_t d, int64_t n,
                        int threads)
{
    if (d < 1 || d > MAX_SLICES)
        return -1;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t c = 0; c < channels; ++c) {      /* grad_mix[c]: one thread */
        const float *m = mix + c * d * d;
        vf acc_v[MAX_SLICES * MAX_SLICES];
        float acc_s[MAX_SLICES * MAX_SLICES];
        vf *acc = grad_mix ? acc_v : NULL;
        memset(acc_v, 0, sizeof acc_v);
        memset(acc_s, 0, sizeof acc_s);
        for (int64_t b = 0; b < batch; ++b) {
            const float *gp = g + b * sg[0] + c * sg[1], *yp = y + b * sy[0] + c * sy[1];
            float *ip = grad_in + b * si[0] + c * si[1];
#define BACKWARD(D) backward_plane(D, gp, yp, m, ip, n, sg[2], sy[2], si[2], mask, acc, acc_s)
            DISPATCH(BACKWARD)
#undef BACKWARD
        }
        if (grad_mix)
            for (int q = 0; q < d * d; ++q) {
                float s = acc_s[q];
                for (int l = 0; l < W; ++l)
                    s += acc_v[q][l];
                grad_mix[c * d * d + q] += s;
            }
    }
    return 0;
}
