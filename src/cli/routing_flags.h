// The expert-control flags shared by run, chat, perplexity and bench: ban/force experts, a steer file,
// top-k override and adaptive expert count.
#pragma once
#include <CLI/CLI.hpp>

#include <string>

#include "moe/router.h"

namespace moe {
class Model;
}

namespace moe::cli {

struct RoutingFlags {
  std::string ban, force, steer_file;
  int experts_k = 0;
  float min_weight = 0.f, top_p = 0.f;

  void add_to(CLI::App& app);
  bool any() const;
  // The control for `model`; throws UsageError for bad indices or combinations.
  RoutingControl build(const Model& model) const;
};

}  // namespace moe::cli
