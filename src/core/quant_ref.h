// Per-format reference kernels behind the dispatchers of core/quant.h. Internal to core, but SIMD kernels
// and their tests may call them directly to compare one format at a time. `nb` counts blocks, not elements.
#pragma once
#include <cmath>
#include <cstdint>

#include "core/quant.h"

namespace moe::qref {

// Round half to even, like ggml's nearest_int (the 1.5*2^23 trick) and _mm256_round_ps(_MM_ROUND_NEAREST).
// Inputs far outside the int range (only possible from NaN/inf data) saturate instead of being undefined.
inline int nearest_int(float v) {
  if (!(std::fabs(v) < 1e9f)) return v > 0 ? 1000000000 : -1000000000;
  return static_cast<int>(std::nearbyint(v));
}

// 32-wide formats (quant_legacy.cpp).
void dequantize_q4_0(const BlockQ4_0* x, float* y, int64_t nb);
void dequantize_q4_1(const BlockQ4_1* x, float* y, int64_t nb);
void dequantize_q5_0(const BlockQ5_0* x, float* y, int64_t nb);
void dequantize_q5_1(const BlockQ5_1* x, float* y, int64_t nb);
void dequantize_q8_0(const BlockQ8_0* x, float* y, int64_t nb);
void dequantize_q8_1(const BlockQ8_1* x, float* y, int64_t nb);

void quantize_q4_0(const float* x, BlockQ4_0* y, int64_t nb);
void quantize_q4_1(const float* x, BlockQ4_1* y, int64_t nb);
void quantize_q5_0(const float* x, BlockQ5_0* y, int64_t nb);
void quantize_q5_1(const float* x, BlockQ5_1* y, int64_t nb);
void quantize_q8_0_ggml_ref(const float* x, BlockQ8_0* y, int64_t nb);  // llama-quantize's Q8_0
void quantize_q8_1_ggml_ref(const float* x, BlockQ8_1* y, int64_t nb);
void quantize_q8_0_x86(const float* x, BlockQ8_0* y, int64_t nb);  // llama.cpp's AVX activation path
void quantize_q8_1_x86(const float* x, BlockQ8_1* y, int64_t nb);

float vec_dot_q4_0_q8_0(const BlockQ4_0* x, const BlockQ8_0* y, int64_t nb);
float vec_dot_q4_1_q8_1(const BlockQ4_1* x, const BlockQ8_1* y, int64_t nb);
float vec_dot_q5_0_q8_0(const BlockQ5_0* x, const BlockQ8_0* y, int64_t nb);
float vec_dot_q5_1_q8_1(const BlockQ5_1* x, const BlockQ8_1* y, int64_t nb);
float vec_dot_q8_0_q8_0(const BlockQ8_0* x, const BlockQ8_0* y, int64_t nb);
float vec_dot_q8_1_q8_1(const BlockQ8_1* x, const BlockQ8_1* y, int64_t nb);

// MXFP4 (quant_mxfp4.cpp). Codes decode to twice their E2M1 value (-12..12), the E8M0 byte e to 2^(e-128).
float e8m0_half_to_fp32(uint8_t e);
int8_t mxfp4_code_value(uint8_t code);
void dequantize_mxfp4(const BlockMXFP4* x, float* y, int64_t nb);
void quantize_mxfp4(const float* x, BlockMXFP4* y, int64_t nb);  // llama-quantize's bytes (round to nearest)
float vec_dot_mxfp4_q8_0(const BlockMXFP4* x, const BlockQ8_0* y, int64_t nb);

// K formats, super-blocks of 256 (quant_k.cpp).
void dequantize_q2_K(const BlockQ2_K* x, float* y, int64_t nb);
void dequantize_q3_K(const BlockQ3_K* x, float* y, int64_t nb);
void dequantize_q4_K(const BlockQ4_K* x, float* y, int64_t nb);
void dequantize_q5_K(const BlockQ5_K* x, float* y, int64_t nb);
void dequantize_q6_K(const BlockQ6_K* x, float* y, int64_t nb);
void dequantize_q8_K(const BlockQ8_K* x, float* y, int64_t nb);

void quantize_q2_K(const float* x, BlockQ2_K* y, int64_t nb);
void quantize_q3_K(const float* x, BlockQ3_K* y, int64_t nb);
void quantize_q4_K(const float* x, BlockQ4_K* y, int64_t nb);
void quantize_q5_K(const float* x, BlockQ5_K* y, int64_t nb);
void quantize_q6_K(const float* x, BlockQ6_K* y, int64_t nb);
void quantize_q8_K(const float* x, BlockQ8_K* y, int64_t nb);

float vec_dot_q2_K_q8_K(const BlockQ2_K* x, const BlockQ8_K* y, int64_t nb);
float vec_dot_q3_K_q8_K(const BlockQ3_K* x, const BlockQ8_K* y, int64_t nb);
float vec_dot_q4_K_q8_K(const BlockQ4_K* x, const BlockQ8_K* y, int64_t nb);
float vec_dot_q5_K_q8_K(const BlockQ5_K* x, const BlockQ8_K* y, int64_t nb);
float vec_dot_q6_K_q8_K(const BlockQ6_K* x, const BlockQ8_K* y, int64_t nb);

// The 6-bit scale and min of sub-block j (0..7) packed in the 12 scale bytes of Q4_K and Q5_K.
inline void k4_scale_min(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

}  // namespace moe::qref
