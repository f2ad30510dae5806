// Element-wise and small-reduction kernels: RMSNorm, softmax, SwiGLU, RoPE and one-head causal attention.
// Sums are in float with several vector accumulators (the reference sums in double); exp is Highway's
// (1 ulp), so results agree with the reference to float rounding.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/simd/simd_ops.cpp"
#include "kernels/simd/hwy_config.h"  // first: chooses the compiled targets
#include <hwy/foreach_target.h>       // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>

#include "kernels/kernels.h"
#include "kernels/simd/simd-inl.h"
#include "kernels/simd/simd_internal.h"
#include <hwy/contrib/math/math-inl.h>

HWY_BEFORE_NAMESPACE();
namespace moe {
namespace HWY_NAMESPACE {

MOE_ATTR HWY_INLINE float SumSquares(const float* x, int64_t n) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  VF a0 = hn::Zero(df), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    const VF v0 = hn::LoadU(df, x + i), v1 = hn::LoadU(df, x + i + N);
    const VF v2 = hn::LoadU(df, x + i + 2 * N), v3 = hn::LoadU(df, x + i + 3 * N);
    a0 = hn::MulAdd(v0, v0, a0);
    a1 = hn::MulAdd(v1, v1, a1);
    a2 = hn::MulAdd(v2, v2, a2);
    a3 = hn::MulAdd(v3, v3, a3);
  }
  for (; i + N <= n; i += N) {
    const VF v = hn::LoadU(df, x + i);
    a0 = hn::MulAdd(v, v, a0);
  }
  float s = hn::GetLane(hn::SumOfLanes(df, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
  for (; i < n; ++i) s += x[i] * x[i];
  return s;
}

MOE_ATTR void RmsNorm(const float* x, const float* w, float eps, int64_t n, float* y) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const float scale = 1.0f / std::sqrt(SumSquares(x, n) / static_cast<float>(n) + eps);
  const VF vs = hn::Set(df, scale);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    VF v = hn::Mul(hn::LoadU(df, x + i), vs);
    if (w) v = hn::Mul(v, hn::LoadU(df, w + i));
    hn::StoreU(v, df, y + i);
  }
  for (; i < n; ++i) y[i] = w ? x[i] * scale * w[i] : x[i] * scale;
}

MOE_ATTR void Softmax(float* x, int64_t n) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  float mx = -INFINITY;
  int64_t i = 0;
  if (n >= N) {
    VF vm = hn::Set(df, -INFINITY);
    for (; i + N <= n; i += N) vm = hn::Max(vm, hn::LoadU(df, x + i));
    mx = hn::GetLane(hn::MaxOfLanes(df, vm));
  }
  for (; i < n; ++i) mx = std::max(mx, x[i]);
  const VF vmx = hn::Set(df, mx);
  VF vsum = hn::Zero(df);
  for (i = 0; i + N <= n; i += N) {
    const VF e = hn::Exp(df, hn::Sub(hn::LoadU(df, x + i), vmx));
    hn::StoreU(e, df, x + i);
    vsum = hn::Add(vsum, e);
  }
  float sum = hn::GetLane(hn::SumOfLanes(df, vsum));
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  const VF vinv = hn::Set(df, inv);
  for (i = 0; i + N <= n; i += N) hn::StoreU(hn::Mul(hn::LoadU(df, x + i), vinv), df, x + i);
  for (; i < n; ++i) x[i] *= inv;
}

// Softmax whose denominator has one more term exp(sink - max) (attention sinks): the max includes the sink.
MOE_ATTR void SoftmaxSink(float* x, int64_t n, float sink) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  float mx = sink;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  const VF vmx = hn::Set(df, mx);
  VF vsum = hn::Zero(df);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const VF e = hn::Exp(df, hn::Sub(hn::LoadU(df, x + i), vmx));
    hn::StoreU(e, df, x + i);
    vsum = hn::Add(vsum, e);
  }
  float sum = hn::GetLane(hn::SumOfLanes(df, vsum));
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  sum += std::exp(sink - mx);
  const float inv = 1.0f / sum;
  for (i = 0; i < n; ++i) x[i] *= inv;
}

// silu(g) * u = g / (1 + exp(-g)) * u. exp's argument is capped where float exp is already inf.
MOE_ATTR void Swiglu(const float* gate, const float* up, int64_t n, float* out) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const VF one = hn::Set(df, 1.0f), cap = hn::Set(df, 100.0f);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const VF g = hn::LoadU(df, gate + i);
    const VF e = hn::Exp(df, hn::Min(hn::Neg(g), cap));
    hn::StoreU(hn::Mul(hn::Div(g, hn::Add(one, e)), hn::LoadU(df, up + i)), df, out + i);
  }
  for (; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

MOE_ATTR void Rope(float* x, int64_t n_head, int64_t head_dim, int64_t n_rot, const float* cs, bool neox) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t half = n_rot / 2;
  for (int64_t h = 0; h < n_head; ++h) {
    float* xh = x + h * head_dim;
    int64_t i = 0;
    if (neox) {
      for (; i + N <= half; i += N) {
        const VF x0 = hn::LoadU(df, xh + i), x1 = hn::LoadU(df, xh + half + i);
        const VF c = hn::LoadU(df, cs + i), s = hn::LoadU(df, cs + half + i);
        hn::StoreU(hn::Sub(hn::Mul(x0, c), hn::Mul(x1, s)), df, xh + i);
        hn::StoreU(hn::Add(hn::Mul(x0, s), hn::Mul(x1, c)), df, xh + half + i);
      }
    }
    for (; i < half; ++i) {
      const float c = cs[i], s = cs[half + i];
      float* a = neox ? xh + i : xh + 2 * i;
      float* b = neox ? xh + i + half : xh + 2 * i + 1;
      const float x0 = *a, x1 = *b;
      *a = x0 * c - x1 * s;
      *b = x0 * s + x1 * c;
    }
  }
}

MOE_ATTR HWY_INLINE float Dot(const float* a, const float* b, int64_t n) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  VF a0 = hn::Zero(df), a1 = a0;
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    a0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), a0);
    a1 = hn::MulAdd(hn::LoadU(df, a + i + N), hn::LoadU(df, b + i + N), a1);
  }
  for (; i + N <= n; i += N) a0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), a0);
  float s = hn::GetLane(hn::SumOfLanes(df, hn::Add(a0, a1)));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

MOE_ATTR void Attention(const float* q, const float* k, const float* v, int64_t kv_stride, int64_t n_kv,
                        int64_t head_dim, float scale, float* scratch, float* out) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  for (int64_t j = 0; j < n_kv; ++j) scratch[j] = Dot(q, k + j * kv_stride, head_dim) * scale;
  Softmax(scratch, n_kv);
  int64_t d = 0;
  // Output columns in blocks of up to 4 vectors kept in registers across all positions.
  for (; d + 4 * N <= head_dim; d += 4 * N) {
    VF o0 = hn::Zero(df), o1 = o0, o2 = o0, o3 = o0;
    for (int64_t j = 0; j < n_kv; ++j) {
      const float* vj = v + j * kv_stride + d;
      const VF p = hn::Set(df, scratch[j]);
      o0 = hn::MulAdd(p, hn::LoadU(df, vj), o0);
      o1 = hn::MulAdd(p, hn::LoadU(df, vj + N), o1);
      o2 = hn::MulAdd(p, hn::LoadU(df, vj + 2 * N), o2);
      o3 = hn::MulAdd(p, hn::LoadU(df, vj + 3 * N), o3);
    }
    hn::StoreU(o0, df, out + d);
    hn::StoreU(o1, df, out + d + N);
    hn::StoreU(o2, df, out + d + 2 * N);
    hn::StoreU(o3, df, out + d + 3 * N);
  }
  for (; d + N <= head_dim; d += N) {
    VF o = hn::Zero(df);
    for (int64_t j = 0; j < n_kv; ++j) o = hn::MulAdd(hn::Set(df, scratch[j]), hn::LoadU(df, v + j * kv_stride + d), o);
    hn::StoreU(o, df, out + d);
  }
  for (; d < head_dim; ++d) {
    float o = 0.0f;
    for (int64_t j = 0; j < n_kv; ++j) o += scratch[j] * v[j * kv_stride + d];
    out[d] = o;
  }
}

// Scores of up to 4 queries (kQ) for the 16 positions of key block kb: s_i = scale * sum_d q_i[d] * kb[d][0..16).
template <int kQ>
MOE_ATTR HWY_INLINE void ScoresKt(const float* q, int64_t q_stride, const float* kb, int64_t head_dim, float scale,
                                  float* const* rows, int64_t j0) {
  const hn::CappedTag<float, kKeyBlock> df;  // at most one key block per vector
  constexpr int64_t B = kKeyBlock;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  for (int64_t v = 0; v < B; v += N) {  // one pass per vector of the block (one on AVX-512)
    hn::Vec<decltype(df)> acc[kQ];
    for (int i = 0; i < kQ; ++i) acc[i] = hn::Zero(df);
    for (int64_t d = 0; d < head_dim; ++d) {
      const VF k = hn::LoadU(df, kb + d * B + v);
      for (int i = 0; i < kQ; ++i) acc[i] = hn::MulAdd(hn::Set(df, q[i * q_stride + d]), k, acc[i]);
    }
    for (int i = 0; i < kQ; ++i) hn::StoreU(hn::Mul(acc[i], hn::Set(df, scale)), df, rows[i] + j0 + v);
  }
}

// out_i[d0 .. d0 + 4N) = sum_{j < n_j} p_i[j] v_j[...] for up to 4 queries (kQ); p_i is zero past each query's
// causal limit, so the queries share one loop over positions.
template <int kQ>
MOE_ATTR HWY_INLINE void WeightedV(const float* const* p, const float* v, int64_t v_stride, int64_t n_j, int64_t d0,
                                   float* const* out) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  VF acc[kQ][4];
  for (int i = 0; i < kQ; ++i)
    for (int c = 0; c < 4; ++c) acc[i][c] = hn::Zero(df);
  for (int64_t j = 0; j < n_j; ++j) {
    const float* vj = v + j * v_stride + d0;
    const VF v0 = hn::LoadU(df, vj), v1 = hn::LoadU(df, vj + N), v2 = hn::LoadU(df, vj + 2 * N),
             v3 = hn::LoadU(df, vj + 3 * N);
    for (int i = 0; i < kQ; ++i) {
      const VF w = hn::Set(df, p[i][j]);
      acc[i][0] = hn::MulAdd(w, v0, acc[i][0]);
      acc[i][1] = hn::MulAdd(w, v1, acc[i][1]);
      acc[i][2] = hn::MulAdd(w, v2, acc[i][2]);
      acc[i][3] = hn::MulAdd(w, v3, acc[i][3]);
    }
  }
  for (int i = 0; i < kQ; ++i)
    for (int c = 0; c < 4; ++c) hn::StoreU(acc[i][c], df, out[i] + d0 + c * N);
}

MOE_ATTR void AttentionKt(const float* q, int64_t q_stride, int64_t nq, const float* kt, const float* v,
                          int64_t v_stride, int64_t n_kv0, int64_t head_dim, float scale, float* scratch, float* out,
                          int64_t out_stride, int64_t window, float sink) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  constexpr int64_t B = kKeyBlock;
  const int64_t n_max = n_kv0 + nq;  // positions seen by the last query
  const int64_t row_len = (n_max + B - 1) / B * B;
  auto row = [&](int64_t i) { return scratch + i * row_len; };
  // 1. Scores, 4 queries x 16 positions at a time (whole key blocks; positions past a query's causal limit are
  // computed and then ignored).
  for (int64_t i0 = 0; i0 < nq; i0 += 4) {
    const int kq = static_cast<int>(std::min<int64_t>(4, nq - i0));
    float* rows[4];
    for (int i = 0; i < kq; ++i) rows[i] = row(i0 + i);
    const int64_t n_j = n_kv0 + i0 + kq;  // the furthest position this group of queries needs
    const float* qi = q + i0 * q_stride;
    for (int64_t j0 = 0; j0 < n_j; j0 += B) {
      const float* kb = kt + (j0 / B) * B * head_dim;
      switch (kq) {
        case 4: ScoresKt<4>(qi, q_stride, kb, head_dim, scale, rows, j0); break;
        case 3: ScoresKt<3>(qi, q_stride, kb, head_dim, scale, rows, j0); break;
        case 2: ScoresKt<2>(qi, q_stride, kb, head_dim, scale, rows, j0); break;
        default: ScoresKt<1>(qi, q_stride, kb, head_dim, scale, rows, j0); break;
      }
    }
  }
  // 2. Softmax per query over its own positions (within the window); zeros outside them, so that step 3 can
  // still run every query of a group over the same positions.
  for (int64_t i = 0; i < nq; ++i) {
    const int64_t n_kv = n_kv0 + i + 1;
    const int64_t lo = window > 0 ? std::max<int64_t>(0, n_kv - window) : 0;
    if (sink == -INFINITY) Softmax(row(i) + lo, n_kv - lo);
    else SoftmaxSink(row(i) + lo, n_kv - lo, sink);
    for (int64_t j = 0; j < lo; ++j) row(i)[j] = 0.0f;
    for (int64_t j = n_kv; j < n_max; ++j) row(i)[j] = 0.0f;
  }
  // 3. Weighted sums of V, 4 queries x 4 vectors of dims at a time.
  for (int64_t i0 = 0; i0 < nq; i0 += 4) {
    const int kq = static_cast<int>(std::min<int64_t>(4, nq - i0));
    const float* p[4];
    float* o[4];
    for (int i = 0; i < kq; ++i) {
      p[i] = row(i0 + i);
      o[i] = out + (i0 + i) * out_stride;
    }
    const int64_t n_j = n_kv0 + i0 + kq;
    int64_t d0 = 0;
    for (; d0 + 4 * N <= head_dim; d0 += 4 * N) {
      switch (kq) {
        case 4: WeightedV<4>(p, v, v_stride, n_j, d0, o); break;
        case 3: WeightedV<3>(p, v, v_stride, n_j, d0, o); break;
        case 2: WeightedV<2>(p, v, v_stride, n_j, d0, o); break;
        default: WeightedV<1>(p, v, v_stride, n_j, d0, o); break;
      }
    }
    for (int i = 0; i < kq; ++i)
      for (int64_t d = d0; d < head_dim; ++d) {
        float s = 0.0f;
        for (int64_t j = 0; j < n_j; ++j) s += p[i][j] * v[j * v_stride + d];
        o[i][d] = s;
      }
  }
}

// Sum of n 64-bit words with four vector accumulators: a pure streaming read, for bandwidth measurement.
MOE_ATTR uint64_t StreamSum(const uint64_t* p, size_t n) {
  const hn::ScalableTag<uint64_t> d;
  const size_t N = hn::Lanes(d);
  auto a0 = hn::Zero(d), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    a0 = hn::Add(a0, hn::LoadU(d, p + i));
    a1 = hn::Add(a1, hn::LoadU(d, p + i + N));
    a2 = hn::Add(a2, hn::LoadU(d, p + i + 2 * N));
    a3 = hn::Add(a3, hn::LoadU(d, p + i + 3 * N));
  }
  uint64_t s = hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
  for (; i < n; ++i) s += p[i];
  return s;
}

}  // namespace HWY_NAMESPACE
}  // namespace moe
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace moe {
HWY_EXPORT(RmsNorm);
HWY_EXPORT(Softmax);
HWY_EXPORT(Swiglu);
HWY_EXPORT(Rope);
HWY_EXPORT(Attention);
HWY_EXPORT(StreamSum);
HWY_EXPORT(AttentionKt);

void simd_attention_kt(const float* q, int64_t q_stride, int64_t nq, const float* kt, const float* v, int64_t v_stride,
                       int64_t n_kv0, int64_t head_dim, float scale, float* scratch, float* out, int64_t out_stride) {
  HWY_DYNAMIC_DISPATCH(AttentionKt)(q, q_stride, nq, kt, v, v_stride, n_kv0, head_dim, scale, scratch, out, out_stride,
                                    0, -INFINITY);
}

void simd_attention_kt_masked(const float* q, int64_t q_stride, int64_t nq, const float* kt, const float* v,
                              int64_t v_stride, int64_t n_kv0, int64_t head_dim, float scale, float* scratch,
                              float* out, int64_t out_stride, int64_t window, float sink) {
  HWY_DYNAMIC_DISPATCH(AttentionKt)(q, q_stride, nq, kt, v, v_stride, n_kv0, head_dim, scale, scratch, out, out_stride,
                                    window, sink);
}

uint64_t simd_stream_sum(const uint64_t* p, size_t n) { return HWY_DYNAMIC_DISPATCH(StreamSum)(p, n); }

void simd_rms_norm(const float* x, const float* w, float eps, int64_t n, float* y) {
  HWY_DYNAMIC_DISPATCH(RmsNorm)(x, w, eps, n, y);
}
void simd_softmax(float* x, int64_t n) { HWY_DYNAMIC_DISPATCH(Softmax)(x, n); }
void simd_swiglu(const float* gate, const float* up, int64_t n, float* out) {
  HWY_DYNAMIC_DISPATCH(Swiglu)(gate, up, n, out);
}
void simd_rope(float* x, int64_t n_head, int64_t head_dim, int64_t n_rot, const float* cs, bool neox) {
  HWY_DYNAMIC_DISPATCH(Rope)(x, n_head, head_dim, n_rot, cs, neox);
}
void simd_attention(const float* q, const float* k, const float* v, int64_t kv_stride, int64_t n_kv, int64_t head_dim,
                    float scale, float* scratch, float* out) {
  HWY_DYNAMIC_DISPATCH(Attention)(q, k, v, kv_stride, n_kv, head_dim, scale, scratch, out);
}
}  // namespace moe
#endif
