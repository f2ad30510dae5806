// MXFP4 (OCP Microscaling FP4, as GGUF stores it for gpt-oss experts): blocks of 32 weights that share one
// power-of-two scale. Each weight is a 4-bit E2M1 float: sign, 2 exponent bits, 1 mantissa bit, i.e. one of
// +-{0, 0.5, 1, 1.5, 2, 3, 4, 6}. The shared scale is an E8M0 byte e (a bare biased exponent, 2^(e-127)).
// GGUF/ggml conventions this file reproduces (learnt from ggml-common.h / ggml-quants.c, written anew):
//  - the codes are decoded as twice their E2M1 value (integers -12..12, so dot products stay integer) and the
//    scale as 2^(e-128), half of the E8M0 value, which gives the same product;
//  - byte j of the 16 code bytes holds element j in its low nibble and element j + 16 in its high nibble;
//  - the quantizer picks e so that the block's largest magnitude lands in [4, 8) times 2^(e-127) (the top two
//    E2M1 binades) and rounds each weight to the nearest code.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/quant_ref.h"

namespace moe::qref {
namespace {

// Code -> twice its E2M1 value. Codes 8..15 are the negatives of 0..7 (8 is -0).
constexpr int8_t kDoubledE2M1[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// Index of the code whose value (times the half scale d) is closest to x. Errors are measured in float exactly
// as llama-quantize measures them and ties keep the code that comes first in the table, so that the chosen
// codes (and file bytes) agree with it even where two float errors round to the same value. NaN gets code 0.
uint8_t nearest_code(float x, float d) {
  uint8_t best = 0;
  float best_err = std::fabs(x);  // code 0 has value 0
  for (uint8_t c = 1; c < 16; ++c) {
    const float err = std::fabs(static_cast<float>(kDoubledE2M1[c]) * d - x);
    if (err < best_err) best = c, best_err = err;
  }
  return best;
}

// Shared exponent byte for a block whose largest magnitude is amax: 2^(floor(log2 amax) - 2) as E8M0, which
// puts amax at 4..8 times 2^(e-127), i.e. within the largest E2M1 magnitudes 4 and 6 (anything above 6 rounds
// down to 6). log2f (not an exact frexp) because llama-quantize rounds with it: just below a power of two it
// returns the integer above. Blocks too small or too large for the byte's range (where ggml's cast is
// undefined) saturate at 0 / 254 (255 would be NaN in E8M0); an all-zero or NaN block gets 0.
uint8_t shared_exponent(float amax) {
  if (!(amax > 0.0f)) return 0;
  const float e = std::floor(std::log2(amax)) - 2.0f + 127.0f;
  if (!(e >= 0.0f)) return 0;
  return static_cast<uint8_t>(std::min(e, 254.0f));
}

float block_amax(const float* x) {
  float amax = 0.0f;
  for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));  // max(a, NaN) keeps a
  return amax;
}

}  // namespace

float e8m0_half_to_fp32(uint8_t e) {
  // 2^(e-128): a normal float with biased exponent e - 1 for e >= 2; e = 0, 1 are the subnormals 2^-128, 2^-127.
  const uint32_t bits = e >= 2 ? static_cast<uint32_t>(e - 1) << 23 : 0x00200000u << e;
  float v;
  std::memcpy(&v, &bits, 4);
  return v;
}

int8_t mxfp4_code_value(uint8_t code) { return kDoubledE2M1[code & 15]; }

void dequantize_mxfp4(const BlockMXFP4* x, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, y += kQK) {
    const float d = e8m0_half_to_fp32(x[b].e);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = static_cast<float>(kDoubledE2M1[x[b].qs[j] & 15]) * d;
      y[j + kQK / 2] = static_cast<float>(kDoubledE2M1[x[b].qs[j] >> 4]) * d;
    }
  }
}

void quantize_mxfp4(const float* x, BlockMXFP4* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, x += kQK) {
    y[b].e = shared_exponent(block_amax(x));
    const float d = e8m0_half_to_fp32(y[b].e);
    for (int j = 0; j < kQK / 2; ++j)
      y[b].qs[j] = static_cast<uint8_t>(nearest_code(x[j], d) | nearest_code(x[j + kQK / 2], d) << 4);
  }
}

// Integer sum per block, then one float multiply-add with the product of the two scales, in ggml's order
// (ggml_vec_dot_mxfp4_q8_0_generic: d = d_act * d_w; sum += d * (sum_lo + sum_hi)).
float vec_dot_mxfp4_q8_0(const BlockMXFP4* x, const BlockQ8_0* y, int64_t nb) {
  float sum = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    int lo = 0, hi = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      lo += y[b].qs[j] * kDoubledE2M1[x[b].qs[j] & 15];
      hi += y[b].qs[j + kQK / 2] * kDoubledE2M1[x[b].qs[j] >> 4];
    }
    const float d = fp16_to_fp32(y[b].d) * e8m0_half_to_fp32(x[b].e);
    sum += d * static_cast<float>(lo + hi);
  }
  return sum;
}

}  // namespace moe::qref
