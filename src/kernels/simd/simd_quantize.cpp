// Activation quantizers: float rows to the weights' dot formats (Q8_0, Q8_K, F16, BF16, F32) and to the
// packed activation rows of kernels/packed.h. They produce the same bytes as the reference quantizers of
// core/quant.h (llama.cpp's x86 rounding) for finite input: the same float operations in the same order,
// only several elements at a time.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/simd/simd_quantize.cpp"
#include "kernels/simd/hwy_config.h"  // first: chooses the compiled targets
#include <hwy/foreach_target.h>       // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstring>

#include "core/quant.h"
#include "kernels/packed.h"
#include "kernels/simd/simd-inl.h"
#include "kernels/simd/simd_internal.h"

HWY_BEFORE_NAMESPACE();
namespace moe {
namespace HWY_NAMESPACE {

using DI8 = hn::Rebind<int8_t, DI>;
using DU16 = hn::Rebind<uint16_t, DI>;
using DU = hn::RebindToUnsigned<DI>;

// One Q8_0 block of 32 floats as llama.cpp's x86 quantize_row_q8_0: d = fp16(amax / 127), quants
// round-half-even(x * (127 / amax)). Returns the sum of the quants (for packed activations).
MOE_ATTR HWY_INLINE int32_t Q8_0Block(const float* x, uint16_t* d_out, int8_t* qs) {
  const DF df;
  const int N = static_cast<int>(hn::Lanes(df));
  VF mx = hn::Zero(df);
  for (int i = 0; i < kQK; i += N) mx = hn::Max(mx, hn::Abs(hn::LoadU(df, x + i)));
  const float amax = hn::GetLane(hn::MaxOfLanes(df, mx));
  *d_out = fp32_to_fp16(amax / 127.f);
  const VF id = hn::Set(df, amax != 0.0f ? 127.f / amax : 0.0f);
  VI sum = hn::Zero(DI());
  for (int i = 0; i < kQK; i += N) {
    VI q = hn::NearestInt(hn::Mul(hn::LoadU(df, x + i), id));
    q = hn::Min(hn::Max(q, hn::Set(DI(), -128)), hn::Set(DI(), 127));
    sum = hn::Add(sum, q);
    hn::StoreU(hn::DemoteTo(DI8(), q), DI8(), qs + i);
  }
  return hn::GetLane(hn::SumOfLanes(DI(), sum));
}

// One Q8_K super-block as ggml's quantize_row_q8_K: scale from the signed value of largest magnitude (the first
// one on ties), quants min(127, round-half-even(iscale * x)), sums of 16, d = 1 / iscale.
MOE_ATTR HWY_INLINE void Q8KBlock(const float* x, BlockQ8_K* y) {
  const DF df;
  const int N = static_cast<int>(hn::Lanes(df));
  VF mx = hn::Zero(df);
  for (int i = 0; i < kQKK; i += N) mx = hn::Max(mx, hn::Abs(hn::LoadU(df, x + i)));
  const float amax = hn::GetLane(hn::MaxOfLanes(df, mx));
  if (amax == 0.0f) {
    std::memset(y, 0, sizeof *y);
    return;
  }
  float max = 0.0f;
  const VF va = hn::Set(df, amax);
  for (int i = 0; i < kQKK; i += N) {
    const intptr_t j = hn::FindFirstTrue(df, hn::Eq(hn::Abs(hn::LoadU(df, x + i)), va));
    if (j >= 0) {
      max = x[i + j];
      break;
    }
  }
  const float iscale = -127.f / max;
  const VF vs = hn::Set(df, iscale);
  int8_t qs[kQKK];
  int16_t bsums[kQKK / 16];
  for (int g = 0; g < kQKK; g += 16) {
    VI sum = hn::Zero(DI());
    for (int i = g; i < g + 16; i += N) {
      const VI q = hn::Min(hn::NearestInt(hn::Mul(vs, hn::LoadU(df, x + i))), hn::Set(DI(), 127));
      sum = hn::Add(sum, q);
      hn::StoreU(hn::DemoteTo(DI8(), q), DI8(), qs + i);
    }
    bsums[g / 16] = static_cast<int16_t>(hn::GetLane(hn::SumOfLanes(DI(), sum)));
  }
  const float d = 1 / iscale;
  std::memcpy(&y->d, &d, sizeof d);
  std::memcpy(y->qs, qs, sizeof qs);
  std::memcpy(y->bsums, bsums, sizeof bsums);
}

MOE_ATTR void RowF16(const float* x, int64_t k, uint8_t* out) {
  int64_t i = 0;
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  // F16C rounds to nearest even like fp32_to_fp16; other targets use the scalar conversion.
  const DF df;
  const hn::Rebind<hwy::float16_t, DF> dh;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  for (; i + N <= k; i += N)
    hn::StoreU(hn::DemoteTo(dh, hn::LoadU(df, x + i)), dh, reinterpret_cast<hwy::float16_t*>(out + 2 * i));
#endif
  for (; i < k; ++i) {
    const uint16_t h = fp32_to_fp16(x[i]);
    std::memcpy(out + 2 * i, &h, 2);
  }
}

// Round to nearest even on the bit pattern; NaN keeps its top bits and becomes quiet (as fp32_to_bf16).
MOE_ATTR void RowBF16(const float* x, int64_t k, uint8_t* out) {
  const DF df;
  const DU du;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + N <= k; i += N) {
    const auto bits = hn::BitCast(du, hn::LoadU(df, x + i));
    const auto hi = hn::ShiftRight<16>(bits);
    const auto rounded = hn::ShiftRight<16>(hn::Add(bits, hn::Add(hn::Set(du, 0x7fffu), hn::And(hi, hn::Set(du, 1u)))));
    const auto is_nan = hn::Gt(hn::And(bits, hn::Set(du, 0x7fffffffu)), hn::Set(du, 0x7f800000u));
    const auto r = hn::IfThenElse(is_nan, hn::Or(hi, hn::Set(du, 0x40u)), rounded);
    hn::StoreU(hn::DemoteTo(DU16(), hn::BitCast(DI(), r)), DU16(), reinterpret_cast<uint16_t*>(out + 2 * i));
  }
  for (; i < k; ++i) {
    const uint16_t h = fp32_to_bf16(x[i]);
    std::memcpy(out + 2 * i, &h, 2);
  }
}

MOE_ATTR void QuantizeRow(DType vt, const float* x, int64_t k, uint8_t* out) {
  switch (vt) {
    case DType::F32: std::memcpy(out, x, static_cast<size_t>(k) * sizeof(float)); return;
    case DType::F16: return RowF16(x, k, out);
    case DType::BF16: return RowBF16(x, k, out);
    case DType::Q8_0: {
      if (k % kQK != 0) break;
      BlockQ8_0 blk;
      for (int64_t b = 0; b < k / kQK; ++b) {
        Q8_0Block(x + b * kQK, &blk.d, blk.qs);
        std::memcpy(out + b * sizeof blk, &blk, sizeof blk);
      }
      return;
    }
    case DType::Q8_K: {
      if (k % kQKK != 0) break;
      for (int64_t b = 0; b < k / kQKK; ++b) Q8KBlock(x + b * kQKK, reinterpret_cast<BlockQ8_K*>(out) + b);
      return;
    }
    default: break;
  }
  quantize_row(vt, x, out, k);  // other formats, and the error for bad sizes
}

MOE_ATTR void QuantizeRows(DType vt, const float* x, int64_t ldx, int64_t n, int64_t k, uint8_t* out,
                           size_t out_stride) {
  for (int64_t t = 0; t < n; ++t) QuantizeRow(vt, x + t * ldx, k, out + t * out_stride);
}

MOE_ATTR void QuantizeRowsPacked(DType wt, const float* x, int64_t ldx, int64_t n, int64_t k, uint8_t* out,
                                 size_t out_stride) {
  const DType vt = vec_dot_type(wt);
  if (vt != DType::Q8_0 || !packable(wt)) return QuantizeRows(vt, x, ldx, n, k, out, out_stride);
  if (k % kQK != 0) quantize_row(vt, x, out, k);  // throws the size error
  const int64_t nb = k / kQK;
  for (int64_t t = 0; t < n; ++t) {
    uint8_t* dst = out + t * out_stride;
    for (int64_t b = 0; b < nb; ++b) {
      uint16_t h;
      const int32_t sum = Q8_0Block(x + t * ldx + b * kQK, &h, reinterpret_cast<int8_t*>(dst + 8 * nb + kQK * b));
      const float d = fp16_to_fp32(h);
      const int32_t bias = -128 * sum;
      std::memcpy(dst + 4 * b, &d, 4);
      std::memcpy(dst + 4 * (nb + b), &bias, 4);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace moe
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace moe {
HWY_EXPORT(QuantizeRows);
HWY_EXPORT(QuantizeRowsPacked);

void simd_quantize_rows(DType vt, const float* x, int64_t ldx, int64_t n, int64_t k, uint8_t* out, size_t out_stride) {
  HWY_DYNAMIC_DISPATCH(QuantizeRows)(vt, x, ldx, n, k, out, out_stride);
}

void simd_quantize_rows_packed(DType wt, const float* x, int64_t ldx, int64_t n, int64_t k, uint8_t* out,
                               size_t out_stride) {
  HWY_DYNAMIC_DISPATCH(QuantizeRowsPacked)(wt, x, ldx, n, k, out, out_stride);
}
}  // namespace moe
#endif
