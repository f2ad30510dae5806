#include "kernels/packed.h"

#include <algorithm>
#include <cstring>
#include <string>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "core/error.h"
#include "core/quant.h"

namespace moe {
namespace {

// A run of bytes of a block and where it goes inside a packed group. Scale fields of 1 or 2 bytes (E8M0, fp16)
// are stored row after row; longer runs are split in 4-byte chunks, chunk c of row r at c * 64 + r * 4.
// Blocks are placed one after the other (kLinear: base + b * stride), or, for the 32-wide formats, in units
// of `unit` blocks [scales of each block | quants of each block] so that the quant stream stays 64-byte
// aligned (kUnitScale / kUnitQuants; stride = bytes of one block's quants; the last unit may hold fewer).
enum class Place { kLinear, kUnitScale, kUnitQuants };

struct Segment {
  int src;       // offset in the block
  int len;       // bytes
  bool field;    // a 1- or 2-byte scale field, stored row after row (else 4-byte interleaved chunks)
  uint8_t flip;  // xor applied to every byte (Q8_0 quants become unsigned)
  int64_t base;  // group offset of block 0's copy
  int64_t stride;
  Place place = Place::kLinear;
  int64_t unit = 1;        // blocks per unit (kUnit*)
  int64_t unit_scale = 0;  // bytes of one block's scale field in a group (kUnit*): kPackRows * its width

  int64_t offset(int64_t b, int64_t nb) const {
    if (place == Place::kLinear) return base + b * stride;
    const int64_t scale_bytes = unit_scale, u = b / unit, unit_bytes = unit * (scale_bytes + stride);
    if (place == Place::kUnitScale) return u * unit_bytes + (b % unit) * scale_bytes;
    const int64_t in_unit = std::min<int64_t>(unit, nb - u * unit);
    return u * unit_bytes + in_unit * scale_bytes + (b % unit) * stride;
  }
};

struct Layout {
  int n = 0;
  Segment seg[4];
};

Layout layout_of(DType t, int64_t nb) {
  constexpr int P = kPackRows;
  (void)nb;
  switch (t) {
    case DType::Q8_0:
      return {2, {{0, 2, true, 0, 0, 32 * P, Place::kUnitScale, 2, 2 * P},
                  {2, 32, false, 0x80, 0, 32 * P, Place::kUnitQuants, 2, 2 * P}}};
    case DType::Q4_0:
      return {2, {{0, 2, true, 0, 0, 16 * P, Place::kUnitScale, 2, 2 * P},
                  {2, 16, false, 0, 0, 16 * P, Place::kUnitQuants, 2, 2 * P}}};
    case DType::MXFP4:  // units of 4 blocks: the 4 x 16 exponent bytes fill one 64-byte line
      return {2, {{0, 1, true, 0, 0, 16 * P, Place::kUnitScale, 4, P},
                  {1, 16, false, 0, 0, 16 * P, Place::kUnitQuants, 4, P}}};
    case DType::Q4_K: {
      const int64_t s = 144 * P;
      return {4, {{0, 2, true, 0, 0, s}, {2, 2, true, 0, 2 * P, s}, {4, 12, false, 0, 4 * P, s},
                  {16, 128, false, 0, 16 * P, s}}};
    }
    case DType::Q6_K: {
      const int64_t s = 210 * P;
      return {4, {{0, 128, false, 0, 0, s}, {128, 64, false, 0, 128 * P, s}, {192, 16, false, 0, 192 * P, s},
                  {208, 2, true, 0, 208 * P, s}}};
    }
    default: throw Error(std::string("pack: type ") + dtype_name(t) + " has no packed layout");
  }
}

int64_t blocks_per_row(DType t, int64_t k) {
  const DTypeInfo& i = dtype_info(t);
  if (k <= 0 || k % i.block_size != 0)
    throw Error("pack: row length " + std::to_string(k) + " is not a multiple of the " + i.name + " block size");
  return k / i.block_size;
}

}  // namespace

bool packable(DType t) {
  return t == DType::Q8_0 || t == DType::Q4_0 || t == DType::MXFP4 || t == DType::Q4_K || t == DType::Q6_K;
}

size_t packed_group_bytes(DType t, int64_t k) { return kPackRows * row_bytes(t, k); }

size_t packed_bytes(DType t, int64_t rows, int64_t k) {
  return static_cast<size_t>((rows + kPackRows - 1) / kPackRows) * packed_group_bytes(t, k);
}

void pack_groups_reference(DType t, const uint8_t* w, size_t w_stride, int64_t rows, int64_t k, int64_t g0, int64_t g1,
                 uint8_t* out) {
  const int64_t nb = blocks_per_row(t, k);
  const Layout L = layout_of(t, nb);
  const size_t bb = dtype_info(t).block_bytes, gb = packed_group_bytes(t, k);
  static constexpr uint8_t kZeroBlock[512] = {};  // padding rows read zeros (every packable block is smaller)
  for (int64_t g = g0; g < g1; ++g) {
    uint8_t* G = out + static_cast<size_t>(g) * gb;
    const uint8_t* row[kPackRows];
    bool pad[kPackRows];
    for (int r = 0; r < kPackRows; ++r) {
      const int64_t i = g * kPackRows + r;
      pad[r] = i >= rows;
      row[r] = pad[r] ? kZeroBlock : w + static_cast<size_t>(i) * w_stride;
    }
    // Output order (each segment's bytes written front to back, 16 rows at a time); the 16 source rows are read
    // as 16 sequential streams. Same bytes as writing row by row, several times fewer cache-line misses.
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk[kPackRows];
      for (int r = 0; r < kPackRows; ++r) blk[r] = pad[r] ? kZeroBlock : row[r] + static_cast<size_t>(b) * bb;
      for (int s = 0; s < L.n; ++s) {
        const Segment& S = L.seg[s];
        uint8_t* dst = G + S.offset(b, nb);
        if (S.field) {  // constant-size copies (a variable-length memcpy here was a library call per row)
          if (S.len == 2)
            for (int r = 0; r < kPackRows; ++r) std::memcpy(dst + 2 * r, blk[r] + S.src, 2);
          else
            for (int r = 0; r < kPackRows; ++r) dst[r] = blk[r][S.src];
          continue;
        }
        const uint32_t flip = S.flip * 0x01010101u;
        for (int c = 0; c < S.len / 4; ++c) {
          uint32_t v[kPackRows];
          for (int r = 0; r < kPackRows; ++r) {
            std::memcpy(&v[r], blk[r] + S.src + 4 * c, 4);
            v[r] ^= flip;  // padding rows read zeros, so they hold the flipped zero (a zero weight)
          }
          std::memcpy(dst + c * 64, v, sizeof v);
        }
      }
    }
  }
}

namespace {

#if defined(__x86_64__) && defined(__GNUC__)
// 4 dwords at byte offset `off` of 16 blocks (block r of row r at blk + r * stride) transposed into 4 chunks of 64
// bytes (chunk c: dword c of rows 0..15), xor `flip`. Each 512-bit register takes rows r, r+4, r+8, r+12 in its
// four 128-bit lanes; two rounds of unpacks inside the lanes then leave every chunk in row order.
__attribute__((target("avx512f"))) inline void transpose16x4(const uint8_t* blk, size_t stride, size_t off,
                                                              __m512i flip, uint8_t* out) {
  __m512i z[4];
  for (int j = 0; j < 4; ++j) {
    auto row = [&](int r) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + r * stride + off)); };
    __m512i v = _mm512_castsi128_si512(row(j));
    v = _mm512_inserti32x4(v, row(j + 4), 1);
    v = _mm512_inserti32x4(v, row(j + 8), 2);
    z[j] = _mm512_inserti32x4(v, row(j + 12), 3);
  }
  const __m512i t0 = _mm512_unpacklo_epi32(z[0], z[1]), t1 = _mm512_unpackhi_epi32(z[0], z[1]);
  const __m512i t2 = _mm512_unpacklo_epi32(z[2], z[3]), t3 = _mm512_unpackhi_epi32(z[2], z[3]);
  _mm512_storeu_si512(out + 0, _mm512_xor_si512(_mm512_unpacklo_epi64(t0, t2), flip));
  _mm512_storeu_si512(out + 64, _mm512_xor_si512(_mm512_unpackhi_epi64(t0, t2), flip));
  _mm512_storeu_si512(out + 128, _mm512_xor_si512(_mm512_unpacklo_epi64(t1, t3), flip));
  _mm512_storeu_si512(out + 192, _mm512_xor_si512(_mm512_unpackhi_epi64(t1, t3), flip));
}

// The 32-wide formats (Q8_0, Q4_0, MXFP4) with AVX-512, full groups only. Same bytes as pack_groups_reference.
__attribute__((target("avx512f"))) void pack_unit_groups_avx512(DType t, const uint8_t* w, size_t w_stride,
                                                                  int64_t nb, int64_t g0, int64_t g1, uint8_t* out) {
  const int sl = t == DType::MXFP4 ? 1 : 2;            // scale field bytes
  const int ql = t == DType::Q8_0 ? 32 : 16;           // quant bytes per block
  const int unit = t == DType::MXFP4 ? 4 : 2;          // blocks per unit
  const __m512i flip = _mm512_set1_epi32(t == DType::Q8_0 ? static_cast<int>(0x80808080u) : 0);
  const size_t bb = dtype_info(t).block_bytes, gb = static_cast<size_t>(nb) * bb * kPackRows;
  const int64_t scale_bytes = int64_t{sl} * kPackRows, quant_bytes = int64_t{ql} * kPackRows;
  const int64_t unit_bytes = unit * (scale_bytes + quant_bytes);
  for (int64_t g = g0; g < g1; ++g) {
    const uint8_t* base = w + static_cast<size_t>(g) * kPackRows * w_stride;
    uint8_t* G = out + static_cast<size_t>(g) * gb;
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = base + static_cast<size_t>(b) * bb;
      const int64_t u = b / unit, in_unit = std::min<int64_t>(unit, nb - u * unit);
      uint8_t* U = G + u * unit_bytes;
      uint8_t* d = U + (b % unit) * scale_bytes;
      if (sl == 2)
        for (int r = 0; r < kPackRows; ++r) std::memcpy(d + 2 * r, blk + r * w_stride, 2);
      else
        for (int r = 0; r < kPackRows; ++r) d[r] = blk[r * w_stride];
      uint8_t* q = U + in_unit * scale_bytes + (b % unit) * quant_bytes;
      for (int half = 0; half < ql / 16; ++half) transpose16x4(blk, w_stride, sl + 16 * half, flip, q + 256 * half);
    }
  }
}

bool has_avx512f() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
}
#endif

}  // namespace

void pack_groups(DType t, const uint8_t* w, size_t w_stride, int64_t rows, int64_t k, int64_t g0, int64_t g1,
                 uint8_t* out) {
#if defined(__x86_64__) && defined(__GNUC__)
  const bool unit_format = t == DType::Q8_0 || t == DType::Q4_0 || t == DType::MXFP4;
  if (unit_format && g1 > g0 && has_avx512f()) {
    const int64_t nb = blocks_per_row(t, k), full = std::min(g1, rows / kPackRows);  // groups without padding rows
    if (full > g0) pack_unit_groups_avx512(t, w, w_stride, nb, g0, full, out);
    if (g1 > std::max(full, g0)) pack_groups_reference(t, w, w_stride, rows, k, std::max(full, g0), g1, out);
    return;
  }
#endif
  pack_groups_reference(t, w, w_stride, rows, k, g0, g1, out);
}

void pack_rows(DType t, const uint8_t* w, size_t w_stride, int64_t rows, int64_t k, uint8_t* out) {
  pack_groups(t, w, w_stride, rows, k, 0, (rows + kPackRows - 1) / kPackRows, out);
}

void unpack_row(DType t, const uint8_t* packed, int64_t row, int64_t k, uint8_t* out) {
  const int64_t nb = blocks_per_row(t, k);
  const Layout L = layout_of(t, nb);
  const size_t bb = dtype_info(t).block_bytes;
  const uint8_t* G = packed + static_cast<size_t>(row / kPackRows) * packed_group_bytes(t, k);
  const int r = static_cast<int>(row % kPackRows);
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* blk = out + static_cast<size_t>(b) * bb;
    for (int s = 0; s < L.n; ++s) {
      const Segment& S = L.seg[s];
      const uint8_t* src = G + S.offset(b, nb);
      if (S.field) {
        for (int i = 0; i < S.len; ++i) blk[S.src + i] = src[S.len * r + i];
        continue;
      }
      for (int c = 0; c < S.len / 4; ++c)
        for (int i = 0; i < 4; ++i) blk[S.src + 4 * c + i] = static_cast<uint8_t>(src[c * 64 + r * 4 + i] ^ S.flip);
    }
  }
}

size_t packed_act_bytes(DType wt, int64_t k) {
  if (packable(wt) && vec_dot_type(wt) == DType::Q8_0) return static_cast<size_t>(k / kQK) * 8 + static_cast<size_t>(k);
  if (wt == DType::Q4_K || wt == DType::Q6_K) return row_bytes(DType::Q8_K, k);
  throw Error(std::string("packed_act_bytes: type ") + dtype_name(wt) + " has no packed layout");
}

void packed_act_from_dot(DType wt, const uint8_t* dot_row, int64_t k, uint8_t* out) {
  if (wt == DType::Q4_K || wt == DType::Q6_K) {
    std::memcpy(out, dot_row, row_bytes(DType::Q8_K, k));
    return;
  }
  const int64_t nb = k / kQK;
  const auto* blk = reinterpret_cast<const BlockQ8_0*>(dot_row);
  for (int64_t b = 0; b < nb; ++b) {
    const float d = fp16_to_fp32(blk[b].d);
    int32_t sum = 0;
    for (int j = 0; j < kQK; ++j) sum += blk[b].qs[j];
    const int32_t bias = -128 * sum;
    std::memcpy(out + 4 * b, &d, 4);
    std::memcpy(out + 4 * (nb + b), &bias, 4);
    std::memcpy(out + 8 * nb + kQK * b, blk[b].qs, kQK);
  }
}

void packed_act_to_dot(DType wt, const uint8_t* act, int64_t k, uint8_t* dot_row) {
  if (wt == DType::Q4_K || wt == DType::Q6_K) {
    std::memcpy(dot_row, act, row_bytes(DType::Q8_K, k));
    return;
  }
  const int64_t nb = k / kQK;
  auto* blk = reinterpret_cast<BlockQ8_0*>(dot_row);
  for (int64_t b = 0; b < nb; ++b) {
    float d;
    std::memcpy(&d, act + 4 * b, 4);
    blk[b].d = fp32_to_fp16(d);
    std::memcpy(blk[b].qs, act + 8 * nb + kQK * b, kQK);
  }
}

}  // namespace moe
