// The K formats (super-blocks of 256 with 16 or 8 sub-block scales): layout and arithmetic of ggml's
// ggml-quants.c (dequantize_row_*, quantize_row_*_ref: the bytes llama-quantize writes without an importance
// matrix) and of the Q8_K activation dots in ggml-cpu/quants.c. Each format is first unpacked to plain integers
// (quant per element, scale and min per sub-block); dequantization and dots are then written once on those.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/quant_ref.h"

namespace moe::qref {
namespace {

constexpr float kGroupMaxEps = 1e-15f;  // ggml's GROUP_MAX_EPS: smaller groups count as all zero

// A super-block as integers: element k is d * scale[k / sub] * q[k] - dmin * min[k / sub], with the block's
// float factors d and dmin (min is 0 for Q3_K/Q6_K). q already has the format's offset (-4, -32) applied.
struct Unpacked {
  int8_t q[kQKK];
  int scale[16];
  int min[16];
};

// ---- unpacking: element k of the super-block -> its integer quant and its sub-block's scale/min ----

// Q2_K and Q3_K share the 2-bit layout: k = 128h + 32j + l keeps bits 2j..2j+1 of qs[32h + l].
inline int q2_bits(const uint8_t* qs, int k) { return (qs[32 * (k / 128) + k % 32] >> (2 * ((k % 128) / 32))) & 3; }

void unpack_q2_K(const BlockQ2_K& b, Unpacked* u) {
  for (int k = 0; k < kQKK; ++k) u->q[k] = static_cast<int8_t>(q2_bits(b.qs, k));
  for (int j = 0; j < 16; ++j) {
    u->scale[j] = b.scales[j] & 0xF;
    u->min[j] = b.scales[j] >> 4;
  }
}

// Q3_K: the third bit of element k = 128h + 32j + l is bit 4h + j of hmask[l]; a clear bit means "minus 4".
// The 16 six-bit scales: low nibbles in bytes 0..7, high 2-bit pairs in bytes 8..11, stored with +32.
void unpack_q3_K(const BlockQ3_K& b, Unpacked* u) {
  for (int k = 0; k < kQKK; ++k) {
    const int hbit = (b.hmask[k % 32] >> (k / 32)) & 1;
    u->q[k] = static_cast<int8_t>(q2_bits(b.qs, k) - (hbit ? 0 : 4));
  }
  for (int j = 0; j < 16; ++j) {
    const int lo = j < 8 ? (b.scales[j] & 0xF) : (b.scales[j - 8] >> 4);
    const int hi = (b.scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    u->scale[j] = (lo | (hi << 4)) - 32;
    u->min[j] = 0;
  }
}

// Q4_K and Q5_K: element k = 64g + 32t + l is nibble t of qs[32g + l]; 8 sub-blocks of 32 with 6-bit scale and min.
template <class Block>
void unpack_k4_scales(const Block& b, Unpacked* u) {
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    k4_scale_min(j, b.scales, &sc, &m);
    u->scale[j] = sc;
    u->min[j] = m;
  }
}

inline int k4_nibble(const uint8_t* qs, int k) {
  const uint8_t byte = qs[32 * (k / 64) + k % 32];
  return (k % 64) < 32 ? (byte & 0xF) : (byte >> 4);
}

void unpack_q4_K(const BlockQ4_K& b, Unpacked* u) {
  for (int k = 0; k < kQKK; ++k) u->q[k] = static_cast<int8_t>(k4_nibble(b.qs, k));
  unpack_k4_scales(b, u);
}

// Q5_K: the fifth bit of element k is bit k / 32 of qh[k % 32].
void unpack_q5_K(const BlockQ5_K& b, Unpacked* u) {
  for (int k = 0; k < kQKK; ++k) {
    const int hbit = (b.qh[k % 32] >> (k / 32)) & 1;
    u->q[k] = static_cast<int8_t>(k4_nibble(b.qs, k) | (hbit << 4));
  }
  unpack_k4_scales(b, u);
}

// Q6_K: element k = 128h + 32t + l: low nibble from ql[64h + 32(t&1) + l] (low half for t < 2), high two bits
// are bits 2t..2t+1 of qh[32h + l]; stored with +32. 16 signed 8-bit scales.
void unpack_q6_K(const BlockQ6_K& b, Unpacked* u) {
  for (int k = 0; k < kQKK; ++k) {
    const int h = k / 128, t = (k % 128) / 32, l = k % 32;
    const uint8_t lbyte = b.ql[64 * h + 32 * (t & 1) + l];
    const int lo = t < 2 ? (lbyte & 0xF) : (lbyte >> 4);
    const int hi = (b.qh[32 * h + l] >> (2 * t)) & 3;
    u->q[k] = static_cast<int8_t>((lo | (hi << 4)) - 32);
  }
  for (int j = 0; j < 16; ++j) {
    u->scale[j] = b.scales[j];
    u->min[j] = 0;
  }
}

// ---- packing (the inverse of the above), from levels L already offset to be non-negative ----

void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < kQKK; j += 128)
    for (int l = 0; l < 32; ++l)
      qs[j / 4 + l] =
          static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

void pack_nibbles(const uint8_t* L, uint8_t* qs) {  // Q4_K / Q5_K low nibbles
  for (int j = 0; j < kQKK; j += 64)
    for (int l = 0; l < 32; ++l) qs[j / 2 + l] = static_cast<uint8_t>((L[j + l] & 0xF) | ((L[j + l + 32] & 0xF) << 4));
}

// Scales and mins of Q4_K/Q5_K, 6 bits each, 8 of each into 12 bytes.
void pack_k4_scales(const uint8_t* ls, const uint8_t* lm, uint8_t* scales) {
  std::memset(scales, 0, 12);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      scales[j] = ls[j];
      scales[j + 4] = lm[j];
    } else {
      scales[j + 4] = static_cast<uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
      scales[j - 4] |= static_cast<uint8_t>((ls[j] >> 4) << 6);
      scales[j] |= static_cast<uint8_t>((lm[j] >> 4) << 6);
    }
  }
}

// Rounding of the K weight quantizers, as llama-quantize rounds: add 1.5 * 2^23 so that the integer part lands in
// the low mantissa bits, and read them. That is round-half-even for |v| < 2^22 and wraps around beyond. Finite
// weights do get there: on super-blocks whose magnitudes span ~2^30, Q3_K and Q6_K differed from ggml's
// quantizers in ~10% of the blocks while we saturated instead (found by comparing with libggml's *_ref
// functions). Reproducing the wrap keeps the bytes equal there too. Defined for every input, NaN and inf included.
inline int level_round(float v) {
  const float shifted = v + 12582912.f;
  uint32_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  return static_cast<int>(bits & 0x007fffffu) - 0x00400000;
}

// ---- choosing a sub-block's scale (and min) ----
// A K-format sub-block is stored as scale * level (+ min) with small integer levels. For fixed levels, the best
// scale and min form a weighted least-squares fit; the levels in turn come from rounding x by the scale. Neither
// step alone finds the optimum, so each search below alternates them from several starting points and keeps
// the fit with the smallest weighted error. They are the searches llama-quantize runs when it has no
// importance matrix; to write the same bytes, every float expression keeps its operand order and every sum is
// accumulated element by element, first to last.

// Asymmetric levels 0..nmax (Q2_K, Q4_K, Q5_K). Trial inverse steps are (nmax + rmin + rdelta * t) / range for
// t = 0..nsteps, i.e. a little coarser and finer than spreading nmax steps over the range [min, max].
struct AsymmetricSearch {
  int nmax;
  float rmin, rdelta;
  int nsteps;      // 0: keep the plain range fit
  bool abs_error;  // weigh |error| instead of error^2 (Q2_K: with 4 levels, squares let outliers dominate)
};

// Levels of x - lo at inverse step iscale: round to nearest, clamp to 0..nmax.
void round_from_min(const float* x, int n, float lo, float iscale, int nmax, uint8_t* L) {
  for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(std::clamp(level_round(iscale * (x[i] - lo)), 0, nmax));
}

// Weighted error of reconstructing x as scale * L + min.
float reconstruction_error(const float* x, const float* w, const uint8_t* L, int n, float scale, float min,
                           bool abs_error) {
  float err = 0;
  for (int i = 0; i < n; ++i) {
    const float diff = scale * L[i] + min - x[i];
    err += w[i] * (abs_error ? std::fabs(diff) : diff * diff);
  }
  return err;
}

// Scale and min minimising sum w (scale * l + min - x)^2 for fixed levels: the 2x2 normal equations, solved by
// Cramer's rule (sum_w, sum_x are the level-independent sums). The min must not be positive (the format stores
// it as a non-negative amount subtracted), so a positive solution is replaced by the best scale with min 0.
// False when the levels are all equal (singular system).
bool least_squares_affine(const float* x, const float* w, const uint8_t* L, int n, float sum_w, float sum_x,
                          float* scale, float* min) {
  float sum_l = 0, sum_l2 = 0, sum_xl = 0;
  for (int i = 0; i < n; ++i) {
    const int l = L[i];
    sum_l += w[i] * l;
    sum_l2 += w[i] * l * l;
    sum_xl += w[i] * l * x[i];
  }
  const float det = sum_w * sum_l2 - sum_l * sum_l;
  if (!(det > 0)) return false;
  *scale = (sum_w * sum_xl - sum_x * sum_l) / det;
  *min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
  if (*min > 0) {
    *min = 0;
    *scale = sum_xl / sum_l2;
  }
  return true;
}

// Best asymmetric levels L (scratch: n bytes for trial levels) for x with error weights w. Returns the scale;
// *neg_min receives the min negated (>= 0), as the formats store it.
float fit_asymmetric(const float* x, const float* w, int n, const AsymmetricSearch& s, uint8_t* L, uint8_t* scratch,
                     float* neg_min) {
  float lo = x[0], hi = x[0], sum_w = w[0], sum_x = w[0] * x[0];
  for (int i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  lo = std::min(lo, 0.f);  // the range always includes 0: the min is an offset below zero
  if (hi == lo) {
    std::fill(L, L + n, 0);
    *neg_min = -lo;
    return 0.f;
  }
  // Starting point: nmax equal steps from lo to hi.
  const float range_iscale = s.nmax / (hi - lo);
  float best_scale = 1 / range_iscale, best_min = lo;
  round_from_min(x, n, lo, range_iscale, s.nmax, L);
  float best_err = reconstruction_error(x, w, L, n, best_scale, best_min, s.abs_error);
  for (int t = 0; s.nsteps > 0 && t <= s.nsteps; ++t) {
    // Levels rounded at a trial step, then the scale and min refitted to them (the refit is what rounding
    // cannot do: move the min off the range's low end and the scale off the trial value). Trials measure from
    // the best min so far, so an improvement also shifts the origin and span of the trials after it.
    const float iscale = (s.rmin + s.rdelta * t + s.nmax) / (hi - best_min);
    round_from_min(x, n, best_min, iscale, s.nmax, scratch);
    float scale, min;
    if (!least_squares_affine(x, w, scratch, n, sum_w, sum_x, &scale, &min)) continue;
    const float err = reconstruction_error(x, w, scratch, n, scale, min, s.abs_error);
    if (err < best_err) {
      std::copy(scratch, scratch + n, L);
      best_err = err, best_scale = scale, best_min = min;
    }
  }
  *neg_min = -best_min;
  return best_scale;
}

// Symmetric levels -nmax..nmax-1 (Q3_K, Q6_K), fitted with weights w = x^2 (large values matter more). For fixed
// levels the best scale is sum(w x l) / sum(w l^2) and the error it leaves is sum(w x^2) minus
// xl^2 / l2 (xl = sum w x l, l2 = sum w l^2): the searches maximise xl^2 / l2, comparing cross-multiplied.
struct SymmetricSums {
  float xl = 0, l2 = 0;
};

// The element of largest magnitude with its sign (the first one on ties). Mapping it to level -nmax uses the
// side of the range that has one level more.
float signed_extreme(const float* x, int n) {
  float amax = 0, extreme = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) amax = std::fabs(x[i]), extreme = x[i];
  return extreme;
}

// Levels round(iscale * x) clamped to -nmax..nmax-1, and their sums.
SymmetricSums round_symmetric(const float* x, int n, int nmax, float iscale, int8_t* L) {
  SymmetricSums s;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(level_round(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    s.xl += w * x[i] * l;
    s.l2 += w * l * l;
  }
  return s;
}

// Q3_K: start from the extreme at -nmax, then move single levels (coordinate descent, up to 5 sweeps): each
// element's best level given all the others is x * l2' / xl' over the sums without it; a move is kept when it
// improves xl^2 / l2. Returns the scale; L gets the levels offset by +nmax (0..2 nmax - 1).
float fit_symmetric_by_descent(const float* x, int n, int nmax, int8_t* L) {
  const float extreme = signed_extreme(x, n);
  if (std::fabs(extreme) < kGroupMaxEps) {
    std::fill(L, L + n, 0);
    return 0.f;
  }
  SymmetricSums s = round_symmetric(x, n, nmax, -nmax / extreme, L);
  for (int sweep = 0; sweep < 5; ++sweep) {
    int moved = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float xl = s.xl - w * x[i] * L[i];
      if (!(xl > 0)) continue;  // without element i the fit has no positive scale to aim at
      float l2 = s.l2 - w * L[i] * L[i];
      const int l = std::clamp(level_round(x[i] * l2 / xl), -nmax, nmax - 1);
      if (l == L[i]) continue;
      xl += w * x[i] * l;
      l2 += w * l * l;
      if (l2 > 0 && xl * xl * s.l2 > s.xl * s.xl * l2) {
        L[i] = static_cast<int8_t>(l);
        s.xl = xl, s.l2 = l2;
        ++moved;
      }
    }
    if (!moved) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return s.l2 > 0.0f ? s.xl / s.l2 : 0.0f;
}

// Q6_K: the extreme at -nmax, then 18 trial steps with the extreme at -(nmax +- 0.1 k), k = 1..9; the fit with
// the largest xl^2 / l2 wins (its least-squares scale is returned). L gets the levels offset by +nmax.
float fit_symmetric_by_grid(const float* x, int n, int nmax, int8_t* L) {
  const float extreme = signed_extreme(x, n);
  if (std::fabs(extreme) < kGroupMaxEps) {
    std::fill(L, L + n, 0);
    return 0.f;
  }
  const SymmetricSums first = round_symmetric(x, n, nmax, -nmax / extreme, L);
  float scale = first.l2 != 0.0f ? first.xl / first.l2 : 0.0f;
  float best = scale * first.xl;  // = xl^2 / l2
  int8_t trial[kQKK];  // n <= kQKK: a sub-block
  for (int k = -9; k <= 9; ++k) {
    if (k == 0) continue;
    const SymmetricSums s = round_symmetric(x, n, nmax, -(nmax + 0.1f * k) / extreme, trial);
    if (s.l2 > 0 && s.xl * s.xl > best * s.l2) {
      std::copy(trial, trial + n, L);
      scale = s.xl / s.l2;
      best = scale * s.xl;
    }
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return scale;
}


// Sub-block scales/mins for Q4_K/Q5_K, quantized to 6 bits against the super-block's d and dmin; then the final
// levels are recomputed from the rounded scales, as ggml does. Returns the 256 levels in L.
template <class Block>
void quantize_k4_block(const float* x, Block* y, const AsymmetricSearch& p, uint8_t* L) {
  float scales[8], mins[8], weights[32];
  uint8_t Laux[32];
  float max_scale = 0, max_min = 0;  // scales are positive since the min is subtracted
  for (int j = 0; j < 8; ++j) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
    scales[j] = fit_asymmetric(x + 32 * j, weights, 32, p, L + 32 * j, Laux, &mins[j]);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  uint8_t ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    // ggml stores nearest_int into a uint8_t before clamping; the & 0xFF keeps that wrap-around.
    ls[j] = static_cast<uint8_t>(std::min(63, level_round(inv_scale * scales[j]) & 0xFF));
    lm[j] = static_cast<uint8_t>(std::min(63, level_round(inv_min * mins[j]) & 0xFF));
  }
  pack_k4_scales(ls, lm, y->scales);
  y->d = fp32_to_fp16(max_scale / 63.f);
  y->dmin = fp32_to_fp16(max_min / 63.f);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    k4_scale_min(j, y->scales, &sc, &m);
    const float d = fp16_to_fp32(y->d) * sc;
    if (d == 0.0f) continue;
    const float dm = fp16_to_fp32(y->dmin) * m;
    for (int ii = 0; ii < 32; ++ii) {
      const int l = level_round((x[32 * j + ii] + dm) / d);
      L[32 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(p.nmax, l)));
    }
  }
}

// Integer dot of one unpacked weight super-block with a Q8_K block. ggml's scalar reference spreads it over
// 8 lanes (element k goes to lane k % 8), each the exact sum of scale * q * q8; the lanes are then scaled and
// summed in float, so we keep them apart to round the same way. summs is the min term: sum over sub-blocks of
// min * (sum of the q8 of the sub-block), read from the precomputed bsums.
struct KSums {
  int lane[8];
  int summs;
  int total() const {
    int t = 0;
    for (int v : lane) t += v;
    return t;
  }
};

KSums k_dot(const Unpacked& u, const BlockQ8_K& y, int sub) {
  KSums s{};
  for (int k = 0; k < kQKK; ++k) s.lane[k % 8] += u.scale[k / sub] * (u.q[k] * y.qs[k]);
  for (int j = 0; j < kQKK / 16; ++j) s.summs += y.bsums[j] * u.min[j * 16 / sub];
  return s;
}

// The float side of ggml's scalar K dots (Q3_K..Q6_K): per-lane float sums across super-blocks, min terms
// subtracted from the running total as they come, lanes added at the end.
struct LaneAccumulator {
  float sums[8] = {};
  float sumf = 0;
  void add(float d, const KSums& s) {
    for (int l = 0; l < 8; ++l) sums[l] += d * static_cast<float>(s.lane[l]);
  }
  float result() {
    for (float v : sums) sumf += v;
    return sumf;
  }
};

}  // namespace

// ---- dequantization ----

void dequantize_q2_K(const BlockQ2_K* x, float* y, int64_t nb) {
  Unpacked u;
  for (int64_t i = 0; i < nb; ++i, y += kQKK) {
    unpack_q2_K(x[i], &u);
    const float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
    for (int k = 0; k < kQKK; ++k) {
      const float dl = d * static_cast<float>(u.scale[k / 16]), ml = dmin * static_cast<float>(u.min[k / 16]);
      y[k] = dl * static_cast<float>(u.q[k]) - ml;
    }
  }
}

void dequantize_q3_K(const BlockQ3_K* x, float* y, int64_t nb) {
  Unpacked u;
  for (int64_t i = 0; i < nb; ++i, y += kQKK) {
    unpack_q3_K(x[i], &u);
    const float d = fp16_to_fp32(x[i].d);
    for (int k = 0; k < kQKK; ++k) y[k] = (d * static_cast<float>(u.scale[k / 16])) * static_cast<float>(u.q[k]);
  }
}

template <class Block, void (*unpack)(const Block&, Unpacked*)>
void dequantize_k4(const Block* x, float* y, int64_t nb) {
  Unpacked u;
  for (int64_t i = 0; i < nb; ++i, y += kQKK) {
    unpack(x[i], &u);
    const float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
    for (int k = 0; k < kQKK; ++k) {
      const float dl = d * static_cast<float>(u.scale[k / 32]), ml = dmin * static_cast<float>(u.min[k / 32]);
      y[k] = dl * static_cast<float>(u.q[k]) - ml;
    }
  }
}

void dequantize_q4_K(const BlockQ4_K* x, float* y, int64_t nb) { dequantize_k4<BlockQ4_K, unpack_q4_K>(x, y, nb); }
void dequantize_q5_K(const BlockQ5_K* x, float* y, int64_t nb) { dequantize_k4<BlockQ5_K, unpack_q5_K>(x, y, nb); }

void dequantize_q6_K(const BlockQ6_K* x, float* y, int64_t nb) {
  Unpacked u;
  for (int64_t i = 0; i < nb; ++i, y += kQKK) {
    unpack_q6_K(x[i], &u);
    const float d = fp16_to_fp32(x[i].d);
    for (int k = 0; k < kQKK; ++k) y[k] = (d * static_cast<float>(u.scale[k / 16])) * static_cast<float>(u.q[k]);
  }
}

void dequantize_q8_K(const BlockQ8_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQKK)
    for (int k = 0; k < kQKK; ++k) y[k] = x[i].d * static_cast<float>(x[i].qs[k]);
}

// ---- quantization (ggml's quantize_row_*_ref) ----

void quantize_q2_K(const float* x, BlockQ2_K* y, int64_t nb) {
  constexpr float q4scale = 15.f;
  uint8_t L[kQKK], Laux[16];
  float weights[16], mins[16], scales[16];
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] = fit_asymmetric(x + 16 * j, weights, 16, AsymmetricSearch{3, -0.5f, 0.1f, 15, true}, L + 16 * j, Laux,
                                 &mins[j]);
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    BlockQ2_K& b = y[i];
    if (max_scale > 0) {
      const float iscale = q4scale / max_scale;
      for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<uint8_t>(level_round(iscale * scales[j]));
      b.d = fp32_to_fp16(max_scale / q4scale);
    } else {
      for (int j = 0; j < 16; ++j) b.scales[j] = 0;
      b.d = fp32_to_fp16(0.f);
    }
    if (max_min > 0) {
      const float iscale = q4scale / max_min;
      for (int j = 0; j < 16; ++j)  // shifted unsigned: a negative (wrapped) level must not shift as int
        b.scales[j] |= static_cast<uint8_t>(static_cast<unsigned>(level_round(iscale * mins[j])) << 4);
      b.dmin = fp32_to_fp16(max_min / q4scale);
    } else {
      b.dmin = fp32_to_fp16(0.f);
    }
    for (int j = 0; j < 16; ++j) {  // final levels from the rounded scales
      const float d = fp16_to_fp32(b.d) * (b.scales[j] & 0xF);
      if (d == 0.0f) continue;
      const float dm = fp16_to_fp32(b.dmin) * (b.scales[j] >> 4);
      for (int ii = 0; ii < 16; ++ii) {
        const int l = level_round((x[16 * j + ii] + dm) / d);
        L[16 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(3, l)));
      }
    }
    pack_2bit(L, b.qs);
  }
}

void quantize_q3_K(const float* x, BlockQ3_K* y, int64_t nb) {
  int8_t L[kQKK];
  float scales[16];
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    float max_scale = 0, amax = 0;
    for (int j = 0; j < 16; ++j) {
      scales[j] = fit_symmetric_by_descent(x + 16 * j, 16, 4, L + 16 * j);
      if (std::fabs(scales[j]) > amax) {
        amax = std::fabs(scales[j]);
        max_scale = scales[j];
      }
    }
    BlockQ3_K& b = y[i];
    std::memset(b.scales, 0, 12);
    if (max_scale != 0.0f) {
      const float iscale = -32.f / max_scale;
      for (int j = 0; j < 16; ++j) {
        const int l = std::max(-32, std::min(31, level_round(iscale * scales[j]))) + 32;
        if (j < 8) b.scales[j] = static_cast<uint8_t>(l & 0xF);
        else b.scales[j - 8] |= static_cast<uint8_t>((l & 0xF) << 4);
        b.scales[j % 4 + 8] |= static_cast<uint8_t>((l >> 4) << (2 * (j / 4)));
      }
      b.d = fp32_to_fp16(1 / iscale);
    } else {
      b.d = fp32_to_fp16(0.f);
    }
    for (int j = 0; j < 16; ++j) {
      const int lo = j < 8 ? (b.scales[j] & 0xF) : (b.scales[j - 8] >> 4);
      const int sc = (lo | (((b.scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
      const float d = fp16_to_fp32(b.d) * sc;
      if (d == 0.0f) continue;
      for (int ii = 0; ii < 16; ++ii) {
        const int l = level_round(x[16 * j + ii] / d);
        L[16 * j + ii] = static_cast<int8_t>(std::max(-4, std::min(3, l)) + 4);
      }
    }
    // Levels 4..7 set the high bit (in hmask, bit j / 32 of byte j % 32) and keep their low two bits.
    std::memset(b.hmask, 0, sizeof b.hmask);
    uint8_t L2[kQKK];
    for (int j = 0; j < kQKK; ++j) {
      int l = L[j];
      if (l > 3) {
        b.hmask[j % 32] |= static_cast<uint8_t>(1u << (j / 32));
        l -= 4;
      }
      L2[j] = static_cast<uint8_t>(l);
    }
    pack_2bit(L2, b.qs);
  }
}

void quantize_q4_K(const float* x, BlockQ4_K* y, int64_t nb) {
  uint8_t L[kQKK];
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    quantize_k4_block(x, &y[i], AsymmetricSearch{15, -1.f, 0.1f, 20, false}, L);
    pack_nibbles(L, y[i].qs);
  }
}

void quantize_q5_K(const float* x, BlockQ5_K* y, int64_t nb) {
  uint8_t L[kQKK];
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    quantize_k4_block(x, &y[i], AsymmetricSearch{31, -0.5f, 0.1f, 15, false}, L);
    std::memset(y[i].qh, 0, sizeof y[i].qh);
    for (int k = 0; k < kQKK; ++k)
      if (L[k] > 15) y[i].qh[k % 32] |= static_cast<uint8_t>(1u << (k / 32));
    pack_nibbles(L, y[i].qs);
  }
}

void quantize_q6_K(const float* x, BlockQ6_K* y, int64_t nb) {
  int8_t L[kQKK];
  float scales[16];
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < 16; ++ib) {
      scales[ib] = fit_symmetric_by_grid(x + 16 * ib, 16, 32, L + 16 * ib);
      if (std::fabs(scales[ib]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[ib]);
        max_scale = scales[ib];
      }
    }
    BlockQ6_K& b = y[i];
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&b, 0, sizeof b);
      continue;
    }
    const float iscale = -128.f / max_scale;
    b.d = fp32_to_fp16(1 / iscale);
    for (int ib = 0; ib < 16; ++ib) b.scales[ib] = static_cast<int8_t>(std::min(127, level_round(iscale * scales[ib])));
    for (int j = 0; j < 16; ++j) {
      const float d = fp16_to_fp32(b.d) * b.scales[j];
      if (d == 0.0f) continue;
      for (int ii = 0; ii < 16; ++ii) {
        const int l = level_round(x[16 * j + ii] / d);
        L[16 * j + ii] = static_cast<int8_t>(std::max(-32, std::min(31, l)) + 32);
      }
    }
    for (int k = 0; k < kQKK; k += 128) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t q1 = L[k + l] & 0xF, q2 = L[k + l + 32] & 0xF, q3 = L[k + l + 64] & 0xF, q4 = L[k + l + 96] & 0xF;
        b.ql[k / 2 + l] = static_cast<uint8_t>(q1 | (q3 << 4));
        b.ql[k / 2 + l + 32] = static_cast<uint8_t>(q2 | (q4 << 4));
        b.qh[k / 4 + l] = static_cast<uint8_t>((L[k + l] >> 4) | ((L[k + l + 32] >> 4) << 2) |
                                               ((L[k + l + 64] >> 4) << 4) | ((L[k + l + 96] >> 4) << 6));
      }
    }
  }
}

// ggml's quantize_row_q8_K_ref, which llama.cpp's x86 quantize_row_q8_K calls as is: scale from the signed
// extreme (iscale = -127/max, so the extreme becomes -127), half-to-even rounding, d = 1/iscale, and the sums
// of each 16 quants for the min terms of the K dots. llama.cpp's repacked Q4_K matmul quantizes 4 rows at a
// time with ggml_quantize_mat_q8_K_4x8 (arch/x86/repack.cpp), which rounds the same way but, when +amax and
// -amax both occur in a super-block, takes the positive one instead of the first one.
void quantize_q8_K(const float* x, BlockQ8_K* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    float max = 0, amax = 0;
    for (int j = 0; j < kQKK; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    BlockQ8_K& b = y[i];
    if (amax == 0.0f) {  // ggml leaves bsums untouched here; zero is what they must be
      std::memset(&b, 0, sizeof b);
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < kQKK; ++j) b.qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
    for (int j = 0; j < kQKK / 16; ++j) {
      int sum = 0;
      for (int ii = 0; ii < 16; ++ii) sum += b.qs[j * 16 + ii];
      b.bsums[j] = static_cast<int16_t>(sum);
    }
    b.d = 1 / iscale;
  }
}

// ---- dots with Q8_K activations: exact integer sums per super-block, float across, as ggml's scalar code ----

float vec_dot_q2_K_q8_K(const BlockQ2_K* x, const BlockQ8_K* y, int64_t nb) {
  Unpacked u;
  float sumf = 0;
  for (int64_t i = 0; i < nb; ++i) {
    unpack_q2_K(x[i], &u);
    const KSums s = k_dot(u, y[i], 16);
    const float dall = y[i].d * fp16_to_fp32(x[i].d), dmin = y[i].d * fp16_to_fp32(x[i].dmin);
    sumf += dall * static_cast<float>(s.total()) - dmin * static_cast<float>(s.summs);
  }
  return sumf;
}

// Q3_K and Q6_K: 16 sub-blocks of 16, no mins.
template <class Block, void (*unpack)(const Block&, Unpacked*)>
float vec_dot_k16(const Block* x, const BlockQ8_K* y, int64_t nb) {
  Unpacked u;
  LaneAccumulator acc;
  for (int64_t i = 0; i < nb; ++i) {
    unpack(x[i], &u);
    acc.add(fp16_to_fp32(x[i].d) * y[i].d, k_dot(u, y[i], 16));
  }
  return acc.result();
}

// Q4_K and Q5_K: 8 sub-blocks of 32 with mins.
template <class Block, void (*unpack)(const Block&, Unpacked*)>
float vec_dot_k32(const Block* x, const BlockQ8_K* y, int64_t nb) {
  Unpacked u;
  LaneAccumulator acc;
  for (int64_t i = 0; i < nb; ++i) {
    unpack(x[i], &u);
    const KSums s = k_dot(u, y[i], 32);
    acc.add(fp16_to_fp32(x[i].d) * y[i].d, s);
    acc.sumf -= fp16_to_fp32(x[i].dmin) * y[i].d * static_cast<float>(s.summs);
  }
  return acc.result();
}

float vec_dot_q3_K_q8_K(const BlockQ3_K* x, const BlockQ8_K* y, int64_t nb) {
  return vec_dot_k16<BlockQ3_K, unpack_q3_K>(x, y, nb);
}
float vec_dot_q4_K_q8_K(const BlockQ4_K* x, const BlockQ8_K* y, int64_t nb) {
  return vec_dot_k32<BlockQ4_K, unpack_q4_K>(x, y, nb);
}
float vec_dot_q5_K_q8_K(const BlockQ5_K* x, const BlockQ8_K* y, int64_t nb) {
  return vec_dot_k32<BlockQ5_K, unpack_q5_K>(x, y, nb);
}
float vec_dot_q6_K_q8_K(const BlockQ6_K* x, const BlockQ8_K* y, int64_t nb) {
  return vec_dot_k16<BlockQ6_K, unpack_q6_K>(x, y, nb);
}

}  // namespace moe::qref
