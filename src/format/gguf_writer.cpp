// GGUF writer: metadata in insertion order, tensor infos, then tensor data, each tensor aligned.
#include <cstring>

#include "core/atomic_file.h"
#include "core/error.h"
#include "format/gguf.h"

namespace moe {
namespace {

struct VectorSink {
  std::vector<uint8_t> bytes;
  void write(const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    bytes.insert(bytes.end(), b, b + n);
  }
  void write_zeros(size_t n) { bytes.insert(bytes.end(), n, 0); }
  size_t bytes_written() const { return bytes.size(); }
};

template <class Sink>
void put_u32(Sink& s, uint32_t v) { s.write(&v, 4); }
template <class Sink>
void put_u64(Sink& s, uint64_t v) { s.write(&v, 8); }
template <class Sink>
void put_str(Sink& s, const std::string& v) {
  put_u64(s, v.size());
  s.write(v.data(), v.size());
}

template <class Sink>
void put_scalar(Sink& s, GgufType t, uint64_t u, int64_t i, double f, const std::string& str) {
  switch (t) {
    case GgufType::UINT8: { uint8_t x = static_cast<uint8_t>(u); s.write(&x, 1); break; }
    case GgufType::INT8: { int8_t x = static_cast<int8_t>(i); s.write(&x, 1); break; }
    case GgufType::UINT16: { uint16_t x = static_cast<uint16_t>(u); s.write(&x, 2); break; }
    case GgufType::INT16: { int16_t x = static_cast<int16_t>(i); s.write(&x, 2); break; }
    case GgufType::UINT32: { uint32_t x = static_cast<uint32_t>(u); s.write(&x, 4); break; }
    case GgufType::INT32: { int32_t x = static_cast<int32_t>(i); s.write(&x, 4); break; }
    case GgufType::FLOAT32: { float x = static_cast<float>(f); s.write(&x, 4); break; }
    case GgufType::BOOL: { uint8_t x = i ? 1 : 0; s.write(&x, 1); break; }
    case GgufType::UINT64: s.write(&u, 8); break;
    case GgufType::INT64: s.write(&i, 8); break;
    case GgufType::FLOAT64: s.write(&f, 8); break;
    case GgufType::STRING: put_str(s, str); break;
    case GgufType::ARRAY: throw Error("GGUF writer: nested arrays are not supported");
  }
}

bool is_unsigned(GgufType t) {
  return t == GgufType::UINT8 || t == GgufType::UINT16 || t == GgufType::UINT32 || t == GgufType::UINT64;
}

template <class Sink>
void put_value(Sink& s, const GgufValue& v) {
  put_u32(s, static_cast<uint32_t>(v.type));
  if (v.type != GgufType::ARRAY) {
    put_scalar(s, v.type, v.u, v.i, v.f, v.s);
    return;
  }
  put_u32(s, static_cast<uint32_t>(v.elem_type));
  put_u64(s, v.array_size());
  static const std::string empty;
  for (size_t k = 0; k < v.array_size(); ++k) {
    switch (v.elem_type) {
      case GgufType::STRING: put_scalar(s, v.elem_type, 0, 0, 0, v.strs[k]); break;
      case GgufType::FLOAT32: case GgufType::FLOAT64: put_scalar(s, v.elem_type, 0, 0, v.floats[k], empty); break;
      default: {
        int64_t x = v.ints[k];
        put_scalar(s, v.elem_type, is_unsigned(v.elem_type) ? static_cast<uint64_t>(x) : 0, x, 0, empty);
      }
    }
  }
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace

void GgufWriter::set(const std::string& key, GgufValue value) {
  if (key == "general.alignment") throw Error("GGUF writer: set the alignment through the constructor");
  for (auto& kv : kv_)
    if (kv.first == key) {
      kv.second = std::move(value);
      return;
    }
  kv_.emplace_back(key, std::move(value));
}

void GgufWriter::remove(const std::string& key) {
  for (auto it = kv_.begin(); it != kv_.end(); ++it)
    if (it->first == key) {
      kv_.erase(it);
      return;
    }
}

const GgufValue* GgufWriter::find(const std::string& key) const {
  for (const auto& kv : kv_)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

void GgufWriter::copy_metadata(const GgufFile& src) {
  for (const auto& kv : src.metadata())
    if (kv.first != "general.alignment") set(kv.first, kv.second);
}

void GgufWriter::add_tensor(const std::string& name, DType type, const std::vector<int64_t>& ne, const void* data,
                            size_t nbytes) {
  if (ne.empty() || ne.size() > 4) throw Error("GGUF writer: tensor '" + name + "' must have 1 to 4 dimensions");
  int64_t n = 1;
  for (int64_t d : ne) {
    if (d <= 0) throw Error("GGUF writer: tensor '" + name + "' has a non-positive dimension");
    n *= d;
  }
  const DTypeInfo& info = dtype_info(type);
  if (ne[0] % info.block_size != 0)
    throw Error("GGUF writer: tensor '" + name + "' row length is not a multiple of the " + info.name + " block size");
  size_t expect = static_cast<size_t>(n / info.block_size) * info.block_bytes;
  if (nbytes != expect)
    throw Error("GGUF writer: tensor '" + name + "' has " + std::to_string(nbytes) + " bytes, shape needs " +
                std::to_string(expect));
  for (const auto& t : tensors_)
    if (t.name == name) throw Error("GGUF writer: duplicate tensor '" + name + "'");
  tensors_.push_back({name, type, ne, static_cast<const uint8_t*>(data), nbytes, nullptr, nullptr});
}

void GgufWriter::add_tensor_owned(const std::string& name, DType type, const std::vector<int64_t>& ne,
                                  std::vector<uint8_t> bytes) {
  auto owned = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  add_tensor(name, type, ne, owned->data(), owned->size());
  tensors_.back().owned = std::move(owned);
}

void GgufWriter::add_tensor_generated(const std::string& name, DType type, const std::vector<int64_t>& ne,
                                      TensorFill fill) {
  int64_t n = 1;
  for (int64_t d : ne) n *= d > 0 ? d : 1;
  const DTypeInfo& info = dtype_info(type);
  const size_t nbytes = static_cast<size_t>(n / info.block_size) * info.block_bytes;
  static const uint8_t kNoData = 0;
  add_tensor(name, type, ne, &kNoData, nbytes);  // validates; data comes from fill at write time
  tensors_.back().data = nullptr;
  tensors_.back().fill = std::move(fill);
}

template <class Sink>
void GgufWriter::emit(Sink& sink) const {
  sink.write("GGUF", 4);
  put_u32(sink, 3);
  put_u64(sink, tensors_.size());
  bool custom_alignment = alignment_ != 32;
  put_u64(sink, kv_.size() + (custom_alignment ? 1 : 0));
  if (custom_alignment) {
    put_str(sink, "general.alignment");
    put_value(sink, GgufValue::make_u32(static_cast<uint32_t>(alignment_)));
  }
  for (const auto& kv : kv_) {
    put_str(sink, kv.first);
    put_value(sink, kv.second);
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    put_str(sink, t.name);
    put_u32(sink, static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) put_u64(sink, static_cast<uint64_t>(d));
    put_u32(sink, static_cast<uint32_t>(t.type));
    put_u64(sink, offset);
    offset = align_up(offset + t.nbytes, alignment_);
  }
  sink.write_zeros(align_up(sink.bytes_written(), alignment_) - sink.bytes_written());
  uint64_t total = 0, done = 0;
  for (const auto& t : tensors_) total += t.nbytes;
  std::vector<uint8_t> buf;
  for (size_t k = 0; k < tensors_.size(); ++k) {
    const auto& t = tensors_[k];
    if (t.fill) {
      buf.assign(t.nbytes, 0);
      t.fill(buf.data());
      sink.write(buf.data(), t.nbytes);
    } else {
      sink.write(t.data, t.nbytes);
    }
    done += t.nbytes;
    if (progress_) progress_(k + 1, tensors_.size(), done, total);
    // ggml pads after every tensor, including the last one.
    sink.write_zeros(align_up(t.nbytes, alignment_) - t.nbytes);
  }
}

void GgufWriter::write(const std::string& path) const {
  AtomicFile f(path);
  emit(f);
  f.commit();
}

std::vector<uint8_t> GgufWriter::to_bytes() const {
  VectorSink s;
  emit(s);
  return std::move(s.bytes);
}

}  // namespace moe
