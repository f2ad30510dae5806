#include "model/synth_routing.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <memory>
#include <numeric>
#include <random>

#include "core/error.h"
#include "core/thread_pool.h"
#include "model/context.h"
#include "model/model.h"
#include "model/synth.h"

namespace moe {

namespace {

constexpr uint64_t kDirectionStream = 0xD1EC7104ull;  // tensor ids of the random streams used here
constexpr uint64_t kTokenStream = 0x70CE7ull;

// The routers' protected inputs: a common direction u, and a few coordinates S that carry a token-specific code.
// No block writes into them, so at every layer a token's hidden state holds exactly its embedding's part there.
struct RoutingSubspace {
  std::vector<float> u;          // unit vector, zero on S
  std::vector<int> token_dims;   // S, sorted
  std::vector<char> in_s;        // [n] 1 on S
};

RoutingSubspace routing_subspace(uint64_t seed, int64_t n) {
  RoutingSubspace r;
  const int64_t d = std::clamp<int64_t>(n / 16, 2, 64);
  std::vector<int> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  std::mt19937_64 rng(seed ^ 0x5B5ACEull);
  std::shuffle(perm.begin(), perm.end(), rng);
  r.token_dims.assign(perm.begin(), perm.begin() + d);
  std::sort(r.token_dims.begin(), r.token_dims.end());
  r.in_s.assign(static_cast<size_t>(n), 0);
  for (int i : r.token_dims) r.in_s[static_cast<size_t>(i)] = 1;
  r.u.resize(static_cast<size_t>(n));
  synth_normal_row(seed, kDirectionStream, 0, r.u.data(), n);
  double norm = 0;
  for (size_t i = 0; i < r.u.size(); ++i) {
    if (r.in_s[i]) r.u[i] = 0;
    norm += static_cast<double>(r.u[i]) * r.u[i];
  }
  const float inv = static_cast<float>(1.0 / std::sqrt(norm));
  for (float& x : r.u) x *= inv;
  return r;
}

// Cumulative share of selections held by the most popular fraction x of the experts, from one measured layer
// (piecewise linear between the measured ranks).
struct RankCurve {
  std::vector<double> cum;  // cum[i]: share held by the top i experts, cum[0] = 0, cum[n] = 1
  double at(double x) const {
    const double pos = std::clamp(x, 0.0, 1.0) * static_cast<double>(cum.size() - 1);
    const size_t i = std::min(static_cast<size_t>(pos), cum.size() - 2);
    return cum[i] + (pos - static_cast<double>(i)) * (cum[i + 1] - cum[i]);
  }
};

// Watches the routers: per layer and token, the logits, the common-direction coordinate s_t and the S part of
// the router input; and which experts each token selected.
class RoutingRecorder final : public RoutingObserver {
 public:
  RoutingRecorder(const RoutingSubspace& sub, int n_layer)
      : sub_(sub), layers_(static_cast<size_t>(n_layer)) {}

  struct Layer {
    int n_expert = 0;
    std::vector<double> s;       // [T]
    std::vector<float> xs;       // [T][|S|]
    std::vector<float> logits;   // [T][E]
    std::vector<std::vector<int32_t>> picks;
  };

  void on_route(const RoutingEvent& ev) override {
    const size_t l = static_cast<size_t>(ev.layer);
    if (l >= layers_.size() || ev.input == nullptr || ev.n_embd != static_cast<int>(sub_.u.size())) return;
    Layer& L = layers_[l];
    L.n_expert = ev.n_expert;
    for (int t = 0; t < ev.n_tokens; ++t) {
      const float* x = ev.input + static_cast<size_t>(t) * ev.n_embd;
      double st = 0;
      for (int i = 0; i < ev.n_embd; ++i) st += static_cast<double>(sub_.u[static_cast<size_t>(i)]) * x[i];
      L.s.push_back(st);
      for (int i : sub_.token_dims) L.xs.push_back(x[i]);
      const float* lg = ev.logits + static_cast<size_t>(t) * ev.n_total;
      L.logits.insert(L.logits.end(), lg, lg + ev.n_expert);
      L.picks.emplace_back(ev.ids + static_cast<size_t>(t) * ev.slot_stride,
                           ev.ids + static_cast<size_t>(t) * ev.slot_stride + ev.n_used[t]);
    }
  }
  const Layer& layer(size_t l) const { return layers_[l]; }

 private:
  const RoutingSubspace& sub_;
  std::vector<Layer> layers_;
};

// One layer's logits split by what calibration can change: logit[t][e] = b[e] * s[t] + q[t][e] + g[t][e], with
// q the token code's part (fixed) and g the rest of the router row's response (scaled by kappa).
struct LayerSplit {
  size_t T = 0, E = 0;
  std::vector<double> s, q, g;  // s [T], q and g [T][E]
  std::vector<char> starts;     // [T] 1 where a sequence starts (no previous token)
};

std::vector<double> top_k_counts(const LayerSplit& d, const std::vector<double>& b, double kappa, int k,
                                 double* reuse) {
  std::vector<double> count(d.E, 0.0), score(d.E);
  std::vector<int> idx(d.E), prev;
  double reuse_sum = 0;
  size_t n_reuse = 0;
  for (size_t t = 0; t < d.T; ++t) {
    for (size_t e = 0; e < d.E; ++e) score[e] = b[e] * d.s[t] + d.q[t * d.E + e] + kappa * d.g[t * d.E + e];
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                      [&](int x, int y) { return score[static_cast<size_t>(x)] > score[static_cast<size_t>(y)]; });
    for (int j = 0; j < k; ++j) count[static_cast<size_t>(idx[static_cast<size_t>(j)])] += 1.0;
    if (!d.starts[t] && !prev.empty()) {
      int same = 0;
      for (int j = 0; j < k; ++j) same += std::count(prev.begin(), prev.end(), idx[static_cast<size_t>(j)]) > 0;
      reuse_sum += static_cast<double>(same) / k;
      ++n_reuse;
    }
    prev.assign(idx.begin(), idx.begin() + k);
  }
  if (reuse) *reuse = n_reuse ? reuse_sum / static_cast<double>(n_reuse) : 0;
  return count;
}

// Fits b for a given kappa so that the recorded tokens' top-k shares match `target`: raising b[e] by d raises
// expert e's logit by d * s_t, so each step moves b along log(target / achieved), scaled by how much an
// expert's logit varies from token to token (its offset common to all tokens is what b moves).
std::vector<double> fit_b(const LayerSplit& d, std::vector<double> b, double kappa, const std::vector<double>& target,
                          int k, int iterations) {
  double mean_s = 0;
  for (double x : d.s) mean_s += x;
  mean_s /= static_cast<double>(d.T);
  double spread = 0;
  for (size_t e = 0; e < d.E; ++e) {
    double m = 0, v = 0;
    for (size_t t = 0; t < d.T; ++t) m += d.q[t * d.E + e] + kappa * d.g[t * d.E + e];
    m /= static_cast<double>(d.T);
    for (size_t t = 0; t < d.T; ++t) {
      const double x = d.q[t * d.E + e] + kappa * d.g[t * d.E + e] - m;
      v += x * x;
    }
    spread += std::sqrt(v / static_cast<double>(d.T));
  }
  spread /= static_cast<double>(d.E);
  if (std::fabs(mean_s) < 1e-12 || spread <= 0) return b;
  const double T = static_cast<double>(d.T);
  for (int it = 0; it < iterations; ++it) {
    const std::vector<double> c = top_k_counts(d, b, kappa, k, nullptr);
    const double step = (it < iterations / 2 ? 0.5 : 0.2) * spread / mean_s;
    for (size_t e = 0; e < d.E; ++e) b[e] += step * std::log((target[e] * T + 0.5) / (c[e] + 0.5));
  }
  return b;
}

}  // namespace

void add_routing_direction(const SynthSpec& sp, int64_t token, float* row, int64_t n) {
  // Computed per row: cheap next to generating the row itself, and it keeps write_synth_model stateless.
  const RoutingSubspace sub = routing_subspace(sp.seed, n);
  const double c = sp.routing_share * sp.std * std::sqrt(static_cast<double>(n));
  std::vector<float> code(sub.token_dims.size());
  synth_normal_row(sp.seed, kTokenStream, static_cast<uint64_t>(token), code.data(), static_cast<int64_t>(code.size()));
  const double code_scale = c / std::sqrt(static_cast<double>(code.size()));
  for (size_t j = 0; j < code.size(); ++j) row[sub.token_dims[j]] = static_cast<float>(code_scale * code[j]);
  double along = 0;
  for (int64_t i = 0; i < n; ++i) along += static_cast<double>(row[i]) * sub.u[static_cast<size_t>(i)];
  for (int64_t i = 0; i < n; ++i) row[i] += static_cast<float>((c - along) * sub.u[static_cast<size_t>(i)]);
}

bool writes_residual(const std::string& name) {
  for (const char* suffix : {"attn_output.weight", "ffn_down_exps.weight", "ffn_down.weight", "ffn_down_shexp.weight"})
    if (name.size() >= std::strlen(suffix) && name.compare(name.size() - std::strlen(suffix), std::string::npos, suffix) == 0)
      return true;
  return false;
}

void project_out_routing_direction(const SynthSpec& sp, float* mat, int64_t rows, int64_t cols) {
  const RoutingSubspace sub = routing_subspace(sp.seed, rows);
  for (int i : sub.token_dims) std::fill(mat + i * cols, mat + (i + 1) * cols, 0.0f);
  std::vector<double> along(static_cast<size_t>(cols), 0.0);  // u^T W
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) along[static_cast<size_t>(c)] += static_cast<double>(sub.u[static_cast<size_t>(r)]) * mat[r * cols + c];
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      mat[r * cols + c] -= static_cast<float>(sub.u[static_cast<size_t>(r)] * along[static_cast<size_t>(c)]);
}

std::vector<std::vector<double>> resample_routing_target(const std::vector<std::vector<double>>& measured,
                                                         int src_top_k, int n_layer, int n_expert, int top_k,
                                                         uint64_t seed) {
  if (measured.empty() || measured[0].size() < 2) throw UsageError("routing statistics: no layer with experts");
  if (src_top_k <= 0 || n_layer <= 0 || n_expert <= 0 || top_k <= 0 || top_k > n_expert)
    throw UsageError("routing statistics: bad shape");
  std::vector<RankCurve> curves;
  for (const auto& row : measured) {
    std::vector<double> share(row);
    double total = 0;
    for (double x : share) {
      if (!(x >= 0) || !std::isfinite(x)) throw UsageError("routing statistics: negative or non-finite share");
      total += x;
    }
    if (total <= 0) throw UsageError("routing statistics: a layer without any selection");
    std::sort(share.begin(), share.end(), std::greater<>());
    RankCurve c;
    c.cum.push_back(0.0);
    for (double x : share) c.cum.push_back(c.cum.back() + x / total);
    c.cum.back() = 1.0;
    curves.push_back(std::move(c));
  }
  std::mt19937_64 rng(seed ^ 0x5EEDC0DEull);
  std::vector<std::vector<double>> out;
  for (int l = 0; l < n_layer; ++l) {
    const size_t src = n_layer == 1 ? 0
                                    : static_cast<size_t>(std::lround(static_cast<double>(l) * (curves.size() - 1) /
                                                                      (n_layer - 1)));
    std::vector<double> by_rank(static_cast<size_t>(n_expert));
    for (int r = 0; r < n_expert; ++r)
      by_rank[static_cast<size_t>(r)] =
          top_k * (curves[src].at(static_cast<double>(r + 1) / n_expert) - curves[src].at(static_cast<double>(r) / n_expert));
    for (int r = 0; r + 1 < n_expert; ++r) {  // cap at 1, pass the excess down the ranks
      double& x = by_rank[static_cast<size_t>(r)];
      if (x > 1.0) {
        by_rank[static_cast<size_t>(r) + 1] += x - 1.0;
        x = 1.0;
      }
    }
    std::vector<int> ids(static_cast<size_t>(n_expert));
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng);
    std::vector<double> row(static_cast<size_t>(n_expert));
    for (int r = 0; r < n_expert; ++r) row[static_cast<size_t>(ids[static_cast<size_t>(r)])] = by_rank[static_cast<size_t>(r)];
    out.push_back(std::move(row));
  }
  return out;
}

RoutingFit calibrate_synth_routing(const SynthSpec& sp, const std::string& path, ThreadPool& pool, int rounds,
                                   int tokens, double target_reuse,
                                   const std::function<void(int, double, double)>& progress) {
  if (sp.routing_target.empty()) throw UsageError("calibrate_synth_routing: no routing target");
  if (tokens < 16) throw UsageError("routing calibration needs at least 16 tokens");
  const size_t L = sp.routing_target.size();
  const RoutingSubspace sub = routing_subspace(sp.seed, sp.hidden);
  const size_t D = sub.token_dims.size();
  const int n_seq = std::max(1, std::min(8, tokens / 32));  // several sequences: a fit to one sequence's context
  const int seq_len = tokens / n_seq;                        // would not carry over to others

  std::mt19937_64 rng(sp.seed ^ 0xCA11B8A7Eull);
  RoutingFit fit;
  fit.rounds = rounds;
  fit.tokens = seq_len * n_seq;
  for (const auto& row : sp.routing_target) {
    double sq = 0;
    for (double p : row) sq += p * p;
    fit.reuse_floor += sq / sp.top_k / static_cast<double>(L);
  }
  for (int round = 0; round <= rounds; ++round) {
    auto model = Model::load(path);
    const ModelConfig& cfg = model->config();
    if (static_cast<size_t>(cfg.n_layer) != L || cfg.n_embd != sp.hidden)
      throw Error(path + ": the routing target does not match the model's shape");
    RoutingRecorder rec(sub, cfg.n_layer);
    {
      ContextParams cp;
      cp.n_ctx = seq_len;
      cp.n_batch = std::min(seq_len, 256);
      cp.repack = false;  // a model-sized second copy for a few hundred tokens would not pay
      Context ctx(*model, pool, cp);
      ctx.set_observer(&rec);
      std::uniform_int_distribution<int32_t> pick(0, cfg.n_vocab - 1);
      std::vector<int32_t> ids(static_cast<size_t>(seq_len));
      std::vector<float> logits(static_cast<size_t>(cfg.n_vocab));
      for (int q = 0; q < n_seq; ++q) {
        for (int32_t& id : ids) id = pick(rng);
        ctx.truncate(0);
        ctx.decode(ids, logits.data(), false);
      }
    }

    // Split every MoE layer's logits into the parts calibration moves, from the router rows as they are now.
    std::vector<LayerSplit> split(L);
    std::vector<std::vector<double>> b(L);
    std::vector<uint64_t> offsets(L, 0);
    fit.achieved.assign(L, {});
    double err_sum = 0, err_max = 0, reuse_sum = 0;
    size_t n_err = 0, n_reuse_layers = 0;
    for (size_t l = 0; l < L; ++l) {
      const RoutingRecorder::Layer& R = rec.layer(l);
      const size_t E = sp.routing_target[l].size();
      if (!cfg.layer_is_moe[l] || R.n_expert != static_cast<int>(E)) continue;
      const std::string name = "blk." + std::to_string(l) + ".ffn_gate_inp.weight";
      const GgufTensorInfo* ti = model->file().tensor(name);
      if (!ti || ti->type != DType::F32) throw Error(path + ": " + name + " must be F32 for routing calibration");
      offsets[l] = model->file().data_offset() + ti->offset;
      const float* rows = reinterpret_cast<const float*>(ti->data);
      LayerSplit& d = split[l];
      d.T = R.s.size();
      d.E = E;
      d.s = R.s;
      d.q.assign(d.T * E, 0.0);
      d.g.assign(d.T * E, 0.0);
      d.starts.assign(d.T, 0);
      for (size_t t = 0; t < d.T; t += static_cast<size_t>(seq_len)) d.starts[t] = 1;
      b[l].assign(E, 0.0);
      for (size_t e = 0; e < E; ++e) {
        const float* row = rows + e * static_cast<size_t>(sp.hidden);
        double ru = 0;
        for (int i = 0; i < sp.hidden; ++i) ru += static_cast<double>(row[i]) * sub.u[static_cast<size_t>(i)];
        b[l][e] = ru;
        for (size_t t = 0; t < d.T; ++t) {
          double q = 0;
          for (size_t j = 0; j < D; ++j) q += static_cast<double>(row[sub.token_dims[j]]) * R.xs[t * D + j];
          d.q[t * E + e] = q;
          d.g[t * E + e] = R.logits[t * E + e] - ru * d.s[t] - q;
        }
      }
      // This round's routing, as the engine chose it.
      std::vector<double> share(E, 0.0);
      for (const auto& p : R.picks)
        for (int32_t e : p) share[static_cast<size_t>(e)] += 1.0;
      for (size_t e = 0; e < E; ++e) {
        share[e] /= static_cast<double>(d.T);
        const double dv = std::fabs(share[e] - sp.routing_target[l][e]);
        err_sum += dv;
        err_max = std::max(err_max, dv);
        ++n_err;
      }
      double reuse = 0, rs = 0;
      size_t nr = 0;
      for (size_t t = 1; t < d.T; ++t) {
        if (d.starts[t] || R.picks[t].empty()) continue;
        size_t same = 0;
        for (int32_t e : R.picks[t]) same += std::count(R.picks[t - 1].begin(), R.picks[t - 1].end(), e) > 0;
        rs += static_cast<double>(same) / static_cast<double>(R.picks[t].size());
        ++nr;
      }
      reuse = nr ? rs / static_cast<double>(nr) : 0;
      reuse_sum += reuse;
      ++n_reuse_layers;
      fit.achieved[l] = std::move(share);
    }
    fit.mean_abs_error = n_err ? err_sum / static_cast<double>(n_err) : 0;
    fit.max_abs_error = err_max;
    fit.reuse = n_reuse_layers ? reuse_sum / static_cast<double>(n_reuse_layers) : 0;
    if (progress) progress(round, fit.mean_abs_error, fit.reuse);
    if (round == rounds) break;

    // Fit every layer: kappa (how much of the router's response to the context is kept) for the reuse target,
    // b for the popularity. Reuse grows with kappa: consecutive tokens share their context, not their code.
    std::vector<double> kappa(L, 1.0);
    for (size_t l = 0; l < L; ++l) {
      const LayerSplit& d = split[l];
      if (d.T == 0) continue;
      const int k = cfg.n_expert_used;
      if (target_reuse > 0) {
        double lo = std::log(1e-3), hi = std::log(4.0);
        for (int it = 0; it < 10; ++it) {
          const double mid = 0.5 * (lo + hi);
          const std::vector<double> bb = fit_b(d, b[l], std::exp(mid), sp.routing_target[l], k, 60);
          double r = 0;
          top_k_counts(d, bb, std::exp(mid), k, &r);
          (r > target_reuse ? hi : lo) = mid;
        }
        kappa[l] = std::exp(0.5 * (lo + hi));
      }
      b[l] = fit_b(d, b[l], kappa[l], sp.routing_target[l], k, 300);
    }
    model.reset();  // unmapped before the file changes under it

    // New rows: kappa * (row without its u and S parts) + its S part + b * u.
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) throw Error(path + ": cannot open for routing calibration");
    std::vector<float> row(static_cast<size_t>(sp.hidden));
    const size_t rb = row.size() * sizeof(float);
    for (size_t l = 0; l < L; ++l) {
      if (split[l].T == 0) continue;
      for (size_t e = 0; e < b[l].size(); ++e) {
        const off_t off = static_cast<off_t>(offsets[l] + e * rb);
        if (::pread(fd, row.data(), rb, off) != static_cast<ssize_t>(rb)) {
          ::close(fd);
          throw Error(path + ": short read while calibrating routing");
        }
        double ru = 0;
        for (size_t i = 0; i < row.size(); ++i) ru += static_cast<double>(row[i]) * sub.u[i];
        for (size_t i = 0; i < row.size(); ++i) {
          if (sub.in_s[i]) continue;
          const double rest = row[i] - ru * sub.u[i];
          row[i] = static_cast<float>(kappa[l] * rest + b[l][e] * sub.u[i]);
        }
        if (::pwrite(fd, row.data(), rb, off) != static_cast<ssize_t>(rb)) {
          ::close(fd);
          throw Error(path + ": short write while calibrating routing");
        }
      }
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) throw Error(path + ": cannot write routing calibration");
  }
  return fit;
}

}  // namespace moe
