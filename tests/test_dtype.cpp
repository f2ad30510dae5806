#include <gtest/gtest.h>

#include "core/dtype.h"

using namespace moe;

TEST(DType, KnownSizesMatchGgml) {
  EXPECT_EQ(dtype_info(DType::Q4_K).block_bytes, 144u);
  EXPECT_EQ(dtype_info(DType::Q6_K).block_bytes, 210u);
  EXPECT_EQ(dtype_info(DType::Q8_0).block_bytes, 34u);
  EXPECT_EQ(row_bytes(DType::Q8_0, 64), 68u);
  EXPECT_EQ(row_bytes(DType::F16, 3), 6u);
  // MXFP4 (ggml type 39): one E8M0 byte + 16 bytes of 4-bit codes per 32 weights.
  ASSERT_TRUE(dtype_info(39u).has_value());
  EXPECT_EQ(dtype_info(39u)->type, DType::MXFP4);
  EXPECT_EQ(dtype_info(DType::MXFP4).block_size, 32u);
  EXPECT_EQ(dtype_info(DType::MXFP4).block_bytes, 17u);
  EXPECT_TRUE(dtype_info(DType::MXFP4).computable);
  EXPECT_EQ(row_bytes(DType::MXFP4, 2880), 1530u);  // a gpt-oss-20b expert row
}

TEST(DType, UnknownIdsAreRejected) {
  EXPECT_FALSE(dtype_info(4u).has_value());  // ids 4 and 5 were removed from ggml
  EXPECT_FALSE(dtype_info(1000u).has_value());
  EXPECT_TRUE(dtype_info(30u).has_value());
}

TEST(DType, NamesParseCaseInsensitively) {
  EXPECT_EQ(dtype_from_name("Q4_K"), DType::Q4_K);
  EXPECT_EQ(dtype_from_name("bf16"), DType::BF16);
  EXPECT_EQ(dtype_from_name("MXFP4"), DType::MXFP4);
  EXPECT_FALSE(dtype_from_name("q9_9").has_value());
}
