// GEMV/GEMM on row-interleaved weights (kernels/packed.h): one vector lane per weight row, so a single
// 64-byte load and one int8 quad-dot instruction per 4 activation bytes advance 16 row sums. Integer sums
// inside blocks are exact; the float order across blocks differs from the reference only in rounding.
// Tokens are processed T at a time so that every weight load serves T activation rows.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/simd/simd_packed.cpp"
#include "kernels/simd/hwy_config.h"  // first: chooses the compiled targets
#include <hwy/foreach_target.h>       // IWYU pragma: keep
#include <hwy/cache_control.h>
#if HWY_ARCH_X86
#include <xmmintrin.h>
#endif
#include <hwy/highway.h>

#include <algorithm>

#include <cstddef>

#include "core/dtype.h"
#include "core/quant.h"
#include "kernels/packed.h"
#include "kernels/simd/simd-inl.h"
#include "kernels/simd/simd_internal.h"

HWY_BEFORE_NAMESPACE();
namespace moe {
namespace HWY_NAMESPACE {

using DH = hn::Rebind<hwy::float16_t, DF>;

MOE_ATTR HWY_INLINE VF LoadHalf(const uint8_t* p) {
  return hn::PromoteTo(DF(), hn::LoadU(DH(), reinterpret_cast<const hwy::float16_t*>(p)));
}
MOE_ATTR HWY_INLINE float LoadF32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}
// The 16 block sums of a Q8_K block (2-byte aligned: blocks are 292 bytes from an aligned row start).
MOE_ATTR HWY_INLINE const int16_t* Bsums(const uint8_t* q8k_block) {
  return reinterpret_cast<const int16_t*>(q8k_block + offsetof(BlockQ8_K, bsums));
}
MOE_ATTR HWY_INLINE VI LoadChunk(const uint8_t* p) { return hn::LoadU(DI(), reinterpret_cast<const int32_t*>(p)); }
MOE_ATTR HWY_INLINE VI Nib(VI v) { return hn::And(v, hn::Set(DI(), 0x0F0F0F0F)); }
MOE_ATTR HWY_INLINE VI NibHi(VI v) { return hn::And(hn::ShiftRight<4>(v), hn::Set(DI(), 0x0F0F0F0F)); }

// ---- Q8_0 / Q4_0: 32-element blocks, per-block fp16 scale; activations d[nb] float, bias[nb] int, qs. ----
// Lanes hold (w + 128) * a for Q8_0 and q * a for Q4_0, so the offset term is -128 or -8 times the block sum.

// Weights stream from DRAM once per product; software prefetch ~8 KiB ahead keeps enough lines in flight
// (measured: +15% for one token, x1.8 for eight tokens per tile on Zen 5).
constexpr size_t kPrefetchBytes = 8192;

// Prefetch of one line, unless it lies past the end of what this call reads (a prefetch past the tile would
// pull in bytes nobody uses, which costs bandwidth in decoding).
MOE_ATTR HWY_INLINE void PrefetchLine(const uint8_t* p, const uint8_t* end) {
#if HWY_ARCH_X86
  // Non-temporal: weights are used once, so keep them from displacing activations and the KV cache.
  if (p < end) _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_NTA);
#else
  if (p < end) hwy::Prefetch(p);
#endif
}
// Prefetches the `bytes` bytes that follow p + kPrefetchBytes (one block of the stream ahead).
MOE_ATTR HWY_INLINE void PrefetchAhead(const uint8_t* p, size_t bytes, const uint8_t* end) {
  for (size_t off = 0; off < bytes; off += 64) PrefetchLine(p + kPrefetchBytes + off, end);
}

template <int T, bool kQ4>
MOE_ATTR void TileQ32(const uint8_t* G, int64_t nb, size_t lane_off, const uint8_t* const* xs, VF* out,
                       const uint8_t* pf_end) {
  constexpr int kChunks = kQ4 ? 4 : 8;  // 4-byte chunks per block and row
  constexpr int64_t kScale = 2 * kPackRows, kQuants = kChunks * 64;
  constexpr int64_t kUnit = 2 * (kScale + kQuants);  // a pair of blocks: both scale rows, then both quant runs
  VF acc[T];
  for (int t = 0; t < T; ++t) acc[t] = hn::Zero(DF());
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* U = G + (b / 2) * kUnit;
    const int64_t in_unit = (b | 1) < nb ? 2 : 1;
    if (b % 2 == 0)
      for (int64_t off = 0; off < kUnit; off += 64) PrefetchLine(U + kPrefetchBytes + off, pf_end);
    const VF wd = LoadHalf(U + (b % 2) * kScale + lane_off / 2);
    const uint8_t* wq = U + in_unit * kScale + (b % 2) * kQuants + lane_off;
    VI w[8];
    if constexpr (kQ4) {
      for (int c = 0; c < 4; ++c) {
        const VI v = LoadChunk(wq + c * 64);
        w[c] = Nib(v);
        w[c + 4] = NibHi(v);
      }
    } else {
      for (int c = 0; c < 8; ++c) w[c] = LoadChunk(wq + c * 64);
    }
    for (int t = 0; t < T; ++t) {
      const uint8_t* a = xs[t];
      const float da = LoadF32(a + 4 * b);
      const uint8_t* aq = a + 8 * nb + 32 * b;
      // -128 * (sum of the block's activations), exact: the offset of the unsigned Q8_0 weights (/ 16 for Q4_0).
      VI s = Bcast4(a + 4 * (nb + b));
      if constexpr (kQ4) s = hn::ShiftRight<4>(s);
      if constexpr (kQ4) {
        for (int c = 0; c < 4; ++c) {
          s = DotQuadBcast<true>(s, w[c], aq + 4 * c);
          s = DotQuadBcast<true>(s, w[c + 4], aq + 16 + 4 * c);
        }
      } else {
        for (int c = 0; c < 8; ++c) s = DotQuadBcast<false>(s, w[c], aq + 4 * c);
      }
      acc[t] = hn::MulAdd(hn::ConvertTo(DF(), s), hn::Mul(wd, hn::Set(DF(), da)), acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) out[t] = acc[t];
}

// ---- MXFP4: 32-element blocks of 4-bit E2M1 codes with an E8M0 shared exponent; activations as for Q8_0. ----
// A byte table lookup turns each code into 12 + twice its E2M1 value (0..24: unsigned, as the quad dot wants);
// each block sum starts at -12 * (sum of the block's activations) = bias * 3 / 32 to cancel the +12.
alignas(16) constexpr uint8_t kMxCodesPlus12[16] = {12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0};

// The E8M0 bytes of N rows at p as the floats 2^(e-128) (e = 0, 1 give the subnormals 2^-128, 2^-127).
MOE_ATTR HWY_INLINE VF E8M0Half(const uint8_t* p) {
  const VI e = hn::PromoteTo(DI(), hn::LoadU(hn::Rebind<uint8_t, DI>(), p));
  const VI normal = hn::ShiftLeft<23>(hn::Sub(e, hn::Set(DI(), 1)));
  const VI subnormal = hn::Mul(hn::Set(DI(), 0x00200000), hn::Add(e, hn::Set(DI(), 1)));
  return hn::BitCast(DF(), hn::IfThenElse(hn::Lt(e, hn::Set(DI(), 2)), subnormal, normal));
}

// Codes 0..15 in every byte of v -> their table bytes. The table is one vector holding it in each 128-bit block
// (a byte shuffle); the scalar target, which has no byte vectors, looks the 4 bytes of its lane up one by one.
#if HWY_TARGET == HWY_SCALAR
MOE_ATTR HWY_INLINE VI MxTable() { return hn::Zero(DI()); }
MOE_ATTR HWY_INLINE VI MxLookup(VI, VI v) {
  const uint32_t u = static_cast<uint32_t>(hn::GetLane(v));
  uint32_t r = 0;
  for (int i = 0; i < 4; ++i) r |= uint32_t{kMxCodesPlus12[(u >> (8 * i)) & 15]} << (8 * i);
  return hn::Set(DI(), static_cast<int32_t>(r));
}
#else
MOE_ATTR HWY_INLINE VI MxTable() {
  return hn::BitCast(DI(), hn::LoadDup128(hn::Repartition<uint8_t, DI>(), kMxCodesPlus12));
}
MOE_ATTR HWY_INLINE VI MxLookup(VI table, VI v) {
  const hn::Repartition<uint8_t, DI> du8;
  return hn::BitCast(DI(), hn::TableLookupBytes(hn::BitCast(du8, table), hn::BitCast(du8, v)));
}
#endif

template <int T>
MOE_ATTR void TileMX(const uint8_t* G, int64_t nb, size_t lane_off, const uint8_t* const* xs, VF* out,
                     const uint8_t* pf_end) {
  constexpr int64_t kUnitBlocks = 4, kScale = kPackRows, kQuants = 4 * 64;
  constexpr int64_t kUnit = kUnitBlocks * (kScale + kQuants);  // 4 exponent rows, then 4 quant runs
  const VI table = MxTable();
  VF acc[T];
  for (int t = 0; t < T; ++t) acc[t] = hn::Zero(DF());
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t u = b / kUnitBlocks, in_unit = std::min(kUnitBlocks, nb - u * kUnitBlocks), j = b % kUnitBlocks;
    const uint8_t* U = G + u * kUnit;
    if (j == 0)
      for (int64_t off = 0; off < kUnit; off += 64) PrefetchLine(U + kPrefetchBytes + off, pf_end);
    const VF wd = E8M0Half(U + j * kScale + lane_off / 4);
    const uint8_t* wq = U + in_unit * kScale + j * kQuants + lane_off;
    VI w[8];
    for (int c = 0; c < 4; ++c) {
      const VI v = LoadChunk(wq + c * 64);
      w[c] = MxLookup(table, Nib(v));
      w[c + 4] = MxLookup(table, NibHi(v));
    }
    for (int t = 0; t < T; ++t) {
      const uint8_t* a = xs[t];
      const float da = LoadF32(a + 4 * b);
      const uint8_t* aq = a + 8 * nb + 32 * b;
      VI s = hn::Set(DI(), LoadI32(a + 4 * (nb + b)) / 32 * 3);  // exact: the bias is a multiple of 128
      for (int c = 0; c < 4; ++c) {
        s = DotQuadBcast<true>(s, w[c], aq + 4 * c);
        s = DotQuadBcast<true>(s, w[c + 4], aq + 16 + 4 * c);
      }
      acc[t] = hn::MulAdd(hn::ConvertTo(DF(), s), hn::Mul(wd, hn::Set(DF(), da)), acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) out[t] = acc[t];
}

// ---- Q4_K: super-blocks of 256 = 8 sub-blocks of 32 with 6-bit scales and mins; Q8_K activations. ----

// Scale (kMin = false) or min (true) of sub-block j for every lane, from the three packed scale dwords.
template <int j, bool kMin>
MOE_ATTR HWY_INLINE VI K4Scale(VI d0, VI d1, VI d2) {
  const VI m6 = hn::Set(DI(), 63), m4 = hn::Set(DI(), 0xF), m2 = hn::Set(DI(), 3);
  if constexpr (j < 4) {
    return hn::And(hn::ShiftRight<8 * j>(kMin ? d1 : d0), m6);
  } else {
    const VI lo = hn::And(hn::ShiftRight<8 * (j - 4) + (kMin ? 4 : 0)>(d2), m4);
    const VI hi = hn::And(hn::ShiftRight<8 * (j - 4) + 6>(kMin ? d1 : d0), m2);
    return hn::Or(lo, hn::ShiftLeft<4>(hi));
  }
}

template <int g, int T>
MOE_ATTR HWY_INLINE void K4Pair(const uint8_t* wq, const uint8_t* const* aq, VI d0, VI d2, VI* isum) {
  VI sa[T], sb[T];
  for (int t = 0; t < T; ++t) sa[t] = sb[t] = hn::Zero(DI());
  for (int c = 0; c < 8; ++c) {
    const VI v = LoadChunk(wq + (8 * g + c) * 64);
    const VI lo = Nib(v), hi = NibHi(v);
    for (int t = 0; t < T; ++t) {
      sa[t] = DotQuadBcast<true>(sa[t], lo, aq[t] + 64 * g + 4 * c);
      sb[t] = DotQuadBcast<true>(sb[t], hi, aq[t] + 64 * g + 32 + 4 * c);
    }
  }
  const VI sca = K4Scale<2 * g, false>(d0, d0, d2), scb = K4Scale<2 * g + 1, false>(d0, d0, d2);
  for (int t = 0; t < T; ++t) isum[t] = hn::Add(isum[t], hn::Add(hn::Mul(sa[t], sca), hn::Mul(sb[t], scb)));
}

template <int j>
MOE_ATTR HWY_INLINE VI K4MinTerm(VI d0, VI d1, VI d2, const int16_t* bs) {
  return hn::Mul(K4Scale<j, true>(d0, d1, d2), hn::Set(DI(), int32_t{bs[2 * j]} + bs[2 * j + 1]));
}

template <int T>
MOE_ATTR void TileQ4K(const uint8_t* G, int64_t nb, size_t lane_off, const uint8_t* const* xs, VF* out,
                       const uint8_t* pf_end) {
  VF acc[T];
  for (int t = 0; t < T; ++t) acc[t] = hn::Zero(DF());
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* B = G + b * 144 * kPackRows;
    PrefetchAhead(B, 144 * kPackRows, pf_end);
    const VI d0 = LoadChunk(B + 64 + lane_off), d1 = LoadChunk(B + 128 + lane_off), d2 = LoadChunk(B + 192 + lane_off);
    const uint8_t* aq[T];
    VI isum[T];
    for (int t = 0; t < T; ++t) {
      aq[t] = xs[t] + b * sizeof(BlockQ8_K) + 4;
      isum[t] = hn::Zero(DI());
    }
    const uint8_t* wq = B + 256 + lane_off;
    K4Pair<0, T>(wq, aq, d0, d2, isum);
    K4Pair<1, T>(wq, aq, d0, d2, isum);
    K4Pair<2, T>(wq, aq, d0, d2, isum);
    K4Pair<3, T>(wq, aq, d0, d2, isum);
    const VF wd = LoadHalf(B + lane_off / 2), wm = LoadHalf(B + 2 * kPackRows + lane_off / 2);
    for (int t = 0; t < T; ++t) {
      const uint8_t* a = xs[t] + b * sizeof(BlockQ8_K);
      const int16_t* bs = Bsums(a);
      VI msum = hn::Add(hn::Add(K4MinTerm<0>(d0, d1, d2, bs), K4MinTerm<1>(d0, d1, d2, bs)),
                        hn::Add(K4MinTerm<2>(d0, d1, d2, bs), K4MinTerm<3>(d0, d1, d2, bs)));
      msum = hn::Add(msum, hn::Add(hn::Add(K4MinTerm<4>(d0, d1, d2, bs), K4MinTerm<5>(d0, d1, d2, bs)),
                                   hn::Add(K4MinTerm<6>(d0, d1, d2, bs), K4MinTerm<7>(d0, d1, d2, bs))));
      const VF da = hn::Set(DF(), LoadF32(a));
      acc[t] = hn::MulAdd(hn::ConvertTo(DF(), isum[t]), hn::Mul(wd, da), acc[t]);
      acc[t] = hn::NegMulAdd(hn::ConvertTo(DF(), msum), hn::Mul(wm, da), acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) out[t] = acc[t];
}

// ---- Q6_K: super-blocks of 256 = 16 sub-blocks of 16 with int8 scales; 6-bit quants stored as 4 + 2 bits. ----

// Signed scale byte j (0..3) of every lane's dword.
template <int j>
MOE_ATTR HWY_INLINE VI ByteS(VI v) {
  return hn::ShiftRight<24>(hn::ShiftLeft<24 - 8 * j>(v));
}

// Half h (128 elements), chunk half `hf` (chunks 4hf..4hf+3): the four sub-blocks 8h + 2q + hf, q = 0..3.
template <int h, int hf, int T>
MOE_ATTR HWY_INLINE void Q6Quarter(const uint8_t* B, size_t lane_off, const uint8_t* const* aq,
                                   const int16_t* const* bs, const VI* sc, VI* isum) {
  VI s[T][4];
  for (int t = 0; t < T; ++t)
    for (int q = 0; q < 4; ++q) s[t][q] = hn::Set(DI(), -32 * int32_t{bs[t][8 * h + 2 * q + hf]});
  const VI m4 = hn::Set(DI(), 0x0F0F0F0F), m2 = hn::Set(DI(), 0x03030303), m30 = hn::Set(DI(), 0x30303030);
  for (int c = 4 * hf; c < 4 * hf + 4; ++c) {
    const VI A = LoadChunk(B + (16 * h + c) * 64 + lane_off);
    const VI Bv = LoadChunk(B + (16 * h + 8 + c) * 64 + lane_off);
    const VI H = LoadChunk(B + 2048 + (8 * h + c) * 64 + lane_off);
    const VI q0 = hn::Or(hn::And(A, m4), hn::ShiftLeft<4>(hn::And(H, m2)));
    const VI q1 = hn::Or(hn::And(Bv, m4), hn::And(hn::ShiftLeft<2>(H), m30));
    const VI q2 = hn::Or(hn::And(hn::ShiftRight<4>(A), m4), hn::And(H, m30));
    const VI q3 = hn::Or(hn::And(hn::ShiftRight<4>(Bv), m4), hn::And(hn::ShiftRight<2>(H), m30));
    for (int t = 0; t < T; ++t) {
      const uint8_t* a = aq[t] + 128 * h + 4 * c;
      s[t][0] = DotQuadBcast<true>(s[t][0], q0, a);
      s[t][1] = DotQuadBcast<true>(s[t][1], q1, a + 32);
      s[t][2] = DotQuadBcast<true>(s[t][2], q2, a + 64);
      s[t][3] = DotQuadBcast<true>(s[t][3], q3, a + 96);
    }
  }
  for (int t = 0; t < T; ++t)
    for (int q = 0; q < 4; ++q) isum[t] = hn::Add(isum[t], hn::Mul(s[t][q], sc[2 * q + hf]));
}

template <int T>
MOE_ATTR void TileQ6K(const uint8_t* G, int64_t nb, size_t lane_off, const uint8_t* const* xs, VF* out,
                       const uint8_t* pf_end) {
  VF acc[T];
  for (int t = 0; t < T; ++t) acc[t] = hn::Zero(DF());
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* B = G + b * 210 * kPackRows;
    PrefetchAhead(B, 210 * kPackRows, pf_end);
    const uint8_t* aq[T];
    const int16_t* bs[T];
    VI isum[T];
    for (int t = 0; t < T; ++t) {
      const uint8_t* a = xs[t] + b * sizeof(BlockQ8_K);
      aq[t] = a + 4;
      bs[t] = Bsums(a);
      isum[t] = hn::Zero(DI());
    }
    for (int h = 0; h < 2; ++h) {
      // Scales of sub-blocks 8h .. 8h+7 (dwords 2h and 2h+1 of the 16 scale bytes).
      const VI s0 = LoadChunk(B + 3072 + (2 * h) * 64 + lane_off), s1 = LoadChunk(B + 3072 + (2 * h + 1) * 64 + lane_off);
      const VI sc[8] = {ByteS<0>(s0), ByteS<1>(s0), ByteS<2>(s0), ByteS<3>(s0),
                        ByteS<0>(s1), ByteS<1>(s1), ByteS<2>(s1), ByteS<3>(s1)};
      if (h == 0) {
        Q6Quarter<0, 0, T>(B, lane_off, aq, bs, sc, isum);
        Q6Quarter<0, 1, T>(B, lane_off, aq, bs, sc, isum);
      } else {
        Q6Quarter<1, 0, T>(B, lane_off, aq, bs, sc, isum);
        Q6Quarter<1, 1, T>(B, lane_off, aq, bs, sc, isum);
      }
    }
    const VF wd = LoadHalf(B + 3328 + lane_off / 2);
    for (int t = 0; t < T; ++t) {
      const VF da = hn::Set(DF(), LoadF32(xs[t] + b * sizeof(BlockQ8_K)));
      acc[t] = hn::MulAdd(hn::ConvertTo(DF(), isum[t]), hn::Mul(wd, da), acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) out[t] = acc[t];
}

// ---- driver: groups of 16 rows, lane slices of the group, token tiles ----

// Tokens per tile: as many as the accumulators of a format allow without spilling (32 vector registers on
// AVX-512, 16 elsewhere).
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr int kRegScale = 2;
#else
constexpr int kRegScale = 1;
#endif
constexpr int kMaxTokens = 4 * kRegScale;

int MaxTokens(DType wt) {
  switch (wt) {
    case DType::Q8_0: case DType::Q4_0: case DType::MXFP4: return 4 * kRegScale;
    case DType::Q4_K: return 2 * kRegScale;
    default: return kRegScale;
  }
}

template <int T>
MOE_ATTR void RunTile(DType wt, const uint8_t* G, int64_t nb, size_t lane_off, const uint8_t* const* xs, VF* out,
                       const uint8_t* pf_end) {
  switch (wt) {
    case DType::Q8_0: return TileQ32<T, false>(G, nb, lane_off, xs, out, pf_end);
    case DType::Q4_0: return TileQ32<T, true>(G, nb, lane_off, xs, out, pf_end);
    case DType::MXFP4: return TileMX<T>(G, nb, lane_off, xs, out, pf_end);
    case DType::Q4_K:
      if constexpr (T <= 2 * kRegScale) return TileQ4K<T>(G, nb, lane_off, xs, out, pf_end);
      break;
    case DType::Q6_K:
      if constexpr (T <= kRegScale) return TileQ6K<T>(G, nb, lane_off, xs, out, pf_end);
      break;
    default: break;
  }
}

MOE_ATTR void GemmPacked(DType wt, const uint8_t* w, int64_t r0, int64_t r1, int64_t k, const uint8_t* x,
                         size_t x_stride, int64_t n, float* y, int64_t ldy) {
  const int64_t nb = k / dtype_info(wt).block_size;
  const size_t gb = packed_group_bytes(wt, k);
  const int N = static_cast<int>(hn::Lanes(DF()));
  const int tmax = MaxTokens(wt);
  const uint8_t* pf_end = w + static_cast<size_t>((r1 + kPackRows - 1) / kPackRows) * gb;
  // The in-loop prefetches run kPrefetchBytes ahead; start the stream by fetching that much now.
  const uint8_t* begin = w + static_cast<size_t>(r0 / kPackRows) * gb;
  for (size_t off = 0; off < kPrefetchBytes; off += 64) PrefetchLine(begin + off, pf_end);
  float tmp[kPackRows];
  for (int64_t g = r0 / kPackRows; g * kPackRows < r1; ++g) {
    const uint8_t* G = w + static_cast<size_t>(g) * gb;
    for (int64_t t0 = 0; t0 < n; t0 += tmax) {
      const int T = static_cast<int>(std::min<int64_t>(tmax, n - t0));
      const uint8_t* xs[kMaxTokens];
      for (int t = 0; t < T; ++t) xs[t] = x + static_cast<size_t>(t0 + t) * x_stride;
      for (int s = 0; s * N < kPackRows; ++s) {
        const int64_t row = g * kPackRows + s * N;
        if (row >= r1) break;
        const size_t lane_off = static_cast<size_t>(s) * N * 4;  // bytes of this slice inside a 64-byte chunk
        VF out[kMaxTokens];
        switch (T) {
          case 1: RunTile<1>(wt, G, nb, lane_off, xs, out, pf_end); break;
          case 2: RunTile<2>(wt, G, nb, lane_off, xs, out, pf_end); break;
          case 3: RunTile<3>(wt, G, nb, lane_off, xs, out, pf_end); break;
          case 4: RunTile<4>(wt, G, nb, lane_off, xs, out, pf_end); break;
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
          case 5: RunTile<5>(wt, G, nb, lane_off, xs, out, pf_end); break;
          case 6: RunTile<6>(wt, G, nb, lane_off, xs, out, pf_end); break;
          case 7: RunTile<7>(wt, G, nb, lane_off, xs, out, pf_end); break;
          case 8: RunTile<8>(wt, G, nb, lane_off, xs, out, pf_end); break;
#endif
          default: break;
        }
        const int valid = static_cast<int>(std::min<int64_t>(N, r1 - row));
        for (int t = 0; t < T; ++t) {
          float* dst = y + (t0 + t) * ldy + row;
          if (valid == N) {
            hn::StoreU(out[t], DF(), dst);
          } else {
            hn::StoreU(out[t], DF(), tmp);
            for (int i = 0; i < valid; ++i) dst[i] = tmp[i];
          }
        }
      }
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace moe
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace moe {
HWY_EXPORT(GemmPacked);

void simd_gemm_packed(DType wt, const uint8_t* w, int64_t r0, int64_t r1, int64_t k, const uint8_t* x, size_t x_stride,
                      int64_t n, float* y, int64_t ldy) {
  HWY_DYNAMIC_DISPATCH(GemmPacked)(wt, w, r0, r1, k, x, x_stride, n, y, ldy);
}
}  // namespace moe
#endif
