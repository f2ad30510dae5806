// The training loop of `moe train`: micro-batches with gradient accumulation, clipping, AdamW on a warmup +
// cosine schedule, the aux-loss-free bias update, a progress line on stderr, held-out evaluation, atomic
// checkpoints (resumable bit-identically), a loss-curve SVG and metrics next to them, and the GGUF export.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/dtype.h"
#include "train/checkpoint.h"
#include "train/train_config.h"

namespace moe::train {

struct RunOptions {
  std::string out_dir;         // checkpoint.bin, loss.svg, metrics.jsonl, token cache
  std::string export_path;     // GGUF written at the end ("" : out_dir/model.gguf)
  DType export_type = DType::F32;
  std::string eval_text;       // e.g. WikiText-2 test: bits per byte at the end
  int eval_stride = 0;         // sliding-window stride for eval_text (0: n_ctx / 2)
  int64_t stop_after = 0;      // stop (as if killed) after this many steps, with a checkpoint (tests)
  bool finish_now = false;     // with a resumed run: no more steps, just the final evaluation and export
  std::string command_line;    // recorded in the GGUF description and the metrics
  bool quiet = false;          // no progress lines
};

struct RunSummary {
  int64_t steps = 0, tokens = 0;
  double seconds = 0;          // training wall time (all sessions)
  double final_train_loss = 0;
  double val_loss = 0, val_bpb = 0;
  double eval_text_bpb = -1, eval_text_loss = -1;
  int64_t eval_text_tokens = 0, eval_text_bytes = 0;
  bool stopped_early = false;
};

// Fresh run from cfg, or a resumed one from the checkpoint at resume_path (cfg ignored then).
RunSummary run_training(const TrainConfig& cfg, const std::string& resume_path, const RunOptions& opt);

// Throughput benchmark on random tokens: warmup steps, then `steps` timed optimizer steps. Prints and returns
// tokens per second.
double run_benchmark(const TrainConfig& cfg, int warmup, int steps, bool quiet);

}  // namespace moe::train
