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
void matmul_q(const Exec& ex, const Mat& w, const uint8_t* xq, size_t x_stride, int64_t n, float* y, int64_t ldy);

// Rows [r0, r1) of the product on the calling thread only (for callers that build their own tiles).
void matmul_q_rows(const KernelSet& k, const Mat& w, int64_t r0, int64_t r1, const uint8_t* xq, size_t x_stride,
                   int64_t n, float* y, int64_t ldy);

// Rows per tile so that a product of `rows` rows splits into enough tiles for the pool.
int64_t row_block(int64_t rows, int n_threads);

}  // namespace moe
