// Row-interleaved ("packed") weight layouts for the GEMV/GEMM micro-kernels, and the activation rows they
// multiply. A packed matrix is a sequence of groups of kPackRows rows (the last group zero-padded); inside a
// group every block keeps its bytes but the rows are interleaved 4 bytes at a time, so one 64-byte load holds
// the same 4 quants of all 16 rows and one int8 dot instruction advances 16 row sums at once.
// The layouts are a contract shared by the reference and SIMD kernels; packing is an exact transform
// (unpack_row() gives back the original blocks), so packed products equal unpacked ones.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace moe {

constexpr int kPackRows = 16;

// Per group and block (block = 32 elements for Q8_0/Q4_0/MXFP4, a 256-element super-block for Q4_K/Q6_K),
// byte offsets inside the group, with nb blocks per row:
//   Q8_0: pairs of blocks [d[2][16] fp16 | qs[2][8 chunks][16 rows][4]]  (qs stored as w + 128, i.e. unsigned;
//         with an odd nb the last unit holds one block: [d[16] | qs[8][16][4]])
//   Q4_0: as Q8_0 with qs[4 chunks][16 rows][4] per block (nibbles as in the file)
//   MXFP4: units of 4 blocks [e[4][16] | qs[4][4 chunks][16 rows][4]] (E8M0 bytes and nibbles as in the file;
//         the last unit holds nb % 4 blocks if that is not 0)
//   Q4_K: per block: d[16] fp16, dmin[16] fp16 | scales[3 dwords][16 rows][4] | qs[32 chunks][16 rows][4]
//   Q6_K: per block: ql[32 chunks][16][4] | qh[16 chunks][16][4] | scales[4 dwords][16][4] | d[16] fp16
bool packable(DType t);
size_t packed_group_bytes(DType t, int64_t k);  // = kPackRows * row_bytes(t, k)
size_t packed_bytes(DType t, int64_t rows, int64_t k);

// Packs rows [0, rows) of a matrix (row r at w + r * w_stride); out must hold packed_bytes().
void pack_rows(DType t, const uint8_t* w, size_t w_stride, int64_t rows, int64_t k, uint8_t* out);
// Packs only groups [g0, g1) (for parallel packing); the padding rows of the last group are zeroed.
// Uses AVX-512 for Q8_0, Q4_0 and MXFP4 where the CPU has them (packing is on the path to a first token);
// pack_groups_reference is the plain version, byte for byte the same.
void pack_groups(DType t, const uint8_t* w, size_t w_stride, int64_t rows, int64_t k, int64_t g0, int64_t g1,
                 uint8_t* out);
void pack_groups_reference(DType t, const uint8_t* w, size_t w_stride, int64_t rows, int64_t k, int64_t g0,
                           int64_t g1, uint8_t* out);
// Row r of a packed matrix in its original block format (row_bytes(t, k) bytes).
void unpack_row(DType t, const uint8_t* packed, int64_t r, int64_t k, uint8_t* row);

// Activation rows for packed weights of type wt ("packed activations"):
//   Q8_0, Q4_0, MXFP4: d[nb] float | bias[nb] int32 = -128 * (sum of the block's quants) | qs[nb * 32] int8
//   (the bias cancels the +128 of packed Q8_0 weights; Q4_0 kernels use bias / 16 = -8 * sum, MXFP4 kernels
//   bias * 3 / 32 = -12 * sum)
//   Q4_K, Q6_K: Q8_K blocks, unchanged.
// They hold exactly the numbers of the vec_dot_type(wt) row (same quantizer), only laid out for the kernel.
size_t packed_act_bytes(DType wt, int64_t k);
// Converts one vec_dot_type(wt) row to / from the packed activation layout (exact both ways).
void packed_act_from_dot(DType wt, const uint8_t* dot_row, int64_t k, uint8_t* out);
void packed_act_to_dot(DType wt, const uint8_t* act, int64_t k, uint8_t* dot_row);

}  // namespace moe
