#include "moe/expert_store.h"

#include <string>

#include "core/error.h"
#include "kernels/packed.h"

namespace moe {

ResidentExpertStore::ResidentExpertStore(std::vector<LayerExperts> layers, const Exec& ex) {
  layers_.resize(layers.size());
  for (size_t il = 0; il < layers.size(); ++il) {
    Layer& l = layers_[il];
    l.mats = layers[il];
    if (!l.mats.present()) continue;
    const ExpertMats* m[3] = {&l.mats.gate, &l.mats.up, &l.mats.down};
    for (int i = 0; i < 3; ++i) {
      const WeightRef e0 = expert_ref(ex, *m[i], 0);
      l.packed[i] = e0.packed;
      l.packed_stride[i] = e0.packed ? packed_bytes(m[i]->type, m[i]->rows, m[i]->cols) : 0;
    }
  }
}

int ResidentExpertStore::acquire(int layer, std::span<const int32_t> experts, ExpertWeights* out) {
  if (layer < 0 || layer >= static_cast<int>(layers_.size()) || !layers_[static_cast<size_t>(layer)].mats.present())
    throw Error("expert store: layer " + std::to_string(layer) + " has no experts");
  const Layer& l = layers_[static_cast<size_t>(layer)];
  const ExpertMats* m[3] = {&l.mats.gate, &l.mats.up, &l.mats.down};
  for (size_t i = 0; i < experts.size(); ++i) {
    const int64_t e = experts[i];
    if (e < 0 || e >= l.mats.gate.n_expert) throw Error("expert store: expert id out of range");
    WeightRef* w[3] = {&out[i].gate, &out[i].up, &out[i].down};
    for (int p = 0; p < 3; ++p)
      *w[p] = {m[p]->expert(e), l.packed[p] ? l.packed[p] + l.packed_stride[p] * static_cast<size_t>(e) : nullptr};
  }
  stats_.requests += experts.size();
  stats_.hits += experts.size();
  return static_cast<int>(experts.size());
}

int ResidentExpertStore::capacity_experts(int layer) const {
  if (layer < 0 || layer >= static_cast<int>(layers_.size())) return 0;
  return static_cast<int>(layers_[static_cast<size_t>(layer)].mats.gate.n_expert);
}

}  // namespace moe
