#include "ops/matmul.h"

#include <algorithm>

#include "core/error.h"
#include "core/quant.h"
#include "kernels/packed.h"
#include "ops/packed_weights.h"

namespace moe {

namespace {
// Below this many weight bytes (times tokens) a product runs on the calling thread.
constexpr size_t kSerialBytes = size_t{128} << 10;
}  // namespace

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

WeightRef weight_ref(const Exec& ex, const Mat& m) {
  return {m, ex.packed && m.present() ? ex.packed->find(m.data) : nullptr};
}

WeightRef expert_ref(const Exec& ex, const ExpertMats& m, int64_t e) {
  const uint8_t* base = ex.packed && m.present() ? ex.packed->find(m.data) : nullptr;
  return {m.expert(e), base ? base + packed_bytes(m.type, m.rows, m.cols) * static_cast<size_t>(e) : nullptr};
}

bool ActFormat::operator==(const ActFormat& o) const {
  const DType a = vec_dot_type(wt), b = vec_dot_type(o.wt);
  // Packed activations differ from the dot format only for Q8_0 (they equal Q8_K rows for the K formats).
  return a == b && (a != DType::Q8_0 || packed == o.packed);
}

ActFormat act_format(const WeightRef& w) { return {w.m.type, w.packed != nullptr}; }

size_t act_bytes(const ActFormat& f, int64_t k) {
  return f.packed ? packed_act_bytes(f.wt, k) : act_row_bytes(f.wt, k);
}

bool acts_are_floats(const ActFormat& f) { return vec_dot_type(f.wt) == DType::F32; }

void convert_acts(const Exec& ex, const ActFormat& f, const float* x, int64_t ldx, int64_t n, int64_t k, uint8_t* out,
                  size_t out_stride) {
  auto rows = [&](int64_t t0, int64_t cnt) {
    if (f.packed)
      ex.k.quantize_rows_packed(f.wt, x + t0 * ldx, ldx, cnt, k, out + t0 * out_stride, out_stride);
    else
      ex.k.quantize_rows(vec_dot_type(f.wt), x + t0 * ldx, ldx, cnt, k, out + t0 * out_stride, out_stride);
  };
  if (n < 8 || ex.pool.size() == 1) return rows(0, n);
  const int64_t per = (n + 2 * ex.pool.size() - 1) / (2 * ex.pool.size());
  ex.pool.parallel_for((n + per - 1) / per, [&](int64_t i, int) { rows(i * per, std::min(per, n - i * per)); });
}

ActRows acts_for(const Exec& ex, const ActFormat& f, const float* x, int64_t n, int64_t k, uint8_t* buf) {
  if (acts_are_floats(f)) return {reinterpret_cast<const uint8_t*>(x), sizeof(float) * static_cast<size_t>(k)};
  const size_t stride = act_bytes(f, k);
  convert_acts(ex, f, x, k, n, k, buf, stride);
  return {buf, stride};
}

void matmul_rows(const KernelSet& k, const WeightRef& w, int64_t r0, int64_t r1, const uint8_t* xq, size_t x_stride,
                 int64_t n, float* y, int64_t ldy) {
  if (w.packed)
    k.gemm_packed(w.m.type, w.packed, r0, r1, w.m.cols, xq, x_stride, n, y, ldy);
  else
    k.gemm(w.m.type, w.m.data, w.m.row_stride, r0, r1, w.m.cols, xq, x_stride, n, y, ldy);
}

void matmul_many(const Exec& ex, const MatmulJob* jobs, int n_jobs, const uint8_t* xq, size_t x_stride, int64_t n) {
  constexpr int kMaxJobs = 8;
  if (n_jobs > kMaxJobs) throw Error("matmul_many: too many products");
  int64_t rows = 0;
  for (int j = 0; j < n_jobs; ++j) rows += jobs[j].w->m.rows;
  // One block size for all products; tile i of product j covers rows [i*blk, ...).
  const int64_t blk = row_block(rows, ex.pool.size());
  int64_t first[kMaxJobs + 1];
  first[0] = 0;
  for (int j = 0; j < n_jobs; ++j) first[j + 1] = first[j] + (jobs[j].w->m.rows + blk - 1) / blk;
  auto tile_fn = [&](int64_t tile, int) {
    int j = 0;
    while (tile >= first[j + 1]) ++j;
    const MatmulJob& job = jobs[j];
    const int64_t r0 = (tile - first[j]) * blk, r1 = std::min(job.w->m.rows, r0 + blk);
    matmul_rows(ex.k, *job.w, r0, r1, xq, x_stride, n, job.y, job.ldy);
  };
  // Small products (a router, one token) take a few microseconds: not worth waking the other threads.
  size_t bytes = 0;
  for (int j = 0; j < n_jobs; ++j) bytes += jobs[j].w->m.row_stride * static_cast<size_t>(jobs[j].w->m.rows);
  if (bytes * static_cast<size_t>(n) < kSerialBytes) {
    for (int64_t t = 0; t < first[n_jobs]; ++t) tile_fn(t, 0);
    return;
  }
  ex.pool.parallel_for(first[n_jobs], tile_fn);
}

void matmul(const Exec& ex, const WeightRef& w, const uint8_t* xq, size_t x_stride, int64_t n, float* y, int64_t ldy) {
  const MatmulJob job{&w, y, ldy};
  matmul_many(ex, &job, 1, xq, x_stride, n);
}

}  // namespace moe
