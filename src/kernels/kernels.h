// The kernel interface: plain function tables. `reference_kernels()` is the scalar oracle; `simd_kernels()`
// uses Highway with runtime dispatch (AVX-512 / AVX2 / NEON / scalar). Both have the same contracts and
// are selectable at run time, so every fast kernel is tested against its reference.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

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

  // Weights repacked at load time (kernels/packed.h; types with packable(wt)). Activations for them: n rows of k
  // floats (stride ldx) into packed_act_bytes(wt, k)-byte rows at out_stride, the same numbers quantize_rows
  // gives for vec_dot_type(wt).
  void (*quantize_rows_packed)(DType wt, const float* x, int64_t ldx, int64_t n, int64_t k, uint8_t* out,
                               size_t out_stride);
  // As gemm, for a packed W: rows [r0, r1) with r0 a multiple of kPackRows; X in packed activation rows.
  void (*gemm_packed)(DType wt, const uint8_t* w, int64_t r0, int64_t r1, int64_t k, const uint8_t* x,
                      size_t x_stride, int64_t n, float* y, int64_t ldy);

  // Rotary embedding of n_head heads of head_dim floats (x[h * head_dim + i]), the first n_rot dims of each.
  // cs: cos[n_rot / 2] then sin[n_rot / 2] for this position. neox: pairs (i, i + n_rot/2), else (2i, 2i+1).
  void (*rope)(float* x, int64_t n_head, int64_t head_dim, int64_t n_rot, const float* cs, bool neox);

  // Causal attention of nq consecutive query positions of one head over one KV head whose keys are stored
  // transposed in blocks of 16 positions, so that scores for 16 positions come from plain FMAs over one
  // contiguous 64*head_dim-byte block. Query i (head_dim floats at q + i * q_stride) attends to positions
  // [0, n_kv0 + i]: out_i = sum_j softmax_j(scale * q_i·k_j) v_j, with
  //   k_j[d] at kt[(j / 16) * 16 * head_dim + d * 16 + j % 16]  (the block holding the last position is read whole)
  //   v_j at v + j * v_stride, out_i at out + i * out_stride.
  // scratch holds nq * round_up(n_kv0 + nq, 16) floats.
  void (*attention_kt)(const float* q, int64_t q_stride, int64_t nq, const float* kt, const float* v,
                       int64_t v_stride, int64_t n_kv0, int64_t head_dim, float scale, float* scratch, float* out,
                       int64_t out_stride);
  // As attention_kt, with a sliding window and an attention sink. window > 0: query i (at position n_kv0 + i)
  // sees only positions (n_kv0 + i - window, n_kv0 + i]; window 0: all of [0, n_kv0 + i]. sink != -inf: one more
  // logit in the softmax denominator only (gpt-oss), so the weights sum to less than 1. With window 0 and sink
  // -inf the numbers are attention_kt's, bit for bit.
  void (*attention_kt_masked)(const float* q, int64_t q_stride, int64_t nq, const float* kt, const float* v,
                              int64_t v_stride, int64_t n_kv0, int64_t head_dim, float scale, float* scratch,
                              float* out, int64_t out_stride, int64_t window, float sink);
};

constexpr int64_t kKeyBlock = 16;  // positions per transposed key block (attention_kt)

const KernelSet& reference_kernels();
const KernelSet& simd_kernels();
// The set named "ref" or "simd"; throws UsageError otherwise.
const KernelSet& kernels_by_name(const char* name);

// The SIMD table dispatches at run time to the best compiled Highway target the CPU supports. For tests and
// benchmarks: the compiled targets this CPU can run (best first), the one in use, and forcing one
// (0 restores automatic choice). Not thread-safe: call while no kernel runs.
struct SimdTarget {
  int64_t id;
  const char* name;
};
std::vector<SimdTarget> simd_targets();
const char* simd_target_name();
void simd_force_target(int64_t id);

// Sum of n 64-bit words, read with the widest vectors: a streaming read for memory-bandwidth measurement.
uint64_t simd_stream_sum(const uint64_t* p, size_t n);

}  // namespace moe
