// Deterministic randomness for training. Everything random is a pure function of (seed, counters): the
// initial weights of a tensor, the data order of an epoch, the Gumbel noise of a (step, micro-batch, layer)
// position. A resumed run therefore needs no RNG state beyond the seed and the step.
#pragma once
#include <cmath>
#include <cstdint>

namespace moe::train {

inline uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A hash of up to four counters, for counter-based streams.
inline uint64_t mix_key(uint64_t a, uint64_t b = 0, uint64_t c = 0, uint64_t d = 0) {
  uint64_t s = a;
  uint64_t h = splitmix64(s);
  s = h ^ b;
  h = splitmix64(s);
  s = h ^ c;
  h = splitmix64(s);
  s = h ^ d;
  return splitmix64(s);
}

// Uniform in the open interval (0, 1) from 64 random bits.
inline double unit_open(uint64_t bits) { return (static_cast<double>(bits >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

// A sequential stream (xoshiro256**) seeded from a key; used for weight init and shuffles.
class Rng {
 public:
  explicit Rng(uint64_t key) {
    uint64_t s = key;
    for (auto& w : s_) w = splitmix64(s);
  }
  uint64_t next() {
    const uint64_t r = rotl(s_[1] * 5, 7) * 9, t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return r;
  }
  double uniform() { return unit_open(next()); }
  uint64_t below(uint64_t n) { return next() % n; }  // slight modulo bias is irrelevant for shuffling
  double normal() {  // Box-Muller, one value per call (no cached state)
    const double u1 = uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace moe::train
