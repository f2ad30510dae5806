// Threaded matrix products over the kernel table: activations are converted once to the weight's dot format,
// then row blocks of the weight are handed out to threads.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/tensor_view.h"
#include "ops/exec.h"

namespace moe {

// Bytes one activation row of k elements takes in the dot format of weight type wt.
size_t act_row_bytes(DType wt, int64_t k);

// Converts n rows of k floats (stride ldx) into the dot format of weight type wt (rows at out_stride bytes).
void quantize_acts(const Exec& ex, DType wt, const float* x, int64_t ldx, int64_t n, int64_t k, uint8_t* out,
                   size_t out_stride);

// y[t*ldy + r] = W[r,:]·X[t,:] for all rows of W and t < n; X already in W's dot format (stride x_stride).
// W is used in its file layout (see WeightRef for the packed copies).
void matmul_q(const Exec& ex, const Mat& w, const uint8_t* xq, size_t x_stride, int64_t n, float* y, int64_t ldy);

// Rows [r0, r1) of the product on the calling thread only (for callers that build their own tiles).
void matmul_q_rows(const KernelSet& k, const Mat& w, int64_t r0, int64_t r1, const uint8_t* xq, size_t x_stride,
                   int64_t n, float* y, int64_t ldy);

// Rows per tile so that a product of `rows` rows splits into enough tiles for the pool (a multiple of 16,
// so tiles start on packed row groups).
int64_t row_block(int64_t rows, int n_threads);

// ---- products that use the load-time packed copy of a weight when the Exec has one ----

// A weight matrix ready for products: its packed copy (kernels/packed.h) when ex.packed holds one, else the
// file rows. Activations for it come from convert_acts() on the same WeightRef.
struct WeightRef {
  Mat m;
  const uint8_t* packed = nullptr;
  bool present() const { return m.present(); }
};
WeightRef weight_ref(const Exec& ex, const Mat& m);
WeightRef expert_ref(const Exec& ex, const ExpertMats& m, int64_t e);

// The activation layout a weight needs. Weights with equal formats can share converted activations.
struct ActFormat {
  DType wt;     // a weight type with this activation layout
  bool packed;  // packed activation rows (differ from the dot format only for Q8_0 activations)
  bool operator==(const ActFormat& o) const;
};
ActFormat act_format(const WeightRef& w);
size_t act_bytes(const ActFormat& f, int64_t k);
// True when activations are plain float rows (F32 weights): callers may pass the floats themselves.
bool acts_are_floats(const ActFormat& f);
// n rows of k floats (stride ldx) into format f (rows at out_stride); threaded over rows when n is large.
void convert_acts(const Exec& ex, const ActFormat& f, const float* x, int64_t ldx, int64_t n, int64_t k, uint8_t* out,
                  size_t out_stride);

// Float activation rows made ready for weights of format f: the floats themselves when f wants floats, else
// converted into buf (act_bytes(f, k) bytes per row). Models call this instead of converting formats themselves.
struct ActRows {
  const uint8_t* data;
  size_t stride;
};
ActRows acts_for(const Exec& ex, const ActFormat& f, const float* x, int64_t n, int64_t k, uint8_t* buf);

// Rows [r0, r1) (r0 a multiple of 16) of y = W X on the calling thread.
void matmul_rows(const KernelSet& k, const WeightRef& w, int64_t r0, int64_t r1, const uint8_t* xq, size_t x_stride,
                 int64_t n, float* y, int64_t ldy);

// Several products that share activations (e.g. q, k, v) in one parallel loop: y_i = W_i X.
struct MatmulJob {
  const WeightRef* w;
  float* y;
  int64_t ldy;
};
void matmul_many(const Exec& ex, const MatmulJob* jobs, int n_jobs, const uint8_t* xq, size_t x_stride, int64_t n);
void matmul(const Exec& ex, const WeightRef& w, const uint8_t* xq, size_t x_stride, int64_t n, float* y, int64_t ldy);

}  // namespace moe
