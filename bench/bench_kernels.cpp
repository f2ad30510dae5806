// Micro-benchmarks of the hot kernels at OLMoE-1B-7B shapes (d = 2048, expert FFN 1024, 64 experts, top-8).
// Single-threaded rates are per CPU second; the 2-thread and whole-layer ones per wall second (UseRealTime).
// Weight-streaming kernels cycle through all 64 experts' matrices (more than the 32 MiB L3), so GB/s is the
// rate weights come from DRAM, as in decoding. Counters: GB/s of weights, GFLOP/s (2 per multiply-add).
//   build/bench_kernels --benchmark_filter=Expert     (add --benchmark_min_time=1 for steadier numbers)
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <vector>

#include "core/quant.h"
#include "core/thread_pool.h"
#include "kernels/kernels.h"
#include "kernels/packed.h"
#include "model/config.h"
#include "moe/moe_ffn.h"
#include "ops/packed_weights.h"

using namespace moe;

namespace {

constexpr int64_t kEmbd = 2048, kFf = 1024, kExperts = 64, kTopK = 8;

std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

// All experts' [rows x k] matrices of one type, in file layout and packed, plus n activation rows.
struct ExpertSet {
  DType wt;
  int64_t rows, k;
  size_t rb, pb;
  std::vector<uint8_t> w, wp, x, xp;
  ExpertSet(DType t, int64_t rows_, int64_t k_, int64_t n) : wt(t), rows(rows_), k(k_) {
    rb = row_bytes(wt, k);
    pb = packable(wt) ? packed_bytes(wt, rows, k) : 0;
    w.resize(rb * rows * kExperts);
    const auto f = randn(static_cast<size_t>(rows * k), 1);
    for (int64_t e = 0; e < kExperts; ++e)
      for (int64_t r = 0; r < rows; ++r) quantize_row(wt, f.data() + r * k, w.data() + (e * rows + r) * rb, k);
    if (pb) {
      wp.resize(pb * kExperts);
      for (int64_t e = 0; e < kExperts; ++e) pack_rows(wt, w.data() + e * rows * rb, rb, rows, k, wp.data() + e * pb);
    }
    const auto xf = randn(static_cast<size_t>(n * k), 2);
    x.resize(row_bytes(vec_dot_type(wt), k) * n);
    reference_kernels().quantize_rows(vec_dot_type(wt), xf.data(), k, n, k, x.data(), row_bytes(vec_dot_type(wt), k));
    if (pb) {
      xp.resize(packed_act_bytes(wt, k) * n);
      reference_kernels().quantize_rows_packed(wt, xf.data(), k, n, k, xp.data(), packed_act_bytes(wt, k));
    }
  }
};

void set_counters(benchmark::State& st, double bytes, double flops) {
  st.counters["GB/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
  st.counters["GFLOP/s"] = benchmark::Counter(flops / 1e9, benchmark::Counter::kIsRate);
}

// One "decode step" of one projection: kTopK experts (cycling over all 64), all rows, n tokens each.
void expert_products(benchmark::State& st, DType wt, int64_t rows, int64_t k, bool packed, const KernelSet& K,
                     int threads) {
  const int64_t n = st.range(0);
  static std::unique_ptr<ExpertSet> set;
  if (!set || set->wt != wt || set->rows != rows || set->k != k || static_cast<int64_t>(set->x.size()) <
      static_cast<int64_t>(row_bytes(vec_dot_type(wt), k) * n))
    set = std::make_unique<ExpertSet>(wt, rows, k, std::max<int64_t>(n, 64));
  ExpertSet& s = *set;
  ThreadPool pool(threads);
  std::vector<float> y(static_cast<size_t>(rows * n));
  const size_t xb = row_bytes(vec_dot_type(wt), k), ab = packed ? packed_act_bytes(wt, k) : 0;
  int64_t e = 0;
  const int64_t blk = std::getenv("BLK") ? std::atoi(std::getenv("BLK")) : 64;
  for (auto _ : st) {
    for (int j = 0; j < kTopK; ++j, e = (e + 7) % kExperts) {
      pool.parallel_for((rows + blk - 1) / blk, [&](int64_t tile, int) {
        const int64_t r0 = tile * blk, r1 = std::min(rows, r0 + blk);
        if (packed)
          K.gemm_packed(wt, s.wp.data() + e * s.pb, r0, r1, k, s.xp.data(), ab, n, y.data(), rows);
        else
          K.gemm(wt, s.w.data() + e * rows * s.rb, s.rb, r0, r1, k, s.x.data(), xb, n, y.data(), rows);
      });
    }
    benchmark::DoNotOptimize(y.data());
  }
  const double per = static_cast<double>(kTopK) * st.iterations();
  set_counters(st, per * static_cast<double>(rows) * s.rb, per * 2.0 * rows * k * n);
}

void BM_ExpertGateQ8_0Packed(benchmark::State& st) { expert_products(st, DType::Q8_0, kFf, kEmbd, true, simd_kernels(), 1); }
void BM_ExpertGateQ8_0Packed2T(benchmark::State& st) { expert_products(st, DType::Q8_0, kFf, kEmbd, true, simd_kernels(), 2); }
void BM_ExpertDownQ8_0Packed(benchmark::State& st) { expert_products(st, DType::Q8_0, kEmbd, kFf, true, simd_kernels(), 1); }
void BM_ExpertGateQ4_KPacked(benchmark::State& st) { expert_products(st, DType::Q4_K, kFf, kEmbd, true, simd_kernels(), 1); }
void BM_ExpertGateQ4_KPacked2T(benchmark::State& st) { expert_products(st, DType::Q4_K, kFf, kEmbd, true, simd_kernels(), 2); }
void BM_ExpertGateQ6_KPacked(benchmark::State& st) { expert_products(st, DType::Q6_K, kFf, kEmbd, true, simd_kernels(), 1); }
void BM_ExpertGateQ4_0Packed(benchmark::State& st) { expert_products(st, DType::Q4_0, kFf, kEmbd, true, simd_kernels(), 1); }
void BM_ExpertGateMXFP4Packed(benchmark::State& st) { expert_products(st, DType::MXFP4, kFf, kEmbd, true, simd_kernels(), 1); }
void BM_ExpertGateMXFP4Packed2T(benchmark::State& st) { expert_products(st, DType::MXFP4, kFf, kEmbd, true, simd_kernels(), 2); }
void BM_ExpertGateMXFP4Ref(benchmark::State& st) { expert_products(st, DType::MXFP4, kFf, kEmbd, false, reference_kernels(), 1); }
void BM_ExpertGateQ8_0Unpacked(benchmark::State& st) { expert_products(st, DType::Q8_0, kFf, kEmbd, false, simd_kernels(), 1); }
void BM_ExpertGateQ8_0Ref(benchmark::State& st) { expert_products(st, DType::Q8_0, kFf, kEmbd, false, reference_kernels(), 1); }
void BM_ExpertGateF16(benchmark::State& st) { expert_products(st, DType::F16, kFf, kEmbd, false, simd_kernels(), 1); }
void BM_ExpertGateBF16(benchmark::State& st) { expert_products(st, DType::BF16, kFf, kEmbd, false, simd_kernels(), 1); }
void BM_RouterF32(benchmark::State& st) { expert_products(st, DType::F32, kExperts, kEmbd, false, simd_kernels(), 1); }

BENCHMARK(BM_ExpertGateQ8_0Packed)->Arg(1)->Arg(4)->Arg(8)->Arg(64);
BENCHMARK(BM_ExpertGateQ8_0Packed2T)->Arg(1)->Arg(8)->UseRealTime();
BENCHMARK(BM_ExpertDownQ8_0Packed)->Arg(1)->Arg(8)->Arg(64);
BENCHMARK(BM_ExpertGateQ4_KPacked)->Arg(1)->Arg(8)->Arg(64);
BENCHMARK(BM_ExpertGateQ4_KPacked2T)->Arg(1)->Arg(8)->UseRealTime();
BENCHMARK(BM_ExpertGateQ6_KPacked)->Arg(1)->Arg(8);
BENCHMARK(BM_ExpertGateQ4_0Packed)->Arg(1)->Arg(8);
BENCHMARK(BM_ExpertGateMXFP4Packed)->Arg(1)->Arg(8)->Arg(64);
BENCHMARK(BM_ExpertGateMXFP4Packed2T)->Arg(1)->Arg(8)->UseRealTime();
BENCHMARK(BM_ExpertGateMXFP4Ref)->Arg(1);
BENCHMARK(BM_ExpertGateQ8_0Unpacked)->Arg(1)->Arg(8);
BENCHMARK(BM_ExpertGateQ8_0Ref)->Arg(1);
BENCHMARK(BM_ExpertGateF16)->Arg(1);
BENCHMARK(BM_ExpertGateBF16)->Arg(1);
BENCHMARK(BM_RouterF32)->Arg(1)->Arg(64);

void quantize(benchmark::State& st, DType wt, bool packed) {
  const int64_t n = st.range(0), k = kEmbd;
  const auto x = randn(static_cast<size_t>(n * k), 3);
  const size_t ob = packed ? packed_act_bytes(wt, k) : row_bytes(vec_dot_type(wt), k);
  std::vector<uint8_t> out(ob * n);
  for (auto _ : st) {
    if (packed) simd_kernels().quantize_rows_packed(wt, x.data(), k, n, k, out.data(), ob);
    else simd_kernels().quantize_rows(vec_dot_type(wt), x.data(), k, n, k, out.data(), ob);
    benchmark::DoNotOptimize(out.data());
  }
  set_counters(st, static_cast<double>(st.iterations()) * n * k * 4, 0);
}
void BM_QuantizeQ8_0Packed(benchmark::State& st) { quantize(st, DType::Q8_0, true); }
void BM_QuantizeQ8_K(benchmark::State& st) { quantize(st, DType::Q4_K, false); }
BENCHMARK(BM_QuantizeQ8_0Packed)->Arg(1)->Arg(64);
BENCHMARK(BM_QuantizeQ8_K)->Arg(1)->Arg(64);

void BM_RmsNorm(benchmark::State& st) {
  const auto x = randn(kEmbd, 4), w = randn(kEmbd, 5);
  std::vector<float> y(kEmbd);
  for (auto _ : st) {
    simd_kernels().rms_norm(x.data(), w.data(), 1e-5f, kEmbd, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  set_counters(st, static_cast<double>(st.iterations()) * kEmbd * 12, static_cast<double>(st.iterations()) * kEmbd * 4);
}
BENCHMARK(BM_RmsNorm);

void BM_Swiglu(benchmark::State& st) {
  const auto g = randn(kFf, 6), u = randn(kFf, 7);
  std::vector<float> y(kFf);
  for (auto _ : st) {
    simd_kernels().swiglu(g.data(), u.data(), kFf, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  set_counters(st, static_cast<double>(st.iterations()) * kFf * 12, 0);
}
BENCHMARK(BM_Swiglu);

void BM_Softmax(benchmark::State& st) {
  const auto x0 = randn(static_cast<size_t>(st.range(0)), 8);
  std::vector<float> x = x0;
  for (auto _ : st) {
    x = x0;
    simd_kernels().softmax(x.data(), st.range(0));
    benchmark::DoNotOptimize(x.data());
  }
}
BENCHMARK(BM_Softmax)->Arg(kExperts)->Arg(4096);

// One head of causal attention (the KV cache layout of Context: keys in blocks of 16 positions) for nq queries
// after n_kv cached positions: nq = 1 is decoding, nq = 16 a block of a prompt.
void BM_Attention(benchmark::State& st) {
  const int64_t hd = 128, n_kv = st.range(0), nq = st.range(1), n_ctx = (n_kv + nq + 15) / 16 * 16;
  const auto q = randn(static_cast<size_t>(nq * hd), 9), kt = randn(static_cast<size_t>(n_ctx * hd), 10),
             v = randn(static_cast<size_t>(n_ctx * hd), 11);
  std::vector<float> scratch(static_cast<size_t>(nq * n_ctx)), out(static_cast<size_t>(nq * hd));
  for (auto _ : st) {
    simd_kernels().attention_kt(q.data(), hd, nq, kt.data(), v.data(), hd, n_kv, hd, 0.088f, scratch.data(), out.data(), hd);
    benchmark::DoNotOptimize(out.data());
  }
  const double pos = static_cast<double>(nq) * n_kv + nq * (nq + 1) / 2.0;
  set_counters(st, static_cast<double>(st.iterations()) * (n_kv + nq) * hd * 8,
               static_cast<double>(st.iterations()) * pos * hd * 4);
}
BENCHMARK(BM_Attention)->Args({64, 1})->Args({512, 1})->Args({4096, 1})->Args({0, 16})->Args({496, 16});

// One whole MoE layer (router, routing, grouping, gate/up/SwiGLU tiles, down + combine) with 2 threads, repacked
// weights: n = 1 is a decode step (GB/s of the 8 experts read), n = 64 a prompt batch.
void moe_layer(benchmark::State& st, DType wt) {
  const int n = static_cast<int>(st.range(0));
  const int64_t rb_in = row_bytes(wt, kEmbd), rb_ff = row_bytes(wt, kFf);
  std::vector<uint8_t> gate(rb_in * kFf * kExperts), up(gate.size()), down(rb_ff * kEmbd * kExperts);
  {
    const auto f = randn(static_cast<size_t>(kFf * kEmbd), 12);
    for (int64_t r = 0; r < kFf * kExperts; ++r) {
      quantize_row(wt, f.data() + (r % kFf) * kEmbd, gate.data() + r * rb_in, kEmbd);
      quantize_row(wt, f.data() + ((r + 5) % kFf) * kEmbd, up.data() + r * rb_in, kEmbd);
    }
    for (int64_t r = 0; r < kEmbd * kExperts; ++r) quantize_row(wt, f.data() + (r % kEmbd) * kFf, down.data() + r * rb_ff, kFf);
  }
  const auto router = randn(static_cast<size_t>(kExperts * kEmbd), 13);
  MoeWeights w;
  w.router = Mat{DType::F32, kExperts, kEmbd, reinterpret_cast<const uint8_t*>(router.data()), kEmbd * sizeof(float)};
  w.gate = ExpertMats{wt, kFf, kEmbd, kExperts, gate.data(), static_cast<size_t>(rb_in), static_cast<size_t>(rb_in * kFf)};
  w.up = ExpertMats{wt, kFf, kEmbd, kExperts, up.data(), static_cast<size_t>(rb_in), static_cast<size_t>(rb_in * kFf)};
  w.down = ExpertMats{wt, kEmbd, kFf, kExperts, down.data(), static_cast<size_t>(rb_ff), static_cast<size_t>(rb_ff * kEmbd)};
  ThreadPool pool(2);
  PackedWeights packed;
  packed.add(w.gate);
  packed.add(w.up);
  packed.add(w.down);
  packed.build(pool);
  const Exec ex{simd_kernels(), pool, &packed};
  RouterSpec spec;
  spec.norm_topk = false;
  MoeScratch scratch;
  scratch.reserve(w, spec, static_cast<int>(kEmbd), n, kTopK);
  ResidentExpertStore store({w.experts()}, ex);
  const MoeLayerSpec layer_spec{spec, {}, kTopK};
  const RoutingControl ctl;
  // Different inputs each iteration, so that different experts are picked (weights come from DRAM, as in decoding).
  constexpr int kInputs = 16;
  const auto x = randn(static_cast<size_t>(kInputs * n * kEmbd), 14);
  std::vector<float> y(static_cast<size_t>(n * kEmbd));
  int i = 0;
  for (auto _ : st) {
    const float* xi = x.data() + static_cast<size_t>(i++ % kInputs) * n * kEmbd;
    moe_ffn_forward(ex, w, store, layer_spec, ctl, 0, xi, n, static_cast<int>(kEmbd), y.data(), scratch, nullptr);
    benchmark::DoNotOptimize(y.data());
  }
  int64_t active = 0;
  for (int64_t e = 0; e < kExperts; ++e) active += scratch.plan.count[static_cast<size_t>(e)] > 0;
  const double it = static_cast<double>(st.iterations());
  set_counters(st, it * static_cast<double>(active) * (2 * rb_in * kFf + rb_ff * kEmbd),
               it * 2.0 * 3 * kFf * kEmbd * kTopK * n);
  st.counters["experts"] = static_cast<double>(active);
}
void BM_MoeLayerQ8_0(benchmark::State& st) { moe_layer(st, DType::Q8_0); }
void BM_MoeLayerQ4_K(benchmark::State& st) { moe_layer(st, DType::Q4_K); }
BENCHMARK(BM_MoeLayerQ8_0)->Arg(1)->Arg(64)->UseRealTime();
BENCHMARK(BM_MoeLayerQ4_K)->Arg(1)->Arg(64)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
