// Included first by every SIMD kernel file: the set of Highway targets we compile. AVX3_DL (Ice Lake, Zen 4/5:
// AVX-512 with VNNI) is opt-in in Highway 1.0.3; it is the target that gets the VNNI int8 dot products.
#pragma once
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
