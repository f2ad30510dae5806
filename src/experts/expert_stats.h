// Expert-usage statistics per task (a set of input texts): how often each (layer, expert) is selected, its
// mean router probability and weight, PreMoe's task-conditioned expected selection score (TCESS) and REAP's
// router-weighted activation norm. Saved as one JSON file tied to the model it was measured on.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace moe {

class Model;

// Identifies the model a stats file belongs to (pruning with another model's stats is an error).
struct ModelFingerprint {
  std::string arch;
  int n_layer = 0, n_expert = 0, n_embd = 0;
  uint64_t router_hash = 0;  // FNV-1a of the first MoE layer's router tensor bytes

  static ModelFingerprint of(const Model& m);
  bool operator==(const ModelFingerprint& o) const = default;
  std::string describe() const;
};

// [layer][expert] table of doubles.
using LayerExpertTable = std::vector<std::vector<double>>;

struct TaskStats {
  std::string name;
  int64_t n_tokens = 0;          // tokens profiled (per MoE layer each token is routed once)
  LayerExpertTable count;        // times selected
  LayerExpertTable prob_sum;     // sum over all tokens of the router probability
  LayerExpertTable weight_sum;   // sum over selecting tokens of the routing weight
  LayerExpertTable tcess_sum;    // sum over tokens of PreMoe's marker (the logit if among the top tcess_k)
  LayerExpertTable reap_sum;     // sum over selecting tokens of weight * ||expert output||
  LayerExpertTable reap_count;   // selections that contributed to reap_sum

  void resize(int n_layer, int n_expert);
  // Per-token means (0 where nothing was measured).
  LayerExpertTable frequency() const;   // count / n_tokens: share of tokens selecting the expert
  LayerExpertTable mean_prob() const;
  LayerExpertTable mean_weight() const; // per selection
  LayerExpertTable tcess() const;       // tcess_sum / n_tokens
  LayerExpertTable reap() const;        // reap_sum / reap_count
};

struct ExpertStatsFile {
  ModelFingerprint model;
  std::vector<bool> layer_is_moe;
  int top_k = 0;
  int tcess_k = 1;        // PreMoe marker: experts per token counted (the code's default is 1)
  double tcess_r = -1.0;  // confidence filter on the local softmax over the top tcess_k (-1: off)
  // The marker's logit: relative to the token's mean logit over the routed experts (true), or raw as in
  // PreMoe's code (false). A softmax router's logits are only defined up to a per-token constant, and a router
  // trained with z-loss has mostly negative logits, so raw markers rank the most-used experts last (measured
  // in docs/experts.md); centring keeps PreMoe's "chosen often and confidently" meaning for every router.
  bool tcess_centered = true;
  std::vector<TaskStats> tasks;

  const TaskStats& task(const std::string& name) const;  // "" = the only task; throws UsageError otherwise
  void save(const std::string& path) const;              // atomic JSON
  static ExpertStatsFile load(const std::string& path);  // throws FormatError
  // Throws UsageError if the stats were measured on another model.
  void check_model(const Model& m, const std::string& stats_path) const;
};

}  // namespace moe
