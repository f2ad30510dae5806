// The kernel interface: plain function tables. `reference_kernels()` is the scalar oracle; `simd_kernels()`
// uses Highway with runtime dispatch (AVX-512 / AVX2 / NEON / scalar). Both have the same contracts and
// are selectable at run time, so every fast kernel is tested against its reference.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace moe {

struct KernelSet {
  const char* name;

  // Converts n rows of k floats (row stride ldx floats) to the dot format `vt` (a vec_dot_type), writing rows
  // of row_bytes(vt, k) bytes at stride out_stride.
  void (*quantize_rows)(DType vt, const float* x, int64_t ldx, int64_t n, int64_t k, uint8_t* out,
                        size_t out_stride);

  // y[t*ldy + r] = dot(W[r, :], X[t, :]) for rows r in [r0, r1) and tokens t in [0, n).
  // W: rows of k elements of type wt at stride w_stride bytes (row 0 at w). X: n rows in vec_dot_type(wt)
  // at stride x_stride bytes.
  void (*gemm)(DType wt, const uint8_t* w, size_t w_stride, int64_t r0, int64_t r1, int64_t k, const uint8_t* x,
               size_t x_stride, int64_t n, float* y, int64_t ldy);

  // y = x / sqrt(mean(x^2) + eps) * w over n elements (w may be null: no scale). y may alias x.
  void (*rms_norm)(const float* x, const float* w, float eps, int64_t n, float* y);

  // In-place softmax over n elements.
  void (*softmax)(float* x, int64_t n);

  // out[i] = silu(gate[i]) * up[i]; out may alias gate or up.
  void (*swiglu)(const float* gate, const float* up, int64_t n, float* out);

  // Causal attention of one query head over positions [0, n_kv) of one KV head:
  // out[d] = sum_j softmax_j(scale * q·k_j) v_j[d]. k_j at k + j*kv_stride, v_j at v + j*kv_stride (floats).
  // scratch holds n_kv floats.
  void (*attention)(const float* q, const float* k, const float* v, int64_t kv_stride, int64_t n_kv,
                    int64_t head_dim, float scale, float* scratch, float* out);
};

const KernelSet& reference_kernels();
const KernelSet& simd_kernels();
// The set named "ref" or "simd"; throws UsageError otherwise.
const KernelSet& kernels_by_name(const char* name);

}  // namespace moe
