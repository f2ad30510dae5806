// Expert pruning: keep the N most important experts of every MoE layer (the same N everywhere, so the file
// still loads in llama.cpp), slicing the stacked expert tensors and the router rows. Written atomically,
// streamed tensor by tensor from the mapped source.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "experts/expert_stats.h"

namespace moe {

class Model;

enum class PruneMethod { Frequency, Tcess, Reap, Random };
PruneMethod parse_prune_method(const std::string& name);  // "freq" | "tcess" | "reap" | "random"

// Per layer, the expert ids to keep (ascending); empty for dense layers. Ties go to the lower id.
// Throws UsageError for keep <= 0 or keep > n_expert, or a method whose data the stats lack.
std::vector<std::vector<int>> choose_experts(const ExpertStatsFile& stats, const TaskStats& task, PruneMethod method,
                                             int keep, uint64_t seed);

// Writes `out`: `model`'s file with only the kept experts. keep_ids as returned by choose_experts. Returns a note
// for the user when the pruned model had to change its routing (group-limited routing that no longer fits), else "".
std::string write_pruned_model(const Model& model, const std::vector<std::vector<int>>& keep_ids, const std::string& out);

}  // namespace moe
