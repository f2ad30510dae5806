#include "model/kv_cache.h"

#include <cstdio>
#include <new>
#include <string>

#include "core/error.h"
#include "core/file_io.h"

namespace moe {

size_t KvCache::bytes_for(const std::vector<KvLayerShape>& layers, int n_seq, int n_ctx, int pad_to, DType type) {
  if (type != DType::F32) {
    size_t b = 0;
    for (const KvLayerShape& s : layers) b += row_bytes(type, s.k_floats) + row_bytes(type, s.v_floats);
    return b * static_cast<size_t>(n_ctx) * static_cast<size_t>(n_seq);
  }
  const size_t padded = static_cast<size_t>((static_cast<int64_t>(n_ctx) + pad_to - 1) / pad_to * pad_to);
  size_t floats = 0;
  for (const KvLayerShape& s : layers)
    floats += padded * static_cast<size_t>(s.k_floats) + static_cast<size_t>(n_ctx) * static_cast<size_t>(s.v_floats);
  return floats * sizeof(float) * static_cast<size_t>(n_seq);
}

KvCache::KvCache(std::vector<KvLayerShape> layers, int n_seq, int n_ctx, int pad_to, DType type)
    : type_(type), n_past_(static_cast<size_t>(n_seq), 0), prefaulted_(static_cast<size_t>(n_seq), 0), n_seq_(n_seq),
      n_ctx_(n_ctx) {
  if (n_seq <= 0 || n_ctx <= 0 || pad_to <= 0) throw UsageError("KV cache: sizes must be positive");
  if (type != DType::F32 && type != DType::F16 && type != DType::Q8_0)
    throw UsageError(std::string("KV cache type ") + dtype_name(type) + " is not supported (f32, f16, q8_0)");
  for (const KvLayerShape& s : layers)
    if (s.k_floats % dtype_info(type).block_size != 0 || s.v_floats % dtype_info(type).block_size != 0)
      throw UsageError(std::string("KV cache type ") + dtype_name(type) + " needs rows that are a multiple of " +
                       std::to_string(dtype_info(type).block_size) + " (this model's are " +
                       std::to_string(s.k_floats) + " and " + std::to_string(s.v_floats) + ")");
  ctx_padded_ = (static_cast<int64_t>(n_ctx) + pad_to - 1) / pad_to * pad_to;
  try {
    layers_.resize(layers.size());
    for (size_t il = 0; il < layers.size(); ++il) {
      layers_[il].shape = layers[il];
      const int l = static_cast<int>(il);
      const size_t k_bytes = type == DType::F32 ? k_stride(l) * sizeof(float) : kq_stride(l);
      const size_t v_bytes = type == DType::F32 ? v_stride(l) * sizeof(float) : vq_stride(l);
      layers_[il].k = PageBuffer(static_cast<size_t>(n_seq) * k_bytes);
      layers_[il].v = PageBuffer(static_cast<size_t>(n_seq) * v_bytes);
    }
  } catch (const std::exception&) {  // std::bad_alloc, or alloc_pages' Error when mmap refuses
    const double gib = static_cast<double>(bytes_for(layers, n_seq, n_ctx, pad_to, type)) / (1024.0 * 1024.0 * 1024.0);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2f GiB", gib);
    throw UsageError("not enough memory for the KV cache: " + std::to_string(n_ctx) + " positions x " +
                     std::to_string(n_seq) + " sequence(s) need " + buf + " (lower --ctx)");
  }
}

void KvCache::prefault(int seq, int end) {
  int& done = prefaulted_[static_cast<size_t>(seq)];
  if (end <= done) return;
  constexpr int kAhead = 256;  // positions made resident per call beyond what is asked
  const int64_t ctx_padded = ctx_padded_;
  const int64_t b = done, e = std::min<int64_t>(static_cast<int64_t>(end) + kAhead, n_ctx_);
  // One part of one sequence: `regions` slices over `positions` positions each (pad: the key part's padding).
  auto touch = [&](const uint8_t* part, size_t part_bytes, int regions, int64_t positions) {
    if (part_bytes == 0 || regions <= 0) return;
    const size_t slice = part_bytes / static_cast<size_t>(regions);
    const size_t lo = slice * static_cast<size_t>(b) / static_cast<size_t>(positions);
    const size_t hi = std::min(slice, (slice * static_cast<size_t>(e) + static_cast<size_t>(positions) - 1) /
                                          static_cast<size_t>(positions));
    for (int r = 0; r < regions; ++r) populate_pages(part + slice * static_cast<size_t>(r) + lo, hi - lo, true);
  };
  for (int il = 0; il < static_cast<int>(layers_.size()); ++il) {
    const KvLayerShape& s = shape(il);
    if (type_ == DType::F32) {
      touch(reinterpret_cast<const uint8_t*>(k(il, seq)), k_stride(il) * sizeof(float), s.k_regions, ctx_padded);
      touch(reinterpret_cast<const uint8_t*>(v(il, seq)), v_stride(il) * sizeof(float), s.v_regions, n_ctx_);
    } else {  // rows by position
      touch(k_rows(il, seq), kq_stride(il), 1, n_ctx_);
      touch(v_rows(il, seq), vq_stride(il), 1, n_ctx_);
    }
  }
  done = static_cast<int>(e);
}

size_t KvCache::bytes() const {
  size_t b = 0;
  for (const Layer& l : layers_) b += l.k.size() + l.v.size();
  return b;
}

}  // namespace moe
