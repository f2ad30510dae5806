#include "experts/heatmap.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/atomic_file.h"

namespace moe {

static std::string rgb(double r, double g, double b) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", static_cast<int>(std::lround(r * 255)),
                static_cast<int>(std::lround(g * 255)), static_cast<int>(std::lround(b * 255)));
  return buf;
}

// Sequential: white -> dark red (viridis-like without the table). Diverging: blue - white - red.
static std::string colour(double v, double lo, double hi, bool diverging) {
  if (diverging) {
    const double m = std::max(std::fabs(lo), std::fabs(hi));
    const double x = m > 0 ? std::clamp(v / m, -1.0, 1.0) : 0.0;
    return x >= 0 ? rgb(1.0, 1.0 - 0.8 * x, 1.0 - 0.8 * x) : rgb(1.0 + 0.8 * x, 1.0 + 0.8 * x, 1.0);
  }
  const double x = hi > lo ? std::clamp((v - lo) / (hi - lo), 0.0, 1.0) : 0.0;
  return rgb(1.0 - 0.35 * x, 1.0 - 0.85 * x, 1.0 - 0.9 * x);
}

static std::string escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else o += c;
  }
  return o;
}

void write_heatmap_svg(const std::string& path, const LayerExpertTable& t, const HeatmapOptions& opt) {
  const int L = static_cast<int>(t.size());
  const int E = L ? static_cast<int>(t[0].size()) : 0;
  const int cell = std::clamp(900 / std::max(E, 1), 4, 24);
  const int left = 60, top = 50, legend = 70;
  const int w = std::max(left + E * cell + legend + 20, 620), h = top + L * cell + 50;
  double lo = 0, hi = 0;
  bool first = true;
  for (const auto& row : t)
    for (double v : row) {
      if (first) lo = hi = v, first = false;
      lo = std::min(lo, v), hi = std::max(hi, v);
    }
  if (!opt.diverging) lo = std::min(lo, 0.0);
  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << w << "' height='" << h << "' font-family='sans-serif' font-size='11'>\n";
  o << "<rect width='100%' height='100%' fill='white'/>\n";
  o << "<text x='" << left << "' y='20' font-size='14'>" << escape(opt.title) << "</text>\n";
  o << "<text x='" << left << "' y='" << top - 8 << "'>experts 0.." << E - 1 << " &#8594;</text>\n";
  for (int l = 0; l < L; ++l) {
    const bool empty = std::all_of(t[l].begin(), t[l].end(), [](double v) { return v == 0.0; });
    o << "<text x='" << left - 6 << "' y='" << top + l * cell + cell * 0.75 << "' text-anchor='end'>L" << l << "</text>\n";
    for (int e = 0; e < E; ++e) {
      o << "<rect x='" << left + e * cell << "' y='" << top + l * cell << "' width='" << cell << "' height='" << cell
        << "' fill='" << (empty ? "#dddddd" : colour(t[l][e], lo, hi, opt.diverging)) << "'><title>layer " << l
        << ", expert " << e << ": " << t[l][e] << "</title></rect>\n";
    }
  }
  // Legend: a vertical colour bar with its range.
  const int lx = left + E * cell + 20, steps = 20, bar = std::max(L * cell, 100);
  for (int i = 0; i < steps; ++i) {
    const double v = hi - (hi - lo) * (i + 0.5) / steps;
    o << "<rect x='" << lx << "' y='" << top + i * bar / steps << "' width='14' height='" << bar / steps + 1
      << "' fill='" << colour(v, lo, hi, opt.diverging) << "'/>\n";
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3g", hi);
  o << "<text x='" << lx + 18 << "' y='" << top + 10 << "'>" << buf << "</text>\n";
  std::snprintf(buf, sizeof buf, "%.3g", lo);
  o << "<text x='" << lx + 18 << "' y='" << top + bar << "'>" << buf << "</text>\n";
  o << "<text x='" << left << "' y='" << top + L * cell + 30 << "'>" << escape(opt.value_label) << "</text>\n";
  o << "</svg>\n";
  write_file_atomic(path, o.str());
}

}  // namespace moe
