#include "kernels/packed.h"

#include <cstring>
#include <string>

#include "core/error.h"
#include "core/quant.h"

namespace moe {
namespace {

// A run of bytes of a block and where it goes inside a packed group. Fields of 2 bytes (fp16 scales) are
// stored row after row; longer runs are split in 4-byte chunks, chunk c of row r at c * 64 + r * 4.
// Blocks are placed one after the other (kLinear: base + b * stride), or, for the 32-wide formats, in pairs
// of blocks [scales b, scales b+1 | quants b | quants b+1] so that one stream stays 64-byte aligned
// (kPairScale / kPairQuants; stride = bytes of one block's quants).
enum class Place { kLinear, kPairScale, kPairQuants };

struct Segment {
  int src;       // offset in the block
  int len;       // bytes
  bool field2;   // a 2-byte field (else 4-byte interleaved chunks)
  uint8_t flip;  // xor applied to every byte (Q8_0 quants become unsigned)
  int64_t base;  // group offset of block 0's copy
  int64_t stride;
  Place place = Place::kLinear;

  int64_t offset(int64_t b, int64_t nb) const {
    if (place == Place::kLinear) return base + b * stride;
    const int64_t scale_bytes = 2 * kPackRows, unit = 2 * (scale_bytes + stride), u = b / 2;
    if (place == Place::kPairScale) return u * unit + (b % 2) * scale_bytes;
    const int64_t in_unit = 2 * u + 1 < nb ? 2 : 1;
    return u * unit + in_unit * scale_bytes + (b % 2) * stride;
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
      return {2, {{0, 2, true, 0, 0, 32 * P, Place::kPairScale}, {2, 32, false, 0x80, 0, 32 * P, Place::kPairQuants}}};
    case DType::Q4_0:
      return {2, {{0, 2, true, 0, 0, 16 * P, Place::kPairScale}, {2, 16, false, 0, 0, 16 * P, Place::kPairQuants}}};
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

bool packable(DType t) { return t == DType::Q8_0 || t == DType::Q4_0 || t == DType::Q4_K || t == DType::Q6_K; }

size_t packed_group_bytes(DType t, int64_t k) { return kPackRows * row_bytes(t, k); }

size_t packed_bytes(DType t, int64_t rows, int64_t k) {
  return static_cast<size_t>((rows + kPackRows - 1) / kPackRows) * packed_group_bytes(t, k);
}

void pack_groups(DType t, const uint8_t* w, size_t w_stride, int64_t rows, int64_t k, int64_t g0, int64_t g1,
                 uint8_t* out) {
  const int64_t nb = blocks_per_row(t, k);
  const Layout L = layout_of(t, nb);
  const size_t bb = dtype_info(t).block_bytes, gb = packed_group_bytes(t, k);
  for (int64_t g = g0; g < g1; ++g) {
    uint8_t* G = out + static_cast<size_t>(g) * gb;
    for (int r = 0; r < kPackRows; ++r) {
      const int64_t row = g * kPackRows + r;
      const uint8_t* src = row < rows ? w + static_cast<size_t>(row) * w_stride : nullptr;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = src ? src + static_cast<size_t>(b) * bb : nullptr;
        for (int s = 0; s < L.n; ++s) {
          const Segment& S = L.seg[s];
          uint8_t* dst = G + S.offset(b, nb);
          if (S.field2) {
            dst[2 * r] = blk ? blk[S.src] : 0;
            dst[2 * r + 1] = blk ? blk[S.src + 1] : 0;
            continue;
          }
          const uint32_t flip = S.flip * 0x01010101u;
          for (int c = 0; c < S.len / 4; ++c) {
            uint32_t v = 0;
            if (blk) std::memcpy(&v, blk + S.src + 4 * c, 4);
            v ^= flip;
            std::memcpy(dst + c * 64 + r * 4, &v, 4);
          }
        }
      }
    }
  }
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
      if (S.field2) {
        blk[S.src] = src[2 * r];
        blk[S.src + 1] = src[2 * r + 1];
        continue;
      }
      for (int c = 0; c < S.len / 4; ++c)
        for (int i = 0; i < 4; ++i) blk[S.src + 4 * c + i] = static_cast<uint8_t>(src[c * 64 + r * 4 + i] ^ S.flip);
    }
  }
}

size_t packed_act_bytes(DType wt, int64_t k) {
  if (wt == DType::Q8_0 || wt == DType::Q4_0) return static_cast<size_t>(k / kQK) * 8 + static_cast<size_t>(k);
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
