// KV cache: per layer, per sequence slot, room for n_ctx positions. What a position holds is up to the layer's
// attention kind (GQA: keys in transposed blocks of kKeyBlock positions and values per KV head; MLA: the compressed
// latent and the rope part); the cache owns the memory and each sequence's length.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "core/file_io.h"

namespace moe {

// Floats one position takes in one layer, split into the key part and the value part.
struct KvLayerShape {
  int64_t k_floats = 0;
  int64_t v_floats = 0;
  // How the F32 parts are laid out: `regions` equal slices (e.g. one per KV head), each ordered by position, so
  // positions [a, b) of a sequence live in the same fraction of every slice (prefault() relies on that).
  int k_regions = 1, v_regions = 1;
};

class KvCache {
 public:
  // n_ctx positions per sequence (the key part is padded to whole blocks of pad_to positions). type F32: float
  // parts as the attention kind lays them out (k(), v()); F16 or Q8_0 (--cache-type): each position's key part and
  // value part stored as one row of that type (k_rows(), v_rows()), which the attention kind converts.
  KvCache(std::vector<KvLayerShape> layers, int n_seq, int n_ctx, int pad_to, DType type = DType::F32);

  // Bytes the cache would take, to check before allocating (and to report).
  static size_t bytes_for(const std::vector<KvLayerShape>& layers, int n_seq, int n_ctx, int pad_to,
                          DType type = DType::F32);
  DType type() const { return type_; }

  int n_seq() const { return n_seq_; }
  int n_ctx() const { return n_ctx_; }
  int64_t ctx_padded() const { return ctx_padded_; }
  size_t bytes() const;

  // Positions held for sequence seq; set by the context after a forward step, or lowered to forget positions.
  int n_past(int seq) const { return n_past_[static_cast<size_t>(seq)]; }
  // Makes the pages that positions [0, end) of sequence seq will use resident now, in a few system calls per
  // layer, a chunk of positions ahead: written one page fault at a time during decoding, they cost ~2% of the
  // decode time on this project's VM (a fault traps to the hypervisor). Positions already prefaulted are skipped.
  void prefault(int seq, int end);
  void set_n_past(int seq, int n) { n_past_[static_cast<size_t>(seq)] = n; }

  // Key part of (layer, seq): ctx_padded() * k_floats floats; value part: n_ctx() * v_floats floats.
  float* k(int layer, int seq) { return layers_[static_cast<size_t>(layer)].k.as<float>() + seq * k_stride(layer); }
  float* v(int layer, int seq) { return layers_[static_cast<size_t>(layer)].v.as<float>() + seq * v_stride(layer); }
  const KvLayerShape& shape(int layer) const { return layers_[static_cast<size_t>(layer)].shape; }
  // Quantized types: position p's key row at k_rows(layer, seq) + p * k_row_bytes(layer), value row likewise.
  uint8_t* k_rows(int layer, int seq) { return layers_[static_cast<size_t>(layer)].k.data() + seq * kq_stride(layer); }
  uint8_t* v_rows(int layer, int seq) { return layers_[static_cast<size_t>(layer)].v.data() + seq * vq_stride(layer); }
  size_t k_row_bytes(int layer) const { return row_bytes(type_, shape(layer).k_floats); }
  size_t v_row_bytes(int layer) const { return row_bytes(type_, shape(layer).v_floats); }

 private:
  size_t kq_stride(int layer) const { return static_cast<size_t>(n_ctx_) * k_row_bytes(layer); }
  size_t vq_stride(int layer) const { return static_cast<size_t>(n_ctx_) * v_row_bytes(layer); }
  size_t k_stride(int layer) const { return static_cast<size_t>(ctx_padded_ * shape(layer).k_floats); }
  size_t v_stride(int layer) const { return static_cast<size_t>(n_ctx_) * static_cast<size_t>(shape(layer).v_floats); }
  struct Layer {
    KvLayerShape shape;
    // F32: floats; F16/Q8_0: rows of that type. Pages become resident as positions are written, so a long
    // --ctx costs memory only as it fills.
    PageBuffer k, v;
  };
  DType type_ = DType::F32;
  std::vector<Layer> layers_;
  std::vector<int> n_past_;
  std::vector<int> prefaulted_;  // per sequence: positions [0, prefaulted_) are resident
  int n_seq_ = 0, n_ctx_ = 0;
  int64_t ctx_padded_ = 0;
};

}  // namespace moe
