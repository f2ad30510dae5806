#include "core/byte_alphabet.h"

#include <array>

namespace moe {

namespace {

struct ByteTables {
  std::array<std::string, 256> to_symbol;
  std::array<int16_t, 512> from_cp;  // mapped code points are all below U+0200: two UTF-8 bytes at most
  ByteTables() {
    from_cp.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const uint32_t cp = printable ? static_cast<uint32_t>(b) : 256u + static_cast<uint32_t>(n++);
      std::string& s = to_symbol[static_cast<size_t>(b)];
      if (cp < 0x80) {
        s.push_back(static_cast<char>(cp));
      } else {
        s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
      from_cp[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteTables& byte_tables() {
  static const ByteTables t;
  return t;
}

}  // namespace

const std::string& gpt2_byte_symbol(uint8_t b) { return byte_tables().to_symbol[b]; }

int gpt2_symbol_byte(uint32_t cp) { return cp < 512 ? byte_tables().from_cp[cp] : -1; }

}  // namespace moe
