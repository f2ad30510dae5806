#include "moe/dispatch.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace moe {

void DispatchPlan::reserve(int n_expert, int max_tokens, int slot_stride) {
  const size_t slots = static_cast<size_t>(max_tokens) * static_cast<size_t>(slot_stride);
  count.assign(static_cast<size_t>(n_expert), 0);
  offset.assign(static_cast<size_t>(n_expert) + 1, 0);
  row_token.assign(slots, 0);
  row_slot.assign(slots, 0);
  slot_row.assign(slots, -1);
  active.reserve(static_cast<size_t>(n_expert));
  n_rows = 0;
}

void DispatchPlan::build(const int32_t* ids, const int32_t* n_used, int n_tokens, int slot_stride, int n_expert) {
  if (static_cast<int>(count.size()) != n_expert) throw Error("DispatchPlan: reserve() was not called for this layer");
  const size_t slots = static_cast<size_t>(n_tokens) * static_cast<size_t>(slot_stride);
  if (slots > slot_row.size()) throw Error("DispatchPlan: more tokens or slots than reserved");
  std::fill(count.begin(), count.end(), 0);
  for (int t = 0; t < n_tokens; ++t) {
    if (n_used[t] > slot_stride) throw Error("DispatchPlan: a token uses more slots than the stride");
    for (int j = 0; j < n_used[t]; ++j) {
      const int e = ids[t * slot_stride + j];
      if (e >= 0 && e < n_expert) ++count[e];
    }
  }
  offset[0] = 0;
  for (int e = 0; e < n_expert; ++e) offset[e + 1] = offset[e] + count[e];
  n_rows = offset[n_expert];
  active.clear();
  for (int e = 0; e < n_expert; ++e)
    if (count[e] > 0) active.push_back(e);
  // Second pass places each assignment; `count` serves as the per-expert cursor and ends equal to the counts.
  std::fill(count.begin(), count.end(), 0);
  std::fill(slot_row.begin(), slot_row.begin() + static_cast<std::ptrdiff_t>(slots), -1);
  for (int t = 0; t < n_tokens; ++t)
    for (int j = 0; j < n_used[t]; ++j) {
      const int e = ids[t * slot_stride + j];
      if (e < 0 || e >= n_expert) continue;
      const int row = offset[e] + count[e]++;
      row_token[row] = t;
      row_slot[row] = t * slot_stride + j;
      slot_row[static_cast<size_t>(t) * slot_stride + j] = row;
    }
}

void gather_rows(const DispatchPlan& plan, const uint8_t* src, size_t row_bytes, int r0, int r1, uint8_t* dst) {
  for (int r = r0; r < r1; ++r)
    std::memcpy(dst + static_cast<size_t>(r) * row_bytes, src + static_cast<size_t>(plan.row_token[r]) * row_bytes,
                row_bytes);
}

void combine_rows(const DispatchPlan& plan, const float* weights, const int32_t* n_used, int slot_stride,
                  const float* rows, int64_t n_cols, int t0, int t1, int64_t c0, int64_t c1, float* y) {
  for (int t = t0; t < t1; ++t) {
    float* yt = y + static_cast<int64_t>(t) * n_cols;
    bool first = true;
    for (int j = 0; j < n_used[t]; ++j) {
      const size_t slot = static_cast<size_t>(t) * slot_stride + j;
      const int r = plan.slot_row[slot];
      if (r < 0) continue;  // null expert: contributes nothing
      const float w = weights[slot];
      const float* o = rows + static_cast<int64_t>(r) * n_cols;
      if (first) {
        for (int64_t i = c0; i < c1; ++i) yt[i] = o[i] * w;
        first = false;
      } else {
        for (int64_t i = c0; i < c1; ++i) yt[i] += o[i] * w;
      }
    }
    if (first) std::memset(yt + c0, 0, sizeof(float) * static_cast<size_t>(c1 - c0));
  }
}

}  // namespace moe
