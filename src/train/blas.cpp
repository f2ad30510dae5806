#include "train/blas.h"

#include <cblas.h>

#include <algorithm>

extern "C" {
// OpenBLAS extensions, weak so that another CBLAS still links.
void openblas_set_num_threads(int) __attribute__((weak));
char* openblas_get_corename(void) __attribute__((weak));
}

namespace moe::train {

std::string blas_setup() {
  if (openblas_set_num_threads) openblas_set_num_threads(1);
  return openblas_get_corename ? std::string(openblas_get_corename()) : std::string();
}

void sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {  // BLAS would leave C untouched only for beta == 1; make the empty product explicit
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(M),
              static_cast<int>(N), static_cast<int>(K), alpha, A, static_cast<int>(lda), B, static_cast<int>(ldb),
              beta, C, static_cast<int>(ldc));
}

void sgemm_par(ThreadPool& pool, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const int nt = pool.size();
  const double flops = 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  if (nt == 1 || flops < 2e6) {
    sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  // Split the longer side of C into 2 blocks per thread (multiples of 16), handed out dynamically.
  const bool split_m = M >= N || M >= 64 * nt;
  const int64_t len = split_m ? M : N;
  int64_t blk = (len + 2 * nt - 1) / (2 * nt);
  blk = std::max<int64_t>(16, (blk + 15) / 16 * 16);
  const int64_t n_blk = (len + blk - 1) / blk;
  pool.parallel_for(n_blk, [&](int64_t b, int) {
    const int64_t s = b * blk, n = std::min(blk, len - s);
    if (split_m)
      sgemm(ta, tb, n, N, K, alpha, ta ? A + s : A + s * lda, lda, B, ldb, beta, C + s * ldc, ldc);
    else
      sgemm(ta, tb, M, n, K, alpha, A, lda, tb ? B + s * ldb : B + s, ldb, beta, C + s, ldc);
  });
}

void linear_fwd(ThreadPool& pool, const float* x, const float* W, int64_t n, int64_t in, int64_t out, float* y,
                bool accumulate) {
  sgemm_par(pool, false, true, n, out, in, 1.0f, x, in, W, in, accumulate ? 1.0f : 0.0f, y, out);
}

void linear_bwd_x(ThreadPool& pool, const float* dy, const float* W, int64_t n, int64_t in, int64_t out, float* dx,
                  bool accumulate) {
  sgemm_par(pool, false, false, n, in, out, 1.0f, dy, out, W, in, accumulate ? 1.0f : 0.0f, dx, in);
}

void linear_bwd_w(ThreadPool& pool, const float* dy, const float* x, int64_t n, int64_t in, int64_t out, float* dW) {
  sgemm_par(pool, true, false, out, in, n, 1.0f, dy, out, x, in, 1.0f, dW, in);
}

}  // namespace moe::train
