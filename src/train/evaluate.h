// Held-out evaluation with the training forward (no noise, routing exactly as at inference): mean loss per
// token and bits per byte = total negative log-likelihood in bits / UTF-8 bytes of the predicted text.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "train/data.h"
#include "train/model_train.h"

namespace moe::train {

struct EvalResult {
  double nll = 0;      // nats, summed over predicted tokens
  int64_t tokens = 0;  // predicted tokens
  int64_t bytes = 0;   // UTF-8 bytes those tokens stand for
  double loss() const { return tokens ? nll / static_cast<double>(tokens) : 0.0; }
  double bits_per_byte() const;
};

// Non-overlapping windows of T + 1 tokens from the start of `stream`, up to max_tokens predictions
// (0: the whole stream).
EvalResult evaluate_stream(TrainModel& model, const TextCodec& codec, const std::vector<int32_t>& stream,
                           int64_t max_tokens);

// A whole text (e.g. WikiText-2 test, read as is): tokens = [EOS] + encode(text); windows of T tokens
// advance by `stride`, and each token is predicted exactly once, by the first window that contains it with at
// least T - stride tokens of context (the first window predicts all its tokens). bytes is then the byte
// length of the text itself.
EvalResult evaluate_text(TrainModel& model, const TextCodec& codec, const std::vector<int32_t>& text_tokens,
                         int stride);

}  // namespace moe::train
