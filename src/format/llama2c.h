// Converter from Karpathy's llama2.c checkpoint (+ its tokenizer.bin) to a GGUF llama model, so that real
// trained weights (e.g. stories260K) run in moe and in llama.cpp alike.
#pragma once
#include <string>

namespace moe {

// Reads model (llama2.c `run.c` format: 7 int32 header, then float32 weights) and tokenizer (`tokenizer.bin`:
// max length, then score/len/bytes per token), writes `out` atomically. Throws FormatError on malformed input.
void convert_llama2c(const std::string& model_path, const std::string& tokenizer_path, const std::string& out);

}  // namespace moe
