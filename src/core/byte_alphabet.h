// GPT-2's byte-level alphabet: each byte maps to one printable code point (bytes 0x21-0x7E, 0xA1-0xAC and
// 0xAE-0xFF map to themselves, the rest to U+0100 upwards), so that every byte string is visible text. Here in
// core because the tokenizer, the synthetic models (model/synth) and training's byte vocabulary all spell it.
#pragma once
#include <cstdint>
#include <string>

namespace moe {

// UTF-8 of the code point byte b maps to.
const std::string& gpt2_byte_symbol(uint8_t b);
// The byte a mapped code point stands for, or -1 if cp is not in the alphabet.
int gpt2_symbol_byte(uint32_t cp);

}  // namespace moe
