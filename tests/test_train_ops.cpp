// Finite-difference checks of every training op against double-precision references written here from the
// maths (not from the op code): forward values and every input/parameter gradient. The numeric gradient is
// a central difference of the double reference (eps 1e-6, error ~1e-10), so the tolerance only has to
// cover our float arithmetic: rel_tol is relative to the largest gradient of the tensor.
// Each line "[fd] name: max abs ..., max rel ..." is the measured agreement (reported in docs/training.md).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <vector>

#include "train/blas.h"
#include "train/ops.h"

using namespace moe;
using namespace moe::train;

namespace {

using Vd = std::vector<double>;

std::vector<float> randn(size_t n, unsigned seed, float std = 1.0f, float mean = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(mean, std);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

Vd to_d(const std::vector<float>& v) { return Vd(v.begin(), v.end()); }

// Central-difference gradient of f at x.
Vd numeric_grad(const std::function<double(const Vd&)>& f, Vd x, double eps = 1e-6) {
  Vd g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i];
    x[i] = x0 + eps;
    const double fp = f(x);
    x[i] = x0 - eps;
    const double fm = f(x);
    x[i] = x0;
    g[i] = (fp - fm) / (2 * eps);
  }
  return g;
}

// Compares a float result with its double reference; prints and checks max abs and relative-to-max diffs.
void expect_close(const std::string& what, const float* got, const Vd& want, double rel_tol) {
  double max_abs = 0, scale = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    max_abs = std::max(max_abs, std::fabs(got[i] - want[i]));
    scale = std::max(scale, std::fabs(want[i]));
  }
  const double rel = max_abs / std::max(scale, 1e-30);
  std::printf("[fd] %-28s max abs %.3e, max rel %.3e (scale %.3e)\n", what.c_str(), max_abs, rel, scale);
  EXPECT_LE(rel, rel_tol) << what;
}

double dot(const Vd& a, const Vd& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// ---- double references -------------------------------------------------------------------------------

Vd rmsnorm_ref(const Vd& x, const Vd& w, int n, int d, double eps) {
  Vd y(x.size());
  for (int i = 0; i < n; ++i) {
    double ss = 0;
    for (int j = 0; j < d; ++j) ss += x[i * d + j] * x[i * d + j];
    const double r = 1.0 / std::sqrt(ss / d + eps);
    for (int j = 0; j < d; ++j) y[i * d + j] = x[i * d + j] * r * w[j];
  }
  return y;
}

Vd rope_ref(const Vd& x, int n_tok, int H, int hd, int T, double theta) {
  Vd y = x;
  const int half = hd / 2;
  for (int t = 0; t < n_tok; ++t)
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < half; ++i) {
        const double ang = (t % T) * std::pow(theta, -2.0 * i / hd);
        const size_t o = (static_cast<size_t>(t) * H + h) * hd;
        const double a = x[o + i], b = x[o + i + half];
        y[o + i] = a * std::cos(ang) - b * std::sin(ang);
        y[o + i + half] = a * std::sin(ang) + b * std::cos(ang);
      }
  return y;
}

Vd attention_ref(const Vd& q, const Vd& k, const Vd& v, int B, int T, int H, int Hkv, int hd, double scale) {
  const int qd = H * hd, kvd = Hkv * hd, group = H / Hkv;
  Vd out(static_cast<size_t>(B) * T * qd, 0.0);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < T; ++i) {
        std::vector<double> s(static_cast<size_t>(i) + 1);
        double mx = -1e300;
        for (int j = 0; j <= i; ++j) {
          double acc = 0;
          for (int c = 0; c < hd; ++c)
            acc += q[(static_cast<size_t>(b) * T + i) * qd + h * hd + c] * k[(static_cast<size_t>(b) * T + j) * kvd + (h / group) * hd + c];
          s[j] = acc * scale;
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (double& x : s) sum += (x = std::exp(x - mx));
        for (int j = 0; j <= i; ++j)
          for (int c = 0; c < hd; ++c)
            out[(static_cast<size_t>(b) * T + i) * qd + h * hd + c] +=
                s[j] / sum * v[(static_cast<size_t>(b) * T + j) * kvd + (h / group) * hd + c];
      }
  return out;
}

}  // namespace

TEST(TrainOps, LinearMatchesNaiveProduct) {
  ThreadPool pool(2);
  const int n = 37, in = 33, out = 70;  // awkward sizes; large enough to take the threaded path
  auto x = randn(n * in, 1), W = randn(out * in, 2), dy = randn(n * out, 3);
  std::vector<float> y(n * out), dx(n * in), dW(out * in, 0.f);
  linear_fwd(pool, x.data(), W.data(), n, in, out, y.data());
  linear_bwd_x(pool, dy.data(), W.data(), n, in, out, dx.data(), false);
  linear_bwd_w(pool, dy.data(), x.data(), n, in, out, dW.data());
  Vd ry(y.size()), rdx(dx.size()), rdW(dW.size());
  for (int t = 0; t < n; ++t)
    for (int o = 0; o < out; ++o)
      for (int i = 0; i < in; ++i) {
        ry[t * out + o] += static_cast<double>(x[t * in + i]) * W[o * in + i];
        rdx[t * in + i] += static_cast<double>(dy[t * out + o]) * W[o * in + i];
        rdW[o * in + i] += static_cast<double>(dy[t * out + o]) * x[t * in + i];
      }
  expect_close("linear y", y.data(), ry, 1e-6);
  expect_close("linear dx", dx.data(), rdx, 1e-6);
  expect_close("linear dW", dW.data(), rdW, 1e-6);
  // Big enough to be split over threads: the same values as one thread up to BLAS edge kernels (row blocks
  // can end mid micro-tile, whose kernel may round differently); results are deterministic per thread count.
  const int N2 = 300, K2 = 64, M2 = 200;
  auto A = randn(N2 * K2, 4), Bm = randn(M2 * K2, 5);
  std::vector<float> c1(N2 * M2), c2(N2 * M2);
  ThreadPool one(1);
  linear_fwd(one, A.data(), Bm.data(), N2, K2, M2, c1.data());
  linear_fwd(pool, A.data(), Bm.data(), N2, K2, M2, c2.data());
  for (size_t i = 0; i < c1.size(); ++i) ASSERT_NEAR(c1[i], c2[i], 1e-5f * (1.0f + std::fabs(c1[i])));
  std::vector<float> c3(N2 * M2);
  linear_fwd(pool, A.data(), Bm.data(), N2, K2, M2, c3.data());
  for (size_t i = 0; i < c1.size(); ++i) ASSERT_EQ(c2[i], c3[i]);
}

TEST(TrainOps, RmsNormForwardAndGradients) {
  ThreadPool pool(2);
  OpsScratch s;
  const int n = 5, d = 33;
  const float eps = 1e-6f;
  auto x = randn(n * d, 10, 1.0f), w = randn(d, 11, 0.3f, 1.0f), c = randn(n * d, 12);
  std::vector<float> y(n * d), rstd(n), dx(n * d), dw(d, 0.f);
  s.reserve(2, d, 1);
  rmsnorm_fwd(pool, x.data(), w.data(), n, d, eps, y.data(), rstd.data());
  expect_close("rmsnorm y", y.data(), rmsnorm_ref(to_d(x), to_d(w), n, d, eps), 1e-6);
  rmsnorm_bwd(pool, s, c.data(), x.data(), w.data(), rstd.data(), n, d, dx.data(), false, dw.data());
  const Vd cd = to_d(c);
  auto gx = numeric_grad([&](const Vd& xx) { return dot(cd, rmsnorm_ref(xx, to_d(w), n, d, eps)); }, to_d(x));
  auto gw = numeric_grad([&](const Vd& ww) { return dot(cd, rmsnorm_ref(to_d(x), ww, n, d, eps)); }, to_d(w));
  expect_close("rmsnorm dx", dx.data(), gx, 1e-5);
  expect_close("rmsnorm dw", dw.data(), gw, 1e-5);
  // accumulate adds on top
  std::vector<float> dx2(n * d, 1.0f);
  rmsnorm_bwd(pool, s, c.data(), x.data(), w.data(), rstd.data(), n, d, dx2.data(), true, dw.data());
  for (int i = 0; i < n * d; ++i) ASSERT_NEAR(dx2[i], dx[i] + 1.0f, 1e-6);
}

TEST(TrainOps, RopeForwardAndGradient) {
  ThreadPool pool(2);
  const int n_tok = 12, H = 3, hd = 8, T = 6;
  const float theta = 10000.f;
  std::vector<float> cs(T * hd);
  rope_table(T, hd, theta, cs.data());
  auto x = randn(n_tok * H * hd, 20), c = randn(n_tok * H * hd, 21);
  std::vector<float> y = x;
  rope_apply(pool, y.data(), n_tok, H, hd, T, cs.data(), false);
  expect_close("rope y", y.data(), rope_ref(to_d(x), n_tok, H, hd, T, theta), 1e-6);
  std::vector<float> g = c;
  rope_apply(pool, g.data(), n_tok, H, hd, T, cs.data(), true);
  const Vd cd = to_d(c);
  auto gx = numeric_grad([&](const Vd& xx) { return dot(cd, rope_ref(xx, n_tok, H, hd, T, theta)); }, to_d(x));
  expect_close("rope dx", g.data(), gx, 1e-6);
}

TEST(TrainOps, AttentionForwardAndGradients) {
  ThreadPool pool(2);
  OpsScratch s;
  const int B = 2, T = 7, H = 4, Hkv = 2, hd = 8;
  const int qd = H * hd, kvd = Hkv * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  s.reserve(2, 64, T);
  auto q = randn(B * T * qd, 30), k = randn(B * T * kvd, 31), v = randn(B * T * kvd, 32), c = randn(B * T * qd, 33);
  std::vector<float> P(B * H * T * T), out(B * T * qd), dq(q.size()), dk(k.size()), dv(v.size());
  attention_fwd(pool, q.data(), k.data(), v.data(), B, T, H, Hkv, hd, scale, P.data(), out.data());
  expect_close("attention out", out.data(), attention_ref(to_d(q), to_d(k), to_d(v), B, T, H, Hkv, hd, scale), 1e-6);
  attention_bwd(pool, s, c.data(), q.data(), k.data(), v.data(), P.data(), B, T, H, Hkv, hd, scale, dq.data(), dk.data(),
                dv.data());
  const Vd cd = to_d(c), qd_ = to_d(q), kd = to_d(k), vd = to_d(v);
  auto gq = numeric_grad([&](const Vd& x) { return dot(cd, attention_ref(x, kd, vd, B, T, H, Hkv, hd, scale)); }, qd_);
  auto gk = numeric_grad([&](const Vd& x) { return dot(cd, attention_ref(qd_, x, vd, B, T, H, Hkv, hd, scale)); }, kd);
  auto gv = numeric_grad([&](const Vd& x) { return dot(cd, attention_ref(qd_, kd, x, B, T, H, Hkv, hd, scale)); }, vd);
  expect_close("attention dq", dq.data(), gq, 1e-5);
  expect_close("attention dk", dk.data(), gk, 1e-5);
  expect_close("attention dv", dv.data(), gv, 1e-5);
}

TEST(TrainOps, AttentionLongSequenceInBlocks) {
  // T = 150 spans three query/key blocks, the last one ragged. Gradients are checked along random directions
  // (directional finite differences of the double reference), which costs a few forward passes.
  ThreadPool pool(2);
  OpsScratch s;
  const int B = 1, T = 150, H = 2, Hkv = 1, hd = 8;
  const int qd = H * hd, kvd = Hkv * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  s.reserve(2, 64, T);
  auto q = randn(B * T * qd, 34), k = randn(B * T * kvd, 35), v = randn(B * T * kvd, 36), c = randn(B * T * qd, 37);
  std::vector<float> P(B * H * T * T), out(B * T * qd), dq(q.size()), dk(k.size()), dv(v.size());
  attention_fwd(pool, q.data(), k.data(), v.data(), B, T, H, Hkv, hd, scale, P.data(), out.data());
  expect_close("attention T=150 out", out.data(), attention_ref(to_d(q), to_d(k), to_d(v), B, T, H, Hkv, hd, scale), 1e-6);
  attention_bwd(pool, s, c.data(), q.data(), k.data(), v.data(), P.data(), B, T, H, Hkv, hd, scale, dq.data(), dk.data(),
                dv.data());
  const Vd cd = to_d(c);
  auto L = [&](const Vd& qq, const Vd& kk, const Vd& vv) { return dot(cd, attention_ref(qq, kk, vv, B, T, H, Hkv, hd, scale)); };
  for (int dir = 0; dir < 3; ++dir) {
    const Vd uq = to_d(randn(q.size(), 100 + dir)), uk = to_d(randn(k.size(), 200 + dir)), uv = to_d(randn(v.size(), 300 + dir));
    const double eps = 1e-6;
    auto shifted = [&](const std::vector<float>& x, const Vd& u, double e) {
      Vd y = to_d(x);
      for (size_t i = 0; i < y.size(); ++i) y[i] += e * u[i];
      return y;
    };
    const double num = (L(shifted(q, uq, eps), shifted(k, uk, eps), shifted(v, uv, eps)) -
                        L(shifted(q, uq, -eps), shifted(k, uk, -eps), shifted(v, uv, -eps))) / (2 * eps);
    double ana = 0;
    for (size_t i = 0; i < q.size(); ++i) ana += dq[i] * uq[i];
    for (size_t i = 0; i < k.size(); ++i) ana += dk[i] * uk[i];
    for (size_t i = 0; i < v.size(); ++i) ana += dv[i] * uv[i];
    std::printf("[fd] attention T=150 direction %d: analytic %.8f numeric %.8f\n", dir, ana, num);
    EXPECT_NEAR(ana, num, 1e-5 * (1 + std::fabs(num)));
  }
}

TEST(TrainOps, SwigluForwardAndGradients) {
  ThreadPool pool(2);
  const int n = 5000;  // threaded path
  auto g = randn(n, 40, 3.0f), u = randn(n, 41), c = randn(n, 42);
  std::vector<float> a(n), dg(n), du(n);
  swiglu_fwd(pool, g.data(), u.data(), n, a.data());
  Vd ra(n), rdg(n), rdu(n);
  for (int i = 0; i < n; ++i) {
    const double s = 1.0 / (1.0 + std::exp(-static_cast<double>(g[i])));
    ra[i] = g[i] * s * u[i];
    rdg[i] = c[i] * u[i] * (s + g[i] * s * (1 - s));
    rdu[i] = c[i] * g[i] * s;
  }
  expect_close("swiglu a", a.data(), ra, 1e-6);
  swiglu_bwd(pool, c.data(), g.data(), u.data(), n, dg.data(), du.data());
  // Numeric check of the closed forms on a few elements, then the whole arrays against them.
  for (int i = 0; i < 5; ++i) {
    auto f = [&](const Vd& x) { return c[i] * x[0] / (1 + std::exp(-x[0])) * x[1]; };
    auto gn = numeric_grad(f, {g[i], u[i]});
    EXPECT_NEAR(gn[0], rdg[i], 1e-6 * (1 + std::fabs(rdg[i])));
    EXPECT_NEAR(gn[1], rdu[i], 1e-6 * (1 + std::fabs(rdu[i])));
  }
  expect_close("swiglu dg", dg.data(), rdg, 1e-6);
  expect_close("swiglu du", du.data(), rdu, 1e-6);
}

TEST(TrainOps, CrossEntropyLossAndGradient) {
  ThreadPool pool(2);
  OpsScratch s;
  s.reserve(2, 8, 1);
  const int n = 6, V = 50;
  auto logits = randn(n * V, 50, 2.0f);
  std::vector<int32_t> tgt = {3, 49, -1, 0, 17, 17};
  auto ce_ref = [&](const Vd& l) {
    double sum = 0;
    for (int i = 0; i < n; ++i) {
      if (tgt[i] < 0) continue;
      double mx = -1e300, z = 0;
      for (int j = 0; j < V; ++j) mx = std::max(mx, l[i * V + j]);
      for (int j = 0; j < V; ++j) z += std::exp(l[i * V + j] - mx);
      sum += mx + std::log(z) - l[i * V + tgt[i]];
    }
    return sum / 5.0;  // 5 counted rows
  };
  std::vector<float> g = logits, nll(n);
  const CeResult r = cross_entropy(pool, s, g.data(), tgt.data(), n, V, 1.0f / 5.0f, nll.data());
  EXPECT_EQ(r.count, 5);
  EXPECT_NEAR(r.loss_sum / 5.0, ce_ref(to_d(logits)), 1e-5);
  EXPECT_EQ(nll[2], 0.0f);
  expect_close("cross-entropy dlogits", g.data(), numeric_grad(ce_ref, to_d(logits)), 1e-5);
}

TEST(TrainOps, EmbeddingGradientAccumulatesRepeatedTokens) {
  const int d = 4;
  std::vector<float> E = randn(5 * d, 60), x(3 * d), dE(5 * d, 0.f);
  std::vector<int32_t> toks = {2, 4, 2};
  embedding_fwd(E.data(), toks.data(), 3, d, x.data());
  for (int i = 0; i < d; ++i) EXPECT_EQ(x[d + i], E[4 * d + i]);
  std::vector<float> dx(3 * d, 1.0f);
  embedding_bwd(dx.data(), toks.data(), 3, d, dE.data());
  EXPECT_EQ(dE[2 * d], 2.0f);
  EXPECT_EQ(dE[4 * d], 1.0f);
  EXPECT_EQ(dE[0], 0.0f);
}
