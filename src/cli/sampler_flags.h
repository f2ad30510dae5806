// The sampling flags of `moe run` and `moe chat`, declared once so that both take the same names, checks and help.
#pragma once
#include <CLI/CLI.hpp>

#include "model/sampling.h"

namespace moe::cli {

// Adds --temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n and --seed bound to `sp`; the
// defaults shown are sp's values when called.
void add_sampler_flags(CLI::App& app, SamplerParams& sp);

}  // namespace moe::cli
