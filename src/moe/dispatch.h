// The plan, gather and combine steps of the MoE layer, MegaBlocks-style: the (token, slot) assignments of a batch
// are counted per expert -> prefix-summed into offsets -> permuted so that expert e owns the grouped rows
// [offset[e], offset[e+1]). Within an expert, rows keep token order, so results are deterministic. Inference
// (quantized activation rows) and training (float rows) both run these steps.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace moe {

struct DispatchPlan {
  std::vector<int32_t> count;       // [n_expert] assignments per expert
  std::vector<int32_t> offset;      // [n_expert + 1] prefix sums of count
  std::vector<int32_t> row_token;   // [n_rows] token of grouped row i
  std::vector<int32_t> row_slot;    // [n_rows] flat slot index (token * slot_stride + j) of grouped row i
  std::vector<int32_t> slot_row;    // [n_tokens * slot_stride] grouped row of each slot, -1 for unused/null slots
  std::vector<int32_t> active;      // experts with count > 0, ascending
  int n_rows = 0;

  // Sizes the buffers once for up to max_tokens tokens of slot_stride slots over n_expert experts.
  void reserve(int n_expert, int max_tokens, int slot_stride);
  // ids: [n_tokens][slot_stride] expert ids; n_used[t] of them are valid for token t. Ids outside [0, n_expert)
  // (null experts) get no row. Allocation-free after reserve().
  void build(const int32_t* ids, const int32_t* n_used, int n_tokens, int slot_stride, int n_expert);
};

// Gather: grouped row r of dst = row plan.row_token[r] of src, for rows [r0, r1) (rows of row_bytes bytes).
void gather_rows(const DispatchPlan& plan, const uint8_t* src, size_t row_bytes, int r0, int r1, uint8_t* dst);

// Combine: for tokens [t0, t1) and columns [c0, c1), y[t] = sum over the token's slots j, in slot order, of
// weights[t, j] * rows[slot_row[t, j]] (null slots add nothing; a token with none gets zeros). rows and y have
// n_cols floats per row. Slot order is the order llama.cpp adds expert outputs in, so sums match it bit for bit.
void combine_rows(const DispatchPlan& plan, const float* weights, const int32_t* n_used, int slot_stride,
                  const float* rows, int64_t n_cols, int t0, int t1, int64_t c0, int64_t c1, float* y);

}  // namespace moe
