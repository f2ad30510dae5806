// `moe prune`: keep the most important experts of every layer, by measured statistics.
#include <cmath>
#include <cstdio>

#include "cli/command.h"
#include "cli/common.h"
#include "core/error.h"
#include "experts/prune.h"
#include "model/model.h"

namespace moe::cli {

int cmd_prune(int argc, char** argv) {
  CLI::App app{"Keep the N most important experts per layer (from moe profile statistics); write a smaller GGUF", "prune"};
  std::string path, stats_path, method = "tcess", task, out;
  int keep = 0;
  double keep_frac = 0;
  uint64_t seed = 1;
  app.add_option("-m,--model", path, "GGUF file (default: the bundled model)");
  app.add_option("--stats", stats_path, "statistics from moe profile: its --out (OUT or OUT.json; not needed for --method random)");
  auto* k = app.add_option("--keep", keep, "experts to keep per layer");
  auto* f = app.add_option("--keep-frac", keep_frac, "fraction of experts to keep per layer (rounded, at least 1)");
  k->excludes(f);
  app.add_option("--method", method, "importance: freq | tcess | reap | random")
      ->check(CLI::IsMember({"freq", "frequency", "tcess", "reap", "random"}));
  app.add_option("--task", task, "which task's statistics to use (when the stats hold several)");
  app.add_option("--seed", seed, "seed for --method random");
  app.add_option("-o,--out", out, "output GGUF")->required();
  return run_command(app, argc, argv, [&] {
    if (keep == 0 && keep_frac == 0) throw UsageError("give --keep N or --keep-frac F");
    if (keep_frac != 0 && !(keep_frac > 0 && keep_frac <= 1)) throw UsageError("--keep-frac must be in (0, 1]");
    auto model = Model::load(resolve_model_path(path));
    const ModelConfig& c = model->config();
    if (c.n_expert == 0) throw UsageError("the model has no experts to prune");
    if (keep_frac > 0) keep = std::max(1, static_cast<int>(std::lround(keep_frac * c.n_expert)));
    const PruneMethod pm = parse_prune_method(method);
    ExpertStatsFile stats;
    if (!stats_path.empty()) {
      stats_path = resolve_stats_path(stats_path);
      stats = ExpertStatsFile::load(stats_path);
      stats.check_model(*model, stats_path);
    } else if (pm == PruneMethod::Random) {
      stats.model = ModelFingerprint::of(*model);
      stats.layer_is_moe = c.layer_is_moe;
      stats.tasks.push_back({});
    } else {
      throw UsageError("--stats is required for --method " + method);
    }
    const TaskStats& ts = stats.task(task);
    auto ids = choose_experts(stats, ts, pm, keep, seed);
    const std::string note = write_pruned_model(*model, ids, out);
    if (!note.empty()) std::fprintf(stderr, "note: %s\n", note.c_str());
    std::fprintf(stderr, "kept %d of %d experts per layer (%s%s%s) -> %s\n", keep, c.n_expert, method.c_str(),
                 ts.name.empty() ? "" : ", task ", ts.name.c_str(), out.c_str());
    return 0;
  });
}

}  // namespace moe::cli
