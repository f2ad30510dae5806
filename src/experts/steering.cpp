#include "experts/steering.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>

#include "core/error.h"

namespace moe {

namespace {

int parse_index(const std::string& s, int limit, const std::string& flag, const std::string& item, const char* what) {
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != 0) throw UsageError(flag + ": '" + item + "' is not LAYER:EXPERT");
  if (v < 0 || v >= limit)
    throw UsageError(flag + ": " + what + " " + std::to_string(v) + " in '" + item + "' is out of range [0, " +
                     std::to_string(limit) + ")");
  return static_cast<int>(v);
}

}  // namespace

std::vector<ExpertRef> parse_expert_refs(const std::string& text, int n_layer, int n_expert, const std::string& flag) {
  std::vector<ExpertRef> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (item.empty()) continue;
    size_t colon = item.find(':');
    if (colon == std::string::npos) throw UsageError(flag + ": '" + item + "' is not LAYER:EXPERT");
    std::string ls = item.substr(0, colon), es = item.substr(colon + 1);
    const int e = parse_index(es, n_expert, flag, item, "expert");
    if (ls == "*") {
      for (int l = 0; l < n_layer; ++l) out.push_back({l, e, true});
    } else {
      out.push_back({parse_index(ls, n_layer, flag, item, "layer"), e});
    }
  }
  if (out.empty()) throw UsageError(flag + ": no LAYER:EXPERT pairs given");
  return out;
}

void load_steer_file(const std::string& path, int n_layer, int n_expert, std::vector<ExpertRef>& bans,
                     std::vector<ExpertRef>& forces) {
  std::ifstream in(path);
  if (!in) throw UsageError("cannot open steer file " + path);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream ls(line);
    std::string verb, rest, more;
    if (!(ls >> verb)) continue;
    std::getline(ls, rest);
    const std::string where = path + ":" + std::to_string(lineno);
    if (verb == "ban") {
      auto r = parse_expert_refs(rest, n_layer, n_expert, where);
      bans.insert(bans.end(), r.begin(), r.end());
    } else if (verb == "force") {
      auto r = parse_expert_refs(rest, n_layer, n_expert, where);
      forces.insert(forces.end(), r.begin(), r.end());
    } else {
      throw UsageError(where + ": unknown directive '" + verb + "' (ban or force)");
    }
  }
}

void apply_steering(RoutingControl& ctl, const std::vector<ExpertRef>& bans, const std::vector<ExpertRef>& forces,
                    int n_layer, int n_expert, const std::vector<bool>& layer_is_moe) {
  auto ensure = [&](std::vector<std::vector<uint8_t>>& v) {
    if (v.empty()) v.assign(static_cast<size_t>(n_layer), std::vector<uint8_t>());
    for (auto& l : v)
      if (l.empty()) l.assign(static_cast<size_t>(n_expert), 0);
  };
  if (!bans.empty()) ensure(ctl.banned);
  if (!forces.empty()) ensure(ctl.forced);
  for (const auto& r : bans) {
    if (r.every_layer && !layer_is_moe[static_cast<size_t>(r.layer)]) continue;
    if (!layer_is_moe[static_cast<size_t>(r.layer)]) throw UsageError("--ban: layer " + std::to_string(r.layer) + " has no experts");
    ctl.banned[r.layer][r.expert] = 1;
  }
  for (const auto& r : forces) {
    if (r.every_layer && !layer_is_moe[static_cast<size_t>(r.layer)]) continue;
    if (!layer_is_moe[static_cast<size_t>(r.layer)]) throw UsageError("--force: layer " + std::to_string(r.layer) + " has no experts");
    if (!ctl.banned.empty() && ctl.banned[r.layer][r.expert])
      throw UsageError("expert " + std::to_string(r.layer) + ":" + std::to_string(r.expert) + " is both banned and forced");
    ctl.forced[r.layer][r.expert] = 1;
  }
  for (size_t l = 0; l < ctl.banned.size(); ++l)
    if (std::all_of(ctl.banned[l].begin(), ctl.banned[l].end(), [](uint8_t b) { return b != 0; }))
      throw UsageError("every expert of layer " + std::to_string(l) + " is banned");
}

std::vector<SteerCandidate> rank_steering_candidates(const ExpertStatsFile& stats, const TaskStats& with,
                                                     const TaskStats& without) {
  auto fw = with.frequency(), fo = without.frequency();
  std::vector<SteerCandidate> out;
  for (int l = 0; l < stats.model.n_layer; ++l) {
    if (!stats.layer_is_moe[static_cast<size_t>(l)]) continue;
    for (int e = 0; e < stats.model.n_expert; ++e) out.push_back({l, e, fw[l][e], fo[l][e], fw[l][e] - fo[l][e]});
  }
  std::stable_sort(out.begin(), out.end(), [](const SteerCandidate& a, const SteerCandidate& b) { return a.score > b.score; });
  return out;
}

static int first_moe_layer(const ExpertStatsFile& s) {
  for (size_t l = 0; l < s.layer_is_moe.size(); ++l)
    if (s.layer_is_moe[l]) return static_cast<int>(l);
  throw UsageError("the stats describe a model without MoE layers");
}

const TaskStats& nearest_task(const ExpertStatsFile& stats, const TaskStats& query) {
  const int l = first_moe_layer(stats);
  auto q = query.tcess()[static_cast<size_t>(l)];
  const TaskStats* best = nullptr;
  double best_d = 0;
  for (const auto& t : stats.tasks) {
    auto v = t.tcess()[static_cast<size_t>(l)];
    double d = 0;
    for (size_t e = 0; e < v.size(); ++e) d += (v[e] - q[e]) * (v[e] - q[e]);
    if (!best || d < best_d) best = &t, best_d = d;
  }
  return *best;
}

void restrict_to_task_experts(RoutingControl& ctl, const ExpertStatsFile& stats, const TaskStats& task, int keep) {
  const int L = stats.model.n_layer, E = stats.model.n_expert;
  if (keep <= 0 || keep > E) throw UsageError("--experts-keep must be in [1, " + std::to_string(E) + "]");
  auto score = task.tcess();
  if (ctl.banned.empty()) ctl.banned.assign(static_cast<size_t>(L), std::vector<uint8_t>());
  for (int l = 0; l < L; ++l) {
    if (!stats.layer_is_moe[static_cast<size_t>(l)]) continue;
    std::vector<int> ids(static_cast<size_t>(E));
    std::iota(ids.begin(), ids.end(), 0);
    const auto& sc = score[static_cast<size_t>(l)];
    std::stable_sort(ids.begin(), ids.end(), [&](int a, int b) { return sc[a] > sc[b]; });
    auto& flags = ctl.banned[static_cast<size_t>(l)];
    if (flags.empty()) flags.assign(static_cast<size_t>(E), 0);
    for (size_t j = static_cast<size_t>(keep); j < ids.size(); ++j) flags[static_cast<size_t>(ids[j])] = 1;
  }
}

}  // namespace moe
