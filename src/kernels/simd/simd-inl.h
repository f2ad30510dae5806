// Per-target helpers shared by the SIMD kernel files (included once per Highway target, hence no include
// guard of the usual kind). The one op Highway 1.0.3 lacks is the int8 "quad" dot product; it is written
// here with VNNI on AVX3_DL, pmaddubsw on the other x86 targets, and plain 32-bit integer ops elsewhere.
#if defined(MOE_SIMD_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef MOE_SIMD_INL_H_
#undef MOE_SIMD_INL_H_
#else
#define MOE_SIMD_INL_H_
#endif

#include <hwy/highway.h>

#include <cstdint>
#include <cstring>

HWY_BEFORE_NAMESPACE();
namespace moe {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Highway 1.0.3's AVX3_DL target string names avxvnni but not avx512vnni; functions that reach the 512-bit
// VNNI instruction carry MOE_ATTR. Every function of these files does, so they inline into each other.
#undef MOE_ATTR
#if HWY_TARGET == HWY_AVX3_DL
#define MOE_ATTR __attribute__((target(HWY_TARGET_STR ",avx512vnni")))
#else
#define MOE_ATTR
#endif

using DI = hn::ScalableTag<int32_t>;
using DF = hn::ScalableTag<float>;
using VI = hn::Vec<DI>;
using VF = hn::Vec<DF>;

MOE_ATTR HWY_INLINE int32_t LoadI32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// 4 signed bytes at p, broadcast to every 32-bit lane.
MOE_ATTR HWY_INLINE VI Bcast4(const void* p) { return hn::Set(DI(), LoadI32(p)); }

// pmaddubsw + pmaddwd; without kSmall, u is split into its low 7 bits and its top bit so that neither int16
// pair sum can saturate.
#ifndef MOE_DOTQUAD_X86
#define MOE_DOTQUAD_X86(P, SI, acc, u, s)                                                                  \
  (kSmall ? P##_add_epi32(acc, P##_madd_epi16(P##_maddubs_epi16(u, s), P##_set1_epi16(1)))                  \
          : P##_add_epi32(                                                                                 \
                acc, P##_add_epi32(                                                                        \
                         P##_madd_epi16(P##_maddubs_epi16(P##_and_##SI(u, P##_set1_epi8(0x7F)), s),       \
                                        P##_set1_epi16(1)),                                                \
                         P##_madd_epi16(P##_maddubs_epi16(P##_and_##SI(u, P##_set1_epi8(-128)), s),       \
                                        P##_set1_epi16(1)))))
#endif

// acc[i] += sum over the 4 bytes b of lane i: u.byte[b] (unsigned) * s.byte[b] (signed). Exact in int32.
// kSmall promises u < 128 (4-bit and 6-bit quants), which keeps pmaddubsw's int16 pair sums exact.
template <bool kSmall>
MOE_ATTR HWY_INLINE VI DotQuad(VI acc, VI u, VI s) {
#if HWY_TARGET == HWY_AVX3_DL
  return VI{_mm512_dpbusd_epi32(acc.raw, u.raw, s.raw)};
#elif HWY_TARGET == HWY_AVX3
  return VI{MOE_DOTQUAD_X86(_mm512, si512, acc.raw, u.raw, s.raw)};
#elif HWY_TARGET == HWY_AVX2
  return VI{MOE_DOTQUAD_X86(_mm256, si256, acc.raw, u.raw, s.raw)};
#elif HWY_TARGET == HWY_SSE4 || HWY_TARGET == HWY_SSSE3
  return VI{MOE_DOTQUAD_X86(_mm, si128, acc.raw, u.raw, s.raw)};
#else
  // Portable: unpack the bytes with shifts (arithmetic right shifts sign-extend the activations).
  const VI m = hn::Set(DI(), 0xFF);
  VI r = hn::Mul(hn::And(u, m), hn::ShiftRight<24>(hn::ShiftLeft<24>(s)));
  r = hn::Add(r, hn::Mul(hn::And(hn::ShiftRight<8>(u), m), hn::ShiftRight<24>(hn::ShiftLeft<16>(s))));
  r = hn::Add(r, hn::Mul(hn::And(hn::ShiftRight<16>(u), m), hn::ShiftRight<24>(hn::ShiftLeft<8>(s))));
  r = hn::Add(r, hn::Mul(hn::And(hn::ShiftRight<24>(u), m), hn::ShiftRight<24>(s)));
  return hn::Add(acc, r);
#endif
}

// DotQuad with the 4 signed bytes at p broadcast to every lane. On AVX3_DL the broadcast is the instruction's
// memory operand ({1to16}); compilers do not fold it from the intrinsic, and the extra vpbroadcastd per
// dpbusd otherwise doubles the instruction count of the GEMM inner loops.
template <bool kSmall>
MOE_ATTR HWY_INLINE VI DotQuadBcast(VI acc, VI u, const void* p) {
#if HWY_TARGET == HWY_AVX3_DL
  asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc.raw) : "v"(u.raw), "m"(*static_cast<const int32_t*>(p)));
  return acc;
#else
  return DotQuad<kSmall>(acc, u, Bcast4(p));
#endif
}

}  // namespace HWY_NAMESPACE
}  // namespace moe
HWY_AFTER_NAMESPACE();

#endif  // MOE_SIMD_INL_H_
