// Writes the trained model as a standard qwen3moe GGUF (atomically): llama.cpp's tensor names and layout,
// the tokenizer metadata of the training vocabulary, and every routing option that changes inference stated in
// keys our loader reads (expert_weights_norm always; gating function, weights scale, MoGE groups, null
// experts, selection bias, shared expert and its gate when used).
#pragma once
#include <string>

#include "core/dtype.h"
#include "train/data.h"
#include "train/model_train.h"

namespace moe::train {

struct ExportOptions {
  DType type = DType::F32;  // matrices (F32, F16 or BF16); norms, router and biases stay F32
  std::string name = "moe-trained";
  std::string description;  // e.g. the training command
};

void export_gguf(const TrainModel& model, const TextCodec& codec, const std::string& path, const ExportOptions& opt);

}  // namespace moe::train
