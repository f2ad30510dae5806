// libFuzzer target: the GGUF parser must turn any byte string into either a parsed file or a FormatError.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "format/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    moe::GgufFile f(data, size, "fuzz.gguf");
    // Touch what the loader touches: every key's typed view and every tensor's bytes.
    for (const auto& kv : f.metadata()) (void)kv.second.to_string(4);
    uint8_t sink = 0;
    for (const auto& t : f.tensors())
      if (t.nbytes) sink = static_cast<uint8_t>(sink ^ t.data[0] ^ t.data[t.nbytes - 1]);
    asm volatile("" : : "r"(sink));  // keep the reads
  } catch (const moe::FormatError&) {
  }
  return 0;
}
