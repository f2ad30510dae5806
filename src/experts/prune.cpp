#include "experts/prune.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "core/error.h"
#include "format/gguf.h"
#include "model/model.h"

namespace moe {

PruneMethod parse_prune_method(const std::string& name) {
  if (name == "freq" || name == "frequency") return PruneMethod::Frequency;
  if (name == "tcess") return PruneMethod::Tcess;
  if (name == "reap") return PruneMethod::Reap;
  if (name == "random") return PruneMethod::Random;
  throw UsageError("unknown pruning method '" + name + "' (freq, tcess, reap or random)");
}

std::vector<std::vector<int>> choose_experts(const ExpertStatsFile& stats, const TaskStats& task, PruneMethod method,
                                             int keep, uint64_t seed) {
  const int L = stats.model.n_layer, E = stats.model.n_expert;
  if (keep <= 0 || keep > E)
    throw UsageError("keep count " + std::to_string(keep) + " is out of range: the model has " + std::to_string(E) +
                     " experts per layer");
  LayerExpertTable score;
  switch (method) {
    case PruneMethod::Frequency: score = task.frequency(); break;
    case PruneMethod::Tcess: score = task.tcess(); break;
    case PruneMethod::Reap: {
      double total = 0;
      for (const auto& row : task.reap_count)
        for (double v : row) total += v;
      if (total == 0) throw UsageError("the stats hold no REAP measurements (profile the model again with this version of moe profile)");
      score = task.reap();
      break;
    }
    case PruneMethod::Random: {
      score.assign(static_cast<size_t>(L), std::vector<double>(static_cast<size_t>(E)));
      uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
      for (auto& row : score)
        for (double& v : row) {
          s ^= s << 13, s ^= s >> 7, s ^= s << 17;
          v = static_cast<double>(s >> 11);
        }
      break;
    }
  }
  std::vector<std::vector<int>> out(static_cast<size_t>(L));
  for (int l = 0; l < L; ++l) {
    if (l >= static_cast<int>(stats.layer_is_moe.size()) || !stats.layer_is_moe[l]) continue;
    std::vector<int> ids(static_cast<size_t>(E));
    std::iota(ids.begin(), ids.end(), 0);
    const auto& sc = score[static_cast<size_t>(l)];
    std::stable_sort(ids.begin(), ids.end(), [&](int a, int b) { return sc[a] > sc[b]; });
    ids.resize(static_cast<size_t>(keep));
    std::sort(ids.begin(), ids.end());
    out[static_cast<size_t>(l)] = std::move(ids);
  }
  return out;
}

namespace {

// "blk.12.ffn_up_exps.weight" -> 12; -1 if not a block tensor.
int block_of(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  size_t dot = name.find('.', 4);
  if (dot == std::string::npos) return -1;
  try {
    return std::stoi(name.substr(4, dot - 4));
  } catch (...) {
    return -1;
  }
}

bool is_expert_tensor(const std::string& name) { return name.find("_exps.") != std::string::npos; }

}  // namespace

namespace {

// Group-limited routing (DeepSeek-V3: experts in n_group blocks of consecutive ids) survives pruning only when every
// group of every layer keeps the same number of experts: the kept ids are ascending, so each group's survivors stay
// one consecutive block. Otherwise the groups cannot be expressed any more and group-limited routing is switched
// off (plain top-k over the kept experts), which the returned note says.
std::string adjust_groups(const ModelConfig& c, const std::vector<std::vector<int>>& keep_ids, size_t keep, GgufWriter& w) {
  if (c.router.n_group <= 1 || c.router.group_balanced) return "";
  const std::string a = c.arch + ".";
  const int per_group = c.n_expert / c.router.n_group;
  bool even = keep % static_cast<size_t>(c.router.n_group) == 0;
  for (size_t l = 0; l < keep_ids.size() && even; ++l) {
    if (keep_ids[l].empty()) continue;
    std::vector<size_t> count(static_cast<size_t>(c.router.n_group), 0);
    for (int e : keep_ids[l]) ++count[static_cast<size_t>(e / per_group)];
    for (size_t n : count) even &= n == keep / static_cast<size_t>(c.router.n_group);
  }
  const size_t new_per_group = keep / static_cast<size_t>(c.router.n_group);
  // The group score sums a group's two best experts: groups of one expert would change what it means.
  if (even && new_per_group >= 2) return "";
  w.set(a + "expert_group_count", GgufValue::make_u32(1));
  w.set(a + "expert_group_used_count", GgufValue::make_u32(1));
  w.set("moe.pruned.original_expert_group_count", GgufValue::make_u32(static_cast<uint32_t>(c.router.n_group)));
  return "the model routes within " + std::to_string(c.router.n_group) + " expert groups (best " +
         std::to_string(c.router.n_group_used) + "), but the kept experts do not split into equal groups of at least 2: "
         "group-limited routing is switched off in the pruned model (plain top-k over the kept experts)";
}

}  // namespace

std::string write_pruned_model(const Model& model, const std::vector<std::vector<int>>& keep_ids, const std::string& out) {
  const ModelConfig& c = model.config();
  const GgufFile& src = model.file();
  size_t keep = 0;
  for (const auto& k : keep_ids)
    if (!k.empty()) keep = k.size();
  if (keep == 0) throw UsageError("nothing to prune: the model has no MoE layers");
  for (int l = 0; l < c.n_layer; ++l) {
    const auto& k = keep_ids.at(static_cast<size_t>(l));
    if (c.layer_is_moe[static_cast<size_t>(l)] != !k.empty() || (!k.empty() && k.size() != keep))
      throw UsageError("every MoE layer must keep the same number of experts");
    for (int e : k)
      if (e < 0 || e >= c.n_expert) throw UsageError("expert id " + std::to_string(e) + " out of range");
  }
  const std::string a = c.arch + ".";
  GgufWriter w(src.alignment());
  w.copy_metadata(src);
  w.set(a + "expert_count", GgufValue::make_u32(static_cast<uint32_t>(keep)));
  w.set(a + "expert_used_count", GgufValue::make_u32(static_cast<uint32_t>(std::min<size_t>(keep, c.n_expert_used))));
  const std::string note = adjust_groups(c, keep_ids, keep, w);
  std::vector<int32_t> kept_flat;
  for (const auto& k : keep_ids)
    for (size_t j = 0; j < keep; ++j) kept_flat.push_back(k.empty() ? -1 : k[j]);
  w.set("moe.pruned.original_expert_count", GgufValue::make_u32(static_cast<uint32_t>(c.n_expert)));
  w.set("moe.pruned.kept_experts", GgufValue::make_i32_array(kept_flat));  // [n_layer][keep], -1 for dense layers

  for (const auto& t : src.tensors()) {
    std::vector<int64_t> ne(t.ne.begin(), t.ne.begin() + t.n_dims);
    const int l = block_of(t.name);
    const bool moe_layer = l >= 0 && l < c.n_layer && c.layer_is_moe[static_cast<size_t>(l)];
    const bool experts = moe_layer && is_expert_tensor(t.name) && ne.back() == c.n_expert;
    const bool router = moe_layer && t.name == "blk." + std::to_string(l) + ".ffn_gate_inp.weight";
    const bool bias = moe_layer && (t.name == "blk." + std::to_string(l) + ".exp_probs_b.bias" ||
                                    t.name == "blk." + std::to_string(l) + ".ffn_gate_inp.bias");  // gpt-oss
    if (!experts && !router && !bias) {
      w.add_tensor(t.name, t.type, ne, t.data, t.nbytes);
      continue;
    }
    // Slices along the last dimension: one expert (stacked tensors), one router row, one bias value.
    const int64_t n_slices = ne.back();
    const size_t slice = t.nbytes / static_cast<size_t>(n_slices);
    const std::vector<int>& ids = keep_ids[static_cast<size_t>(l)];
    std::vector<int> rows(ids.begin(), ids.end());
    for (int64_t extra = c.n_expert; extra < n_slices; ++extra) rows.push_back(static_cast<int>(extra));  // null experts
    ne.back() = static_cast<int64_t>(rows.size());
    const uint8_t* base = t.data;
    w.add_tensor_generated(t.name, t.type, ne, [base, slice, rows](uint8_t* dst) {
      for (size_t i = 0; i < rows.size(); ++i) std::memcpy(dst + i * slice, base + static_cast<size_t>(rows[i]) * slice, slice);
    });
  }
  w.write(out);
  return note;
}

}  // namespace moe
