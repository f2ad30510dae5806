#include "experts/heatmap.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <vector>

#include "core/atomic_file.h"
#include "core/svg.h"

namespace moe {

namespace {

// Sequential: white -> dark red. Diverging: blue - white - red with 0 at white.
std::string colour(double v, double lo, double hi, bool diverging) {
  if (diverging) {
    const double x = hi > 0 ? std::clamp(v / hi, -1.0, 1.0) : 0.0;
    return x >= 0 ? svg::rgb(1.0, 1.0 - 0.8 * x, 1.0 - 0.8 * x) : svg::rgb(1.0 + 0.8 * x, 1.0 + 0.8 * x, 1.0);
  }
  const double x = hi > lo ? std::clamp((v - lo) / (hi - lo), 0.0, 1.0) : 0.0;
  return svg::rgb(1.0 - 0.35 * x, 1.0 - 0.85 * x, 1.0 - 0.9 * x);
}

// The q-quantile of sorted xs.
double quantile(const std::vector<double>& xs, double q) {
  if (xs.empty()) return 0.0;
  const double pos = q * static_cast<double>(xs.size() - 1);
  const size_t i = static_cast<size_t>(pos);
  const double f = pos - static_cast<double>(i);
  return i + 1 < xs.size() ? xs[i] * (1 - f) + xs[i + 1] * f : xs[i];
}

// The top of the colour range: the largest value that is not a far outlier (Tukey: above Q3 + 3 IQR), so that
// one hot expert does not wash every other cell out to white. xs is sorted here.
double robust_top(std::vector<double>& xs) {
  if (xs.empty()) return 0.0;
  std::sort(xs.begin(), xs.end());
  const double q1 = quantile(xs, 0.25), q3 = quantile(xs, 0.75);
  const double fence = q3 + 3 * (q3 - q1);
  double top = xs.front();
  for (double v : xs)
    if (v <= fence) top = v;
  return top;
}

std::string fmt(const char* f, double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace

void write_heatmap_svg(const std::string& path, const LayerExpertTable& t, const HeatmapOptions& opt) {
  const int L = static_cast<int>(t.size());
  const int E = L ? static_cast<int>(t[0].size()) : 0;
  const int cell = std::clamp(900 / std::max(E, 1), 4, 32);
  const bool numbers = cell >= 24;  // values printed in the cells when they fit
  const int left = 60, top = 64, legend = 110;
  const int w = std::max(left + E * cell + legend + 20, 620), h = top + L * cell + 50;
  // The colour range ends at the largest value that is not a far outlier (of |v| for differences); cells beyond
  // it take the end colour and the legend says so.
  std::vector<double> vals;
  double vmin = 0, vmax = 0;
  for (const auto& row : t) {
    if (std::all_of(row.begin(), row.end(), [](double v) { return v == 0.0; })) continue;  // dense layer
    for (double v : row) {
      vals.push_back(opt.diverging ? std::fabs(v) : v);
      vmin = std::min(vmin, v);
      vmax = std::max(vmax, v);
    }
  }
  double lo = 0, hi = robust_top(vals);
  if (!opt.diverging) lo = std::min(0.0, vmin);
  if (hi <= lo) hi = opt.diverging ? std::max(std::fabs(vmin), std::fabs(vmax)) : vmax;
  const bool clipped = opt.diverging ? std::max(std::fabs(vmin), vmax) > hi : vmax > hi;
  if (opt.diverging) lo = -hi;

  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << w << "' height='" << h
    << "' font-family='sans-serif' font-size='11'>\n";
  o << "<rect width='100%' height='100%' fill='white'/>\n";
  o << "<text x='" << left << "' y='20' font-size='14'>" << svg::escape(opt.title) << "</text>\n";
  o << "<text x='" << left << "' y='38'>expert &#8594;</text>\n";
  // Expert labels: every column when they fit, else every k-th.
  const int label_every = std::max(1, (24 + cell - 1) / cell);
  for (int e = 0; e < E; e += label_every)
    o << "<text x='" << left + e * cell + cell / 2.0 << "' y='" << top - 6 << "' text-anchor='middle' font-size='"
      << std::min(11, std::max(7, cell / 2 + 2)) << "'>" << e << "</text>\n";
  for (int l = 0; l < L; ++l) {
    const bool empty = std::all_of(t[l].begin(), t[l].end(), [](double v) { return v == 0.0; });
    o << "<text x='" << left - 6 << "' y='" << top + l * cell + cell * 0.65 << "' text-anchor='end'>L" << l << "</text>\n";
    for (int e = 0; e < E; ++e) {
      const double v = t[l][e];
      const double x = left + e * cell, y = top + l * cell;
      o << "<rect x='" << x << "' y='" << y << "' width='" << cell << "' height='" << cell << "' fill='"
        << (empty ? "#dddddd" : colour(v, lo, hi, opt.diverging)) << "'><title>layer " << l << ", expert " << e << ": "
        << v << "</title></rect>\n";
      if (numbers && !empty) {
        // Dark text on light cells, white on dark ones.
        const double strength = opt.diverging ? std::fabs(v) / std::max(hi, 1e-300) : (v - lo) / std::max(hi - lo, 1e-300);
        o << "<text x='" << x + cell / 2.0 << "' y='" << y + cell * 0.62 << "' text-anchor='middle' font-size='8' fill='"
          << (strength > 0.6 ? "white" : "#222222") << "'>" << fmt(std::fabs(v) < 0.995 && v != 0 ? "%.2f" : "%.3g", v)
          << "</text>\n";
      }
    }
  }
  // Legend: a vertical colour bar with its range.
  const int lx = left + E * cell + 20, steps = 20, bar = std::max(L * cell, 100);
  for (int i = 0; i < steps; ++i) {
    const double v = hi - (hi - lo) * (i + 0.5) / steps;
    o << "<rect x='" << lx << "' y='" << top + i * bar / steps << "' width='14' height='" << bar / steps + 1 << "' fill='"
      << colour(v, lo, hi, opt.diverging) << "'/>\n";
  }
  const std::string top_label = (clipped ? "&#8805; " : "") + fmt("%.3g", hi);
  const std::string bottom_label = (clipped && opt.diverging ? "&#8804; " : "") + fmt("%.3g", lo);
  o << "<text x='" << lx + 18 << "' y='" << top + 10 << "'>" << top_label << "</text>\n";
  if (opt.diverging) o << "<text x='" << lx + 18 << "' y='" << top + bar / 2 + 4 << "'>0</text>\n";
  o << "<text x='" << lx + 18 << "' y='" << top + bar << "'>" << bottom_label << "</text>\n";
  if (clipped)
    o << "<text x='" << lx << "' y='" << top + bar + 16 << "' font-size='9'>outliers clipped</text>\n";
  o << "<text x='" << left << "' y='" << top + L * cell + 30 << "'>" << svg::escape(opt.value_label) << "</text>\n";
  o << "</svg>\n";
  write_file_atomic(path, o.str());
}

}  // namespace moe
