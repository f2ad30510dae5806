#include "moe/expert_store.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "core/file_io.h"
#include "kernels/packed.h"

namespace moe {

ResidentExpertStore::ResidentExpertStore(std::vector<LayerExperts> layers, const Exec& ex)
    : packed_(ex.packed), pool_(ex.pool) {
  layers_.resize(layers.size());
  size_t max_experts = 0;
  for (size_t il = 0; il < layers.size(); ++il) {
    Layer& l = layers_[il];
    l.mats = layers[il];
    if (!l.mats.present()) continue;
    const ExpertMats* m[3] = {&l.mats.gate, &l.mats.up, &l.mats.down};
    bool lazy = false;
    for (int i = 0; i < 3; ++i) {
      const WeightRef e0 = expert_ref(ex, *m[i], 0);
      l.packed[i] = e0.packed;
      l.packed_stride[i] = e0.packed ? packed_bytes(m[i]->type, m[i]->rows, m[i]->cols) : 0;
      l.lazy[i] = e0.packed ? packed_->lazy_stack(m[i]->data) : -1;
      lazy = lazy || l.lazy[i] >= 0;
    }
    if (lazy) {
      l.has_lazy = true;
      unpacked_ += l.mats.gate.n_expert;
    }
    max_experts = std::max(max_experts, static_cast<size_t>(l.mats.gate.n_expert));
  }
  pack_now_.assign(max_experts, 0);
  to_pack_.reserve(3 * max_experts);
}

bool ResidentExpertStore::is_packed(const Layer& l, int64_t e) const {
  for (int p = 0; p < 3; ++p)
    if (l.lazy[p] >= 0 && !packed_->is_packed(l.lazy[p], e)) return false;
  return true;
}

int ResidentExpertStore::acquire(int layer, std::span<const int32_t> experts, ExpertWeights* out) {
  if (layer < 0 || layer >= static_cast<int>(layers_.size()) || !layers_[static_cast<size_t>(layer)].mats.present())
    throw Error("expert store: layer " + std::to_string(layer) + " has no experts");
  Layer& l = layers_[static_cast<size_t>(layer)];
  const ExpertMats* m[3] = {&l.mats.gate, &l.mats.up, &l.mats.down};
  for (size_t i = 0; i < experts.size(); ++i)
    if (experts[i] < 0 || experts[i] >= l.mats.gate.n_expert) throw Error("expert store: expert id out of range");
  // Lazy layers after their first call: experts not packed yet are packed now, all in one parallel loop.
  const bool lazy = l.has_lazy;
  if (lazy) {
    to_pack_.clear();
    for (size_t i = 0; i < experts.size(); ++i) {
      const int32_t e = experts[i];
      pack_now_[i] = 0;
      if (l.first_call || is_packed(l, e)) continue;
      pack_now_[i] = 1;
      for (int p = 0; p < 3; ++p)
        if (l.lazy[p] >= 0) to_pack_.push_back({l.lazy[p], e});
    }
    if (!to_pack_.empty()) packed_->ensure_packed(to_pack_, pool_);
  }
  for (size_t i = 0; i < experts.size() && lazy; ++i) unpacked_ -= pack_now_[i];
  for (size_t i = 0; i < experts.size(); ++i) {
    const int64_t e = experts[i];
    const bool file_layout = lazy && !is_packed(l, e);
    WeightRef* w[3] = {&out[i].gate, &out[i].up, &out[i].down};
    for (int p = 0; p < 3; ++p)
      *w[p] = {m[p]->expert(e), l.packed[p] && !file_layout ? l.packed[p] + l.packed_stride[p] * static_cast<size_t>(e)
                                                            : nullptr};
    if (lazy) {
      stats_.file_layout_uses += file_layout;
      stats_.packed_on_use += pack_now_[i];
    }
  }
  // The first step's file-layout experts: the disk is asked for all of them at once, then their pages are mapped in
  // bulk on all threads rather than by one page fault per 64 KiB while the GEMMs read them (on a VM every fault
  // traps to the hypervisor).
  if (lazy && l.first_call) {
    packed_->check_source();
    for (const int32_t e : experts)
      if (!is_packed(l, e)) prefetch_file_pages(l, e);
    pool_.parallel_for(static_cast<int64_t>(experts.size()) * 3, [&](int64_t task, int) {
      const ExpertMats& mat = *m[task % 3];
      const int64_t e = experts[static_cast<size_t>(task / 3)];
      if (!is_packed(l, e)) populate_pages(mat.expert(e).data, static_cast<size_t>(mat.expert_stride), false);
    });
  }
  l.first_call = false;
  stats_.requests += experts.size();
  stats_.hits += experts.size();
  return static_cast<int>(experts.size());
}

void ResidentExpertStore::prefetch_file_pages(const Layer& l, int64_t e) const {
  for (const ExpertMats* m : {&l.mats.gate, &l.mats.up, &l.mats.down})
    prefetch_pages(m->expert(e).data, static_cast<size_t>(m->expert_stride));
}

void ResidentExpertStore::prefetch(int layer, std::span<const int32_t> experts) {
  if (layer < 0 || layer >= static_cast<int>(layers_.size())) return;
  const Layer& l = layers_[static_cast<size_t>(layer)];
  if (!l.has_lazy) return;
  for (const int32_t e : experts)
    if (e >= 0 && e < l.mats.gate.n_expert && !is_packed(l, e)) prefetch_file_pages(l, e);
}

int ResidentExpertStore::capacity_experts(int layer) const {
  if (layer < 0 || layer >= static_cast<int>(layers_.size())) return 0;
  return static_cast<int>(layers_[static_cast<size_t>(layer)].mats.gate.n_expert);
}

}  // namespace moe
