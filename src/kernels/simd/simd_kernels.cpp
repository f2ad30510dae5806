// The SIMD kernel table. Each entry dispatches per call to the best compiled Highway target (AVX3_DL with VNNI,
// AVX3, AVX2, SSE4, SSSE3, scalar on x86; NEON/SVE elsewhere), so forcing a target for tests takes effect at once.
#include "kernels/simd/hwy_config.h"  // first: same target set as the kernel files
#include <hwy/highway.h>
#include <hwy/targets.h>

#include "kernels/kernels.h"
#include "kernels/simd/simd_internal.h"

namespace moe {

const KernelSet& simd_kernels() {
  static const KernelSet set = {"simd",         simd_quantize_rows, simd_gemm,       simd_rms_norm,
                                simd_softmax,   simd_swiglu,        simd_attention,  simd_quantize_rows_packed,
                                simd_gemm_packed, simd_rope,        simd_attention_kt,
                                simd_attention_kt_masked};
  return set;
}

std::vector<SimdTarget> simd_targets() {
  std::vector<SimdTarget> out;
  for (int64_t t : hwy::SupportedAndGeneratedTargets()) out.push_back({t, hwy::TargetName(t)});
  return out;
}

const char* simd_target_name() {
  // The best target this CPU supports among the compiled ones, after any forcing.
  const auto targets = hwy::SupportedAndGeneratedTargets();
  return targets.empty() ? "none" : hwy::TargetName(targets.front());
}

void simd_force_target(int64_t id) { hwy::SetSupportedTargetsForTest(id); }

}  // namespace moe
