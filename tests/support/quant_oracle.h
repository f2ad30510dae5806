// C++ side of tests/quant_oracle.py: hands blocks or floats to the NumPy oracle through scratch files.
// Failures throw std::runtime_error carrying the script's output, which gtest reports with the test.
#pragma once
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "support/python.h"
#include "support/testdata.h"

namespace moe::test {

inline void run_quant_oracle(const std::vector<std::string>& args) {
  std::string out;
  if (run_python("tests/quant_oracle.py", args, &out) != 0) {
    std::string cmd;
    for (const auto& a : args) cmd += " " + a;
    throw std::runtime_error("quant_oracle.py" + cmd + " failed:\n" + out);
  }
}

template <class T>
std::string as_bytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

template <class T>
std::vector<T> from_bytes(const std::string& s) {
  std::vector<T> v(s.size() / sizeof(T));
  std::memcpy(v.data(), s.data(), v.size() * sizeof(T));
  return v;
}

// The oracle's decoding of `blocks` (a whole number of blocks of type t) to floats.
inline std::vector<float> oracle_decode(DType t, const std::vector<uint8_t>& blocks, const std::string& dir) {
  const std::string in = dir + "/decode_in.bin", out = dir + "/decode_out.f32";
  write_file(in, as_bytes(blocks));
  run_quant_oracle({"decode", dtype_name(t), in, out});
  return from_bytes<float>(read_file(out));
}

// The oracle's quantization of x; kind is a key of QUANTIZERS in quant_oracle.py (e.g. "q8_0_x86", "q4_1").
inline std::vector<uint8_t> oracle_quantize(const std::string& kind, const std::vector<float>& x,
                                            const std::string& dir) {
  const std::string in = dir + "/quantize_in.f32", out = dir + "/quantize_out.bin";
  write_file(in, as_bytes(x));
  run_quant_oracle({"quantize", kind, in, out});
  return from_bytes<uint8_t>(read_file(out));
}

}  // namespace moe::test
