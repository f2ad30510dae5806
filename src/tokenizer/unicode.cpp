#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>
#include <vector>

#include "core/byte_alphabet.h"

namespace moe::unicode {

namespace {

struct CccRange {
  uint32_t first, last;
  uint8_t ccc;
};
struct CpRange {
  uint32_t first, last;
};
struct DecompEntry {
  uint32_t cp;
  uint16_t offset;
  uint8_t len;
};
struct ComposeEntry {
  uint32_t first, second, composite;
};

#include "tokenizer/unicode_nfc_data.inc"

constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

// Decodes one well-formed UTF-8 sequence at s[pos]; returns false (pos unchanged) if it is not one.
bool decode_strict(std::string_view s, size_t& pos, uint32_t& cp) {
  const auto b0 = static_cast<unsigned char>(s[pos]);
  if (b0 < 0x80) {
    cp = b0;
    pos += 1;
    return true;
  }
  size_t n;
  uint32_t min;
  if ((b0 & 0xE0) == 0xC0) {
    n = 2, min = 0x80, cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3, min = 0x800, cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4, min = 0x10000, cp = b0 & 0x07;
  } else {
    return false;
  }
  if (pos + n > s.size()) return false;
  for (size_t i = 1; i < n; ++i) {
    const auto b = static_cast<unsigned char>(s[pos + i]);
    if ((b & 0xC0) != 0x80) return false;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) return false;
  pos += n;
  return true;
}

uint8_t ccc_of(uint32_t cp) {
  if (cp < 0x300) return 0;
  auto it = std::upper_bound(std::begin(kCccRanges), std::end(kCccRanges), cp,
                             [](uint32_t v, const CccRange& r) { return v < r.first; });
  if (it == std::begin(kCccRanges)) return 0;
  --it;
  return cp <= it->last ? it->ccc : 0;
}

bool is_unstable(uint32_t cp) {
  if (cp < 0x300) return false;
  auto it = std::upper_bound(std::begin(kNfcUnstable), std::end(kNfcUnstable), cp,
                             [](uint32_t v, const CpRange& r) { return v < r.first; });
  if (it == std::begin(kNfcUnstable)) return false;
  --it;
  return cp <= it->last;
}

void decompose(uint32_t cp, std::vector<uint32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  auto it = std::lower_bound(std::begin(kDecomp), std::end(kDecomp), cp,
                             [](const DecompEntry& e, uint32_t v) { return e.cp < v; });
  if (it != std::end(kDecomp) && it->cp == cp) {
    out.insert(out.end(), kDecompData + it->offset, kDecompData + it->offset + it->len);
  } else {
    out.push_back(cp);
  }
}

// Composite of (a, b) or 0 if they do not compose.
uint32_t compose_pair(uint32_t a, uint32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  auto it = std::lower_bound(std::begin(kCompose), std::end(kCompose), std::pair{a, b},
                             [](const ComposeEntry& e, const std::pair<uint32_t, uint32_t>& v) {
                               return e.first != v.first ? e.first < v.first : e.second < v.second;
                             });
  if (it != std::end(kCompose) && it->first == a && it->second == b) return it->composite;
  return 0;
}

// NFC of a run of code points (decompose, canonical order, compose), appended to out as UTF-8.
void nfc_run(const std::vector<uint32_t>& cps, std::string& out) {
  std::vector<uint32_t> d;
  d.reserve(cps.size() + 8);
  for (uint32_t cp : cps) decompose(cp, d);
  // Canonical ordering: stable sort of each run of non-starters by combining class.
  for (size_t i = 0; i < d.size();) {
    if (ccc_of(d[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < d.size() && ccc_of(d[j]) != 0) ++j;
    std::stable_sort(d.begin() + i, d.begin() + j,
                     [](uint32_t x, uint32_t y) { return ccc_of(x) < ccc_of(y); });
    i = j;
  }
  std::vector<uint32_t> c;
  c.reserve(d.size());
  long starter = -1;
  for (uint32_t cp : d) {
    const uint8_t cc = ccc_of(cp);
    if (starter >= 0) {
      const bool adjacent = c.size() == static_cast<size_t>(starter) + 1;
      const uint8_t last_cc = ccc_of(c.back());
      if (adjacent || (last_cc != 0 && last_cc < cc)) {
        if (uint32_t comp = compose_pair(c[starter], cp)) {
          c[starter] = comp;
          continue;
        }
      }
    }
    if (cc == 0) starter = static_cast<long>(c.size());
    c.push_back(cp);
  }
  for (uint32_t cp : c) append_utf8(out, cp);
}

}  // namespace

uint32_t decode_utf8(std::string_view s, size_t& pos) {
  uint32_t cp;
  if (decode_strict(s, pos, cp)) return cp;
  pos += 1;
  return 0xFFFD;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool is_valid_utf8(std::string_view s) {
  size_t pos = 0;
  uint32_t cp;
  while (pos < s.size())
    if (!decode_strict(s, pos, cp)) return false;
  return true;
}

size_t incomplete_utf8_tail(std::string_view s) {
  // Look back at most 3 bytes for a lead byte whose sequence runs past the end.
  for (size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    const auto b = static_cast<unsigned char>(s[s.size() - back]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    const size_t need = (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

const std::string& byte_to_symbol(uint8_t b) { return gpt2_byte_symbol(b); }

int symbol_to_byte(uint32_t cp) { return gpt2_symbol_byte(cp); }

void append_byte_encoded(std::string& out, std::string_view bytes) {
  for (char c : bytes) out += gpt2_byte_symbol(static_cast<uint8_t>(c));
}

bool is_nfc_quick(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    if (static_cast<unsigned char>(s[pos]) < 0xCC) {  // every code point below U+0300 is stable
      pos += utf8_len(static_cast<unsigned char>(s[pos]));
      continue;
    }
    uint32_t cp;
    if (!decode_strict(s, pos, cp)) {
      ++pos;
      continue;
    }
    if (is_unstable(cp)) return false;
  }
  return true;
}

std::string to_nfc(std::string_view s) {
  if (is_nfc_quick(s)) return std::string(s);
  // Invalid bytes are copied through unchanged and end a normalisation run (they compose with nothing).
  std::string out;
  out.reserve(s.size());
  std::vector<uint32_t> run;
  size_t pos = 0;
  while (pos < s.size()) {
    uint32_t cp;
    if (decode_strict(s, pos, cp)) {
      run.push_back(cp);
      continue;
    }
    nfc_run(run, out);
    run.clear();
    out.push_back(s[pos++]);
  }
  nfc_run(run, out);
  return out;
}

const char* nfc_unicode_version() { return kNfcUnicodeVersion; }

}  // namespace moe::unicode
