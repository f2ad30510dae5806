// Dispatch from a DType to the per-format reference kernels (quant_legacy.cpp, quant_k.cpp), plus the plain
// float formats F32, F16 and BF16.
#include "core/quant.h"

#include <cstring>
#include <string>

#include "core/error.h"
#include "core/quant_ref.h"

namespace moe {

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144 &&
              sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292 &&
              sizeof(BlockMXFP4) == 17);

namespace {

int64_t block_count(DType t, int64_t n, const char* what) {
  const DTypeInfo& info = dtype_info(t);
  if (n < 0 || n % info.block_size != 0)
    throw Error(std::string(what) + ": " + std::to_string(n) + " elements is not a multiple of the " + info.name +
                " block size " + std::to_string(info.block_size));
  return n / info.block_size;
}

[[noreturn]] void unsupported(const char* what, DType t) {
  throw Error(std::string(what) + ": tensor type " + dtype_name(t) + " is not supported");
}

// Unaligned-safe element access for the 16- and 32-bit float formats (rows may start anywhere in a file).
template <class T>
T load(const void* p, int64_t i) {
  T v;
  std::memcpy(&v, static_cast<const char*>(p) + i * static_cast<int64_t>(sizeof(T)), sizeof(T));
  return v;
}
template <class T>
void store(void* p, int64_t i, T v) {
  std::memcpy(static_cast<char*>(p) + i * static_cast<int64_t>(sizeof(T)), &v, sizeof(T));
}

template <class B>
const B* as(const void* p) {
  return static_cast<const B*>(p);
}
template <class B>
B* as(void* p) {
  return static_cast<B*>(p);
}

// x86_activation selects llama.cpp's AVX rounding for Q8_0/Q8_1 instead of ggml's scalar reference.
void quantize_impl(DType t, const float* src, void* dst, int64_t n, bool x86_activation) {
  const int64_t nb = block_count(t, n, "quantize_row");
  switch (t) {
    case DType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float)); return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) store<uint16_t>(dst, i, fp32_to_fp16(src[i]));
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) store<uint16_t>(dst, i, fp32_to_bf16(src[i]));
      return;
    case DType::Q4_0: return qref::quantize_q4_0(src, as<BlockQ4_0>(dst), nb);
    case DType::Q4_1: return qref::quantize_q4_1(src, as<BlockQ4_1>(dst), nb);
    case DType::Q5_0: return qref::quantize_q5_0(src, as<BlockQ5_0>(dst), nb);
    case DType::Q5_1: return qref::quantize_q5_1(src, as<BlockQ5_1>(dst), nb);
    case DType::Q8_0:
      return x86_activation ? qref::quantize_q8_0_x86(src, as<BlockQ8_0>(dst), nb)
                            : qref::quantize_q8_0_ggml_ref(src, as<BlockQ8_0>(dst), nb);
    case DType::Q8_1:
      return x86_activation ? qref::quantize_q8_1_x86(src, as<BlockQ8_1>(dst), nb)
                            : qref::quantize_q8_1_ggml_ref(src, as<BlockQ8_1>(dst), nb);
    case DType::Q2_K: return qref::quantize_q2_K(src, as<BlockQ2_K>(dst), nb);
    case DType::Q3_K: return qref::quantize_q3_K(src, as<BlockQ3_K>(dst), nb);
    case DType::Q4_K: return qref::quantize_q4_K(src, as<BlockQ4_K>(dst), nb);
    case DType::Q5_K: return qref::quantize_q5_K(src, as<BlockQ5_K>(dst), nb);
    case DType::Q6_K: return qref::quantize_q6_K(src, as<BlockQ6_K>(dst), nb);
    case DType::Q8_K: return qref::quantize_q8_K(src, as<BlockQ8_K>(dst), nb);
    case DType::MXFP4: return qref::quantize_mxfp4(src, as<BlockMXFP4>(dst), nb);
    default: unsupported("quantize_row", t);
  }
}

// Float products summed in double, like ggml's scalar ggml_vec_dot_f32 / _f16 / _bf16.
template <class T, float (*to_f32)(T)>
float dot_float(int64_t n, const void* x, const void* y) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(to_f32(load<T>(x, i)) * to_f32(load<T>(y, i)));
  return static_cast<float>(sum);
}

float identity(float v) { return v; }

}  // namespace

void dequantize_row(DType t, const void* src, float* dst, int64_t n) {
  const int64_t nb = block_count(t, n, "dequantize_row");
  switch (t) {
    case DType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float)); return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(load<uint16_t>(src, i));
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(load<uint16_t>(src, i));
      return;
    case DType::Q4_0: return qref::dequantize_q4_0(as<BlockQ4_0>(src), dst, nb);
    case DType::Q4_1: return qref::dequantize_q4_1(as<BlockQ4_1>(src), dst, nb);
    case DType::Q5_0: return qref::dequantize_q5_0(as<BlockQ5_0>(src), dst, nb);
    case DType::Q5_1: return qref::dequantize_q5_1(as<BlockQ5_1>(src), dst, nb);
    case DType::Q8_0: return qref::dequantize_q8_0(as<BlockQ8_0>(src), dst, nb);
    case DType::Q8_1: return qref::dequantize_q8_1(as<BlockQ8_1>(src), dst, nb);
    case DType::Q2_K: return qref::dequantize_q2_K(as<BlockQ2_K>(src), dst, nb);
    case DType::Q3_K: return qref::dequantize_q3_K(as<BlockQ3_K>(src), dst, nb);
    case DType::Q4_K: return qref::dequantize_q4_K(as<BlockQ4_K>(src), dst, nb);
    case DType::Q5_K: return qref::dequantize_q5_K(as<BlockQ5_K>(src), dst, nb);
    case DType::Q6_K: return qref::dequantize_q6_K(as<BlockQ6_K>(src), dst, nb);
    case DType::Q8_K: return qref::dequantize_q8_K(as<BlockQ8_K>(src), dst, nb);
    case DType::MXFP4: return qref::dequantize_mxfp4(as<BlockMXFP4>(src), dst, nb);
    default: unsupported("dequantize_row", t);
  }
}

void quantize_row(DType t, const float* src, void* dst, int64_t n) { quantize_impl(t, src, dst, n, true); }

void quantize_row_ggml_ref(DType t, const float* src, void* dst, int64_t n) { quantize_impl(t, src, dst, n, false); }

DType vec_dot_type(DType weight) {
  switch (weight) {
    case DType::F32: case DType::F16: case DType::BF16: return weight;
    case DType::Q4_0: case DType::Q5_0: case DType::Q8_0: case DType::MXFP4: return DType::Q8_0;
    case DType::Q4_1: case DType::Q5_1: case DType::Q8_1: return DType::Q8_1;
    case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: return DType::Q8_K;
    default: unsupported("vec_dot_type", weight);
  }
}

float vec_dot(DType weight, int64_t n, const void* w, const void* a) {
  const int64_t nb = block_count(weight, n, "vec_dot");
  switch (weight) {
    case DType::F32: return dot_float<float, identity>(n, w, a);
    case DType::F16: return dot_float<uint16_t, fp16_to_fp32>(n, w, a);
    case DType::BF16: return dot_float<uint16_t, bf16_to_fp32>(n, w, a);
    case DType::Q4_0: return qref::vec_dot_q4_0_q8_0(as<BlockQ4_0>(w), as<BlockQ8_0>(a), nb);
    case DType::Q4_1: return qref::vec_dot_q4_1_q8_1(as<BlockQ4_1>(w), as<BlockQ8_1>(a), nb);
    case DType::Q5_0: return qref::vec_dot_q5_0_q8_0(as<BlockQ5_0>(w), as<BlockQ8_0>(a), nb);
    case DType::Q5_1: return qref::vec_dot_q5_1_q8_1(as<BlockQ5_1>(w), as<BlockQ8_1>(a), nb);
    case DType::Q8_0: return qref::vec_dot_q8_0_q8_0(as<BlockQ8_0>(w), as<BlockQ8_0>(a), nb);
    case DType::Q8_1: return qref::vec_dot_q8_1_q8_1(as<BlockQ8_1>(w), as<BlockQ8_1>(a), nb);
    case DType::Q2_K: return qref::vec_dot_q2_K_q8_K(as<BlockQ2_K>(w), as<BlockQ8_K>(a), nb);
    case DType::Q3_K: return qref::vec_dot_q3_K_q8_K(as<BlockQ3_K>(w), as<BlockQ8_K>(a), nb);
    case DType::Q4_K: return qref::vec_dot_q4_K_q8_K(as<BlockQ4_K>(w), as<BlockQ8_K>(a), nb);
    case DType::Q5_K: return qref::vec_dot_q5_K_q8_K(as<BlockQ5_K>(w), as<BlockQ8_K>(a), nb);
    case DType::Q6_K: return qref::vec_dot_q6_K_q8_K(as<BlockQ6_K>(w), as<BlockQ8_K>(a), nb);
    case DType::MXFP4: return qref::vec_dot_mxfp4_q8_0(as<BlockMXFP4>(w), as<BlockQ8_0>(a), nb);
    default: unsupported("vec_dot", weight);
  }
}

}  // namespace moe
