// Forward / backward pairs of the dense ops of the transformer (llm.c style). Each *_fwd saves what its
// *_bwd needs (named in the signature); *_bwd adds parameter gradients into dW buffers (+=) and writes or
// accumulates the input gradient. Shapes are row-major; n is the number of rows (tokens, or token-heads).
// Reductions over rows are split statically per thread and summed in thread order, so results depend only
// on the thread count, not on scheduling.
#pragma once
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"

namespace moe::train {

// Per-thread scratch for the reductions (sized by reserve_ops_scratch).
struct OpsScratch {
  std::vector<float> partial;  // [threads][max_d] partial parameter gradients
  std::vector<float> tt;       // [threads][T*T] attention score gradients
  std::vector<double> loss;    // [threads] partial loss sums
  std::vector<int64_t> count;  // [threads]
  void reserve(int threads, int64_t max_d, int64_t T);
};

// y[i] = x[i] * rstd[i] * w, rstd[i] = 1 / sqrt(mean(x[i]^2) + eps) (sum of squares in double, as ggml).
// x, y: [n][d]; rstd: [n] (saved). y may alias x only if the caller keeps x elsewhere for the backward.
void rmsnorm_fwd(ThreadPool& pool, const float* x, const float* w, int64_t n, int64_t d, float eps, float* y,
                 float* rstd);
// dx = (or +=) d/dx; dw += d/dw.
void rmsnorm_bwd(ThreadPool& pool, OpsScratch& s, const float* dy, const float* x, const float* w,
                 const float* rstd, int64_t n, int64_t d, float* dx, bool accumulate, float* dw);

// NEOX rotary embedding tables for positions [0, T): cs[t][2i] = cos, cs[t][2i+1] = sin of
// t * theta^(-2i/n_rot), the angle advanced by repeated float multiplication exactly as the inference
// context (and ggml) does.
void rope_table(int64_t T, int64_t n_rot, float theta, float* cs);
// In place on x: [n_tok][n_heads][head_dim]; token t has position t % T. inverse = true applies the
// transpose (the backward of a rotation is the rotation by the negative angle).
void rope_apply(ThreadPool& pool, float* x, int64_t n_tok, int64_t n_heads, int64_t head_dim, int64_t T,
                const float* cs, bool inverse);

// Causal self-attention over B sequences of T tokens, grouped-query (n_head a multiple of n_head_kv).
// q: [B*T][n_head*hd], k, v: [B*T][n_head_kv*hd]; out: [B*T][n_head*hd]; P: [B][n_head][T][T] (saved
// softmax, zero above the diagonal).
void attention_fwd(ThreadPool& pool, const float* q, const float* k, const float* v, int64_t B, int64_t T,
                   int64_t n_head, int64_t n_head_kv, int64_t hd, float scale, float* P, float* out);
// dq = , dk = , dv =  (overwritten).
void attention_bwd(ThreadPool& pool, OpsScratch& s, const float* dout, const float* q, const float* k,
                   const float* v, const float* P, int64_t B, int64_t T, int64_t n_head, int64_t n_head_kv,
                   int64_t hd, float scale, float* dq, float* dk, float* dv);

// Single-threaded versions, for use inside tasks that already run on the pool.
void swiglu_fwd_serial(const float* g, const float* u, int64_t n, float* a);
void swiglu_bwd_serial(const float* da, const float* g, const float* u, int64_t n, float* dg, float* du);

// a = silu(g) * u over n elements.
void swiglu_fwd(ThreadPool& pool, const float* g, const float* u, int64_t n, float* a);
// dg, du from da (dg may alias g's gradient buffer; none alias g or u).
void swiglu_bwd(ThreadPool& pool, const float* da, const float* g, const float* u, int64_t n, float* dg, float* du);

// Softmax cross-entropy of logits [n][V] against targets [n] (-1: ignored). Returns the summed loss (nats)
// and the number of counted rows. When grad_scale != 0, logits are overwritten by grad_scale *
// (softmax - onehot) (ignored rows: 0). nll (optional, [n]) receives each row's loss.
struct CeResult {
  double loss_sum = 0;
  int64_t count = 0;
};
CeResult cross_entropy(ThreadPool& pool, OpsScratch& s, float* logits, const int32_t* targets, int64_t n, int64_t V,
                       float grad_scale, float* nll = nullptr);

// x[t] = E[tokens[t]];  dE[tokens[t]] += dx[t] (serial: duplicate tokens would race).
void embedding_fwd(const float* E, const int32_t* tokens, int64_t n, int64_t d, float* x);
void embedding_bwd(const float* dx, const int32_t* tokens, int64_t n, int64_t d, float* dE);

// Static split of [0, n) into `parts` near-equal ranges; part i is [begin, end).
inline void split_range(int64_t n, int parts, int i, int64_t& begin, int64_t& end) {
  begin = n * i / parts;
  end = n * (i + 1) / parts;
}

}  // namespace moe::train
