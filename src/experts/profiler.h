// Collects expert-usage statistics while text runs through a model (a RoutingObserver), and drives whole
// texts through the model in context-sized windows. Optional per-token routing trace (TSV).
#pragma once
#include <cstdint>
#include <functional>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "experts/expert_stats.h"
#include "model/config.h"
#include "moe/moe_ffn.h"

namespace moe {

class Context;
class Tokenizer;

class ExpertProfiler : public RoutingObserver {
 public:
  // tcess_centered: the TCESS marker is the logit minus the token's mean logit (see expert_stats.h).
  ExpertProfiler(const ModelConfig& cfg, TaskStats& into, int tcess_k = 1, double tcess_r = -1.0,
                 bool tcess_centered = true);
  void on_route(const RoutingEvent& ev) override;
  // REAP saliency: per selection, router weight x L2 norm of the expert's output.
  bool wants_expert_outputs() const override { return true; }
  void on_expert_outputs(const RoutingEvent& ev, const int32_t* slot_row, const float* out, int n_embd) override;

  // Per-token trace: "position  token  layer  experts  weights" lines; pieces names the tokens.
  void set_trace(std::ostream* out, const Tokenizer* tok) { trace_ = out, tok_ = tok; }
  // Tokens of the window being decoded next (for the trace) and their first position in the text.
  void set_window(std::span<const int32_t> ids, int64_t first_position) { window_ = ids, pos0_ = first_position; }

 private:
  const ModelConfig& cfg_;
  TaskStats& s_;
  int first_moe_layer_ = 0;
  int tcess_k_;
  double tcess_r_;
  bool tcess_centered_;
  std::vector<int32_t> top_;
  std::vector<double> q_;
  std::ostream* trace_ = nullptr;
  const Tokenizer* tok_ = nullptr;
  std::span<const int32_t> window_;
  int64_t pos0_ = 0;
};

// Runs `tokens` through ctx's model in windows of at most `window` tokens (a fresh sequence per window, BOS
// prepended when `bos` >= 0), with `profiler` observing. progress(tokens_done, total) after each window.
void profile_tokens(Context& ctx, ExpertProfiler& profiler, std::span<const int32_t> tokens, int window, int32_t bos,
                    const std::function<void(int64_t, int64_t)>& progress = nullptr);

}  // namespace moe
