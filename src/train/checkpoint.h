// Checkpoints: one file, written atomically (temp file + fsync + rename), holding the training config, the
// progress (step, data position, curves) and the flat parameter, Adam-moment and selection-bias arrays,
// closed by a checksum. All randomness is a function of (seed, step, position), so this is everything a
// resumed run needs to continue bit-identically.
//
//   "MOECKPT1" | u32 version | u64 json bytes | json | u64 n | params[n] | m[n] | v[n] | u64 nb | bias[nb] |
//   u64 checksum of everything before it
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "train/train_config.h"

namespace moe::train {

struct TrainProgress {
  int64_t step = 0;          // optimizer steps done
  int64_t sample = 0;        // global index of the next training sequence
  int64_t tokens = 0;        // training tokens consumed
  double seconds = 0;        // training wall time so far (eval and saving excluded)
  int64_t adam_t = 0;        // Adam's step counter
  std::string data_fingerprint;
  std::vector<std::array<double, 2>> train_curve;  // (step, mean loss of the step)
  std::vector<std::array<double, 3>> val_curve;    // (step, held-out loss, bits per byte)
};

struct Checkpoint {
  TrainConfig config;
  TrainProgress progress;
  std::vector<float> params, adam_m, adam_v;
  std::vector<std::vector<float>> sel_bias;  // per layer (empty vectors when unused)
};

void save_checkpoint(const std::string& path, const Checkpoint& c);
// Throws FormatError (one line naming the file) for a missing, truncated or corrupt checkpoint.
Checkpoint load_checkpoint(const std::string& path);

}  // namespace moe::train
