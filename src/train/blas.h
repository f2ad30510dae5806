// Float matrix products for training, on OpenBLAS's sgemm. OpenBLAS itself runs single-threaded; we split
// every product into row blocks on our own thread pool, so there is exactly one thread per core and no
// oversubscription, and each output element is computed the same way whatever thread runs its block.
#pragma once
#include <cstdint>
#include <string>

#include "core/thread_pool.h"

namespace moe::train {

// Makes OpenBLAS single-threaded (our pool does the splitting). Returns the OpenBLAS kernel name
// ("SkylakeX", "Haswell", ...) or "" when the BLAS is not OpenBLAS.
std::string blas_setup();

// C[M][N] = alpha * op(A) * op(B) + beta * C, row-major, on the calling thread.
// op(A) is [M][K]: A is [M][lda] (ta = false) or [K][lda] (ta = true); likewise op(B) is [K][N].
void sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// The same product split into row blocks of C (or column blocks when N is much larger than M) over the pool.
void sgemm_par(ThreadPool& pool, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Linear layer helpers in the model's conventions (x: [n][in], W: [out][in], y: [n][out]).
// y = x W^T (+ y when accumulate)
void linear_fwd(ThreadPool& pool, const float* x, const float* W, int64_t n, int64_t in, int64_t out, float* y,
                bool accumulate = false);
// dx = dy W (+ dx when accumulate);  dW += dy^T x
void linear_bwd_x(ThreadPool& pool, const float* dy, const float* W, int64_t n, int64_t in, int64_t out, float* dx,
                  bool accumulate);
void linear_bwd_w(ThreadPool& pool, const float* dy, const float* x, int64_t n, int64_t in, int64_t out, float* dW);

}  // namespace moe::train
