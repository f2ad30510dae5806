// GGUF parser. Reads through a bounds-checked cursor, so a lying count or length can neither read past the
// end nor trigger a huge allocation: every count is checked against the bytes that remain before use.
#include <algorithm>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "format/gguf.h"

namespace moe {
namespace {

constexpr uint32_t kMaxDims = 4;
constexpr uint64_t kMaxNameLen = 256;  // ggml allows 63; real converters stay far below this

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::BOOL: return 1;
    case GgufType::UINT16: case GgufType::INT16: return 2;
    case GgufType::UINT32: case GgufType::INT32: case GgufType::FLOAT32: return 4;
    case GgufType::UINT64: case GgufType::INT64: case GgufType::FLOAT64: return 8;
    case GgufType::STRING: return 8;  // at least the length prefix
    case GgufType::ARRAY: return 12;  // at least type + count
  }
  return 0;
}

bool valid_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::FLOAT64); }

}  // namespace

GgufFile::GgufFile(const std::string& path) : name_(path), map_(path) { parse(map_.data(), map_.size()); }

GgufFile::GgufFile(const uint8_t* data, size_t size, std::string name) : name_(std::move(name)) {
  parse(data, size);
}

void GgufFile::fail(const std::string& what) const { throw FormatError(name_ + ": invalid GGUF: " + what); }

void GgufFile::parse(const uint8_t* data, size_t size) {
  base_ = data;
  size_ = size;
  size_t pos = 0;
  auto need = [&](size_t n, const char* what) {
    if (n > size - pos) fail(std::string("truncated file while reading ") + what);
  };
  auto rd = [&](void* out, size_t n, const char* what) {
    need(n, what);
    std::memcpy(out, data + pos, n);
    pos += n;
  };
  auto rd_u32 = [&](const char* what) { uint32_t v; rd(&v, 4, what); return v; };
  auto rd_u64 = [&](const char* what) { uint64_t v; rd(&v, 8, what); return v; };
  auto rd_str = [&](const char* what) {
    uint64_t n = rd_u64(what);
    if (n > size - pos) fail(std::string("string length ") + std::to_string(n) + " runs past the end of the file (" + what + ")");
    std::string s(reinterpret_cast<const char*>(data + pos), static_cast<size_t>(n));
    pos += n;
    return s;
  };

  if (size < 4) fail("file is too small to be GGUF (" + std::to_string(size) + " bytes)");
  if (std::memcmp(data, "GGUF", 4) != 0) {
    if (std::memcmp(data, "FUGG", 4) == 0) fail("big-endian GGUF files are not supported");
    fail("bad magic (not a GGUF file)");
  }
  pos = 4;
  version_ = rd_u32("version");
  if (version_ == 1) fail("GGUF version 1 is obsolete and not supported; re-convert the model");
  if (version_ != 2 && version_ != 3) fail("unsupported GGUF version " + std::to_string(version_));
  uint64_t n_tensors = rd_u64("tensor count");
  uint64_t n_kv = rd_u64("metadata count");
  // Every key/value takes at least 8 (key length) + 4 (type) + 1 bytes; every tensor info at least 8+4+8+4+8.
  if (n_kv > (size - pos) / 13) fail("metadata count " + std::to_string(n_kv) + " is larger than the file can hold");
  if (n_tensors > (size - pos) / 32) fail("tensor count " + std::to_string(n_tensors) + " is larger than the file can hold");

  auto read_scalar = [&](GgufType t, GgufValue& v, const std::string& key) {
    switch (t) {
      case GgufType::UINT8: { uint8_t x; rd(&x, 1, key.c_str()); v.u = x; break; }
      case GgufType::INT8: { int8_t x; rd(&x, 1, key.c_str()); v.i = x; break; }
      case GgufType::UINT16: { uint16_t x; rd(&x, 2, key.c_str()); v.u = x; break; }
      case GgufType::INT16: { int16_t x; rd(&x, 2, key.c_str()); v.i = x; break; }
      case GgufType::UINT32: { uint32_t x; rd(&x, 4, key.c_str()); v.u = x; break; }
      case GgufType::INT32: { int32_t x; rd(&x, 4, key.c_str()); v.i = x; break; }
      case GgufType::FLOAT32: { float x; rd(&x, 4, key.c_str()); v.f = x; break; }
      case GgufType::BOOL: {
        uint8_t x; rd(&x, 1, key.c_str());
        if (x > 1) fail("metadata '" + key + "': bool value " + std::to_string(x) + " is not 0 or 1");
        v.i = x;
        break;
      }
      case GgufType::UINT64: { uint64_t x; rd(&x, 8, key.c_str()); v.u = x; break; }
      case GgufType::INT64: { int64_t x; rd(&x, 8, key.c_str()); v.i = x; break; }
      case GgufType::FLOAT64: { double x; rd(&x, 8, key.c_str()); v.f = x; break; }
      case GgufType::STRING: v.s = rd_str(key.c_str()); break;
      case GgufType::ARRAY: fail("metadata '" + key + "': nested arrays are not supported");
    }
  };

  kv_.reserve(static_cast<size_t>(n_kv));
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = rd_str("metadata key");
    if (key.empty()) fail("metadata entry " + std::to_string(k) + " has an empty key");
    if (kv_index_.count(key)) fail("duplicate metadata key '" + key + "'");
    uint32_t type = rd_u32(key.c_str());
    if (!valid_type(type)) fail("metadata '" + key + "': unknown value type " + std::to_string(type));
    GgufValue v;
    v.type = static_cast<GgufType>(type);
    if (v.type == GgufType::ARRAY) {
      uint32_t et = rd_u32(key.c_str());
      if (!valid_type(et)) fail("metadata '" + key + "': unknown array element type " + std::to_string(et));
      v.elem_type = static_cast<GgufType>(et);
      if (v.elem_type == GgufType::ARRAY) fail("metadata '" + key + "': nested arrays are not supported");
      uint64_t n = rd_u64(key.c_str());
      if (n > (size - pos) / scalar_size(v.elem_type))
        fail("metadata '" + key + "': array of " + std::to_string(n) + " items runs past the end of the file");
      if (v.elem_type == GgufType::STRING) v.strs.reserve(n);
      else if (v.elem_type == GgufType::FLOAT32 || v.elem_type == GgufType::FLOAT64) v.floats.reserve(n);
      else v.ints.reserve(n);
      GgufValue item;
      for (uint64_t j = 0; j < n; ++j) {
        read_scalar(v.elem_type, item, key);
        switch (v.elem_type) {
          case GgufType::STRING: v.strs.push_back(std::move(item.s)); break;
          case GgufType::FLOAT32: case GgufType::FLOAT64: v.floats.push_back(item.f); break;
          case GgufType::UINT8: case GgufType::UINT16: case GgufType::UINT32: case GgufType::UINT64:
            v.ints.push_back(static_cast<int64_t>(item.u));
            break;
          default: v.ints.push_back(item.i); break;
        }
      }
    } else {
      read_scalar(v.type, v, key);
    }
    kv_index_[key] = kv_.size();
    kv_.emplace_back(std::move(key), std::move(v));
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (a->type != GgufType::UINT32 && a->type != GgufType::UINT64) fail("general.alignment must be an unsigned integer");
    if (a->u == 0 || (a->u & (a->u - 1)) != 0 || a->u > (1u << 24))
      fail("general.alignment " + std::to_string(a->u) + " is not a power of two up to 16 MiB");
    alignment_ = a->u;
  }

  tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t t = 0; t < n_tensors; ++t) {
    GgufTensorInfo ti;
    uint64_t name_len = 0;
    need(8, "tensor name");
    std::memcpy(&name_len, data + pos, 8);
    if (name_len > kMaxNameLen) fail("tensor " + std::to_string(t) + ": name of " + std::to_string(name_len) + " bytes is too long");
    ti.name = rd_str("tensor name");
    if (ti.name.empty()) fail("tensor " + std::to_string(t) + " has an empty name");
    if (tensor_index_.count(ti.name)) fail("duplicate tensor '" + ti.name + "'");
    uint32_t n_dims = rd_u32(ti.name.c_str());
    if (n_dims == 0 || n_dims > kMaxDims)
      fail("tensor '" + ti.name + "': " + std::to_string(n_dims) + " dimensions (must be 1 to 4)");
    ti.n_dims = static_cast<int>(n_dims);
    int64_t n_elem = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      int64_t ne = static_cast<int64_t>(rd_u64(ti.name.c_str()));
      if (ne <= 0) fail("tensor '" + ti.name + "': dimension " + std::to_string(d) + " is " + std::to_string(ne) + " (must be positive)");
      if (ne > std::numeric_limits<int64_t>::max() / n_elem) fail("tensor '" + ti.name + "': element count overflows");
      n_elem *= ne;
      ti.ne[d] = ne;
    }
    uint32_t type = rd_u32(ti.name.c_str());
    auto info = dtype_info(type);
    if (!info) fail("tensor '" + ti.name + "': unknown tensor type " + std::to_string(type));
    ti.type = info->type;
    if (ti.ne[0] % info->block_size != 0)
      fail("tensor '" + ti.name + "': row length " + std::to_string(ti.ne[0]) + " is not a multiple of the " +
           info->name + " block size " + std::to_string(info->block_size));
    uint64_t blocks = static_cast<uint64_t>(n_elem) / info->block_size;
    if (blocks > std::numeric_limits<uint64_t>::max() / info->block_bytes) fail("tensor '" + ti.name + "': byte size overflows");
    ti.nbytes = static_cast<size_t>(blocks * info->block_bytes);
    ti.offset = rd_u64(ti.name.c_str());
    if (ti.offset % alignment_ != 0)
      fail("tensor '" + ti.name + "': data offset " + std::to_string(ti.offset) + " is not aligned to " + std::to_string(alignment_));
    tensor_index_[ti.name] = tensors_.size();
    tensors_.push_back(std::move(ti));
  }

  data_offset_ = (pos + alignment_ - 1) / alignment_ * alignment_;
  if (n_tensors > 0 && data_offset_ > size) fail("truncated file: tensor data section starts past the end");
  // Offsets must keep every tensor inside the file and must not overlap one another.
  std::vector<std::pair<uint64_t, size_t>> spans;
  spans.reserve(tensors_.size());
  for (size_t k = 0; k < tensors_.size(); ++k) {
    GgufTensorInfo& ti = tensors_[k];
    uint64_t avail = size - data_offset_;
    if (ti.offset > avail || ti.nbytes > avail - ti.offset)
      fail("tensor '" + ti.name + "': data [" + std::to_string(ti.offset) + ", +" + std::to_string(ti.nbytes) +
           ") lies outside the file (data section has " + std::to_string(avail) + " bytes; truncated?)");
    ti.data = data + data_offset_ + ti.offset;
    spans.emplace_back(ti.offset, k);
  }
  std::sort(spans.begin(), spans.end());
  for (size_t k = 1; k < spans.size(); ++k) {
    const GgufTensorInfo& prev = tensors_[spans[k - 1].second];
    if (prev.offset + prev.nbytes > spans[k].first)
      fail("tensors '" + prev.name + "' and '" + tensors_[spans[k].second].name + "' overlap");
  }
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufTensorInfo* GgufFile::tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

static bool is_unsigned(GgufType t) {
  return t == GgufType::UINT8 || t == GgufType::UINT16 || t == GgufType::UINT32 || t == GgufType::UINT64;
}
static bool is_signed(GgufType t) {
  return t == GgufType::INT8 || t == GgufType::INT16 || t == GgufType::INT32 || t == GgufType::INT64;
}

std::optional<uint64_t> GgufFile::get_uint(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (is_unsigned(v->type)) return v->u;
  if (is_signed(v->type)) {
    if (v->i < 0) fail("metadata '" + std::string(key) + "' is negative (" + std::to_string(v->i) + ")");
    return static_cast<uint64_t>(v->i);
  }
  if (v->type == GgufType::BOOL) return static_cast<uint64_t>(v->i);
  fail("metadata '" + std::string(key) + "' has type " + gguf_type_name(v->type) + ", expected an integer");
}

std::optional<int64_t> GgufFile::get_int(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (is_signed(v->type) || v->type == GgufType::BOOL) return v->i;
  if (is_unsigned(v->type)) {
    if (v->u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) fail("metadata '" + std::string(key) + "' is out of range");
    return static_cast<int64_t>(v->u);
  }
  fail("metadata '" + std::string(key) + "' has type " + gguf_type_name(v->type) + ", expected an integer");
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type == GgufType::FLOAT32 || v->type == GgufType::FLOAT64) return v->f;
  if (is_unsigned(v->type)) return static_cast<double>(v->u);
  if (is_signed(v->type)) return static_cast<double>(v->i);
  fail("metadata '" + std::string(key) + "' has type " + gguf_type_name(v->type) + ", expected a number");
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type == GgufType::BOOL || is_signed(v->type)) return v->i != 0;
  if (is_unsigned(v->type)) return v->u != 0;
  fail("metadata '" + std::string(key) + "' has type " + gguf_type_name(v->type) + ", expected a bool");
}

std::optional<std::string> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::STRING) fail("metadata '" + std::string(key) + "' has type " + gguf_type_name(v->type) + ", expected a string");
  return v->s;
}

std::optional<std::vector<std::string>> GgufFile::get_string_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::ARRAY || v->elem_type != GgufType::STRING)
    fail("metadata '" + std::string(key) + "' is not an array of strings");
  return v->strs;
}

std::optional<std::vector<int64_t>> GgufFile::get_int_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::ARRAY || v->elem_type == GgufType::STRING || v->elem_type == GgufType::FLOAT32 ||
      v->elem_type == GgufType::FLOAT64)
    fail("metadata '" + std::string(key) + "' is not an array of integers");
  return v->ints;
}

std::optional<std::vector<double>> GgufFile::get_float_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::ARRAY || v->elem_type == GgufType::STRING) fail("metadata '" + std::string(key) + "' is not a numeric array");
  if (v->elem_type == GgufType::FLOAT32 || v->elem_type == GgufType::FLOAT64) return v->floats;
  std::vector<double> out(v->ints.begin(), v->ints.end());
  return out;
}

}  // namespace moe
