#include "train/evaluate.h"

#include <algorithm>
#include <cmath>

#include "core/score_windows.h"

namespace moe::train {

double EvalResult::bits_per_byte() const { return bytes ? nll / std::log(2.0) / static_cast<double>(bytes) : 0.0; }

namespace {

// Runs the filled batch and adds its loss and bytes to r.
void run_batch(TrainModel& model, const TextCodec& codec, const std::vector<int32_t>& tokens,
               const std::vector<int32_t>& targets, int B, EvalResult& r) {
  RouteStep rs;
  rs.train = false;
  model.forward(tokens.data(), B, rs);
  const MicroLoss l = model.loss(targets.data(), 0.0f);
  r.nll += l.ce_sum;
  r.tokens += l.count;
  const int64_t n = static_cast<int64_t>(B) * model.shape().n_ctx;
  for (int64_t i = 0; i < n; ++i)
    if (targets[static_cast<size_t>(i)] >= 0) r.bytes += static_cast<int64_t>(codec.piece_bytes(targets[static_cast<size_t>(i)]));
}

}  // namespace

EvalResult evaluate_stream(TrainModel& model, const TextCodec& codec, const std::vector<int32_t>& stream,
                           int64_t max_tokens) {
  const int T = model.shape().n_ctx, Bmax = model.max_batch();
  const int64_t n_windows = (static_cast<int64_t>(stream.size()) - 1) / T;
  int64_t use = max_tokens > 0 ? std::min<int64_t>(n_windows, (max_tokens + T - 1) / T) : n_windows;
  EvalResult r;
  std::vector<int32_t> tokens(static_cast<size_t>(Bmax) * T), targets(static_cast<size_t>(Bmax) * T);
  for (int64_t w0 = 0; w0 < use; w0 += Bmax) {
    const int B = static_cast<int>(std::min<int64_t>(Bmax, use - w0));
    for (int b = 0; b < B; ++b)
      for (int t = 0; t < T; ++t) {
        const size_t src = static_cast<size_t>((w0 + b) * T + t);
        tokens[static_cast<size_t>(b) * T + t] = stream[src];
        targets[static_cast<size_t>(b) * T + t] = stream[src + 1];
      }
    run_batch(model, codec, tokens, targets, B, r);
  }
  return r;
}

EvalResult evaluate_text(TrainModel& model, const TextCodec& codec, const std::vector<int32_t>& toks, int stride) {
  const int T = model.shape().n_ctx, Bmax = model.max_batch();
  stride = std::clamp(stride, 1, T);
  const int64_t n = static_cast<int64_t>(toks.size());
  EvalResult r;
  std::vector<int32_t> tokens(static_cast<size_t>(Bmax) * T), targets(static_cast<size_t>(Bmax) * T);
  const std::vector<ScoreWindow> windows = score_windows(n, T, stride);
  for (size_t w0 = 0; w0 < windows.size(); w0 += static_cast<size_t>(Bmax)) {
    const int B = static_cast<int>(std::min<size_t>(static_cast<size_t>(Bmax), windows.size() - w0));
    for (int b = 0; b < B; ++b) {
      const ScoreWindow& w = windows[w0 + static_cast<size_t>(b)];
      for (int t = 0; t < T; ++t) {
        const int64_t i = w.begin + t;
        tokens[static_cast<size_t>(b) * T + t] = i < n ? toks[static_cast<size_t>(i)] : codec.eos();
        const int64_t j = i + 1;  // target index
        targets[static_cast<size_t>(b) * T + t] = (j >= w.first && j <= w.last) ? toks[static_cast<size_t>(j)] : -1;
      }
    }
    run_batch(model, codec, tokens, targets, B, r);
  }
  return r;
}

}  // namespace moe::train
