// Layers x experts heatmaps as SVG (no dependencies): one per task, and a signed difference map.
#pragma once
#include <string>

#include "experts/expert_stats.h"

namespace moe {

struct HeatmapOptions {
  std::string title;
  std::string value_label;  // legend text, e.g. "selection frequency"
  bool diverging = false;   // signed values: blue (negative) - white - red (positive), centred on 0
};

// Writes an SVG of `table` (rows = layers, columns = experts); rows that are all zero are drawn grey (dense
// layers). Atomic write.
void write_heatmap_svg(const std::string& path, const LayerExpertTable& table, const HeatmapOptions& opt);

}  // namespace moe
