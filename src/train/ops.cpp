#include "train/ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/rope_angles.h"
#include "train/blas.h"
#include "train/vec_math.h"

namespace moe::train {

void OpsScratch::reserve(int threads, int64_t max_d, int64_t T) {
  partial.assign(static_cast<size_t>(threads) * static_cast<size_t>(max_d), 0.0f);
  tt.assign(static_cast<size_t>(threads) * static_cast<size_t>(T * T), 0.0f);
  loss.assign(static_cast<size_t>(threads), 0.0);
  count.assign(static_cast<size_t>(threads), 0);
}

namespace {

MOE_VEC_CLONES float row_rstd(const float* x, int64_t d, float eps) {
  double ss = 0.0;
  for (int64_t i = 0; i < d; ++i) ss += static_cast<double>(x[i] * x[i]);
  return 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(d)) + eps);
}

MOE_VEC_CLONES void scale_row(const float* x, const float* w, float r, int64_t d, float* y) {
  for (int64_t i = 0; i < d; ++i) y[i] = x[i] * r * w[i];
}

// dx = r * (w*dy) - x * r^3 / d * sum(w*dy*x); dw += dy * x * r
MOE_VEC_CLONES void rmsnorm_row_bwd(const float* dy, const float* x, const float* w, float r, int64_t d, float* dx,
                                    bool accumulate, float* dw) {
  float dot = 0.0f;
  for (int64_t i = 0; i < d; ++i) dot += w[i] * dy[i] * x[i];
  const float c = dot * r * r * r / static_cast<float>(d);
  if (accumulate) {
    for (int64_t i = 0; i < d; ++i) dx[i] += r * w[i] * dy[i] - c * x[i];
  } else {
    for (int64_t i = 0; i < d; ++i) dx[i] = r * w[i] * dy[i] - c * x[i];
  }
  for (int64_t i = 0; i < d; ++i) dw[i] += dy[i] * x[i] * r;
}

MOE_VEC_CLONES void swiglu_span(const float* g, const float* u, int64_t n, float* a) {
  for (int64_t i = 0; i < n; ++i) a[i] = g[i] * vsigmoid(g[i]) * u[i];
}

MOE_VEC_CLONES void swiglu_bwd_span(const float* da, const float* g, const float* u, int64_t n, float* dg, float* du) {
  for (int64_t i = 0; i < n; ++i) {
    const float s = vsigmoid(g[i]);
    const float silu = g[i] * s;
    const float d = da[i];
    dg[i] = d * u[i] * s * (1.0f + g[i] * (1.0f - s));
    du[i] = d * silu;
  }
}

// In-place softmax of row[0..n) (n >= 1); returns log-sum-exp.
MOE_VEC_CLONES float softmax_row(float* row, int64_t n) {
  float mx = row[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max(mx, row[i]);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    row[i] = vexp(row[i] - mx);
    sum += row[i];
  }
  const float inv = 1.0f / sum;
  for (int64_t i = 0; i < n; ++i) row[i] *= inv;
  return mx + std::log(sum);
}

MOE_VEC_CLONES void scale_span(float* x, int64_t n, float s) {
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

// dS = P * (dP - rowsum(P * dP)) on the causal part of row i (columns 0..i).
MOE_VEC_CLONES void softmax_row_bwd(const float* p, float* dp, int64_t n) {
  float dot = 0.0f;
  for (int64_t j = 0; j < n; ++j) dot += p[j] * dp[j];
  for (int64_t j = 0; j < n; ++j) dp[j] = p[j] * (dp[j] - dot);
}

}  // namespace

void rmsnorm_fwd(ThreadPool& pool, const float* x, const float* w, int64_t n, int64_t d, float eps, float* y,
                 float* rstd) {
  const int nt = pool.size();
  pool.parallel_for(nt, [&](int64_t part, int) {
    int64_t b, e;
    split_range(n, nt, static_cast<int>(part), b, e);
    for (int64_t i = b; i < e; ++i) {
      const float r = row_rstd(x + i * d, d, eps);
      rstd[i] = r;
      scale_row(x + i * d, w, r, d, y + i * d);
    }
  });
}

void rmsnorm_bwd(ThreadPool& pool, OpsScratch& s, const float* dy, const float* x, const float* w,
                 const float* rstd, int64_t n, int64_t d, float* dx, bool accumulate, float* dw) {
  const int nt = pool.size();
  float* part_dw = s.partial.data();
  std::fill(part_dw, part_dw + static_cast<size_t>(nt) * d, 0.0f);
  pool.parallel_for(nt, [&](int64_t part, int) {
    int64_t b, e;
    split_range(n, nt, static_cast<int>(part), b, e);
    float* pdw = part_dw + part * d;
    for (int64_t i = b; i < e; ++i)
      rmsnorm_row_bwd(dy + i * d, x + i * d, w, rstd[i], d, dx + i * d, accumulate, pdw);
  });
  for (int p = 0; p < nt; ++p)
    for (int64_t i = 0; i < d; ++i) dw[i] += part_dw[p * d + i];
}

void rope_table(int64_t T, int64_t n_rot, float theta_base, float* cs) {
  for (int64_t t = 0; t < T; ++t) {
    float* row = cs + t * n_rot;  // cos, sin interleaved per pair
    rope_cos_sin_at(t, static_cast<int>(n_rot), theta_base, 1.0f, nullptr, row, row + 1, 2);
  }
}

void rope_apply(ThreadPool& pool, float* x, int64_t n_tok, int64_t n_heads, int64_t hd, int64_t T, const float* cs,
                bool inverse) {
  const int64_t half = hd / 2;
  const float sign = inverse ? -1.0f : 1.0f;
  pool.parallel_for(pool.size(), [&](int64_t part, int) {
    int64_t b, e;
    split_range(n_tok, pool.size(), static_cast<int>(part), b, e);
    for (int64_t t = b; t < e; ++t) {
      const float* c = cs + (t % T) * hd;
      for (int64_t h = 0; h < n_heads; ++h) {
        float* v = x + (t * n_heads + h) * hd;
        for (int64_t i = 0; i < half; ++i) {
          const float co = c[2 * i], si = sign * c[2 * i + 1];
          const float a = v[i], bb = v[i + half];
          v[i] = a * co - bb * si;
          v[i + half] = a * si + bb * co;
        }
      }
    }
  });
}

// Causal attention is computed in query blocks of kAttBlock rows: block [i0, i1) only needs keys [0, i1), so
// the score GEMMs skip the upper triangle (about 40% of the work at T = 256).
static constexpr int64_t kAttBlock = 64;

void attention_fwd(ThreadPool& pool, const float* q, const float* k, const float* v, int64_t B, int64_t T,
                   int64_t n_head, int64_t n_head_kv, int64_t hd, float scale, float* P, float* out) {
  const int64_t qd = n_head * hd, kvd = n_head_kv * hd, group = n_head / n_head_kv;
  pool.parallel_for(B * n_head, [&](int64_t task, int) {
    const int64_t b = task / n_head, h = task % n_head, kh = h / group;
    const float* qb = q + b * T * qd + h * hd;
    const float* kb = k + b * T * kvd + kh * hd;
    const float* vb = v + b * T * kvd + kh * hd;
    float* Pb = P + (b * n_head + h) * T * T;
    for (int64_t i0 = 0; i0 < T; i0 += kAttBlock) {
      const int64_t i1 = std::min(T, i0 + kAttBlock);
      sgemm(false, true, i1 - i0, i1, hd, scale, qb + i0 * qd, qd, kb, kvd, 0.0f, Pb + i0 * T, T);
      for (int64_t i = i0; i < i1; ++i) {
        float* row = Pb + i * T;
        softmax_row(row, i + 1);
        std::fill(row + i + 1, row + T, 0.0f);
      }
      sgemm(false, false, i1 - i0, hd, i1, 1.0f, Pb + i0 * T, T, vb, kvd, 0.0f, out + (b * T + i0) * qd + h * hd, qd);
    }
  });
}

void attention_bwd(ThreadPool& pool, OpsScratch& s, const float* dout, const float* q, const float* k,
                   const float* v, const float* P, int64_t B, int64_t T, int64_t n_head, int64_t n_head_kv,
                   int64_t hd, float scale, float* dq, float* dk, float* dv) {
  const int64_t qd = n_head * hd, kvd = n_head_kv * hd, group = n_head / n_head_kv;
  // One task per (sequence, kv head): the query heads sharing it accumulate into its dk, dv in order.
  pool.parallel_for(B * n_head_kv, [&](int64_t task, int tid) {
    const int64_t b = task / n_head_kv, kh = task % n_head_kv;
    float* dS = s.tt.data() + static_cast<size_t>(tid) * T * T;
    const float* kb = k + b * T * kvd + kh * hd;
    const float* vb = v + b * T * kvd + kh * hd;
    float* dkb = dk + b * T * kvd + kh * hd;
    float* dvb = dv + b * T * kvd + kh * hd;
    for (int64_t g = 0; g < group; ++g) {
      const int64_t h = kh * group + g;
      const float* Pb = P + (b * n_head + h) * T * T;
      const float* dob = dout + b * T * qd + h * hd;
      const float* qb = q + b * T * qd + h * hd;
      float* dqb = dq + b * T * qd + h * hd;
      // Per query block: dP = dO V^T over keys [0, i1), softmax backward, dQ = scale dS K.
      for (int64_t i0 = 0; i0 < T; i0 += kAttBlock) {
        const int64_t i1 = std::min(T, i0 + kAttBlock);
        sgemm(false, true, i1 - i0, i1, hd, 1.0f, dob + i0 * qd, qd, vb, kvd, 0.0f, dS + i0 * T, T);
        for (int64_t i = i0; i < i1; ++i) {
          softmax_row_bwd(Pb + i * T, dS + i * T, i + 1);
          std::fill(dS + i * T + i + 1, dS + i * T + i1, 0.0f);
        }
        sgemm(false, false, i1 - i0, hd, i1, scale, dS + i0 * T, T, kb, kvd, 0.0f, dqb + i0 * qd, qd);
      }
      // Per key block: only queries [j0, T) see keys [j0, j1). dK (+)= scale dS^T Q, dV (+)= P^T dO.
      const float beta = g == 0 ? 0.0f : 1.0f;
      for (int64_t j0 = 0; j0 < T; j0 += kAttBlock) {
        const int64_t j1 = std::min(T, j0 + kAttBlock);
        sgemm(true, false, j1 - j0, hd, T - j0, scale, dS + j0 * T + j0, T, qb + j0 * qd, qd, beta, dkb + j0 * kvd, kvd);
        sgemm(true, false, j1 - j0, hd, T - j0, 1.0f, Pb + j0 * T + j0, T, dob + j0 * qd, qd, beta, dvb + j0 * kvd, kvd);
      }
    }
  });
}

void swiglu_fwd_serial(const float* g, const float* u, int64_t n, float* a) { swiglu_span(g, u, n, a); }
void swiglu_bwd_serial(const float* da, const float* g, const float* u, int64_t n, float* dg, float* du) {
  swiglu_bwd_span(da, g, u, n, dg, du);
}

void swiglu_fwd(ThreadPool& pool, const float* g, const float* u, int64_t n, float* a) {
  const int nt = pool.size();
  if (n < 4096 || nt == 1) {
    swiglu_span(g, u, n, a);
    return;
  }
  pool.parallel_for(nt, [&](int64_t part, int) {
    int64_t b, e;
    split_range(n, nt, static_cast<int>(part), b, e);
    swiglu_span(g + b, u + b, e - b, a + b);
  });
}

void swiglu_bwd(ThreadPool& pool, const float* da, const float* g, const float* u, int64_t n, float* dg, float* du) {
  const int nt = pool.size();
  if (n < 4096 || nt == 1) {
    swiglu_bwd_span(da, g, u, n, dg, du);
    return;
  }
  pool.parallel_for(nt, [&](int64_t part, int) {
    int64_t b, e;
    split_range(n, nt, static_cast<int>(part), b, e);
    swiglu_bwd_span(da + b, g + b, u + b, e - b, dg + b, du + b);
  });
}

CeResult cross_entropy(ThreadPool& pool, OpsScratch& s, float* logits, const int32_t* targets, int64_t n, int64_t V,
                       float grad_scale, float* nll) {
  const int nt = pool.size();
  std::vector<double>& part_loss = s.loss;
  std::vector<int64_t>& part_count = s.count;
  std::fill(part_loss.begin(), part_loss.begin() + nt, 0.0);
  std::fill(part_count.begin(), part_count.begin() + nt, 0);
  pool.parallel_for(nt, [&](int64_t part, int) {
    int64_t b, e;
    split_range(n, nt, static_cast<int>(part), b, e);
    for (int64_t i = b; i < e; ++i) {
      float* row = logits + i * V;
      const int32_t tgt = targets[i];
      if (tgt < 0) {
        if (grad_scale != 0.0f) std::fill(row, row + V, 0.0f);
        if (nll) nll[i] = 0.0f;
        continue;
      }
      const float target_logit = row[tgt];
      const float lse = softmax_row(row, V);
      const float loss = lse - target_logit;
      if (nll) nll[i] = loss;
      part_loss[static_cast<size_t>(part)] += loss;
      part_count[static_cast<size_t>(part)] += 1;
      if (grad_scale != 0.0f) {
        row[tgt] -= 1.0f;
        scale_span(row, V, grad_scale);
      }
    }
  });
  CeResult r;
  for (int p = 0; p < nt; ++p) {
    r.loss_sum += part_loss[static_cast<size_t>(p)];
    r.count += part_count[static_cast<size_t>(p)];
  }
  return r;
}

void embedding_fwd(const float* E, const int32_t* tokens, int64_t n, int64_t d, float* x) {
  for (int64_t t = 0; t < n; ++t) std::memcpy(x + t * d, E + static_cast<int64_t>(tokens[t]) * d, sizeof(float) * d);
}

void embedding_bwd(const float* dx, const int32_t* tokens, int64_t n, int64_t d, float* dE) {
  for (int64_t t = 0; t < n; ++t) {
    float* row = dE + static_cast<int64_t>(tokens[t]) * d;
    const float* g = dx + t * d;
    for (int64_t i = 0; i < d; ++i) row[i] += g[i];
  }
}

}  // namespace moe::train
