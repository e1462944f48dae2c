// Small-matrix linear algebra in float64 (the primitives' dtype; the CPU
// runs LAPACK): one block per matrix of the batch, the matrix in dynamic
// shared memory, rows/columns updated in parallel by the block's threads
// between __syncthreads. Sizes up to LINALG_MAX (32) rows and columns.
// Every kernel has one signature:
//   (a, b, out, status, batch, m, n, k, part, flag, bn, bshape, bas, bbs,
//    as0, as1, bs0, bs1)
// a: m × n matrices (row step as0, column step as1) at the batch offsets of
// bshape/bas; b (solve): n × k right-hand sides at bbs, steps bs0/bs1.
// out: the requested output, row-contiguous per matrix (perMatrix elements).
// status[i]: 0, or 1 when matrix i is singular (inverse, solve: an exactly
// zero pivot, as LAPACK's dgetrf reports) or not positive definite (cholesky).
// - linalg_inverse: Gauss-Jordan with partial pivoting on [A | I].
// - linalg_solve: Gauss-Jordan with partial pivoting on A, the same row
//   operations applied to B in the output.
// - linalg_cholesky: L Lᵀ = A from the lower triangle (flag 0), or Uᵀ U = A
//   from the upper (flag 1); the other triangle zero.
// - linalg_qr: Householder QR with LAPACK's dlarfg reflectors (so R's
//   diagonal signs match dgeqrf); part 0 Q (m × k) formed as dorgqr does,
//   part 1 R (k × n).
// - linalg_svd: one-sided Jacobi on A (or Aᵀ when m < n); singular values
//   descending; U (m × m) and Vᵀ (n × n) completed to orthonormal bases by
//   Gram-Schmidt. Part 0 U, 1 S, 2 Vᵀ. Column signs (and the completion)
//   may differ from LAPACK's: only U diag(S) Vᵀ and orthogonality are fixed.
// - linalg_eigh: cyclic Jacobi on the symmetric matrix read from the lower
//   (flag 0) or upper (flag 1) triangle; part 0 eigenvalues ascending, part 1
//   eigenvectors as columns (signs free, as with LAPACK).
#include "common.cuh"

#define LINALG_MAX 32
#define LINALG_PARAMS \
    const double *a, const double *b, double *out, i32 *status, i64 batch, int m, int n, int k, int part, int flag, \
        int bn, Dims bshape, Dims bas, Dims bbs, i64 as0, i64 as1, i64 bs0, i64 bs1

extern __shared__ double linalg_shared[];

__device__ __forceinline__ double sign_of(double x) { return x < 0 ? -1.0 : 1.0; }

extern "C" __global__ void linalg_inverse(LINALG_PARAMS) {
    double* M = linalg_shared;      // n × 2n
    double* f = M + n * 2 * n;      // n: elimination factors
    __shared__ int pivot, singular;
    i64 mat = blockIdx.x;
    const double* A = a + strided_offset(mat, bn, bshape, bas);
    double* Y = out + mat * (i64)n * n;
    int w = 2 * n, t = threadIdx.x;
    for (int e = t; e < n * w; e += blockDim.x) {
        int r = e / w, c = e % w;
        M[e] = c < n ? A[r * as0 + c * as1] : (c - n == r ? 1.0 : 0.0);
    }
    if (t == 0) singular = 0;
    __syncthreads();
    for (int c = 0; c < n; ++c) {
        if (t == 0) {
            int p = c;
            double best = fabs(M[c * w + c]);
            for (int r = c + 1; r < n; ++r)
                if (fabs(M[r * w + c]) > best) { best = fabs(M[r * w + c]); p = r; }
            pivot = p;
            if (best == 0.0) singular = 1;
        }
        __syncthreads();
        if (singular) break;
        int p = pivot;
        if (p != c)
            for (int j = t; j < w; j += blockDim.x) { double s = M[c * w + j]; M[c * w + j] = M[p * w + j]; M[p * w + j] = s; }
        __syncthreads();
        double piv = M[c * w + c];
        __syncthreads();
        for (int j = t; j < w; j += blockDim.x) M[c * w + j] /= piv;
        for (int r = t; r < n; r += blockDim.x) f[r] = r == c ? 0.0 : M[r * w + c];
        __syncthreads();
        for (int e = t; e < n * w; e += blockDim.x) {
            int r = e / w, j = e % w;
            if (r != c) M[e] -= f[r] * M[c * w + j];
        }
        __syncthreads();
    }
    if (t == 0) status[mat] = singular;
    for (int e = t; e < n * n; e += blockDim.x) Y[e] = singular ? 0.0 : M[(e / n) * w + n + e % n];
}

extern "C" __global__ void linalg_solve(LINALG_PARAMS) {
    double* M = linalg_shared;  // n × n
    double* f = M + n * n;      // n
    __shared__ int pivot, singular;
    i64 mat = blockIdx.x;
    const double* A = a + strided_offset(mat, bn, bshape, bas);
    const double* B = b + strided_offset(mat, bn, bshape, bbs);
    double* X = out + mat * (i64)n * k;
    int t = threadIdx.x;
    for (int e = t; e < n * n; e += blockDim.x) M[e] = A[(e / n) * as0 + (e % n) * as1];
    for (int e = t; e < n * k; e += blockDim.x) X[e] = B[(e / k) * bs0 + (e % k) * bs1];
    if (t == 0) singular = 0;
    __syncthreads();
    for (int c = 0; c < n; ++c) {
        if (t == 0) {
            int p = c;
            double best = fabs(M[c * n + c]);
            for (int r = c + 1; r < n; ++r)
                if (fabs(M[r * n + c]) > best) { best = fabs(M[r * n + c]); p = r; }
            pivot = p;
            if (best == 0.0) singular = 1;
        }
        __syncthreads();
        if (singular) break;
        int p = pivot;
        if (p != c) {
            for (int j = t; j < n; j += blockDim.x) { double s = M[c * n + j]; M[c * n + j] = M[p * n + j]; M[p * n + j] = s; }
            for (int j = t; j < k; j += blockDim.x) { double s = X[c * k + j]; X[c * k + j] = X[p * k + j]; X[p * k + j] = s; }
        }
        __syncthreads();
        double piv = M[c * n + c];
        __syncthreads();
        for (int j = t; j < n; j += blockDim.x) M[c * n + j] /= piv;
        for (int j = t; j < k; j += blockDim.x) X[c * k + j] /= piv;
        for (int r = t; r < n; r += blockDim.x) f[r] = r == c ? 0.0 : M[r * n + c];
        __syncthreads();
        for (int e = t; e < n * n; e += blockDim.x) {
            int r = e / n;
            if (r != c) M[e] -= f[r] * M[c * n + e % n];
        }
        for (int e = t; e < n * k; e += blockDim.x) {
            int r = e / k;
            if (r != c) X[e] -= f[r] * X[c * k + e % k];
        }
        __syncthreads();
    }
    if (t == 0) status[mat] = singular;
    if (singular)
        for (int e = t; e < n * k; e += blockDim.x) X[e] = 0.0;
}

extern "C" __global__ void linalg_cholesky(LINALG_PARAMS) {
    double* L = linalg_shared;  // n × n, the symmetric matrix, then its factor in the lower triangle
    __shared__ int failed;
    i64 mat = blockIdx.x;
    const double* A = a + strided_offset(mat, bn, bshape, bas);
    double* Y = out + mat * (i64)n * n;
    int t = threadIdx.x;
    for (int e = t; e < n * n; e += blockDim.x) {
        int r = e / n, c = e % n;
        bool lower = r >= c;
        // Lower factor from the lower triangle; the upper case reads the upper triangle.
        L[e] = (flag == 0) == lower ? A[r * as0 + c * as1] : A[c * as0 + r * as1];
    }
    if (t == 0) failed = 0;
    __syncthreads();
    for (int j = 0; j < n; ++j) {
        if (t == 0) {
            double d = L[j * n + j];
            for (int q = 0; q < j; ++q) d -= L[j * n + q] * L[j * n + q];
            if (!(d > 0.0)) failed = 1;
            else L[j * n + j] = sqrt(d);
        }
        __syncthreads();
        if (failed) break;
        double djj = L[j * n + j];
        for (int i = j + 1 + t; i < n; i += blockDim.x) {
            double s = L[i * n + j];
            for (int q = 0; q < j; ++q) s -= L[i * n + q] * L[j * n + q];
            L[i * n + j] = s / djj;
        }
        __syncthreads();
    }
    if (t == 0) status[mat] = failed;
    for (int e = t; e < n * n; e += blockDim.x) {
        int r = e / n, c = e % n;
        double v = flag == 0 ? (r >= c ? L[r * n + c] : 0.0) : (r <= c ? L[c * n + r] : 0.0);
        Y[e] = failed ? 0.0 : v;
    }
}

extern "C" __global__ void linalg_qr(LINALG_PARAMS) {
    int kk = m < n ? m : n;
    double* R = linalg_shared;   // m × n: R above the diagonal, reflectors below
    double* tau = R + m * n;     // kk
    i64 mat = blockIdx.x;
    const double* A = a + strided_offset(mat, bn, bshape, bas);
    int t = threadIdx.x;
    for (int e = t; e < m * n; e += blockDim.x) R[e] = A[(e / n) * as0 + (e % n) * as1];
    __syncthreads();
    for (int j = 0; j < kk; ++j) {
        if (t == 0) {
            // dlarfg: H (alpha, x) = (beta, 0), beta = -sign(alpha) * ||(alpha, x)||.
            double alpha = R[j * n + j], xnorm = 0.0;
            for (int i = j + 1; i < m; ++i) xnorm = hypot(xnorm, R[i * n + j]);
            if (xnorm == 0.0) {
                tau[j] = 0.0;
            } else {
                double beta = -copysign(hypot(alpha, xnorm), alpha);
                tau[j] = (beta - alpha) / beta;
                double scale = 1.0 / (alpha - beta);
                for (int i = j + 1; i < m; ++i) R[i * n + j] *= scale;
                R[j * n + j] = beta;
            }
        }
        __syncthreads();
        double tj = tau[j];
        if (tj != 0.0) {
            for (int c = j + 1 + t; c < n; c += blockDim.x) {
                double s = R[j * n + c];
                for (int i = j + 1; i < m; ++i) s += R[i * n + j] * R[i * n + c];
                s *= tj;
                R[j * n + c] -= s;
                for (int i = j + 1; i < m; ++i) R[i * n + c] -= s * R[i * n + j];
            }
        }
        __syncthreads();
    }
    if (part == 1) {
        double* Y = out + mat * (i64)kk * n;
        for (int e = t; e < kk * n; e += blockDim.x) {
            int r = e / n, c = e % n;
            Y[e] = r <= c ? R[e] : 0.0;
        }
        return;
    }
    // Q = H_0 ... H_{kk-1} applied to the first kk columns of I, last reflector first (dorgqr).
    double* Q = out + mat * (i64)m * kk;
    for (int e = t; e < m * kk; e += blockDim.x) Q[e] = (e / kk == e % kk) ? 1.0 : 0.0;
    __syncthreads();
    for (int j = kk - 1; j >= 0; --j) {
        double tj = tau[j];
        for (int c = t; c < kk; c += blockDim.x) {
            double s = Q[j * kk + c];
            for (int i = j + 1; i < m; ++i) s += R[i * n + j] * Q[i * kk + c];
            s *= tj;
            Q[j * kk + c] -= s;
            for (int i = j + 1; i < m; ++i) Q[i * kk + c] -= s * R[i * n + j];
        }
        __syncthreads();
    }
}

// Appends to the first `have` orthonormal columns of U (row-major P × P) unit vectors from the standard basis, Gram-Schmidt twice; thread 0 only.
__device__ void complete_basis(double* U, int P, int have) {
    for (int e = 0; have < P && e < P; ++e) {
        double v[LINALG_MAX];
        for (int i = 0; i < P; ++i) v[i] = i == e ? 1.0 : 0.0;
        for (int pass = 0; pass < 2; ++pass)
            for (int c = 0; c < have; ++c) {
                double d = 0.0;
                for (int i = 0; i < P; ++i) d += U[i * P + c] * v[i];
                for (int i = 0; i < P; ++i) v[i] -= d * U[i * P + c];
            }
        double norm = 0.0;
        for (int i = 0; i < P; ++i) norm += v[i] * v[i];
        norm = sqrt(norm);
        if (norm < 1e-6) continue;
        for (int i = 0; i < P; ++i) U[i * P + have] = v[i] / norm;
        ++have;
    }
}

extern "C" __global__ void linalg_svd(LINALG_PARAMS) {
    bool tall = m >= n;
    int P = tall ? m : n, Qn = tall ? n : m;  // W = A or Aᵀ: P × Qn, P ≥ Qn
    double* W = linalg_shared;        // P × Qn
    double* V = W + P * Qn;           // Qn × Qn
    double* U = V + Qn * Qn;          // P × P
    double* S = U + P * P;            // Qn
    int* order = (int*)(S + Qn);      // Qn
    __shared__ double rc, rs;
    __shared__ int rotated;
    i64 mat = blockIdx.x;
    const double* A = a + strided_offset(mat, bn, bshape, bas);
    int t = threadIdx.x;
    for (int e = t; e < P * Qn; e += blockDim.x) {
        int r = e / Qn, c = e % Qn;
        W[e] = tall ? A[r * as0 + c * as1] : A[c * as0 + r * as1];
    }
    for (int e = t; e < Qn * Qn; e += blockDim.x) V[e] = (e / Qn == e % Qn) ? 1.0 : 0.0;
    __syncthreads();
    for (int sweep = 0; sweep < 60; ++sweep) {
        if (t == 0) rotated = 0;
        __syncthreads();
        for (int p = 0; p < Qn - 1; ++p) {
            for (int q = p + 1; q < Qn; ++q) {
                if (t == 0) {
                    double alpha = 0.0, beta = 0.0, gamma = 0.0;
                    for (int i = 0; i < P; ++i) {
                        double x = W[i * Qn + p], y = W[i * Qn + q];
                        alpha += x * x;
                        beta += y * y;
                        gamma += x * y;
                    }
                    if (gamma != 0.0 && fabs(gamma) > 1e-15 * sqrt(alpha * beta)) {
                        double zeta = (beta - alpha) / (2.0 * gamma);
                        double tt = sign_of(zeta) / (fabs(zeta) + sqrt(1.0 + zeta * zeta));
                        rc = 1.0 / sqrt(1.0 + tt * tt);
                        rs = rc * tt;
                        rotated = 1;
                    } else {
                        rc = 1.0;
                        rs = 0.0;
                    }
                }
                __syncthreads();
                double c = rc, s = rs;
                if (s != 0.0) {
                    for (int i = t; i < P + Qn; i += blockDim.x) {
                        double* col = i < P ? W + i * Qn : V + (i - P) * Qn;
                        double x = col[p], y = col[q];
                        col[p] = c * x - s * y;
                        col[q] = s * x + c * y;
                    }
                }
                __syncthreads();
            }
        }
        // Every thread reads the flag before thread 0 clears it for the next sweep.
        bool done = !rotated;
        __syncthreads();
        if (done) break;
    }
    if (t == 0) {
        for (int c = 0; c < Qn; ++c) {
            double s = 0.0;
            for (int i = 0; i < P; ++i) s += W[i * Qn + c] * W[i * Qn + c];
            S[c] = sqrt(s);
            order[c] = c;
        }
        for (int i = 0; i < Qn; ++i)  // descending, stable
            for (int j = i + 1; j < Qn; ++j)
                if (S[order[j]] > S[order[i]]) { int tmp = order[i]; order[i] = order[j]; order[j] = tmp; }
        double top = Qn > 0 ? S[order[0]] : 0.0;
        int r = 0;
        for (int i = 0; i < Qn; ++i) {
            int c = order[i];
            if (!(S[c] > 1e-13 * top) || S[c] == 0.0) break;
            for (int row = 0; row < P; ++row) U[row * P + r] = W[row * Qn + c] / S[c];
            ++r;
        }
        complete_basis(U, P, r);
    }
    __syncthreads();
    if (part == 1) {
        double* Y = out + mat * (i64)Qn;
        for (int i = t; i < Qn; i += blockDim.x) Y[i] = S[order[i]];
        return;
    }
    // A = Uw S Vwᵀ (tall) or A = Vw S Uwᵀ (wide); Vw's columns in `order`.
    if (part == 0) {
        double* Y = out + mat * (i64)m * m;
        for (int e = t; e < m * m; e += blockDim.x) {
            int r = e / m, c = e % m;
            Y[e] = tall ? U[r * P + c] : V[r * Qn + order[c]];
        }
    } else {
        double* Y = out + mat * (i64)n * n;
        for (int e = t; e < n * n; e += blockDim.x) {
            int r = e / n, c = e % n;
            Y[e] = tall ? V[c * Qn + order[r]] : U[c * P + r];
        }
    }
}

extern "C" __global__ void linalg_eigh(LINALG_PARAMS) {
    double* M = linalg_shared;  // n × n
    double* V = M + n * n;      // n × n
    int* order = (int*)(V + n * n);
    __shared__ double rc, rs;
    __shared__ int rotated;
    i64 mat = blockIdx.x;
    const double* A = a + strided_offset(mat, bn, bshape, bas);
    int t = threadIdx.x;
    for (int e = t; e < n * n; e += blockDim.x) {
        int r = e / n, c = e % n;
        bool lower = r >= c;
        M[e] = (flag == 0) == lower ? A[r * as0 + c * as1] : A[c * as0 + r * as1];
        V[e] = r == c ? 1.0 : 0.0;
    }
    __syncthreads();
    for (int sweep = 0; sweep < 60; ++sweep) {
        if (t == 0) rotated = 0;
        __syncthreads();
        for (int p = 0; p < n - 1; ++p) {
            for (int q = p + 1; q < n; ++q) {
                if (t == 0) {
                    double apq = M[p * n + q], app = M[p * n + p], aqq = M[q * n + q];
                    if (apq != 0.0 && fabs(apq) > 1e-16 * sqrt(fabs(app * aqq))) {
                        double theta = (aqq - app) / (2.0 * apq);
                        double tt = sign_of(theta) / (fabs(theta) + sqrt(theta * theta + 1.0));
                        rc = 1.0 / sqrt(tt * tt + 1.0);
                        rs = tt * rc;
                        rotated = 1;
                    } else {
                        rc = 1.0;
                        rs = 0.0;
                    }
                }
                __syncthreads();
                double c = rc, s = rs;
                if (s != 0.0) {
                    for (int i = t; i < 2 * n; i += blockDim.x) {  // columns p, q of M and V
                        double* row = i < n ? M + i * n : V + (i - n) * n;
                        double x = row[p], y = row[q];
                        row[p] = c * x - s * y;
                        row[q] = s * x + c * y;
                    }
                    __syncthreads();
                    for (int j = t; j < n; j += blockDim.x) {  // rows p, q of M
                        double x = M[p * n + j], y = M[q * n + j];
                        M[p * n + j] = c * x - s * y;
                        M[q * n + j] = s * x + c * y;
                    }
                }
                __syncthreads();
            }
        }
        // Every thread reads the flag before thread 0 clears it for the next sweep.
        bool done = !rotated;
        __syncthreads();
        if (done) break;
    }
    if (t == 0) {
        for (int i = 0; i < n; ++i) order[i] = i;
        for (int i = 0; i < n; ++i)  // ascending, stable
            for (int j = i + 1; j < n; ++j)
                if (M[order[j] * n + order[j]] < M[order[i] * n + order[i]]) {
                    int tmp = order[i]; order[i] = order[j]; order[j] = tmp;
                }
    }
    __syncthreads();
    if (part == 0) {
        double* Y = out + mat * (i64)n;
        for (int i = t; i < n; i += blockDim.x) Y[i] = M[order[i] * n + order[i]];
    } else {
        double* Y = out + mat * (i64)n * n;
        for (int e = t; e < n * n; e += blockDim.x) Y[e] = V[(e / n) * n + order[e % n]];
    }
}
