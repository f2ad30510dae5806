#include "experts/expert_stats.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "model/model.h"

namespace moe {

using json = nlohmann::json;

ModelFingerprint ModelFingerprint::of(const Model& m) {
  const ModelConfig& c = m.config();
  ModelFingerprint f{c.arch, c.n_layer, c.n_expert, c.n_embd, 0};
  uint64_t h = 1469598103934665603ull;
  for (const LayerWeights& lw : m.layers) {
    if (!lw.moe.router.present()) continue;
    const size_t n = static_cast<size_t>(lw.moe.router.rows) * lw.moe.router.row_stride;
    for (size_t i = 0; i < n; ++i) h = (h ^ lw.moe.router.data[i]) * 1099511628211ull;
    break;
  }
  f.router_hash = h;
  return f;
}

std::string ModelFingerprint::describe() const {
  std::ostringstream o;
  o << arch << ", " << n_layer << " layers, " << n_expert << " experts, hidden " << n_embd << ", router hash "
    << std::hex << router_hash;
  return o.str();
}

void TaskStats::resize(int n_layer, int n_expert) {
  for (LayerExpertTable* t : {&count, &prob_sum, &weight_sum, &tcess_sum, &reap_sum, &reap_count})
    t->assign(static_cast<size_t>(n_layer), std::vector<double>(static_cast<size_t>(n_expert), 0.0));
}

static LayerExpertTable divide(const LayerExpertTable& num, const LayerExpertTable* den, double scalar) {
  LayerExpertTable out = num;
  for (size_t l = 0; l < out.size(); ++l)
    for (size_t e = 0; e < out[l].size(); ++e) {
      const double d = den ? (*den)[l][e] : scalar;
      out[l][e] = d > 0 ? num[l][e] / d : 0.0;
    }
  return out;
}

LayerExpertTable TaskStats::frequency() const { return divide(count, nullptr, static_cast<double>(n_tokens)); }
LayerExpertTable TaskStats::mean_prob() const { return divide(prob_sum, nullptr, static_cast<double>(n_tokens)); }
LayerExpertTable TaskStats::mean_weight() const { return divide(weight_sum, &count, 0); }
LayerExpertTable TaskStats::tcess() const { return divide(tcess_sum, nullptr, static_cast<double>(n_tokens)); }
LayerExpertTable TaskStats::reap() const { return divide(reap_sum, &reap_count, 0); }

const TaskStats& ExpertStatsFile::task(const std::string& name) const {
  if (name.empty()) {
    if (tasks.size() == 1) return tasks[0];
    std::string names;
    for (const auto& t : tasks) names += (names.empty() ? "" : ", ") + t.name;
    throw UsageError("the stats hold several tasks (" + names + "): choose one with --task");
  }
  for (const auto& t : tasks)
    if (t.name == name) return t;
  throw UsageError("no task '" + name + "' in the stats file");
}

void ExpertStatsFile::save(const std::string& path) const {
  json j;
  j["format"] = "moe-expert-stats";
  j["version"] = 1;
  j["model"] = {{"arch", model.arch}, {"n_layer", model.n_layer}, {"n_expert", model.n_expert},
                {"n_embd", model.n_embd}, {"router_hash", std::to_string(model.router_hash)}};
  j["layer_is_moe"] = layer_is_moe;
  j["top_k"] = top_k;
  j["tcess_k"] = tcess_k;
  j["tcess_r"] = tcess_r;
  j["tcess_marker"] = tcess_centered ? "centered" : "raw";
  j["tasks"] = json::array();
  for (const auto& t : tasks)
    j["tasks"].push_back({{"name", t.name}, {"n_tokens", t.n_tokens}, {"count", t.count}, {"prob_sum", t.prob_sum},
                          {"weight_sum", t.weight_sum}, {"tcess_sum", t.tcess_sum}, {"reap_sum", t.reap_sum},
                          {"reap_count", t.reap_count}});
  write_file_atomic(path, j.dump() + "\n");
}

ExpertStatsFile ExpertStatsFile::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw FormatError(path + ": cannot open stats file");
  ExpertStatsFile s;
  try {
    json j = json::parse(in);
    if (j.value("format", "") != "moe-expert-stats") throw FormatError(path + ": not a moe expert-stats file");
    const json& m = j.at("model");
    s.model = {m.at("arch").get<std::string>(), m.at("n_layer").get<int>(), m.at("n_expert").get<int>(),
               m.at("n_embd").get<int>(), std::stoull(m.at("router_hash").get<std::string>())};
    s.layer_is_moe = j.at("layer_is_moe").get<std::vector<bool>>();
    s.top_k = j.at("top_k").get<int>();
    s.tcess_k = j.value("tcess_k", 1);
    s.tcess_r = j.value("tcess_r", -1.0);
    const std::string marker = j.value("tcess_marker", std::string("raw"));  // files before the key were raw
    if (marker != "centered" && marker != "raw") throw FormatError(path + ": tcess_marker must be centered or raw");
    s.tcess_centered = marker == "centered";
    for (const json& t : j.at("tasks")) {
      TaskStats ts;
      ts.name = t.at("name").get<std::string>();
      ts.n_tokens = t.at("n_tokens").get<int64_t>();
      ts.count = t.at("count").get<LayerExpertTable>();
      ts.prob_sum = t.at("prob_sum").get<LayerExpertTable>();
      ts.weight_sum = t.at("weight_sum").get<LayerExpertTable>();
      ts.tcess_sum = t.at("tcess_sum").get<LayerExpertTable>();
      ts.reap_sum = t.at("reap_sum").get<LayerExpertTable>();
      ts.reap_count = t.at("reap_count").get<LayerExpertTable>();
      for (const LayerExpertTable* tab : {&ts.count, &ts.prob_sum, &ts.weight_sum, &ts.tcess_sum, &ts.reap_sum, &ts.reap_count}) {
        if (tab->size() != static_cast<size_t>(s.model.n_layer)) throw FormatError(path + ": table has the wrong number of layers");
        for (const auto& row : *tab)
          if (row.size() != static_cast<size_t>(s.model.n_expert)) throw FormatError(path + ": table has the wrong number of experts");
      }
      s.tasks.push_back(std::move(ts));
    }
  } catch (const json::exception& e) {
    throw FormatError(path + ": malformed stats file: " + e.what());
  }
  if (s.tasks.empty()) throw FormatError(path + ": stats file has no tasks");
  return s;
}

void ExpertStatsFile::check_model(const Model& m, const std::string& stats_path) const {
  ModelFingerprint f = ModelFingerprint::of(m);
  if (!(f == model))
    throw UsageError(stats_path + " was measured on another model (" + model.describe() + "; this model: " +
                     f.describe() + ")");
}

}  // namespace moe
