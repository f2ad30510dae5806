// Config and binding steps shared by the DeepSeek-style MoE architectures (deepseek2, glm4moe).
#pragma once
#include "model/model.h"

namespace moe {

// NextN/MTP blocks sit after the trunk's layers: drops them from cfg.n_layer (nextn_predict_layers).
void drop_nextn_layers(const GgufFile& f, ModelConfig& cfg);
// leading_dense_block_count dense layers first, then MoE; shared expert width = expert_shared_count * expert FFN.
void read_dense_lead_and_shared(const GgufFile& f, ModelConfig& cfg);
// Called for every layer: at the last trunk layer, marks the NextN blocks' tensors as deliberately unused.
void skip_nextn_tensors(TensorBinder& b, const ModelConfig& cfg, int il);

}  // namespace moe
