// GEMV/GEMM on weights in their file layout. F32, F16 and BF16 rows are multiplied directly (4 rows x up to
// 4 tokens per tile, float FMAs; products of two halves or two bfloat16 are exact in float, so only the
// summation order differs from the reference's double sums). Quantized types with a packed layout are packed
// 16 rows at a time into a per-thread buffer and sent through the packed kernels; the rest use the reference.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/simd/simd_gemm.cpp"
#include "kernels/simd/hwy_config.h"  // first: chooses the compiled targets
#include <hwy/foreach_target.h>       // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/quant.h"
#include "kernels/kernels.h"
#include "kernels/packed.h"
#include "kernels/simd/simd-inl.h"
#include "kernels/simd/simd_internal.h"

HWY_BEFORE_NAMESPACE();
namespace moe {
namespace HWY_NAMESPACE {

template <DType kT>
MOE_ATTR HWY_INLINE VF LoadElems(const uint8_t* p, int64_t i) {
  if constexpr (kT == DType::F32) {
    return hn::LoadU(DF(), reinterpret_cast<const float*>(p) + i);
  } else if constexpr (kT == DType::F16) {
    const hn::Rebind<hwy::float16_t, DF> dh;
    return hn::PromoteTo(DF(), hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p) + i));
  } else {
    const hn::Rebind<hwy::bfloat16_t, DF> db;
    return hn::PromoteTo(DF(), hn::LoadU(db, reinterpret_cast<const hwy::bfloat16_t*>(p) + i));
  }
}

template <DType kT>
MOE_ATTR HWY_INLINE float Elem(const uint8_t* p, int64_t i) {
  if constexpr (kT == DType::F32) {
    float v;
    std::memcpy(&v, p + 4 * i, 4);
    return v;
  } else {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    return kT == DType::F16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
  }
}

template <DType kT, int R, int T>
MOE_ATTR void FloatTile(const uint8_t* w, size_t w_stride, int64_t k, const uint8_t* x, size_t x_stride, float* y,
                        int64_t ldy) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  VF acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = hn::Zero(df);
  int64_t i = 0;
  for (; i + N <= k; i += N) {
    VF xv[T];
    for (int t = 0; t < T; ++t) xv[t] = LoadElems<kT>(x + t * x_stride, i);
    for (int r = 0; r < R; ++r) {
      const VF wv = LoadElems<kT>(w + r * w_stride, i);
      for (int t = 0; t < T; ++t) acc[r][t] = hn::MulAdd(wv, xv[t], acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) {
      float s = hn::GetLane(hn::SumOfLanes(df, acc[r][t]));
      for (int64_t j = i; j < k; ++j) s += Elem<kT>(w + r * w_stride, j) * Elem<kT>(x + t * x_stride, j);
      y[t * ldy + r] = s;
    }
}

template <DType kT, int R>
MOE_ATTR void FloatRows(const uint8_t* w, size_t w_stride, int64_t k, const uint8_t* x, size_t x_stride, int64_t n,
                        float* y, int64_t ldy) {
  int64_t t = 0;
  for (; t + 4 <= n; t += 4) FloatTile<kT, R, 4>(w, w_stride, k, x + t * x_stride, x_stride, y + t * ldy, ldy);
  switch (n - t) {
    case 3: FloatTile<kT, R, 3>(w, w_stride, k, x + t * x_stride, x_stride, y + t * ldy, ldy); break;
    case 2: FloatTile<kT, R, 2>(w, w_stride, k, x + t * x_stride, x_stride, y + t * ldy, ldy); break;
    case 1: FloatTile<kT, R, 1>(w, w_stride, k, x + t * x_stride, x_stride, y + t * ldy, ldy); break;
    default: break;
  }
}

template <DType kT>
MOE_ATTR void FloatGemm(const uint8_t* w, size_t w_stride, int64_t r0, int64_t r1, int64_t k, const uint8_t* x,
                        size_t x_stride, int64_t n, float* y, int64_t ldy) {
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) FloatRows<kT, 4>(w + r * w_stride, w_stride, k, x, x_stride, n, y + r, ldy);
  for (; r < r1; ++r) FloatRows<kT, 1>(w + r * w_stride, w_stride, k, x, x_stride, n, y + r, ldy);
}

// Returns false for types this file does not handle.
MOE_ATTR bool GemmFloat(DType wt, const uint8_t* w, size_t w_stride, int64_t r0, int64_t r1, int64_t k,
                        const uint8_t* x, size_t x_stride, int64_t n, float* y, int64_t ldy) {
  switch (wt) {
    case DType::F32: FloatGemm<DType::F32>(w, w_stride, r0, r1, k, x, x_stride, n, y, ldy); return true;
    case DType::F16: FloatGemm<DType::F16>(w, w_stride, r0, r1, k, x, x_stride, n, y, ldy); return true;
    case DType::BF16: FloatGemm<DType::BF16>(w, w_stride, r0, r1, k, x, x_stride, n, y, ldy); return true;
    default: return false;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace moe
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace moe {
HWY_EXPORT(GemmFloat);

void simd_gemm(DType wt, const uint8_t* w, size_t w_stride, int64_t r0, int64_t r1, int64_t k, const uint8_t* x,
               size_t x_stride, int64_t n, float* y, int64_t ldy) {
  if (r1 <= r0 || n <= 0) return;
  if (HWY_DYNAMIC_DISPATCH(GemmFloat)(wt, w, w_stride, r0, r1, k, x, x_stride, n, y, ldy)) return;
  if (!packable(wt)) {
    reference_kernels().gemm(wt, w, w_stride, r0, r1, k, x, x_stride, n, y, ldy);
    return;
  }
  // Pack on the fly, through per-thread buffers of fixed size (no allocation: this path serves the experts of a
  // layer's first step when they are packed on use): weights 16 rows at a time, activations in runs that fit.
  constexpr size_t kWeightRoom = size_t{512} << 10, kActRoom = size_t{256} << 10;
  alignas(64) thread_local uint8_t wroom[kWeightRoom];
  alignas(64) thread_local uint8_t xroom[kActRoom];
  thread_local std::vector<uint8_t> wbig, xbig;  // rows longer than the fixed rooms hold (grow once per thread)
  const size_t ab = packed_act_bytes(wt, k), gb = packed_group_bytes(wt, k);
  uint8_t* wbuf = wroom;
  if (gb > kWeightRoom) {
    wbig.resize(gb);
    wbuf = wbig.data();
  }
  int64_t run = static_cast<int64_t>(kActRoom / ab);
  uint8_t* xbuf = xroom;
  if (run == 0) {
    xbig.resize(ab);
    xbuf = xbig.data();
    run = 1;
  }
  for (int64_t t0 = 0; t0 < n; t0 += run) {
    const int64_t nt = std::min(run, n - t0);
    for (int64_t t = 0; t < nt; ++t) packed_act_from_dot(wt, x + (t0 + t) * x_stride, k, xbuf + t * ab);
    for (int64_t r = r0; r < r1; r += kPackRows) {
      const int64_t rows = std::min<int64_t>(kPackRows, r1 - r);
      pack_rows(wt, w + r * w_stride, w_stride, rows, k, wbuf);
      simd_gemm_packed(wt, wbuf, 0, rows, k, xbuf, ab, nt, y + t0 * ldy + r, ldy);
    }
  }
}
}  // namespace moe
#endif
