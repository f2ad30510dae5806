// Entry points of the SIMD kernel files (each dispatches to the best compiled Highway target at run time);
// simd_kernels.cpp puts them in the KernelSet table. Same contracts as the KernelSet members.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace moe {

void simd_quantize_rows(DType vt, const float* x, int64_t ldx, int64_t n, int64_t k, uint8_t* out, size_t out_stride);
void simd_quantize_rows_packed(DType wt, const float* x, int64_t ldx, int64_t n, int64_t k, uint8_t* out,
                               size_t out_stride);
void simd_gemm(DType wt, const uint8_t* w, size_t w_stride, int64_t r0, int64_t r1, int64_t k, const uint8_t* x,
               size_t x_stride, int64_t n, float* y, int64_t ldy);
void simd_gemm_packed(DType wt, const uint8_t* w, int64_t r0, int64_t r1, int64_t k, const uint8_t* x, size_t x_stride,
                      int64_t n, float* y, int64_t ldy);
void simd_rms_norm(const float* x, const float* w, float eps, int64_t n, float* y);
void simd_softmax(float* x, int64_t n);
void simd_swiglu(const float* gate, const float* up, int64_t n, float* out);
void simd_attention(const float* q, const float* k, const float* v, int64_t kv_stride, int64_t n_kv, int64_t head_dim,
                    float scale, float* scratch, float* out);
void simd_attention_kt(const float* q, int64_t q_stride, int64_t nq, const float* kt, const float* v, int64_t v_stride,
                       int64_t n_kv0, int64_t head_dim, float scale, float* scratch, float* out, int64_t out_stride);
void simd_attention_kt_masked(const float* q, int64_t q_stride, int64_t nq, const float* kt, const float* v,
                              int64_t v_stride, int64_t n_kv0, int64_t head_dim, float scale, float* scratch,
                              float* out, int64_t out_stride, int64_t window, float sink);
void simd_rope(float* x, int64_t n_head, int64_t head_dim, int64_t n_rot, const float* cs, bool neox);

}  // namespace moe
