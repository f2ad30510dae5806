// Every SIMD kernel against its scalar reference, on every Highway target this CPU can run, at awkward sizes.
// Activation quantizers must give identical bytes; products and float kernels agree within a bound derived
// from the numerics (float rounding of the reordered sums: n_terms * eps * sum |terms|).
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/quant.h"
#include "kernels/kernels.h"
#include "kernels/packed.h"

using namespace moe;

namespace moe {
void PrintTo(const SimdTarget& t, std::ostream* os) { *os << t.name; }  // readable test names in listings
}  // namespace moe

namespace {

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

// Rows of weights of type t: quantized from random floats, or (raw) random bytes with finite scales, which
// exercises every quant value the format can hold (e.g. -128 in Q8_0).
std::vector<uint8_t> make_weights(DType t, int64_t rows, int64_t k, uint32_t seed, bool raw) {
  const size_t rb = row_bytes(t, k);
  std::vector<uint8_t> w(rb * rows);
  if (!raw || !packable(t)) {
    auto f = randn(static_cast<size_t>(rows * k), seed, 0.5f);
    for (int64_t r = 0; r < rows; ++r) quantize_row(t, f.data() + r * k, w.data() + r * rb, k);
    return w;
  }
  std::mt19937 rng(seed);
  for (auto& b : w) b = static_cast<uint8_t>(rng());
  // Put finite, moderate fp16 scales where the format keeps them.
  std::uniform_real_distribution<float> ud(-0.02f, 0.02f);
  const size_t bb = dtype_info(t).block_bytes;
  auto set_h = [&](uint8_t* p) {
    const uint16_t h = fp32_to_fp16(ud(rng));
    std::memcpy(p, &h, 2);
  };
  for (size_t off = 0; off < w.size(); off += bb) {
    uint8_t* b = w.data() + off;
    switch (t) {
      case DType::Q8_0: case DType::Q4_0: set_h(b); break;
      case DType::Q4_K: set_h(b); set_h(b + 2); break;
      case DType::Q6_K: set_h(b + 208); break;
      case DType::MXFP4: b[0] = static_cast<uint8_t>(115 + rng() % 16); break;  // 2^-13 .. 2^2: finite products
      default: break;
    }
  }
  return w;
}

// sum_i |w_i x_i| from dequantized rows: the scale of the rounding error of a dot product.
double abs_dot(DType wt, const uint8_t* w, const uint8_t* x, int64_t k) {
  std::vector<float> a(k), b(k);
  dequantize_row(wt, w, a.data(), k);
  dequantize_row(vec_dot_type(wt), x, b.data(), k);
  double s = 0;
  for (int64_t i = 0; i < k; ++i) s += std::fabs(static_cast<double>(a[i]) * b[i]);
  return s;
}

class Simd : public ::testing::TestWithParam<SimdTarget> {
 protected:
  void SetUp() override { simd_force_target(GetParam().id); }
  void TearDown() override { simd_force_target(0); }
  const KernelSet& S = simd_kernels();
  const KernelSet& R = reference_kernels();
};

std::string target_name(const ::testing::TestParamInfo<SimdTarget>& info) { return info.param.name; }

INSTANTIATE_TEST_SUITE_P(Targets, Simd, ::testing::ValuesIn(simd_targets()), target_name);

TEST_P(Simd, ForcedTargetIsInUse) { EXPECT_STREQ(simd_target_name(), GetParam().name); }

TEST_P(Simd, ActivationQuantizersGiveIdenticalBytes) {
  const DType types[] = {DType::Q8_0, DType::Q8_K, DType::F16, DType::BF16, DType::F32};
  for (DType vt : types) {
    const int64_t bs = dtype_info(vt).block_size;
    for (int64_t k : {int64_t{1}, int64_t{3}, int64_t{32}, int64_t{33}, int64_t{256}, int64_t{1000}, int64_t{2048}}) {
      if (k % bs) continue;
      for (int64_t n : {1, 3}) {
        for (float scale : {1.0f, 1e-3f, 300.0f}) {
          auto x = randn(static_cast<size_t>(n * k + 7), static_cast<uint32_t>(k * 10 + n), scale);
          if (k >= 64) std::fill(x.begin() + 32, x.begin() + 64, 0.0f);  // an all-zero block
          if (k >= 256) x[3] = 2 * scale, x[5] = -2 * scale;  // the same magnitude with both signs: the first one wins
          for (size_t i = 100; i < x.size(); i += 37) x[i] = std::round(x[i] * 4) / 4;  // many exact ties
          const size_t rb = row_bytes(vt, k), stride = rb + 5;
          std::vector<uint8_t> a(stride * n, 0xAA), b(stride * n, 0xAA);
          S.quantize_rows(vt, x.data() + 1, k + 2, n, k, a.data(), stride);
          R.quantize_rows(vt, x.data() + 1, k + 2, n, k, b.data(), stride);
          ASSERT_EQ(a, b) << dtype_name(vt) << " k=" << k << " n=" << n << " scale=" << scale;
        }
      }
    }
  }
}

TEST_P(Simd, PackedActivationQuantizerGivesIdenticalBytes) {
  for (DType wt : {DType::Q8_0, DType::Q4_0, DType::MXFP4, DType::Q4_K, DType::Q6_K}) {
    for (int64_t k : {int64_t{256}, int64_t{512}, int64_t{2048}}) {
      const int64_t n = 3;
      auto x = randn(static_cast<size_t>(n * k), static_cast<uint32_t>(k), 2.0f);
      const size_t ab = packed_act_bytes(wt, k);
      std::vector<uint8_t> a(ab * n, 1), b(ab * n, 2);
      S.quantize_rows_packed(wt, x.data(), k, n, k, a.data(), ab);
      R.quantize_rows_packed(wt, x.data(), k, n, k, b.data(), ab);
      ASSERT_EQ(a, b) << dtype_name(wt) << " k=" << k;
    }
  }
}

// y from kernel set K (packed or not) for all rows of W and all tokens, with rows split in two calls.
void expect_gemm_close(DType wt, int64_t rows, int64_t k, int64_t n, bool raw, const KernelSet& S,
                       const KernelSet& R, bool packed) {
  const auto w = make_weights(wt, rows, k, static_cast<uint32_t>(rows * 7 + k), raw);
  const DType vt = vec_dot_type(wt);
  auto xf = randn(static_cast<size_t>(n * k), static_cast<uint32_t>(k + n));
  const size_t xb = row_bytes(vt, k);
  std::vector<uint8_t> xq(xb * n);
  R.quantize_rows(vt, xf.data(), k, n, k, xq.data(), xb);
  const size_t rb = row_bytes(wt, k);
  const int64_t ldy = rows + 3;
  std::vector<float> ref(ldy * n, NAN), got(ldy * n, NAN);
  R.gemm(wt, w.data(), rb, 0, rows, k, xq.data(), xb, n, ref.data(), ldy);
  if (packed) {
    std::vector<uint8_t> wp(packed_bytes(wt, rows, k));
    pack_rows(wt, w.data(), rb, rows, k, wp.data());
    const size_t ab = packed_act_bytes(wt, k);
    std::vector<uint8_t> xp(ab * n);
    for (int64_t t = 0; t < n; ++t) packed_act_from_dot(wt, xq.data() + t * xb, k, xp.data() + t * ab);
    const int64_t split = std::min<int64_t>(rows, kPackRows);
    S.gemm_packed(wt, wp.data(), 0, split, k, xp.data(), ab, n, got.data(), ldy);
    S.gemm_packed(wt, wp.data(), split, rows, k, xp.data(), ab, n, got.data(), ldy);
  } else {
    const int64_t split = rows / 3;
    S.gemm(wt, w.data(), rb, 0, split, k, xq.data(), xb, n, got.data(), ldy);
    S.gemm(wt, w.data(), rb, split, rows, k, xq.data(), xb, n, got.data(), ldy);
  }
  const int64_t bs = dtype_info(wt).block_size;
  const double terms = bs == 1 ? static_cast<double>(k) : 4.0 * static_cast<double>(k / bs) + 16;
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t r = 0; r < rows; ++r) {
      const double scale = abs_dot(wt, w.data() + r * rb, xq.data() + t * xb, k);
      const double tol = 2 * terms * FLT_EPSILON * scale + 1e-30;
      ASSERT_NEAR(got[t * ldy + r], ref[t * ldy + r], tol)
          << dtype_name(wt) << (packed ? " packed" : "") << (raw ? " raw" : "") << " rows=" << rows << " k=" << k
          << " n=" << n << " row " << r << " token " << t;
    }
    for (int64_t r = rows; r < ldy; ++r) ASSERT_TRUE(std::isnan(got[t * ldy + r])) << "wrote past row end";
  }
}

TEST_P(Simd, GemmMatchesReference) {
  for (DType wt : {DType::F32, DType::F16, DType::BF16})
    for (int64_t k : {int64_t{1}, int64_t{3}, int64_t{33}, int64_t{1000}})
      for (int64_t rows : {1, 3, 33})
        for (int64_t n : {1, 3, 6}) expect_gemm_close(wt, rows, k, n, false, S, R, false);
  for (DType wt : {DType::Q8_0, DType::Q4_0, DType::MXFP4, DType::Q4_K, DType::Q6_K, DType::Q5_K})
    for (int64_t k : {int64_t{256}, int64_t{2048}})
      for (int64_t rows : {1, 31, 33})
        for (int64_t n : {1, 5}) expect_gemm_close(wt, rows, k, n, true, S, R, false);
}

TEST_P(Simd, PackedGemmMatchesReference) {
  for (DType wt : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K})
    for (bool raw : {false, true})
      for (int64_t k : {int64_t{256}, int64_t{512}, int64_t{2048}})
        for (int64_t rows : {1, 3, 31, 33, 100})
          for (int64_t n : {1, 3, 4, 17}) {
            if (k == 2048 && rows == 100 && n == 17 && !raw) continue;  // keep the scalar target quick
            expect_gemm_close(wt, rows, k, n, raw, S, R, true);
          }
  expect_gemm_close(DType::Q8_0, 1000, 32, 2, false, S, R, true);
  // MXFP4 keeps blocks in units of 4: rows of 1, 3, 7 and 64 blocks cover partial and whole units.
  for (bool raw : {false, true})
    for (int64_t k : {int64_t{32}, int64_t{96}, int64_t{224}, int64_t{2048}})
      for (int64_t rows : {1, 31, 33})
        for (int64_t n : {1, 3, 17}) expect_gemm_close(DType::MXFP4, rows, k, n, raw, S, R, true);
}

TEST_P(Simd, RmsNormSoftmaxSwigluMatchReference) {
  for (int64_t n : {int64_t{1}, int64_t{3}, int64_t{31}, int64_t{33}, int64_t{1000}, int64_t{2048}}) {
    auto x = randn(n, static_cast<uint32_t>(n), 3.0f);
    auto w = randn(n, static_cast<uint32_t>(n + 1));
    std::vector<float> a(n), b(n);
    for (bool with_w : {false, true}) {
      S.rms_norm(x.data(), with_w ? w.data() : nullptr, 1e-6f, n, a.data());
      R.rms_norm(x.data(), with_w ? w.data() : nullptr, 1e-6f, n, b.data());
      for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(a[i], b[i], 1e-5f * std::fabs(b[i]) + 1e-7f) << "rms_norm n=" << n;
    }
    a = x;
    b = x;
    S.softmax(a.data(), n);
    R.softmax(b.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(a[i], b[i], 1e-5f * b[i] + 1e-9f) << "softmax n=" << n;
    auto g = randn(n, static_cast<uint32_t>(n + 2), 30.0f);  // reaches exp over- and underflow
    S.swiglu(g.data(), x.data(), n, a.data());
    R.swiglu(g.data(), x.data(), n, b.data());
    for (int64_t i = 0; i < n; ++i)
      ASSERT_NEAR(a[i], b[i], 1e-5f * std::fabs(b[i]) + 1e-30f) << "swiglu n=" << n << " g=" << g[i];
    a = g;  // in place, aliasing gate
    S.swiglu(a.data(), x.data(), n, a.data());
    for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(a[i], b[i], 1e-5f * std::fabs(b[i]) + 1e-30f);
  }
}

TEST_P(Simd, RopeMatchesReference) {
  for (bool neox : {false, true})
    for (int64_t hd : {int64_t{64}, int64_t{128}, int64_t{6}})
      for (int64_t n_rot : {hd, hd / 2}) {
        const int64_t nh = 3;
        auto x = randn(nh * hd, static_cast<uint32_t>(hd));
        auto cs = randn(n_rot, 5);
        auto a = x, b = x;
        S.rope(a.data(), nh, hd, n_rot, cs.data(), neox);
        R.rope(b.data(), nh, hd, n_rot, cs.data(), neox);
        for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-5f * (std::fabs(x[i]) + 1)) << i;
      }
}

TEST_P(Simd, AttentionMatchesReference) {
  for (int64_t hd : {int64_t{64}, int64_t{128}, int64_t{40}, int64_t{3}})
    for (int64_t n_kv : {int64_t{1}, int64_t{3}, int64_t{17}, int64_t{300}}) {
      const int64_t stride = 2 * hd + 5;
      auto q = randn(hd, 1), k = randn(stride * n_kv, 2), v = randn(stride * n_kv, 3);
      std::vector<float> sa(n_kv), sb(n_kv), a(hd), b(hd);
      const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
      S.attention(q.data(), k.data(), v.data(), stride, n_kv, hd, scale, sa.data(), a.data());
      R.attention(q.data(), k.data(), v.data(), stride, n_kv, hd, scale, sb.data(), b.data());
      for (int64_t d = 0; d < hd; ++d) ASSERT_NEAR(a[d], b[d], 1e-5f * (1 + std::fabs(b[d]))) << hd << " " << n_kv;
    }
}

// Batched causal attention with transposed keys, against the reference and against one-query attention.
TEST_P(Simd, TransposedKeyAttentionMatchesReference) {
  for (int64_t hd : {int64_t{128}, int64_t{64}, int64_t{40}, int64_t{3}})
    for (int64_t n_kv0 : {int64_t{0}, int64_t{5}, int64_t{300}})
      for (int64_t nq : {int64_t{1}, int64_t{3}, int64_t{16}, int64_t{17}}) {
        const int64_t n_ctx = (n_kv0 + nq + 15) / 16 * 16, kv_stride = 2 * hd + 5, q_stride = hd + 3;
        auto q = randn(nq * q_stride, 1), kt = randn(hd * n_ctx, 2), v = randn(n_ctx * kv_stride, 3);
        std::vector<float> scratch(nq * n_ctx), a(nq * q_stride, NAN), b(nq * q_stride, NAN);
        const float scale = 0.3f;
        S.attention_kt(q.data(), q_stride, nq, kt.data(), v.data(), kv_stride, n_kv0, hd, scale, scratch.data(),
                       a.data(), q_stride);
        R.attention_kt(q.data(), q_stride, nq, kt.data(), v.data(), kv_stride, n_kv0, hd, scale, scratch.data(),
                       b.data(), q_stride);
        std::vector<float> k(n_ctx * kv_stride), one(hd), sc(n_ctx);
        for (int64_t j = 0; j < n_ctx; ++j)
          for (int64_t d = 0; d < hd; ++d) k[j * kv_stride + d] = kt[(j / 16) * 16 * hd + d * 16 + j % 16];
        for (int64_t i = 0; i < nq; ++i) {
          R.attention(q.data() + i * q_stride, k.data(), v.data(), kv_stride, n_kv0 + i + 1, hd, scale, sc.data(),
                      one.data());
          for (int64_t d = 0; d < hd; ++d) {
            const float x = b[i * q_stride + d];
            ASSERT_NEAR(a[i * q_stride + d], x, 1e-5f * (1 + std::fabs(x))) << hd << " " << n_kv0 << " " << nq;
            ASSERT_NEAR(one[d], x, 1e-5f * (1 + std::fabs(x)));
          }
        }
      }
}

// Sliding window and attention sink: SIMD against the reference, and the reference against a plain softmax over the
// window with exp(sink) in the denominator; window 0 and no sink is attention_kt bit for bit.
TEST_P(Simd, MaskedAttentionMatchesReference) {
  for (int64_t hd : {int64_t{64}, int64_t{40}, int64_t{3}})
    for (int64_t n_kv0 : {int64_t{0}, int64_t{5}, int64_t{37}})
      for (int64_t nq : {int64_t{1}, int64_t{3}, int64_t{17}})
        for (int64_t window : {int64_t{0}, int64_t{1}, int64_t{4}, int64_t{19}})
          for (float sink : {-INFINITY, 0.7f, 9.0f}) {
            const int64_t n_ctx = (n_kv0 + nq + 15) / 16 * 16, kv_stride = hd + 2, q_stride = hd + 3;
            auto q = randn(nq * q_stride, 1), kt = randn(hd * n_ctx, 2), v = randn(n_ctx * kv_stride, 3);
            std::vector<float> scratch(nq * n_ctx), a(nq * q_stride, NAN), b(nq * q_stride, NAN);
            const float scale = 0.3f;
            S.attention_kt_masked(q.data(), q_stride, nq, kt.data(), v.data(), kv_stride, n_kv0, hd, scale,
                                  scratch.data(), a.data(), q_stride, window, sink);
            R.attention_kt_masked(q.data(), q_stride, nq, kt.data(), v.data(), kv_stride, n_kv0, hd, scale,
                                  scratch.data(), b.data(), q_stride, window, sink);
            if (window == 0 && sink == -INFINITY) {
              std::vector<float> c(nq * q_stride, NAN);
              S.attention_kt(q.data(), q_stride, nq, kt.data(), v.data(), kv_stride, n_kv0, hd, scale,
                             scratch.data(), c.data(), q_stride);
              for (int64_t i = 0; i < nq; ++i)
                for (int64_t d = 0; d < hd; ++d) ASSERT_EQ(a[i * q_stride + d], c[i * q_stride + d]);
            }
            for (int64_t i = 0; i < nq; ++i) {
              const int64_t p = n_kv0 + i, lo = window > 0 ? std::max<int64_t>(0, p + 1 - window) : 0;
              std::vector<double> s;
              double mx = sink;
              for (int64_t j = lo; j <= p; ++j) {
                double dot = 0;
                for (int64_t d = 0; d < hd; ++d) dot += static_cast<double>(q[i * q_stride + d]) * kt[(j / 16) * 16 * hd + d * 16 + j % 16];
                s.push_back(dot * scale);
                mx = std::max(mx, s.back());
              }
              double z = std::exp(static_cast<double>(sink) - mx);
              for (double& x : s) z += (x = std::exp(x - mx));
              for (int64_t d = 0; d < hd; ++d) {
                double o = 0;
                for (int64_t j = lo; j <= p; ++j) o += s[static_cast<size_t>(j - lo)] / z * v[j * kv_stride + d];
                const float x = b[i * q_stride + d];
                ASSERT_NEAR(x, o, 1e-5 * (1 + std::fabs(o))) << hd << " " << n_kv0 << " " << nq << " " << window;
                ASSERT_NEAR(a[i * q_stride + d], x, 1e-5f * (1 + std::fabs(x))) << hd << " " << n_kv0 << " " << nq;
              }
            }
          }
}

TEST(Packed, UnpackGivesBackEveryRow) {
  for (DType wt : {DType::Q8_0, DType::Q4_0, DType::MXFP4, DType::Q4_K, DType::Q6_K})
    for (int64_t rows : {1, 16, 33})
      for (int64_t k : {int64_t{256}, int64_t{512}}) {
      const auto w = make_weights(wt, rows, k, 9, true);
      const size_t rb = row_bytes(wt, k);
      std::vector<uint8_t> p(packed_bytes(wt, rows, k)), row(rb);
      ASSERT_EQ(p.size() % (kPackRows * rb), 0u);
      pack_rows(wt, w.data(), rb, rows, k, p.data());
      for (int64_t r = 0; r < rows; ++r) {
        unpack_row(wt, p.data(), r, k, row.data());
        ASSERT_EQ(0, std::memcmp(row.data(), w.data() + r * rb, rb)) << dtype_name(wt) << " k " << k << " row " << r;
      }
    }
  // Odd block counts: a last unit holding fewer blocks (Q8_0/Q4_0 pairs, MXFP4 quads).
  for (DType wt : {DType::Q8_0, DType::Q4_0, DType::MXFP4})
    for (int64_t k : {int64_t{32}, int64_t{96}, int64_t{160}, int64_t{224}}) {
      const int64_t rows = 17;
      const auto w = make_weights(wt, rows, k, 11, true);
      const size_t rb = row_bytes(wt, k);
      std::vector<uint8_t> p(packed_bytes(wt, rows, k)), row(rb);
      pack_rows(wt, w.data(), rb, rows, k, p.data());
      for (int64_t r = 0; r < rows; ++r) {
        unpack_row(wt, p.data(), r, k, row.data());
        ASSERT_EQ(0, std::memcmp(row.data(), w.data() + r * rb, rb)) << dtype_name(wt) << " k " << k << " row " << r;
      }
    }
}

// pack_groups (AVX-512 transposes for the 32-wide formats where the CPU has them) against the plain version: whole
// groups, a last group with padding rows, odd block counts, rows with gaps between them, and a range of groups.
TEST(Packed, PackGroupsEqualsReferenceByteForByte) {
  for (DType wt : {DType::Q8_0, DType::Q4_0, DType::MXFP4, DType::Q4_K, DType::Q6_K})
    for (int64_t rows : {16, 33, 64})
      for (int64_t blocks : {1, 3, 8, 9}) {
        const int64_t k = blocks * dtype_info(wt).block_size;
        const size_t rb = row_bytes(wt, k);
        for (size_t gap : {size_t{0}, size_t{37}}) {
          const size_t stride = rb + gap;
          const auto dense = make_weights(wt, rows, k, 21, true);
          std::vector<uint8_t> w(stride * static_cast<size_t>(rows), 0xA5);
          for (int64_t r = 0; r < rows; ++r) std::memcpy(w.data() + r * stride, dense.data() + r * rb, rb);
          const int64_t groups = (rows + kPackRows - 1) / kPackRows;
          std::vector<uint8_t> fast(packed_bytes(wt, rows, k), 1), ref(fast.size(), 2);
          pack_groups(wt, w.data(), stride, rows, k, 0, groups, fast.data());
          pack_groups_reference(wt, w.data(), stride, rows, k, 0, groups, ref.data());
          ASSERT_EQ(fast, ref) << dtype_name(wt) << " rows " << rows << " k " << k << " gap " << gap;
          if (groups > 1) {  // a range that starts after group 0
            std::vector<uint8_t> part(fast.size(), 3);
            std::memcpy(part.data(), ref.data(), packed_group_bytes(wt, k));
            pack_groups(wt, w.data(), stride, rows, k, 1, groups, part.data());
            ASSERT_EQ(part, ref) << dtype_name(wt) << " rows " << rows << " k " << k << " from group 1";
          }
        }
      }
}

TEST(Packed, ReferencePackedGemmEqualsReferenceGemmExactly) {
  const KernelSet& R = reference_kernels();
  for (DType wt : {DType::Q8_0, DType::Q4_0, DType::MXFP4, DType::Q4_K, DType::Q6_K}) {
    const int64_t rows = 20, k = 512, n = 2;
    const auto w = make_weights(wt, rows, k, 3, false);
    const size_t rb = row_bytes(wt, k), ab = packed_act_bytes(wt, k), xb = row_bytes(vec_dot_type(wt), k);
    auto xf = randn(n * k, 4);
    std::vector<uint8_t> wp(packed_bytes(wt, rows, k)), xp(ab * n), xq(xb * n);
    pack_rows(wt, w.data(), rb, rows, k, wp.data());
    R.quantize_rows_packed(wt, xf.data(), k, n, k, xp.data(), ab);
    R.quantize_rows(vec_dot_type(wt), xf.data(), k, n, k, xq.data(), xb);
    std::vector<float> a(rows * n), b(rows * n);
    R.gemm_packed(wt, wp.data(), 0, rows, k, xp.data(), ab, n, a.data(), rows);
    R.gemm(wt, w.data(), rb, 0, rows, k, xq.data(), xb, n, b.data(), rows);
    EXPECT_EQ(a, b) << dtype_name(wt);
  }
}

}  // namespace
