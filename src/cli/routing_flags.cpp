#include "cli/routing_flags.h"

#include "cli/command.h"
#include "core/error.h"
#include "experts/steering.h"
#include "model/model.h"

namespace moe::cli {

void RoutingFlags::add_to(CLI::App& app) {
  app.add_option("--ban", ban, "experts never to select, LAYER:EXPERT[,...] ('*' = every layer)")->group("Experts");
  app.add_option("--force", force, "experts always to add (with their own router weight), LAYER:EXPERT[,...]")->group("Experts");
  app.add_option("--steer-file", steer_file, "file of 'ban L:E,...' / 'force L:E,...' lines")->group("Experts");
  app.add_option("--experts-k", experts_k, "experts per token (override the model's top-k)")
      ->check(Positive)->group("Experts");
  app.add_option("--expert-min-weight", min_weight, "adaptive: skip selected experts whose normalised weight is below this")
      ->check(CLI::Range(0.0, 1.0))->group("Experts");
  app.add_option("--expert-top-p", top_p, "adaptive: fewest experts whose router probability sums to this")
      ->check(CLI::Range(0.0, 1.0))->group("Experts");
}

bool RoutingFlags::any() const {
  return !ban.empty() || !force.empty() || !steer_file.empty() || experts_k > 0 || min_weight > 0 || top_p > 0;
}

RoutingControl RoutingFlags::build(const Model& model) const {
  const ModelConfig& c = model.config();
  RoutingControl ctl;
  if (!any()) return ctl;
  if (c.n_expert == 0) throw UsageError("expert controls given, but the model has no experts");
  if (experts_k > c.n_expert + c.router.n_null)
    throw UsageError("--experts-k " + std::to_string(experts_k) + " exceeds the " + std::to_string(c.n_expert) + " experts");
  ctl.top_k = experts_k;
  ctl.min_weight = min_weight;
  ctl.top_p = top_p;
  std::vector<ExpertRef> bans, forces;
  if (!ban.empty()) bans = parse_expert_refs(ban, c.n_layer, c.n_expert, "--ban");
  if (!force.empty()) forces = parse_expert_refs(force, c.n_layer, c.n_expert, "--force");
  if (!steer_file.empty()) load_steer_file(steer_file, c.n_layer, c.n_expert, bans, forces);
  apply_steering(ctl, bans, forces, c.n_layer, c.n_expert, c.layer_is_moe);
  return ctl;
}

}  // namespace moe::cli
