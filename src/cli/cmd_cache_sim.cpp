// `moe cache-sim`: replays routing traces written by `moe profile --trace` through the expert cache's replacement
// policies (no model, no I/O), for cache sizes given as slots or as fractions of all experts, and prints the hit
// rates side by side, with the traces' routing statistics (expert popularity, reuse between consecutive tokens).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "core/error.h"
#include "experts/expert_stats.h"
#include "moe/cache_policy.h"

namespace moe::cli {

namespace {

struct Trace {
  int n_layer = 0, n_expert = 0;
  std::vector<std::vector<std::vector<int32_t>>> tokens;  // [token][layer] -> expert ids
};

// TSV rows after a header line: task, position, piece, layer, ids (comma-separated), weights. The profiler writes a
// batch layer by layer (every token's row for the first MoE layer, then the next layer's ...), so a row of the
// first MoE layer starts a token, and the n-th row of any other layer belongs to the n-th token seen.
void read_trace(const std::string& path, Trace& tr) {
  std::ifstream f(path);
  if (!f) throw Error(path + ": cannot open");
  std::string line;
  size_t line_no = 0;
  const size_t base = tr.tokens.size();  // several traces replay one after another
  long long first_layer = -1;
  std::vector<size_t> next_token;  // per layer: index (after base) of the token its next row belongs to
  while (std::getline(f, line)) {
    ++line_no;
    if (line.empty() || line.rfind("task\t", 0) == 0) continue;
    std::vector<std::string> col;
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, '\t');) col.push_back(c);
    if (col.size() < 5) throw FormatError(path + ":" + std::to_string(line_no) + ": expected 6 tab-separated columns");
    long long layer = 0;
    try {
      layer = std::stoll(col[3]);
    } catch (const std::exception&) {
      throw FormatError(path + ":" + std::to_string(line_no) + ": the layer must be an integer");
    }
    if (layer < 0 || layer > 4096) throw FormatError(path + ":" + std::to_string(line_no) + ": layer out of range");
    if (first_layer < 0) first_layer = layer;
    if (next_token.size() <= static_cast<size_t>(layer)) next_token.resize(static_cast<size_t>(layer) + 1, 0);
    if (layer == first_layer) tr.tokens.emplace_back();
    const size_t idx = base + next_token[static_cast<size_t>(layer)]++;
    if (idx >= tr.tokens.size())
      throw FormatError(path + ":" + std::to_string(line_no) + ": more rows for layer " + std::to_string(layer) +
                        " than for layer " + std::to_string(first_layer));
    auto& layers = tr.tokens[idx];
    if (static_cast<int>(layers.size()) <= layer) layers.resize(static_cast<size_t>(layer) + 1);
    std::stringstream ids(col[4]);
    for (std::string id; std::getline(ids, id, ',');) {
      if (id.empty()) continue;
      long long e = -1;
      try {
        e = std::stoll(id);
      } catch (const std::exception&) {
      }
      if (e < 0 || e > 1 << 20) throw FormatError(path + ":" + std::to_string(line_no) + ": bad expert id '" + id + "'");
      layers[static_cast<size_t>(layer)].push_back(static_cast<int32_t>(e));
      tr.n_expert = std::max(tr.n_expert, static_cast<int>(e) + 1);
    }
    tr.n_layer = std::max(tr.n_layer, static_cast<int>(layer) + 1);
  }
}

}  // namespace

int cmd_cache_sim(int argc, char** argv) {
  CLI::App app{"Replay routing traces (moe profile --trace) through the expert cache policies", "cache-sim"};
  std::vector<std::string> traces;
  std::vector<double> fracs = {0.25, 0.5, 0.75};
  std::string pin_from;
  int experts = 0;
  double pin_frac = 0.5;
  bool json = false;
  app.add_option("--trace", traces, "routing trace TSV from moe profile --trace (several: replayed one after another)")
      ->required();
  app.add_option("--frac", fracs, "cache sizes as fractions of all experts")->capture_default_str();
  app.add_option("--experts", experts, "experts per layer (default: the largest id in the trace + 1)");
  app.add_option("--pin-from", pin_from, "stats.json: also replay with the most used experts pinned");
  app.add_option("--pin-frac", pin_frac, "with --pin-from: share of the cache pinned")->capture_default_str();
  app.add_flag("--json", json, "print one JSON object");
  return run_command(app, argc, argv, [&] {
    Trace tr;
    for (const auto& t : traces) read_trace(t, tr);
    if (tr.tokens.empty()) throw UsageError("the traces hold no routing decisions");
    const int E = std::max(experts, tr.n_expert), L = tr.n_layer;
    // Requests in decode order: per token, per layer, its experts; an epoch per (token, layer).
    std::vector<int32_t> req;
    std::vector<uint8_t> epoch;
    std::vector<std::vector<double>> popularity(static_cast<size_t>(L), std::vector<double>(static_cast<size_t>(E), 0));
    double reused = 0, pairs = 0;
    int moe_layers = 0;
    std::vector<uint8_t> layer_seen(static_cast<size_t>(L), 0);
    for (size_t t = 0; t < tr.tokens.size(); ++t)
      for (size_t l = 0; l < tr.tokens[t].size(); ++l) {
        const auto& ids = tr.tokens[t][l];
        for (size_t j = 0; j < ids.size(); ++j) {
          req.push_back(static_cast<int32_t>(l) * E + ids[j]);
          epoch.push_back(j == 0);
          popularity[l][static_cast<size_t>(ids[j])] += 1;
        }
        if (!ids.empty() && !layer_seen[l]) layer_seen[l] = 1, ++moe_layers;
        if (t > 0 && l < tr.tokens[t - 1].size() && !ids.empty()) {
          const auto& prev = tr.tokens[t - 1][l];
          for (int32_t e : ids) reused += std::find(prev.begin(), prev.end(), e) != prev.end();
          pairs += static_cast<double>(ids.size());
        }
      }
    // Popularity: the share of selections taken by the most used quarter of each layer's experts.
    double top_quarter = 0;
    for (auto& p : popularity) {
      const double total = std::max(1.0, [&] { double s = 0; for (double v : p) s += v; return s; }());
      std::sort(p.begin(), p.end(), std::greater<>());
      double s = 0;
      for (int i = 0; i < std::max(1, E / 4); ++i) s += p[static_cast<size_t>(i)];
      top_quarter += s / total;
    }
    top_quarter /= std::max(1, moe_layers);
    const double reuse = pairs > 0 ? reused / pairs : 0;
    // The model's k as the trace shows it (the mean selections per token and layer), for LFU's half-life.
    size_t rows = 0;
    for (const auto& tok : tr.tokens)
      for (const auto& ids : tok) rows += !ids.empty();
    const int k = std::max(1, static_cast<int>(std::lround(static_cast<double>(req.size()) / std::max<size_t>(1, rows))));
    const double half_life = lfu_half_life(moe_layers, E, k);

    std::vector<std::pair<int32_t, double>> hot;  // pins: most used first
    if (!pin_from.empty()) {
      const ExpertStatsFile stats = ExpertStatsFile::load(pin_from);
      if (stats.model.n_expert != E || stats.model.n_layer < L)
        throw UsageError("--pin-from: " + pin_from + " was measured on another model (" + stats.model.describe() + ")");
      for (int l = 0; l < L; ++l)
        for (int e = 0; e < E; ++e) {
          double f = 0;
          for (const TaskStats& ts : stats.tasks) f += ts.frequency()[static_cast<size_t>(l)][static_cast<size_t>(e)];
          if (f > 0) hot.emplace_back(l * E + e, f);
        }
      std::stable_sort(hot.begin(), hot.end(), [](auto& a, auto& b) { return a.second > b.second; });
    }

    nlohmann::json out = {{"tokens", tr.tokens.size()}, {"layers", moe_layers}, {"experts", E},
                          {"requests", req.size()}, {"top_quarter_share", top_quarter},
                          {"consecutive_reuse", reuse}, {"runs", nlohmann::json::array()}};
    if (!json)
      std::printf("%zu tokens x %d MoE layers, %d experts per layer; the most used quarter of experts takes %.1f%% of "
                  "selections; %.1f%% of a token's experts were used by the token before in the same layer\n\n"
                  "%-8s %-8s %8s %8s %8s %8s%s\n",
                  tr.tokens.size(), moe_layers, E, 100 * top_quarter, 100 * reuse, "cache", "slots", "optimal", "lru",
                  "lfu", "slru", hot.empty() ? "" : "   lru+pins  lfu+pins  slru+pins");
    for (double frac : fracs) {
      if (!(frac > 0 && frac <= 1)) throw UsageError("--frac values must be in (0, 1]");
      const int slots = std::max(1, static_cast<int>(std::lround(frac * moe_layers * E)));
      nlohmann::json run = {{"frac", frac}, {"slots", slots}};
      if (!json) std::printf("%-8.2f %-8d", frac, slots);
      // Belady's offline optimum: what no replacement policy can beat on this trace.
      const double best = static_cast<double>(simulate_cache_optimal(slots, req, epoch)) / static_cast<double>(req.size());
      run["optimal"] = best;
      if (!json) std::printf(" %8.1f%%", 100 * best);
      for (int pinned = 0; pinned < (hot.empty() ? 1 : 2); ++pinned) {
        std::vector<int32_t> pins;
        if (pinned)
          for (size_t i = 0; i < hot.size() && static_cast<double>(i) < pin_frac * slots; ++i) pins.push_back(hot[i].first);
        for (CachePolicyKind kind : {CachePolicyKind::Lru, CachePolicyKind::Lfu, CachePolicyKind::Slru}) {
          const double hit = static_cast<double>(simulate_cache(kind, slots, req, epoch, pins, half_life)) / static_cast<double>(req.size());
          run[std::string(cache_policy_name(kind)) + (pinned ? "_pinned" : "")] = hit;
          if (!json) std::printf(" %8.1f%%", 100 * hit);
        }
      }
      if (!json) std::printf("\n");
      out["runs"].push_back(run);
    }
    if (json) std::printf("%s\n", out.dump().c_str());
    return 0;
  });
}

}  // namespace moe::cli
