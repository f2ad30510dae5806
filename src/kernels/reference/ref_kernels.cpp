// Scalar reference kernels: the oracle for the SIMD ones. They follow llama.cpp's CPU arithmetic where it
// matters for parity (activations converted to the weight's dot format, softmax sums in double).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/quant.h"
#include "kernels/kernels.h"
#include "kernels/packed.h"

namespace moe {
namespace {

void ref_quantize_rows(DType vt, const float* x, int64_t ldx, int64_t n, int64_t k, uint8_t* out,
                       size_t out_stride) {
  for (int64_t t = 0; t < n; ++t) {
    const float* row = x + t * ldx;
    uint8_t* dst = out + t * out_stride;
    if (vt == DType::F32) std::memcpy(dst, row, static_cast<size_t>(k) * sizeof(float));
    else quantize_row(vt, row, dst, k);
  }
}

void ref_gemm(DType wt, const uint8_t* w, size_t w_stride, int64_t r0, int64_t r1, int64_t k, const uint8_t* x,
              size_t x_stride, int64_t n, float* y, int64_t ldy) {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t r = r0; r < r1; ++r) y[t * ldy + r] = vec_dot(wt, k, w + r * w_stride, x + t * x_stride);
}

void ref_rms_norm(const float* x, const float* w, float eps, int64_t n, float* y) {
  // ggml accumulates the sum of squares in ggml_float (double).
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const float scale = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(n)) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = w ? x[i] * scale * w[i] : x[i] * scale;
}

void ref_softmax(float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void ref_swiglu(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void ref_attention(const float* q, const float* k, const float* v, int64_t kv_stride, int64_t n_kv, int64_t head_dim,
                   float scale, float* scratch, float* out) {
  for (int64_t j = 0; j < n_kv; ++j) {
    const float* kj = k + j * kv_stride;
    float s = 0.0f;
    for (int64_t d = 0; d < head_dim; ++d) s += q[d] * kj[d];
    scratch[j] = s * scale;
  }
  ref_softmax(scratch, n_kv);
  for (int64_t d = 0; d < head_dim; ++d) out[d] = 0.0f;
  for (int64_t j = 0; j < n_kv; ++j) {
    const float* vj = v + j * kv_stride;
    const float p = scratch[j];
    for (int64_t d = 0; d < head_dim; ++d) out[d] += p * vj[d];
  }
}

// Packed activations: quantize each block as quantize_rows does, then lay it out for the packed kernels.
void ref_quantize_rows_packed(DType wt, const float* x, int64_t ldx, int64_t n, int64_t k, uint8_t* out,
                              size_t out_stride) {
  const DType vt = vec_dot_type(wt);
  const int64_t bs = dtype_info(vt).block_size;
  alignas(8) uint8_t blk[sizeof(BlockQ8_K)];
  for (int64_t t = 0; t < n; ++t) {
    uint8_t* dst = out + t * out_stride;
    if (vt == DType::Q8_K) {
      quantize_row(vt, x + t * ldx, dst, k);
      continue;
    }
    // Q8_0 rows: d[nb] float | sum[nb] int32 | qs[k] (kernels/packed.h).
    const int64_t nb = k / bs;
    for (int64_t b = 0; b < nb; ++b) {
      quantize_row(vt, x + t * ldx + b * bs, blk, bs);
      uint8_t tmp[8 + kQK];
      packed_act_from_dot(wt, blk, bs, tmp);
      std::memcpy(dst + 4 * b, tmp, 4);
      std::memcpy(dst + 4 * (nb + b), tmp + 4, 4);
      std::memcpy(dst + 8 * nb + kQK * b, tmp + 8, kQK);
    }
  }
}

// Packed weights: unpack each row and each activation row back to the file formats and use vec_dot.
void ref_gemm_packed(DType wt, const uint8_t* w, int64_t r0, int64_t r1, int64_t k, const uint8_t* x,
                     size_t x_stride, int64_t n, float* y, int64_t ldy) {
  thread_local std::vector<uint8_t> row, act;
  row.resize(row_bytes(wt, k));
  act.resize(row_bytes(vec_dot_type(wt), k));
  for (int64_t r = r0; r < r1; ++r) {
    unpack_row(wt, w, r, k, row.data());
    for (int64_t t = 0; t < n; ++t) {
      packed_act_to_dot(wt, x + t * x_stride, k, act.data());
      y[t * ldy + r] = vec_dot(wt, k, row.data(), act.data());
    }
  }
}

void ref_rope(float* x, int64_t n_head, int64_t head_dim, int64_t n_rot, const float* cs, bool neox) {
  const int64_t half = n_rot / 2;
  for (int64_t h = 0; h < n_head; ++h) {
    float* xh = x + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const float c = cs[i], s = cs[half + i];
      float* a = neox ? xh + i : xh + 2 * i;
      float* b = neox ? xh + i + half : xh + 2 * i + 1;
      const float x0 = *a, x1 = *b;
      *a = x0 * c - x1 * s;
      *b = x0 * s + x1 * c;
    }
  }
}

void ref_attention_kt_masked(const float* q, int64_t q_stride, int64_t nq, const float* kt, const float* v,
                             int64_t v_stride, int64_t n_kv0, int64_t head_dim, float scale, float* scratch, float* out,
                             int64_t out_stride, int64_t window, float sink) {
  for (int64_t i = 0; i < nq; ++i) {
    const float* qi = q + i * q_stride;
    float* oi = out + i * out_stride;
    const int64_t n_kv = n_kv0 + i + 1;
    const int64_t lo = window > 0 ? std::max<int64_t>(0, n_kv - window) : 0;  // first visible position
    for (int64_t j = lo; j < n_kv; ++j) {
      const float* kb = kt + (j / kKeyBlock) * kKeyBlock * head_dim + j % kKeyBlock;
      float s = 0.0f;
      for (int64_t d = 0; d < head_dim; ++d) s += qi[d] * kb[d * kKeyBlock];
      scratch[j] = s * scale;
    }
    if (sink == -INFINITY) {
      ref_softmax(scratch + lo, n_kv - lo);
    } else {
      // The sink joins the max and the denominator, never the weighted sum.
      float mx = sink;
      for (int64_t j = lo; j < n_kv; ++j) mx = std::max(mx, scratch[j]);
      double sum = 0.0;
      for (int64_t j = lo; j < n_kv; ++j) {
        scratch[j] = std::exp(scratch[j] - mx);
        sum += scratch[j];
      }
      sum += std::exp(sink - mx);
      const float inv = static_cast<float>(1.0 / sum);
      for (int64_t j = lo; j < n_kv; ++j) scratch[j] *= inv;
    }
    for (int64_t d = 0; d < head_dim; ++d) oi[d] = 0.0f;
    for (int64_t j = lo; j < n_kv; ++j) {
      const float* vj = v + j * v_stride;
      for (int64_t d = 0; d < head_dim; ++d) oi[d] += scratch[j] * vj[d];
    }
  }
}

void ref_attention_kt(const float* q, int64_t q_stride, int64_t nq, const float* kt, const float* v, int64_t v_stride,
                      int64_t n_kv0, int64_t head_dim, float scale, float* scratch, float* out, int64_t out_stride) {
  ref_attention_kt_masked(q, q_stride, nq, kt, v, v_stride, n_kv0, head_dim, scale, scratch, out, out_stride, 0,
                          -INFINITY);
}

}  // namespace

const KernelSet& reference_kernels() {
  static const KernelSet set = {"ref",        ref_quantize_rows, ref_gemm,         ref_rms_norm,
                                ref_softmax,  ref_swiglu,        ref_attention,    ref_quantize_rows_packed,
                                ref_gemm_packed, ref_rope,          ref_attention_kt,
                                ref_attention_kt_masked};
  return set;
}

const KernelSet& kernels_by_name(const char* name) {
  std::string n = name;
  if (n == "ref" || n == "reference") return reference_kernels();
  if (n == "simd" || n == "auto") return simd_kernels();
  throw UsageError("unknown kernel set '" + n + "' (expected ref or simd)");
}

}  // namespace moe
