// GGUF v2/v3 reader over mmap (tensor data is zero-copy) and writer (atomic: temp file + rename).
// Every count, length, offset and shape is validated before use; a malformed file raises FormatError
// with one line naming the file and the problem.
#pragma once
#include <array>
#include <functional>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/mapped_file.h"

namespace moe {

enum class GgufType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* gguf_type_name(GgufType t);

// One metadata value, owned. Scalars use the field of their kind (unsigned -> u, signed -> i, floats -> f,
// bool -> i as 0/1, string -> s); arrays keep their element type and their items in strs / ints / floats
// (uint64 items are stored bit-for-bit in ints), so a read -> write round trip is exact.
struct GgufValue {
  GgufType type = GgufType::UINT32;
  GgufType elem_type = GgufType::UINT32;  // only for ARRAY
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::vector<std::string> strs;
  std::vector<int64_t> ints;
  std::vector<double> floats;

  static GgufValue make_u32(uint32_t v);
  static GgufValue make_u64(uint64_t v);
  static GgufValue make_i32(int32_t v);
  static GgufValue make_f32(float v);
  static GgufValue make_bool(bool v);
  static GgufValue make_string(std::string v);
  static GgufValue make_string_array(std::vector<std::string> v);
  static GgufValue make_i32_array(const std::vector<int32_t>& v);
  static GgufValue make_u32_array(const std::vector<uint32_t>& v);
  static GgufValue make_f32_array(const std::vector<float>& v);
  static GgufValue make_bool_array(const std::vector<bool>& v);

  bool is_array() const { return type == GgufType::ARRAY; }
  size_t array_size() const;
  std::string to_string(size_t max_items = 8) const;  // for display (moe info)
};

struct GgufTensorInfo {
  std::string name;
  DType type = DType::F32;
  int n_dims = 0;
  std::array<int64_t, 4> ne{1, 1, 1, 1};  // ggml order: ne[0] is the fastest-varying (row length)
  uint64_t offset = 0;                    // relative to the data section
  const uint8_t* data = nullptr;          // points into the mapped file
  size_t nbytes = 0;

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  size_t row_bytes() const { return moe::row_bytes(type, ne[0]); }  // bytes of one ne[0] row
  std::string shape_string() const;                                  // e.g. "[2048, 1024, 64]"
};

class GgufFile {
 public:
  // Maps and parses `path`; throws FormatError on any malformation.
  explicit GgufFile(const std::string& path);
  // Parses an in-memory image (fuzzing, tests); `name` is used in messages. The bytes must outlive this.
  GgufFile(const uint8_t* data, size_t size, std::string name);

  const std::string& path() const { return name_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  size_t file_size() const { return size_; }
  // Byte 0 of the file's image in memory: a tensor's file offset is its data pointer minus this.
  const uint8_t* base() const { return base_; }
  // True when the image is a mapping of a file on disk at path() (not an in-memory image).
  bool mapped() const { return map_.data() != nullptr; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Typed getters: nullopt if absent; FormatError if present with an incompatible type or out of range.
  std::optional<uint64_t> get_uint(std::string_view key) const;
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  // Array getters: empty optional if absent; FormatError if not an array of a compatible element type.
  std::optional<std::vector<std::string>> get_string_array(std::string_view key) const;
  std::optional<std::vector<int64_t>> get_int_array(std::string_view key) const;
  std::optional<std::vector<double>> get_float_array(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* tensor(std::string_view name) const;  // nullptr if absent

 private:
  void parse(const uint8_t* data, size_t size);
  [[noreturn]] void fail(const std::string& what) const;

  std::string name_;
  MappedFile map_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

// Builds a GGUF file in memory order and writes it atomically (temp file in the same folder, fsync, rename).
// Tensor data is either borrowed (must stay valid until write()) or owned.
class GgufWriter {
 public:
  explicit GgufWriter(uint64_t alignment = 32) : alignment_(alignment) {}

  // Sets (or replaces, keeping its position) a metadata key.
  void set(const std::string& key, GgufValue value);
  void remove(const std::string& key);
  const GgufValue* find(const std::string& key) const;
  // Copies every key of `src` (in order), except general.alignment which the writer owns.
  void copy_metadata(const GgufFile& src);

  // ne in ggml order (ne[0] = row length). nbytes must equal the size implied by type and shape.
  void add_tensor(const std::string& name, DType type, const std::vector<int64_t>& ne, const void* data,
                  size_t nbytes);
  void add_tensor_owned(const std::string& name, DType type, const std::vector<int64_t>& ne,
                        std::vector<uint8_t> bytes);
  // A tensor produced while writing (big generated or converted models never sit in memory whole):
  // fill(dst) must write exactly the tensor's bytes into dst.
  using TensorFill = std::function<void(uint8_t* dst)>;
  void add_tensor_generated(const std::string& name, DType type, const std::vector<int64_t>& ne, TensorFill fill);
  // Called after each tensor's data is written: (tensors done, total tensors, bytes done, total bytes).
  void set_progress(std::function<void(size_t, size_t, uint64_t, uint64_t)> cb) { progress_ = std::move(cb); }

  // Writes the file atomically; on any failure the destination is untouched and the temp file removed.
  void write(const std::string& path) const;
  // The exact bytes write() would produce (tests, small files).
  std::vector<uint8_t> to_bytes() const;

 private:
  struct PendingTensor {
    std::string name;
    DType type;
    std::vector<int64_t> ne;
    const uint8_t* data;
    size_t nbytes;
    std::shared_ptr<std::vector<uint8_t>> owned;
    TensorFill fill;
  };
  template <class Sink>
  void emit(Sink& sink) const;

  uint64_t alignment_;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<PendingTensor> tensors_;
  std::function<void(size_t, size_t, uint64_t, uint64_t)> progress_;
};

}  // namespace moe
