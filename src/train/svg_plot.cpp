#include "train/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "core/svg.h"

namespace moe::train {

namespace {

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof(b), "%.1f", v);
  return b;
}

std::string tick_label(double v) {
  char b[32];
  const double a = std::fabs(v);
  if (a >= 1e6) std::snprintf(b, sizeof(b), "%.3gM", v / 1e6);
  else if (a >= 1e4) std::snprintf(b, sizeof(b), "%.3gk", v / 1e3);
  else std::snprintf(b, sizeof(b), "%.4g", v);
  return b;
}

// About n "nice" ticks (1, 2, 5 x 10^k) covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int n) {
  const double span = hi - lo;
  const double raw = span / std::max(1, n);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) t.push_back(v);
  return t;
}

}  // namespace

std::string svg_line_plot(const std::string& title, const std::string& x_label, const std::string& y_label,
                          const std::vector<PlotSeries>& series, int width, int height) {
  double x0 = std::numeric_limits<double>::max(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const auto& s : series)
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      x0 = std::min(x0, x);
      x1 = std::max(x1, x);
      y0 = std::min(y0, y);
      y1 = std::max(y1, y);
    }
  if (x0 > x1) {
    x0 = 0;
    x1 = 1;
    y0 = 0;
    y1 = 1;
  }
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  const double pad = 0.04 * (y1 - y0);
  y0 -= pad;
  y1 += pad;
  const double L = 70, R = 20, T = 40, B = 55;
  const double pw = width - L - R, ph = height - T - B;
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return T + (1.0 - (y - y0) / (y1 - y0)) * ph; };

  std::string o;
  o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) + "\" height=\"" +
       std::to_string(height) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o += "<text x=\"" + num(width / 2.0) + "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" + svg::escape(title) + "</text>\n";
  for (double v : nice_ticks(x0, x1, 8)) {
    o += "<line x1=\"" + num(px(v)) + "\" y1=\"" + num(T) + "\" x2=\"" + num(px(v)) + "\" y2=\"" + num(T + ph) +
         "\" stroke=\"#e5e5e5\"/>\n";
    o += "<text x=\"" + num(px(v)) + "\" y=\"" + num(T + ph + 16) + "\" text-anchor=\"middle\">" + tick_label(v) + "</text>\n";
  }
  for (double v : nice_ticks(y0, y1, 6)) {
    o += "<line x1=\"" + num(L) + "\" y1=\"" + num(py(v)) + "\" x2=\"" + num(L + pw) + "\" y2=\"" + num(py(v)) +
         "\" stroke=\"#e5e5e5\"/>\n";
    o += "<text x=\"" + num(L - 6) + "\" y=\"" + num(py(v) + 4) + "\" text-anchor=\"end\">" + tick_label(v) + "</text>\n";
  }
  o += "<rect x=\"" + num(L) + "\" y=\"" + num(T) + "\" width=\"" + num(pw) + "\" height=\"" + num(ph) +
       "\" fill=\"none\" stroke=\"#444\"/>\n";
  o += "<text x=\"" + num(L + pw / 2) + "\" y=\"" + num(height - 12.0) + "\" text-anchor=\"middle\">" + svg::escape(x_label) + "</text>\n";
  o += "<text transform=\"translate(16," + num(T + ph / 2) + ") rotate(-90)\" text-anchor=\"middle\">" + svg::escape(y_label) +
       "</text>\n";
  int li = 0;
  for (const auto& s : series) {
    std::string pts;
    for (const auto& [x, y] : s.points)
      if (std::isfinite(x) && std::isfinite(y)) pts += num(px(x)) + "," + num(py(y)) + " ";
    if (pts.empty()) continue;
    o += "<polyline fill=\"none\" stroke=\"" + s.color + "\" stroke-width=\"1.6\"" +
         (s.dashed ? " stroke-dasharray=\"6,4\"" : "") + " points=\"" + pts + "\"/>\n";
    const double ly = T + 14 + 16.0 * li++;
    o += "<line x1=\"" + num(L + pw - 170) + "\" y1=\"" + num(ly - 4) + "\" x2=\"" + num(L + pw - 148) + "\" y2=\"" +
         num(ly - 4) + "\" stroke=\"" + s.color + "\" stroke-width=\"2\"" + (s.dashed ? " stroke-dasharray=\"6,4\"" : "") +
         "/>\n";
    o += "<text x=\"" + num(L + pw - 142) + "\" y=\"" + num(ly) + "\">" + svg::escape(s.label) + "</text>\n";
  }
  o += "</svg>\n";
  return o;
}

}  // namespace moe::train
