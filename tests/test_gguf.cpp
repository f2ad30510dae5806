#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "format/gguf.h"
#include "support/testdata.h"

using namespace moe;
using moe::test::testdata_path;

namespace {

std::vector<uint8_t> small_file() {
  GgufWriter w;
  w.set("general.architecture", GgufValue::make_string("qwen3moe"));
  w.set("some.u32", GgufValue::make_u32(7));
  w.set("some.f32", GgufValue::make_f32(0.5f));
  w.set("some.bool", GgufValue::make_bool(true));
  w.set("some.strs", GgufValue::make_string_array({"a", "", "ü"}));
  w.set("some.ints", GgufValue::make_i32_array({-1, 2, 3}));
  static float a[6] = {1, 2, 3, 4, 5, 6};
  static float b[3] = {7, 8, 9};
  w.add_tensor("a", DType::F32, {3, 2}, a, sizeof(a));
  w.add_tensor("b", DType::F32, {3}, b, sizeof(b));
  return w.to_bytes();
}

void expect_format_error(const std::vector<uint8_t>& bytes, const std::string& needle) {
  try {
    GgufFile f(bytes.data(), bytes.size(), "mem.gguf");
    FAIL() << "expected FormatError containing '" << needle << "'";
  } catch (const FormatError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("mem.gguf"), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  }
}

// Offset of the first occurrence of `s` in the file image.
size_t find_bytes(const std::vector<uint8_t>& v, const std::string& s) {
  auto it = std::search(v.begin(), v.end(), s.begin(), s.end());
  return static_cast<size_t>(it - v.begin());
}

}  // namespace

TEST(Gguf, WrittenFileReadsBack) {
  auto bytes = small_file();
  GgufFile f(bytes.data(), bytes.size(), "mem.gguf");
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.get_string("general.architecture"), "qwen3moe");
  EXPECT_EQ(f.get_uint("some.u32"), 7u);
  EXPECT_FLOAT_EQ(*f.get_float("some.f32"), 0.5);
  EXPECT_EQ(f.get_bool("some.bool"), true);
  EXPECT_EQ(f.get_string_array("some.strs")->at(2), "ü");
  EXPECT_EQ(f.get_int_array("some.ints")->at(0), -1);
  EXPECT_FALSE(f.get_uint("missing").has_value());
  EXPECT_THROW(f.get_uint("general.architecture"), FormatError);
  const GgufTensorInfo* a = f.tensor("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->ne[0], 3);
  EXPECT_EQ(a->ne[1], 2);
  EXPECT_EQ(a->nbytes, 24u);
  EXPECT_EQ(reinterpret_cast<const float*>(a->data)[5], 6.0f);
  const GgufTensorInfo* b = f.tensor("b");
  EXPECT_EQ(b->offset % 32, 0u);
  EXPECT_EQ(reinterpret_cast<const float*>(b->data)[2], 9.0f);
  EXPECT_EQ(f.data_offset() % 32, 0u);
}

TEST(Gguf, CustomAlignmentIsHonoured) {
  GgufWriter w(4096);
  float x[4] = {1, 2, 3, 4};
  w.add_tensor("x", DType::F32, {4}, x, sizeof(x));
  w.add_tensor("y", DType::F32, {4}, x, sizeof(x));
  auto bytes = w.to_bytes();
  GgufFile f(bytes.data(), bytes.size(), "mem.gguf");
  EXPECT_EQ(f.alignment(), 4096u);
  EXPECT_EQ(f.data_offset() % 4096, 0u);
  EXPECT_EQ(f.tensor("y")->offset, 4096u);
}

TEST(Gguf, RoundTripOfReferenceModelsIsExact) {
  MOE_REQUIRE_TESTDATA();
  for (const char* name : {"reference/qwen3moe-tiny-f32.gguf", "reference/qwen3moe-tiny-q4_k_m.gguf",
                           "reference/llama-moe-tiny-f32.gguf", "reference/stories260K-f32.gguf"}) {
    std::string path = testdata_path(name);
    GgufFile src(path);
    GgufWriter w(src.alignment());
    w.copy_metadata(src);
    for (const auto& t : src.tensors())
      w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims), t.data, t.nbytes);
    std::string out = moe::test::scratch_dir("gguf_roundtrip") + "/out.gguf";
    w.write(out);
    // llama.cpp-compatible layout: the files llama.cpp's gguf-py wrote come back byte for byte.
    EXPECT_EQ(moe::test::read_file(out), moe::test::read_file(path)) << name;
    GgufFile back(out);
    ASSERT_EQ(back.metadata().size(), src.metadata().size());
    for (size_t k = 0; k < src.metadata().size(); ++k) {
      EXPECT_EQ(back.metadata()[k].first, src.metadata()[k].first);
      EXPECT_EQ(back.metadata()[k].second.to_string(1000000), src.metadata()[k].second.to_string(1000000));
    }
    ASSERT_EQ(back.tensors().size(), src.tensors().size());
    for (size_t k = 0; k < src.tensors().size(); ++k) {
      const auto& a = src.tensors()[k];
      const auto& b = back.tensors()[k];
      EXPECT_EQ(a.name, b.name);
      EXPECT_EQ(a.type, b.type);
      EXPECT_EQ(a.ne, b.ne);
      ASSERT_EQ(a.nbytes, b.nbytes);
      EXPECT_EQ(std::memcmp(a.data, b.data, a.nbytes), 0) << a.name;
    }
  }
}

TEST(Gguf, AtomicWriteLeavesNoPartialFile) {
  std::string dir = moe::test::scratch_dir("gguf_atomic");
  GgufWriter w;
  float x[4] = {1, 2, 3, 4};
  w.add_tensor("x", DType::F32, {4}, x, sizeof(x));
  EXPECT_THROW(w.write(dir + "/no/such/dir/out.gguf"), Error);
  w.write(dir + "/out.gguf");
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1);  // no temp file left behind
}

TEST(Gguf, WriterRejectsInconsistentTensors) {
  GgufWriter w;
  float x[4] = {};
  EXPECT_THROW(w.add_tensor("x", DType::F32, {5}, x, sizeof(x)), Error);
  EXPECT_THROW(w.add_tensor("x", DType::Q8_0, {4}, x, sizeof(x)), Error);
  EXPECT_THROW(w.add_tensor("x", DType::F32, {0}, x, 0), Error);
  w.add_tensor("x", DType::F32, {4}, x, sizeof(x));
  EXPECT_THROW(w.add_tensor("x", DType::F32, {4}, x, sizeof(x)), Error);
}

TEST(Gguf, BadMagicAndVersion) {
  auto b = small_file();
  b[0] = 'X';
  expect_format_error(b, "bad magic");
  b = small_file();
  b[4] = 1;
  expect_format_error(b, "version 1");
  b = small_file();
  b[4] = 9;
  expect_format_error(b, "unsupported GGUF version 9");
  expect_format_error({'G', 'G'}, "too small");
}

TEST(Gguf, EveryTruncationIsAClearError) {
  auto full = small_file();
  GgufFile whole(full.data(), full.size(), "full.gguf");
  size_t end_of_data = whole.data_offset() + whole.tensor("b")->offset + whole.tensor("b")->nbytes;
  for (size_t n = 0; n < end_of_data; ++n) {  // the padding after the last tensor is optional
    std::vector<uint8_t> cut(full.begin(), full.begin() + n);
    EXPECT_THROW(GgufFile(cut.data(), cut.size(), "cut.gguf"), FormatError) << "length " << n;
  }
}

TEST(Gguf, AbsurdCountsDoNotAllocate) {
  auto b = small_file();
  uint64_t huge = 1ull << 60;
  std::memcpy(&b[16], &huge, 8);  // metadata count
  expect_format_error(b, "metadata count");
  b = small_file();
  std::memcpy(&b[8], &huge, 8);  // tensor count
  expect_format_error(b, "tensor count");
  b = small_file();
  size_t key = find_bytes(b, "some.strs");
  std::memcpy(&b[key + 9 + 8], &huge, 8);  // array length after type + elem type
  expect_format_error(b, "array of");
  b = small_file();
  size_t len_at = find_bytes(b, "general.architecture") - 8;
  std::memcpy(&b[len_at], &huge, 8);
  expect_format_error(b, "string length");
}

TEST(Gguf, LyingTensorInfoIsRejected) {
  auto b = small_file();
  size_t at = find_bytes(b, std::string("\x01\x00\x00\x00\x00\x00\x00\x00" "b", 9)) + 9;  // tensor "b" info
  // layout after the name: n_dims u32, ne u64..., type u32, offset u64
  auto patch_u32 = [&](size_t pos, uint32_t v) { std::memcpy(&b[pos], &v, 4); };
  auto patch_u64 = [&](size_t pos, uint64_t v) { std::memcpy(&b[pos], &v, 8); };
  auto fresh = [&] { b = small_file(); };
  patch_u32(at, 7);
  expect_format_error(b, "dimensions");
  fresh();
  patch_u64(at + 4, 0);
  expect_format_error(b, "must be positive");
  fresh();
  patch_u64(at + 4, 1ull << 62);
  expect_format_error(b, "overflows");
  fresh();
  patch_u64(at + 4, 1ull << 40);
  expect_format_error(b, "outside the file");
  fresh();
  patch_u32(at + 12, 77);
  expect_format_error(b, "unknown tensor type 77");
  fresh();
  patch_u32(at + 12, static_cast<uint32_t>(DType::Q8_0));
  expect_format_error(b, "not a multiple");
  fresh();
  patch_u64(at + 16, 0);
  expect_format_error(b, "overlap");
  fresh();
  patch_u64(at + 16, 33);
  expect_format_error(b, "not aligned");
  fresh();
  patch_u64(at + 16, 1ull << 40);
  expect_format_error(b, "outside the file");
}

TEST(Gguf, DuplicateKeysAndBadBools) {
  auto b = small_file();
  size_t pos = find_bytes(b, "some.f32");
  std::memcpy(&b[pos], "some.u32", 8);
  expect_format_error(b, "duplicate metadata key");
  b = small_file();
  pos = find_bytes(b, "some.bool") + 9 + 4;
  b[pos] = 5;
  expect_format_error(b, "bool value");
}

TEST(Gguf, MissingFileNamesThePath) {
  try {
    GgufFile f("/nonexistent/model.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.gguf"), std::string::npos);
  }
}
