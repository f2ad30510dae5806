#include "model/kv_cache.h"

#include <cstdio>
#include <new>
#include <string>

#include "core/error.h"

namespace moe {

size_t KvCache::bytes_for(const std::vector<KvLayerShape>& layers, int n_seq, int n_ctx, int pad_to) {
  const size_t padded = static_cast<size_t>((static_cast<int64_t>(n_ctx) + pad_to - 1) / pad_to * pad_to);
  size_t floats = 0;
  for (const KvLayerShape& s : layers)
    floats += padded * static_cast<size_t>(s.k_floats) + static_cast<size_t>(n_ctx) * static_cast<size_t>(s.v_floats);
  return floats * sizeof(float) * static_cast<size_t>(n_seq);
}

KvCache::KvCache(std::vector<KvLayerShape> layers, int n_seq, int n_ctx, int pad_to)
    : n_past_(static_cast<size_t>(n_seq), 0), n_seq_(n_seq), n_ctx_(n_ctx) {
  if (n_seq <= 0 || n_ctx <= 0 || pad_to <= 0) throw UsageError("KV cache: sizes must be positive");
  ctx_padded_ = (static_cast<int64_t>(n_ctx) + pad_to - 1) / pad_to * pad_to;
  try {
    layers_.resize(layers.size());
    for (size_t il = 0; il < layers.size(); ++il) {
      layers_[il].shape = layers[il];
      layers_[il].k.assign(static_cast<size_t>(n_seq) * k_stride(static_cast<int>(il)), 0.f);
      layers_[il].v.assign(static_cast<size_t>(n_seq) * v_stride(static_cast<int>(il)), 0.f);
    }
  } catch (const std::bad_alloc&) {
    const double gib = static_cast<double>(bytes_for(layers, n_seq, n_ctx, pad_to)) / (1024.0 * 1024.0 * 1024.0);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2f GiB", gib);
    throw UsageError("not enough memory for the KV cache: " + std::to_string(n_ctx) + " positions x " +
                     std::to_string(n_seq) + " sequence(s) need " + buf + " (lower --ctx)");
  }
}

size_t KvCache::bytes() const {
  size_t b = 0;
  for (const Layer& l : layers_) b += (l.k.size() + l.v.size()) * sizeof(float);
  return b;
}

}  // namespace moe
