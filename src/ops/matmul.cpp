#include "ops/matmul.h"

#include <algorithm>

#include "core/quant.h"

namespace moe {

size_t act_row_bytes(DType wt, int64_t k) { return row_bytes(vec_dot_type(wt), k); }

void quantize_acts(const Exec& ex, DType wt, const float* x, int64_t ldx, int64_t n, int64_t k, uint8_t* out,
                   size_t out_stride) {
  const DType vt = vec_dot_type(wt);
  if (n < 4 || ex.pool.size() == 1) {
    ex.k.quantize_rows(vt, x, ldx, n, k, out, out_stride);
    return;
  }
  ex.pool.parallel_for(n, [&](int64_t t, int) { ex.k.quantize_rows(vt, x + t * ldx, ldx, 1, k, out + t * out_stride, out_stride); });
}

int64_t row_block(int64_t rows, int n_threads) {
  // Aim for ~8 tiles per thread so that uneven progress balances; keep tiles a multiple of 16 rows.
  int64_t target = std::max<int64_t>(1, rows / (8 * static_cast<int64_t>(n_threads)));
  int64_t blk = std::max<int64_t>(16, (target + 15) / 16 * 16);
  return std::min(blk, rows);
}

void matmul_q_rows(const KernelSet& k, const Mat& w, int64_t r0, int64_t r1, const uint8_t* xq, size_t x_stride,
                   int64_t n, float* y, int64_t ldy) {
  k.gemm(w.type, w.data, w.row_stride, r0, r1, w.cols, xq, x_stride, n, y, ldy);
}

void matmul_q(const Exec& ex, const Mat& w, const uint8_t* xq, size_t x_stride, int64_t n, float* y, int64_t ldy) {
  const int64_t blk = row_block(w.rows, ex.pool.size());
  const int64_t n_tiles = (w.rows + blk - 1) / blk;
  ex.pool.parallel_for(n_tiles, [&](int64_t tile, int) {
    const int64_t r0 = tile * blk, r1 = std::min(w.rows, r0 + blk);
    matmul_q_rows(ex.k, w, r0, r1, xq, x_stride, n, y, ldy);
  });
}

}  // namespace moe
