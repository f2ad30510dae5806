#include "moe/dispatch.h"

#include <algorithm>

#include "core/error.h"

namespace moe {

void DispatchPlan::reserve(int n_expert, int max_rows) {
  count.assign(static_cast<size_t>(n_expert), 0);
  offset.assign(static_cast<size_t>(n_expert) + 1, 0);
  row_token.assign(static_cast<size_t>(max_rows), 0);
  row_slot.assign(static_cast<size_t>(max_rows), 0);
  active.reserve(static_cast<size_t>(n_expert));
}

void DispatchPlan::build(const int32_t* ids, const int32_t* n_used, int n_tokens, int slot_stride, int n_expert) {
  if (static_cast<int>(count.size()) != n_expert) throw Error("DispatchPlan: reserve() was not called for this layer");
  std::fill(count.begin(), count.end(), 0);
  int total = 0;
  for (int t = 0; t < n_tokens; ++t)
    for (int j = 0; j < n_used[t]; ++j) {
      int e = ids[t * slot_stride + j];
      if (e >= 0 && e < n_expert) {
        ++count[e];
        ++total;
      }
    }
  if (total > static_cast<int>(row_token.size())) throw Error("DispatchPlan: more assignments than reserved");
  offset[0] = 0;
  for (int e = 0; e < n_expert; ++e) offset[e + 1] = offset[e] + count[e];
  active.clear();
  for (int e = 0; e < n_expert; ++e)
    if (count[e] > 0) active.push_back(e);
  // Second pass fills each expert's rows in token order (cursor per expert reuses `count`).
  std::fill(count.begin(), count.end(), 0);
  for (int t = 0; t < n_tokens; ++t)
    for (int j = 0; j < n_used[t]; ++j) {
      int e = ids[t * slot_stride + j];
      if (e < 0 || e >= n_expert) continue;
      int row = offset[e] + count[e]++;
      row_token[row] = t;
      row_slot[row] = t * slot_stride + j;
    }
  n_rows = total;
}

}  // namespace moe
