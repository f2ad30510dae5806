// Grouping of (token, slot) assignments by expert, MegaBlocks-style: count -> offsets (prefix sum) ->
// permutation. Row i of an expert-grouped buffer holds assignment perm[i]; expert e owns rows
// [offset[e], offset[e+1]). Within an expert, rows keep token order, so results are deterministic.
#pragma once
#include <cstdint>
#include <vector>

namespace moe {

struct DispatchPlan {
  std::vector<int32_t> count;       // [n_expert] assignments per expert
  std::vector<int32_t> offset;      // [n_expert + 1] prefix sums of count
  std::vector<int32_t> row_token;   // [n_rows] token of grouped row i
  std::vector<int32_t> row_slot;    // [n_rows] flat slot index (token * slot_stride + j) of grouped row i
  std::vector<int32_t> active;      // experts with count > 0, ascending
  int n_rows = 0;

  // Sizes the buffers once for up to max_rows assignments over n_expert experts.
  void reserve(int n_expert, int max_rows);
  // ids: [n_tokens][slot_stride] expert ids; n_used[t] of them are valid for token t. Ids >= n_expert (null
  // experts) are skipped. Allocation-free after reserve().
  void build(const int32_t* ids, const int32_t* n_used, int n_tokens, int slot_stride, int n_expert);
};

}  // namespace moe
