// Small Unicode helpers the tokenizers need: UTF-8 decoding that never throws, GPT-2's byte <-> printable
// character mapping used by byte-level BPE vocabularies, and NFC normalisation (Qwen2/3 and GPT-NeoX/OLMo
// tokenizers normalise their input to NFC before splitting it).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace moe::unicode {

// Length of the UTF-8 sequence a lead byte announces (1 for ASCII and for stray continuation bytes).
inline size_t utf8_len(unsigned char lead) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[lead >> 4];
}

// Decodes the code point at s[pos] and advances pos. Invalid or truncated sequences yield U+FFFD and
// advance by one byte, so any byte string can be walked.
uint32_t decode_utf8(std::string_view s, size_t& pos);
// Appends the UTF-8 encoding of cp (cp must be <= 0x10FFFF).
void append_utf8(std::string& out, uint32_t cp);

// True if s is well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
bool is_valid_utf8(std::string_view s);
// Number of bytes at the end of s that form an incomplete (but so far well-formed) UTF-8 sequence, 0..3.
size_t incomplete_utf8_tail(std::string_view s);

// GPT-2 byte-level alphabet: each byte maps to one printable code point (bytes 0x21-0x7E, 0xA1-0xAC and
// 0xAE-0xFF map to themselves, the rest to U+0100 upwards), so every byte string becomes visible text.
const std::string& byte_to_symbol(uint8_t b);  // UTF-8 of the mapped code point
// Inverse mapping: the byte a mapped code point stands for, or -1 if cp is not in the alphabet.
int symbol_to_byte(uint32_t cp);
// Maps every byte of `bytes` and appends the result to out.
void append_byte_encoded(std::string& out, std::string_view bytes);

// NFC (canonical composition). Text that is already NFC is returned unchanged after one fast scan.
bool is_nfc_quick(std::string_view s);  // true: certainly NFC (no code point that NFC could change)
std::string to_nfc(std::string_view s);
const char* nfc_unicode_version();

}  // namespace moe::unicode
