// Run-time expert steering (MoTE-style): ban or force (layer, expert) pairs, from flags ("L:E,L:E", '*' for
// every layer) or a steer file; fTRI ranking of experts by the difference in selection frequency between text
// that shows a behaviour and text that does not; PreMoe's task-adaptive expert retrieval from a prompt.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "experts/expert_stats.h"
#include "moe/router.h"

namespace moe {

struct ExpertRef {
  int layer, expert;
  bool every_layer = false;  // came from '*': dense layers (e.g. DeepSeek's leading ones) are skipped, not an error
};

// "3:17,*:5" -> pairs; '*' as the layer means every MoE layer. Throws UsageError naming `flag` on a malformed item
// or an index out of range.
std::vector<ExpertRef> parse_expert_refs(const std::string& text, int n_layer, int n_expert, const std::string& flag);

// Steer file: one directive per line, "ban L:E[,L:E...]" or "force L:E[,...]"; '#' starts a comment.
void load_steer_file(const std::string& path, int n_layer, int n_expert, std::vector<ExpertRef>& bans,
                     std::vector<ExpertRef>& forces);

// Sets ctl.banned / ctl.forced flags. A pair both banned and forced is an error (UsageError); banning every
// expert of a layer is an error too.
void apply_steering(RoutingControl& ctl, const std::vector<ExpertRef>& bans, const std::vector<ExpertRef>& forces,
                    int n_layer, int n_expert, const std::vector<bool>& layer_is_moe);

struct SteerCandidate {
  int layer, expert;
  double freq_with, freq_without, score;  // score = freq_with - freq_without (fTRI)
};
// All MoE (layer, expert) pairs ranked by fTRI, highest first (ties: lower layer, then lower expert).
std::vector<SteerCandidate> rank_steering_candidates(const ExpertStatsFile& stats, const TaskStats& with,
                                                     const TaskStats& without);

// PreMoe TAER: the stored task whose first-MoE-layer TCESS vector is nearest (L2) to the query's.
const TaskStats& nearest_task(const ExpertStatsFile& stats, const TaskStats& query);
// Bans every expert outside the `keep` best (by the task's TCESS) of each MoE layer.
void restrict_to_task_experts(RoutingControl& ctl, const ExpertStatsFile& stats, const TaskStats& task, int keep);

}  // namespace moe
