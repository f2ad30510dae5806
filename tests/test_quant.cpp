// Reference block formats (core/quant.h) against an independent NumPy oracle (tests/quant_oracle.py):
// bit-exact decoding and activation quantization, quantization error bounds, dot products against a
// double-precision dot of the decoded rows, and exhaustive fp16/bf16 conversion checks.
#include <gtest/gtest.h>

#include <bit>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/error.h"
#include "core/quant.h"
#include "support/python.h"
#include "support/quant_oracle.h"
#include "support/testdata.h"

namespace {

using namespace moe;
using moe::test::oracle_decode;
using moe::test::oracle_quantize;

const std::vector<DType> kBlockTypes = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                                        DType::Q8_0, DType::Q8_1, DType::Q2_K, DType::Q3_K,
                                        DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_K,
                                        DType::MXFP4};
const std::vector<DType> kWeightTypes = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0, DType::Q4_1,
                                         DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q8_1, DType::Q2_K,
                                         DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::MXFP4};

size_t block_bytes(DType t) { return dtype_info(t).block_bytes; }
int block_size(DType t) { return static_cast<int>(dtype_info(t).block_size); }

// Byte offsets of the fp16 scale/min fields of each block type (and of Q8_K's f32 scale).
std::vector<int> half_fields(DType t) {
  switch (t) {
    case DType::Q4_0: case DType::Q5_0: case DType::Q8_0: return {0};
    case DType::Q4_1: case DType::Q5_1: case DType::Q8_1: return {0, 2};
    case DType::Q2_K: return {80, 82};
    case DType::Q3_K: return {108};
    case DType::Q4_K: case DType::Q5_K: return {0, 2};
    case DType::Q6_K: return {208};
    default: return {};
  }
}

// Scales that stress the decoders: ordinary, zero, the largest finite, subnormal, random finite bits.
uint16_t interesting_half(int k, std::mt19937& rng) {
  std::uniform_real_distribution<float> expo(-4.f, 1.f);
  switch (k % 8) {
    case 0: return fp32_to_fp16((rng() & 1 ? -1.f : 1.f) * std::pow(10.f, expo(rng)));
    case 1: return 0x0000;
    case 2: return 0x7bff;  // 65504
    case 3: return 0xfbff;  // -65504
    case 4: return 0x0001;  // smallest subnormal
    case 5: return 0x83ff;  // largest negative subnormal
    case 6: {
      uint16_t h = static_cast<uint16_t>(rng());
      return (h & 0x7c00) == 0x7c00 ? static_cast<uint16_t>(h & ~0x4000) : h;  // no inf/NaN
    }
    default: return 0x3c00;  // 1.0
  }
}

float interesting_float(int k, std::mt19937& rng) {
  std::uniform_real_distribution<float> expo(-6.f, 2.f);
  switch (k % 6) {
    case 0: return (rng() & 1 ? -1.f : 1.f) * std::pow(10.f, expo(rng));
    case 1: return 0.f;
    case 2: return 1e-40f;  // subnormal
    case 3: return -3e36f;  // * 127 still finite
    case 4: return 1.f;
    default: {
      uint32_t b = static_cast<uint32_t>(rng());
      if ((b & 0x7f800000u) == 0x7f800000u) b &= ~0x40000000u;
      return std::bit_cast<float>(b);
    }
  }
}

// nb random blocks of t. Every 11th block is all zero bytes, the next all 0xFF with a finite scale,
// the others random quants with the interesting scales above.
std::vector<uint8_t> random_blocks(DType t, int nb, std::mt19937& rng) {
  const size_t bytes = block_bytes(t);
  std::vector<uint8_t> b(nb * bytes);
  for (auto& v : b) v = static_cast<uint8_t>(rng());
  for (int i = 0; i < nb; ++i) {
    uint8_t* blk = b.data() + i * bytes;
    if (i % 11 == 9) {
      std::memset(blk, 0, bytes);
      continue;
    }
    if (i % 11 == 10) std::memset(blk, 0xFF, bytes);
    int k = i;
    for (int off : half_fields(t)) {
      const uint16_t h = interesting_half(k++, rng);
      std::memcpy(blk + off, &h, 2);
    }
    if (t == DType::Q8_K) {
      const float d = interesting_float(i, rng);
      std::memcpy(blk, &d, 4);
    }
  }
  return b;
}

// Bitwise equality (NaN payloads included), reporting the first few differences.
void expect_same_bits(const std::vector<float>& got, const std::vector<float>& want, int block) {
  ASSERT_EQ(got.size(), want.size());
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::bit_cast<uint32_t>(got[i]) == std::bit_cast<uint32_t>(want[i])) continue;
    if (++bad <= 5)
      ADD_FAILURE() << "element " << i << " (block " << i / block << "): got " << got[i] << " want " << want[i];
  }
  EXPECT_EQ(bad, 0) << "elements differing from the oracle";
}

void expect_same_bytes(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want, size_t block) {
  ASSERT_EQ(got.size(), want.size());
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] == want[i]) continue;
    if (++bad <= 5)
      ADD_FAILURE() << "byte " << i % block << " of block " << i / block << ": got " << int(got[i]) << " want "
                    << int(want[i]);
  }
  EXPECT_EQ(bad, 0) << "bytes differing from the oracle";
}

// Test signal in chunks of 256 with different shapes: gaussian at several scales (one with an outlier),
// all zero, all positive, all negative.
std::vector<float> test_signal(int chunks, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.f, 1.f);
  std::uniform_real_distribution<float> uni(0.f, 1.f);
  std::vector<float> x(chunks * 256);
  for (int c = 0; c < chunks; ++c) {
    float* v = x.data() + c * 256;
    for (int i = 0; i < 256; ++i) {
      switch (c % 6) {
        case 0: v[i] = normal(rng); break;
        case 1: v[i] = 1e-3f * normal(rng); break;
        case 2: v[i] = 50.f * normal(rng) * (i == 77 ? 20.f : 1.f); break;
        case 3: v[i] = 0.f; break;
        case 4: v[i] = 0.5f + 1.5f * uni(rng); break;
        default: v[i] = -1.f - 2.f * uni(rng); break;
      }
    }
  }
  return x;
}

// Blocks built so that x * multiplier lands exactly on .5: they tell half-to-even from half-away rounding.
std::vector<float> tie_blocks() {
  std::vector<float> x(512);
  for (int j = 0; j < 256; ++j) x[j] = static_cast<float>((j * 37) % 253 - 126) + 0.5f;  // within +-126.5
  for (int j = 0; j < 256; j += 32) x[j] = (j / 32) % 2 ? 127.f : -127.f;  // amax 127: multipliers become +-1
  for (int j = 256; j < 512; ++j) x[j] = static_cast<float>((j * 11) % 101 - 50) * 0.25f;
  x[256] = 127.f;  // both signs of the extreme in one super-block: the first one sets the Q8_K sign
  x[300] = -127.f;
  return x;
}

// Runs f on consecutive segments of 1, 3 and 7 blocks, then on the rest: rows of awkward lengths.
template <class F>
void for_awkward_rows(int total_blocks, F f) {
  int done = 0;
  for (int len : {1, 3, 7}) {
    if (done + len > total_blocks) break;
    f(done, len);
    done += len;
  }
  if (done < total_blocks) f(done, total_blocks - done);
}

TEST(QuantDecode, MatchesNumpyOracleBitExactly) {
  MOE_REQUIRE_NUMPY();
  const std::string dir = moe::test::scratch_dir("quant_decode");
  std::mt19937 rng(1234);
  std::vector<DType> types = kBlockTypes;
  types.insert(types.end(), {DType::F32, DType::F16, DType::BF16});
  for (DType t : types) {
    SCOPED_TRACE(dtype_name(t));
    const int nb = 75, bs = block_size(t);
    const auto blocks = random_blocks(t, nb, rng);  // plain types: random bits, NaN and inf included
    std::vector<float> ours(static_cast<size_t>(nb) * bs);
    for_awkward_rows(nb, [&](int first, int len) {
      dequantize_row(t, blocks.data() + first * block_bytes(t), ours.data() + first * bs, int64_t{len} * bs);
    });
    expect_same_bits(ours, oracle_decode(t, blocks, dir), bs);
  }
}

TEST(QuantDecode, RejectsPartialBlocksAndUnknownTypes) {
  std::vector<uint8_t> buf(1024);
  std::vector<float> out(1024);
  EXPECT_THROW(dequantize_row(DType::Q4_0, buf.data(), out.data(), 33), Error);
  EXPECT_THROW(quantize_row(DType::Q4_K, out.data(), buf.data(), 128), Error);
  EXPECT_THROW(dequantize_row(DType::IQ2_XXS, buf.data(), out.data(), 256), Error);
  EXPECT_THROW(vec_dot_type(DType::Q8_K), Error);
}

// Activation quantizers and the 32-wide weight quantizers are simple enough to be reproduced exactly.
TEST(QuantEncode, MatchesNumpyOracleBitExactly) {
  MOE_REQUIRE_NUMPY();
  const std::string dir = moe::test::scratch_dir("quant_encode");
  std::mt19937 rng(99);
  std::vector<float> x = test_signal(12, rng);
  const auto ties = tie_blocks();
  x.insert(x.end(), ties.begin(), ties.end());

  struct Case {
    const char* oracle;
    DType type;
    bool x86;  // quantize_row (llama.cpp's x86 activation path) or quantize_row_ggml_ref
  };
  const Case cases[] = {{"q8_0_x86", DType::Q8_0, true}, {"q8_0_ref", DType::Q8_0, false},
                        {"q8_1_x86", DType::Q8_1, true}, {"q8_1_ref", DType::Q8_1, false},
                        {"q8_K", DType::Q8_K, true},     {"q8_K", DType::Q8_K, false},
                        {"q4_0", DType::Q4_0, true},     {"q4_1", DType::Q4_1, true},
                        {"q5_0", DType::Q5_0, true},     {"q5_1", DType::Q5_1, true},
                        {"mxfp4", DType::MXFP4, true},   {"mxfp4", DType::MXFP4, false}};
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.oracle) + (c.x86 ? " via quantize_row" : " via quantize_row_ggml_ref"));
    const int bs = block_size(c.type), nb = static_cast<int>(x.size()) / bs;
    std::vector<uint8_t> ours(nb * block_bytes(c.type));
    for_awkward_rows(nb, [&](int first, int len) {
      auto* dst = ours.data() + first * block_bytes(c.type);
      if (c.x86) quantize_row(c.type, x.data() + first * bs, dst, int64_t{len} * bs);
      else quantize_row_ggml_ref(c.type, x.data() + first * bs, dst, int64_t{len} * bs);
    });
    expect_same_bytes(ours, oracle_quantize(c.oracle, x, dir), block_bytes(c.type));
  }
}

// MXFP4 blocks at the edges of its rounding: largest magnitudes at and just below powers of two (where the shared
// exponent steps; log2f rounds up to the power just below it), values exactly half-way between two codes, and
// magnitudes down to the subnormal range of the scale byte.
TEST(QuantEncode, Mxfp4MatchesOracleAtExponentStepsAndTies) {
  MOE_REQUIRE_NUMPY();
  const std::string dir = moe::test::scratch_dir("quant_mxfp4_edges");
  std::mt19937 rng(31);
  std::uniform_real_distribution<float> uni(-1.f, 1.f);
  std::vector<float> x;
  for (int p = -130; p <= 120; p += 5) {
    for (float top : {std::ldexp(1.f, p), std::nextafter(std::ldexp(1.f, p), 0.f), 1.5f * std::ldexp(1.f, p)}) {
      std::vector<float> blk(32);
      for (float& v : blk) v = top * uni(rng);
      blk[rng() % 32] = rng() % 2 ? top : -top;
      x.insert(x.end(), blk.begin(), blk.end());
    }
  }
  // amax 6 makes the half scale 0.5: the midpoints k/4 between codes are exact ties, first code wins.
  for (int b = 0; b < 4; ++b) {
    std::vector<float> blk(32);
    for (int j = 0; j < 32; ++j) blk[j] = (j % 2 ? -1.f : 1.f) * static_cast<float>((j + 7 * b) % 25) * 0.25f;
    blk[0] = 6.f;
    x.insert(x.end(), blk.begin(), blk.end());
  }
  std::vector<uint8_t> ours(row_bytes(DType::MXFP4, static_cast<int64_t>(x.size())));
  quantize_row(DType::MXFP4, x.data(), ours.data(), static_cast<int64_t>(x.size()));
  expect_same_bytes(ours, oracle_quantize("mxfp4", x, dir), block_bytes(DType::MXFP4));
}

// The E2M1 values and the E8M0 scale, spelled out: amax 6 gives e = 127 (scale 1) and every code exactly.
TEST(QuantEncode, Mxfp4EncodesE2M1ValuesExactly) {
  const float values[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, 0, -0.5f, -1, -1.5f, -2, -3, -4, -6};
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = values[j % 16];
  BlockMXFP4 b;
  quantize_row(DType::MXFP4, x.data(), &b, 32);
  EXPECT_EQ(b.e, 127);
  for (int j = 0; j < 16; ++j) {
    const int lo = b.qs[j] & 15, hi = b.qs[j] >> 4;
    EXPECT_EQ(lo, j == 8 ? 0 : j) << "element " << j;  // -0 is stored as +0 (code 0 wins the tie)
    EXPECT_EQ(hi, (j + 16) % 16 == 8 ? 0 : j) << "element " << j + 16;
  }
  std::vector<float> y(32);
  dequantize_row(DType::MXFP4, &b, y.data(), 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], values[j % 16] + 0.f) << j;
  // 7 rounds to 6 (the largest code); amax 7 keeps e = 127. 0.75 is half-way between 0.5 and 1: code 1 (0.5).
  x.assign(32, 0.f);
  x[0] = 7.f, x[1] = 0.75f, x[2] = -0.25f;
  quantize_row(DType::MXFP4, x.data(), &b, 32);
  EXPECT_EQ(b.e, 127);
  EXPECT_EQ(b.qs[0] & 15, 7);
  EXPECT_EQ(b.qs[1] & 15, 1);
  EXPECT_EQ(b.qs[2] & 15, 0);  // -0.25: tie between 0 and -0.5, code 0 first
}

TEST(QuantEncode, X86ActivationPathRoundsHalfToEven) {
  // amax 127: d = 1, multiplier 1, so 2.5 and -3.5 are exact ties.
  std::vector<float> x(32, 0.f);
  x[0] = 127.f, x[1] = 2.5f, x[2] = -3.5f, x[3] = 0.5f, x[4] = -0.5f;
  BlockQ8_0 act, file;
  quantize_row(DType::Q8_0, x.data(), &act, 32);
  quantize_row_ggml_ref(DType::Q8_0, x.data(), &file, 32);
  EXPECT_EQ(fp16_to_fp32(act.d), 1.f);
  EXPECT_EQ(std::vector<int>(act.qs, act.qs + 5), (std::vector<int>{127, 2, -4, 0, 0}));   // half to even
  EXPECT_EQ(std::vector<int>(file.qs, file.qs + 5), (std::vector<int>{127, 3, -4, 1, -1}));  // roundf

  // Q8_K: the signed extreme -127 gives iscale = 1 and d = 1; bsums are sums of 16 quants.
  std::vector<float> y(256, 0.f);
  y[0] = -127.f, y[1] = 2.5f, y[2] = 3.5f, y[20] = -0.5f, y[255] = 100.f;
  BlockQ8_K k;
  quantize_row(DType::Q8_K, y.data(), &k, 256);
  EXPECT_EQ(k.d, 1.f);
  EXPECT_EQ(k.qs[0], -127);
  EXPECT_EQ(k.qs[1], 2);
  EXPECT_EQ(k.qs[2], 4);
  EXPECT_EQ(k.qs[20], 0);
  EXPECT_EQ(k.bsums[0], -127 + 2 + 4);
  EXPECT_EQ(k.bsums[15], 100);
  // An all-zero super-block has d = 0 and zero sums.
  std::vector<float> z(256, 0.f);
  std::memset(&k, 0x55, sizeof k);
  quantize_row(DType::Q8_K, z.data(), &k, 256);
  EXPECT_EQ(k.d, 0.f);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(k.bsums[j], 0);
}

// Worst error within a block, relative to the block's largest magnitude, and RMS error relative to the RMS of
// the gaussian chunks. The max bounds follow from the level spacing: Q8_0 amax/127/2 plus the fp16 rounding of
// d, Q4_0 amax/8 (where +amax clips to level 7), Q4_1 (max-min)/15/2 <= amax/15 ... For the RMS, a uniform grid
// of step D gives D/sqrt(12) (Q8_0: D = 2.04/127 for the expected max of 32 gaussians, 0.0046); the bounds leave
// about 25% over what ggml's reference quantizers reach on this signal (K types: 0.288, 0.148, 0.068, 0.036,
// 0.018 for Q2_K..Q6_K; MXFP4 0.112). MXFP4's max: amax lies in [8, 16) half-scale steps and the codes above 4
// are 4 steps apart, clipping at 12, so |error| <= 4 steps <= amax/4.
struct QualityBound {
  DType type;
  double max_rel;  // max |x - x'| / max|x| over each block
  double rms_rel;  // rms(x - x') / rms(x) on the unit gaussian chunks
};

TEST(QuantEncode, RoundTripErrorWithinFormatBounds) {
  const QualityBound bounds[] = {
      {DType::Q4_0, 0.127, 0.105},  {DType::Q4_1, 0.07, 0.095},   {DType::Q5_0, 0.064, 0.051},
      {DType::Q5_1, 0.034, 0.047},  {DType::Q8_0, 0.0045, 0.0064}, {DType::Q8_1, 0.0045, 0.0064},
      {DType::Q2_K, 0.38, 0.36},    {DType::Q3_K, 0.18, 0.185},    {DType::Q4_K, 0.075, 0.085},
      {DType::Q5_K, 0.057, 0.045},  {DType::Q6_K, 0.041, 0.022},   {DType::Q8_K, 0.004, 0.0083},
      {DType::MXFP4, 0.25, 0.14}};
  std::mt19937 rng(7);
  const std::vector<float> x = test_signal(24, rng);
  for (const QualityBound& qb : bounds) {
    SCOPED_TRACE(dtype_name(qb.type));
    const int bs = block_size(qb.type), nb = static_cast<int>(x.size()) / bs;
    std::vector<uint8_t> q(nb * block_bytes(qb.type));
    std::vector<float> y(x.size());
    quantize_row(qb.type, x.data(), q.data(), static_cast<int64_t>(x.size()));
    dequantize_row(qb.type, q.data(), y.data(), static_cast<int64_t>(y.size()));
    double worst = 0, err2 = 0, sig2 = 0;
    for (int b = 0; b < nb; ++b) {
      double amax = 0, emax = 0;
      for (int i = b * bs; i < (b + 1) * bs; ++i) {
        amax = std::max(amax, std::fabs(double(x[i])));
        emax = std::max(emax, std::fabs(double(x[i]) - y[i]));
        if ((i / 256) % 6 == 0) err2 += (double(x[i]) - y[i]) * (double(x[i]) - y[i]), sig2 += double(x[i]) * x[i];
      }
      if (amax == 0) EXPECT_EQ(emax, 0) << "an all-zero block must decode to zeros (block " << b << ")";
      else worst = std::max(worst, emax / amax);
    }
    EXPECT_LE(worst, qb.max_rel);
    EXPECT_LE(std::sqrt(err2 / sig2), qb.rms_rel);
    RecordProperty(std::string(dtype_name(qb.type)) + "_rms_rel", std::to_string(std::sqrt(err2 / sig2)));
  }
}

// Non-finite or huge inputs have no meaningful encoding, but must not reach undefined behaviour (float to int
// conversions out of range); the sanitizer build (MOE_ASAN) turns that into a failure.
TEST(QuantEncode, NonFiniteInputsStayDefined) {
  std::vector<float> x(512, 1.f);
  x[3] = NAN, x[40] = INFINITY, x[77] = -INFINITY, x[300] = 3e38f, x[301] = -3e38f, x[400] = 1e-45f;
  for (int j = 256; j < 288; ++j) x[j] = NAN;  // a whole NaN block
  for (DType t : kWeightTypes) {
    SCOPED_TRACE(dtype_name(t));
    for (bool x86 : {true, false}) {
      std::vector<uint8_t> q(row_bytes(t, x.size()));
      std::vector<float> y(x.size());
      if (x86) quantize_row(t, x.data(), q.data(), static_cast<int64_t>(x.size()));
      else quantize_row_ggml_ref(t, x.data(), q.data(), static_cast<int64_t>(x.size()));
      dequantize_row(t, q.data(), y.data(), static_cast<int64_t>(y.size()));
    }
  }
  std::vector<uint8_t> k(row_bytes(DType::Q8_K, x.size()));
  quantize_row(DType::Q8_K, x.data(), k.data(), static_cast<int64_t>(x.size()));
}

// quantize_row and quantize_row_ggml_ref differ only for the 8-bit activation formats.
TEST(QuantEncode, GgmlRefEqualsQuantizeRowForWeightFormats) {
  std::mt19937 rng(5);
  const std::vector<float> x = test_signal(6, rng);
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K, DType::Q4_K,
                  DType::Q5_K, DType::Q6_K, DType::Q8_K, DType::MXFP4, DType::F16, DType::BF16}) {
    SCOPED_TRACE(dtype_name(t));
    std::vector<uint8_t> a(row_bytes(t, x.size())), b(a.size());
    quantize_row(t, x.data(), a.data(), static_cast<int64_t>(x.size()));
    quantize_row_ggml_ref(t, x.data(), b.data(), static_cast<int64_t>(x.size()));
    EXPECT_EQ(a, b);
  }
}

TEST(QuantDot, VecDotTypesFollowGgml) {
  EXPECT_EQ(vec_dot_type(DType::F32), DType::F32);
  EXPECT_EQ(vec_dot_type(DType::F16), DType::F16);
  EXPECT_EQ(vec_dot_type(DType::BF16), DType::BF16);
  for (DType t : {DType::Q4_0, DType::Q5_0, DType::Q8_0, DType::MXFP4}) EXPECT_EQ(vec_dot_type(t), DType::Q8_0);
  for (DType t : {DType::Q4_1, DType::Q5_1, DType::Q8_1}) EXPECT_EQ(vec_dot_type(t), DType::Q8_1);
  for (DType t : {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K})
    EXPECT_EQ(vec_dot_type(t), DType::Q8_K);
}

// vec_dot against the double-precision dot of the decoded rows. The integer block sums are exact; what is
// left is float rounding of the per-block scale products and of the sum over blocks, at most a few eps per
// block on terms bounded by U = sum_i (|w_i| + 2 max_block|w|) |a_i| (the second part covers the separately
// computed min terms of Q4_1/Q5_1/K formats). Q8_1 also rounds s = d*sum(q) to fp16 (2^-11 relative).
TEST(QuantDot, MatchesDoubleDotOfDecodedRows) {
  std::mt19937 rng(2024);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (DType wt : kWeightTypes) {
    const DType at = vec_dot_type(wt);
    const int bs = std::max(block_size(wt), block_size(at));
    for (int nblocks : {1, 3, 7, 40}) {
      SCOPED_TRACE(std::string(dtype_name(wt)) + " x " + dtype_name(at) + ", blocks " + std::to_string(nblocks));
      const int n = nblocks * bs;
      std::vector<float> w(n), a(n);
      for (int i = 0; i < n; ++i) w[i] = 0.1f * normal(rng) + (i % 64 < 8 ? 0.05f : 0.f);  // some offset: mins
      for (int i = 0; i < n; ++i) a[i] = normal(rng) * (i % 97 == 0 ? 8.f : 1.f);
      std::vector<uint8_t> wq(row_bytes(wt, n)), aq(row_bytes(at, n));
      quantize_row(wt, w.data(), wq.data(), n);
      quantize_row(at, a.data(), aq.data(), n);
      std::vector<float> wd(n), ad(n);
      dequantize_row(wt, wq.data(), wd.data(), n);
      dequantize_row(at, aq.data(), ad.data(), n);

      double exact = 0, u = 0;
      const int wbs = block_size(wt);
      for (int b = 0; b < n / wbs; ++b) {
        double m = 0;
        for (int i = b * wbs; i < (b + 1) * wbs; ++i) m = std::max(m, std::fabs(double(wd[i])));
        for (int i = b * wbs; i < (b + 1) * wbs; ++i) {
          exact += double(wd[i]) * ad[i];
          u += (std::fabs(double(wd[i])) + 2 * m) * std::fabs(double(ad[i]));
        }
      }
      const double eps = std::ldexp(1.0, -24);
      const double tol = 8.0 * (n / bs + 8) * eps * u + (at == DType::Q8_1 ? std::ldexp(1.0, -10) * u : 0.0);
      const float got = vec_dot(wt, n, wq.data(), aq.data());
      EXPECT_NEAR(got, exact, tol) << "U = " << u;
    }
  }
}

// ---- fp16 / bf16 ----

float half_value(uint16_t h) {  // by definition, for comparison with the bit-level conversion
  const int e = (h >> 10) & 31, m = h & 1023;
  const float s = h & 0x8000 ? -1.f : 1.f;
  if (e == 31) return m ? std::numeric_limits<float>::quiet_NaN() : s * INFINITY;
  return s * std::ldexp(static_cast<float>(e ? m + 1024 : m), (e ? e : 1) - 25);
}

TEST(Fp16, DecodesEveryHalfExactly) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float got = fp16_to_fp32(static_cast<uint16_t>(h)), want = half_value(static_cast<uint16_t>(h));
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got)) << h;
      ASSERT_EQ(std::signbit(got), (h & 0x8000) != 0) << h;
    } else {
      ASSERT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(want)) << h;  // also tells -0 from 0
    }
  }
}

TEST(Fp16, EncodesRoundTripAndTiesToEven) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const uint16_t hh = static_cast<uint16_t>(h);
    const uint16_t back = fp32_to_fp16(fp16_to_fp32(hh));
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) {
      EXPECT_EQ(back & 0x7e00, 0x7e00) << h;  // NaN stays a (quiet) NaN
      continue;
    }
    ASSERT_EQ(back, hh) << h;
  }
  // Midpoints between neighbouring finite halves go to the even one; one float ulp either side decides.
  for (uint16_t h = 0; h < 0x7bff; ++h) {
    for (uint16_t sign : {uint16_t{0}, uint16_t{0x8000}}) {
      const float lo = fp16_to_fp32(h | sign), hi = fp16_to_fp32(static_cast<uint16_t>((h + 1) | sign));
      const float mid = static_cast<float>((double(lo) + double(hi)) / 2);
      const uint16_t even = static_cast<uint16_t>((h & 1 ? h + 1 : h) | sign);
      ASSERT_EQ(fp32_to_fp16(mid), even) << h;
      ASSERT_EQ(fp32_to_fp16(std::nextafter(mid, hi)), static_cast<uint16_t>((h + 1) | sign)) << h;
      ASSERT_EQ(fp32_to_fp16(std::nextafter(mid, lo)), static_cast<uint16_t>(h | sign)) << h;
    }
  }
  EXPECT_EQ(fp32_to_fp16(65504.f), 0x7bff);
  EXPECT_EQ(fp32_to_fp16(std::nextafter(65520.f, 0.f)), 0x7bff);
  EXPECT_EQ(fp32_to_fp16(65520.f), 0x7c00);  // the tie above the largest half rounds to the even inf
  EXPECT_EQ(fp32_to_fp16(FLT_MAX), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(-INFINITY), 0xfc00);
  EXPECT_EQ(fp32_to_fp16(-0.f), 0x8000);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.f, -25)), 0x0000);  // tie between 0 and the smallest subnormal
  EXPECT_EQ(fp32_to_fp16(std::nextafter(std::ldexp(1.f, -25), 1.f)), 0x0001);
  EXPECT_EQ(fp32_to_fp16(FLT_MIN), 0x0000);
  const uint16_t nan = fp32_to_fp16(std::bit_cast<float>(0x7f800001u));  // signalling NaN input
  EXPECT_EQ(nan & 0x7e00, 0x7e00);
  EXPECT_EQ(fp32_to_fp16(-std::numeric_limits<float>::quiet_NaN()) & 0xfe00, 0xfe00);
}

TEST(Bf16, ConvertsExactlyWithTiesToEvenAndQuietNaN) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const float f = bf16_to_fp32(static_cast<uint16_t>(b));
    ASSERT_EQ(std::bit_cast<uint32_t>(f), b << 16);
    if (!std::isnan(f)) {
      ASSERT_EQ(fp32_to_bf16(f), b);
    }
  }
  for (uint32_t b = 0; b < 0x7f7f; ++b) {
    const uint32_t mid = (b << 16) | 0x8000u;
    ASSERT_EQ(fp32_to_bf16(std::bit_cast<float>(mid)), b & 1 ? b + 1 : b);
    ASSERT_EQ(fp32_to_bf16(std::bit_cast<float>(mid + 1)), b + 1);
    ASSERT_EQ(fp32_to_bf16(std::bit_cast<float>(mid - 1)), b);
  }
  EXPECT_EQ(fp32_to_bf16(FLT_MAX), 0x7f80);  // above the last midpoint: inf
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x7f800001u)), 0x7fc0);  // signalling NaN becomes quiet, not inf
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0xff800001u)), 0xffc0);
  EXPECT_EQ(fp32_to_bf16(-0.f), 0x8000);
  // The row functions use the same conversions.
  const std::vector<float> x = {1.f, -2.5f, 3.14159f, 1e-30f, 65519.f};
  std::vector<uint16_t> h(x.size()), b(x.size());
  quantize_row(DType::F16, x.data(), h.data(), static_cast<int64_t>(x.size()));
  quantize_row(DType::BF16, x.data(), b.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(h[i], fp32_to_fp16(x[i]));
    EXPECT_EQ(b[i], fp32_to_bf16(x[i]));
  }
}

}  // namespace
