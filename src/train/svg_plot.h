// A dependency-free line plot as SVG text: loss curves next to checkpoints, figures for docs/.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace moe::train {

struct PlotSeries {
  std::string label;
  std::string color;  // any SVG colour, e.g. "#1f77b4"
  std::vector<std::pair<double, double>> points;
  bool dashed = false;
};

std::string svg_line_plot(const std::string& title, const std::string& x_label, const std::string& y_label,
                          const std::vector<PlotSeries>& series, int width = 720, int height = 420);

}  // namespace moe::train
