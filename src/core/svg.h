// The few SVG pieces the plots share (experts/heatmap and train/svg_plot): text escaping and colours.
#pragma once
#include <string>

namespace moe::svg {

// Text for an SVG element or attribute: <, > and & escaped (quotes too, for attribute values).
std::string escape(const std::string& s);

// "#rrggbb" for r, g, b in [0, 1] (clamped).
std::string rgb(double r, double g, double b);

}  // namespace moe::svg
