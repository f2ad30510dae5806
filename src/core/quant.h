// Reference (scalar, portable) block formats of GGUF weight types: dequantization, quantization and the
// dot products llama.cpp's CPU backend computes, bit-exact in layout and matching it in arithmetic.
// SIMD versions live in kernels/simd and are tested against these; core/quant_ref.h has the per-format kernels.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace moe {

// IEEE half and bfloat16 <-> float, round to nearest even (as F16C / ggml do).
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);

constexpr int kQK = 32;    // elements per block of the 32-wide formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0)
constexpr int kQKK = 256;  // elements per super-block of the K formats

#pragma pack(push, 1)
struct BlockQ4_0 { uint16_t d; uint8_t qs[kQK / 2]; };
struct BlockQ4_1 { uint16_t d, m; uint8_t qs[kQK / 2]; };
struct BlockQ5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[kQK / 2]; };
struct BlockQ5_1 { uint16_t d, m; uint8_t qh[4]; uint8_t qs[kQK / 2]; };
struct BlockQ8_0 { uint16_t d; int8_t qs[kQK]; };
struct BlockQ8_1 { uint16_t d, s; int8_t qs[kQK]; };  // s = d * sum(qs), the activation side of Q4_1/Q5_1 dots
struct BlockQ2_K { uint8_t scales[kQKK / 16]; uint8_t qs[kQKK / 4]; uint16_t d, dmin; };
struct BlockQ3_K { uint8_t hmask[kQKK / 8]; uint8_t qs[kQKK / 4]; uint8_t scales[12]; uint16_t d; };
struct BlockQ4_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[kQKK / 2]; };
struct BlockQ5_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[kQKK / 8]; uint8_t qs[kQKK / 2]; };
struct BlockQ6_K { uint8_t ql[kQKK / 2]; uint8_t qh[kQKK / 4]; int8_t scales[kQKK / 16]; uint16_t d; };
struct BlockQ8_K { float d; int8_t qs[kQKK]; int16_t bsums[kQKK / 16]; };
// MXFP4: E8M0 shared exponent, then 32 E2M1 codes (element j low nibble of qs[j], element j+16 high nibble).
struct BlockMXFP4 { uint8_t e; uint8_t qs[kQK / 2]; };
#pragma pack(pop)

// Decode n elements (a multiple of the type's block size) of a row.
void dequantize_row(DType t, const void* src, float* dst, int64_t n);

// Encode n floats into type t (reference quantizer, as ggml's *_ref functions; used for writing files and
// for quantizing activations). For Q8_0, Q8_1 and Q8_K it reproduces llama.cpp's x86 CPU backend
// (ggml-cpu/arch/x86/quants.c) so that activation quantization, and therefore logits, match it.
void quantize_row(DType t, const float* src, void* dst, int64_t n);

// As quantize_row, but bit-identical to ggml's quantize_row_*_ref, which is what llama-quantize writes when it
// has no importance matrix. Differs from quantize_row only for Q8_0 and Q8_1: the scalar reference multiplies by
// 1/d and rounds half away from zero, the x86 activation path multiplies by 127/amax and rounds half to even.
void quantize_row_ggml_ref(DType t, const float* src, void* dst, int64_t n);

// The format activations are converted to before a dot product with weights of type `weight`
// (Q8_0 for Q4_0/Q5_0/Q8_0/MXFP4, Q8_1 for Q4_1/Q5_1/Q8_1 as in ggml, Q8_K for K formats, F16 for F16, BF16 for BF16,
// F32 for F32).
DType vec_dot_type(DType weight);

// Dot product of n elements: a weight row of type `weight` with an activation row already in
// vec_dot_type(weight). Integer arithmetic inside blocks, float across blocks, in the order of ggml's scalar
// ggml_vec_dot_*_generic (same float result). F32/F16/BF16 multiply in float and sum in double, like ggml's
// scalar ggml_vec_dot_f32/f16/bf16. SIMD kernels reassociate the float sums and differ in the last bits.
float vec_dot(DType weight, int64_t n, const void* w_row, const void* act_row);

}  // namespace moe
