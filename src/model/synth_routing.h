// Realistic routing for random-weight models (`moe synth --routing-from stats.json`). Random routers route about
// uniformly, which no trained model does, and an expert cache's hit rate depends on exactly that skew. Here every
// token embedding carries one common direction u, each router row gets a component b_e * u on top of its random
// part, and b is fitted by running the model until the share of tokens that selects each expert matches a target
// measured on a trained model (`moe profile`). The file stays an ordinary GGUF of its architecture, so llama.cpp
// routes it the same way.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace moe {

class ThreadPool;
struct SynthSpec;

// Resamples a measured popularity table (share of tokens selecting each expert, [layer][expert], rows summing to
// src_top_k) to n_layer x n_expert with top_k per token: layers by relative depth; experts by popularity rank,
// the measured rank -> cumulative-share curve stretched over the new expert count; the ranks scattered over the
// expert ids by `seed`. A share is capped at 1 (an expert cannot serve more than every token), the excess going
// to the next ranks. Throws UsageError for an empty or inconsistent table.
std::vector<std::vector<double>> resample_routing_target(const std::vector<std::vector<double>>& measured,
                                                         int src_top_k, int n_layer, int n_expert, int top_k,
                                                         uint64_t seed);

// Writes the routers' protected inputs into the embedding row of `token`: the same component along the common
// direction for every token, and the token's own random code on a few coordinates (write_synth_model calls it).
void add_routing_direction(const SynthSpec& sp, int64_t token, float* row, int64_t n);
// Whether a tensor adds to the residual stream (attention output, FFN / expert down projections).
bool writes_residual(const std::string& tensor_name);
// Removes the routers' protected inputs (the common direction, the code coordinates) from what a matrix
// [rows = n_embd][cols] writes into the residual stream, so that every token's hidden state keeps exactly its
// embedding's part there at every layer, whatever the random blocks add.
void project_out_routing_direction(const SynthSpec& sp, float* mat, int64_t rows, int64_t cols);

struct RoutingFit {
  int rounds = 0;
  int tokens = 0;
  double mean_abs_error = 0;  // |achieved share - target share| over all (layer, expert), after the last round
  double max_abs_error = 0;
  double reuse = 0;           // share of a token's experts that the previous token also selected (same layer)
  double reuse_floor = 0;     // the reuse of independent tokens with the target popularity (sum p^2 / k)
  std::vector<std::vector<double>> achieved;  // [layer][expert] share of tokens selecting the expert
};

// Runs the model at `path` (written by write_synth_model with sp.routing_target) on `tokens` random tokens,
// fits every router's response b to the common direction so that the selection shares match the target, and
// rewrites the router tensors in place; `rounds` times, since one layer's routing moves the later layers'
// inputs; then measures once more. Routers must be F32 (synth writes them so).
// target_reuse > 0 also scales the part of each router row that responds to the context (as opposed to the
// token's own code) so that consecutive tokens share that fraction of their experts, as text does.
RoutingFit calibrate_synth_routing(const SynthSpec& sp, const std::string& path, ThreadPool& pool, int rounds,
                                   int tokens, double target_reuse,
                                   const std::function<void(int round, double mean_abs_error, double reuse)>& progress);

}  // namespace moe
