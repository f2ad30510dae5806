// Real trained weights: Karpathy's stories260K, converted by our own converter, reproduces llama2.c's known
// greedy story (and its tensors equal llama.cpp's conversion of the same checkpoint).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "core/error.h"
#include "format/gguf.h"
#include "format/llama2c.h"
#include "model/context.h"
#include "model/sampling.h"
#include "support/reference.h"
#include "support/testdata.h"

using namespace moe;

TEST(Llama2c, ConvertedStories260KMatchesLlamaCppConversionAndGreedyStory) {
  MOE_REQUIRE_TESTDATA();
  const std::string out = moe::test::scratch_dir("llama2c") + "/stories260K.gguf";
  convert_llama2c(moe::test::testdata_path("llama2c/stories260K.bin"), moe::test::testdata_path("llama2c/tok512.bin"), out);
  GgufFile ours(out);
  GgufFile ref(moe::test::testdata_path("reference/stories260K-f32.gguf"));
  for (const auto& t : ref.tensors()) {
    const GgufTensorInfo* o = ours.tensor(t.name);
    ASSERT_NE(o, nullptr) << t.name;
    ASSERT_EQ(o->nbytes, t.nbytes) << t.name;
    EXPECT_EQ(std::memcmp(o->data, t.data, t.nbytes), 0) << t.name;
  }
  EXPECT_EQ(ours.get_string_array("tokenizer.ggml.tokens"), ref.get_string_array("tokenizer.ggml.tokens"));
  EXPECT_EQ(ours.get_int_array("tokenizer.ggml.token_type"), ref.get_int_array("tokenizer.ggml.token_type"));
  EXPECT_EQ(ours.get_float_array("tokenizer.ggml.scores"), ref.get_float_array("tokenizer.ggml.scores"));

  auto model = Model::load(out);
  ThreadPool pool(2);
  Context ctx(*model, pool, {.n_ctx = 256});
  std::vector<float> logits(model->config().n_vocab);
  auto expect = moe::test::read_ids(moe::test::testdata_path("reference/stories260K-f32.bos.greedy200.txt"));
  ctx.decode(std::vector<int32_t>{1}, logits.data(), false);
  std::vector<int32_t> got;
  for (size_t i = 0; i < expect.size(); ++i) {
    got.push_back(argmax(logits));
    ctx.decode(std::vector<int32_t>{got.back()}, logits.data(), false);
  }
  EXPECT_EQ(got, expect);
}

TEST(Llama2c, TruncatedCheckpointIsAClearError) {
  MOE_REQUIRE_TESTDATA();
  const std::string dir = moe::test::scratch_dir("llama2c_bad");
  std::string bytes = moe::test::read_file(moe::test::testdata_path("llama2c/stories260K.bin"));
  moe::test::write_file(dir + "/cut.bin", bytes.substr(0, bytes.size() / 2));
  EXPECT_THROW(convert_llama2c(dir + "/cut.bin", moe::test::testdata_path("llama2c/tok512.bin"), dir + "/o.gguf"), FormatError);
  moe::test::write_file(dir + "/tiny.bin", "abc");
  EXPECT_THROW(convert_llama2c(dir + "/tiny.bin", moe::test::testdata_path("llama2c/tok512.bin"), dir + "/o.gguf"), FormatError);
  EXPECT_FALSE(std::ifstream(dir + "/o.gguf").good());
}
