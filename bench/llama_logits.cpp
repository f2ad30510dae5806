// llama.cpp's side of bench/parity_llama.sh (not part of the CMake build: the script compiles it against a
// llama.cpp build, public API llama.h only).
//
//   llama_logits MODEL.gguf IDS OUT.f32 [N_GREEDY]
//     IDS: comma- or space-separated token ids (nothing is added, no BOS).
//     Writes the float32 logits of every prompt position, row-major [n_ids][n_vocab], from ONE batched decode,
//     then prints N_GREEDY (default 16) greedy ids on stdout, one line: step 0 takes the argmax of the last prompt
//     row, every chosen id is then decoded alone through the KV cache (lowest id wins a tie, no stop at EOS).
//   llama_logits --quantize IN.gguf OUT.gguf q8_0|mxfp4_moe
//     llama-quantize's default recipe for that file type, one thread (the same as `llama-quantize IN OUT TYPE 1`).
//
// Settings are those of the shared reference data (testdata/reference-archs/README.md, "Dumper"): one thread,
// f32 KV cache, flash attention off, n_ctx = n_batch = n_ubatch = 512 (more if the prompt and greedy steps need
// it), mmap, default context parameters otherwise.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "llama.h"

namespace {

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "llama_logits: %s\n", msg.c_str());
  std::exit(1);
}

std::vector<llama_token> parse_ids(const char* text) {
  std::vector<llama_token> ids;
  const char* p = text;
  while (*p) {
    if (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n') { ++p; continue; }
    char* end = nullptr;
    const long v = std::strtol(p, &end, 10);
    if (end == p || v < 0 || v > 0x7fffffff) die(std::string("bad token id list: '") + text + "'");
    ids.push_back(static_cast<llama_token>(v));
    p = end;
  }
  if (ids.empty()) die("no token ids given");
  return ids;
}

// The first maximum, so that ties go to the lowest id.
llama_token argmax(const float* row, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (row[i] > row[best]) best = i;
  return best;
}

void quiet_log(ggml_log_level level, const char* text, void*) {
  if (level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
}

int quantize(const char* in, const char* out, const std::string& type) {
  llama_model_quantize_params qp = llama_model_quantize_default_params();
  if (type == "q8_0") qp.ftype = LLAMA_FTYPE_MOSTLY_Q8_0;
  else if (type == "mxfp4_moe") qp.ftype = LLAMA_FTYPE_MOSTLY_MXFP4_MOE;
  else die("--quantize: type must be q8_0 or mxfp4_moe, not '" + type + "'");
  qp.nthread = 1;
  if (llama_model_quantize(in, out, &qp) != 0) die(std::string("quantizing ") + in + " failed");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "--quantize") == 0) {
    if (argc != 5) die("usage: llama_logits --quantize IN.gguf OUT.gguf q8_0|mxfp4_moe");
    llama_log_set(quiet_log, nullptr);
    llama_backend_init();
    const int rc = quantize(argv[2], argv[3], argv[4]);
    llama_backend_free();
    return rc;
  }
  if (argc < 4 || argc > 5) die("usage: llama_logits MODEL.gguf IDS OUT.f32 [N_GREEDY]");
  const std::vector<llama_token> ids = parse_ids(argv[2]);
  const int n_greedy = argc == 5 ? std::atoi(argv[4]) : 16;
  if (n_greedy < 0) die("N_GREEDY must be >= 0");
  const int n_prompt = static_cast<int>(ids.size());

  llama_log_set(quiet_log, nullptr);
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (!model) die(std::string("cannot load ") + argv[1]);
  const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  for (llama_token t : ids)
    if (t >= n_vocab) die("token id " + std::to_string(t) + " is outside the vocabulary (" + std::to_string(n_vocab) + ")");

  llama_context_params cp = llama_context_default_params();
  const int need = n_prompt + n_greedy;
  const uint32_t n_ctx = static_cast<uint32_t>(need <= 512 ? 512 : (need + 255) / 256 * 256);
  cp.n_ctx = n_ctx;
  cp.n_batch = n_ctx;  // the whole prompt is one batch and one micro-batch
  cp.n_ubatch = n_ctx;
  cp.n_threads = 1;
  cp.n_threads_batch = 1;
  cp.type_k = GGML_TYPE_F32;
  cp.type_v = GGML_TYPE_F32;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (!ctx) die("cannot create a context");

  llama_batch batch = llama_batch_init(n_prompt, 0, 1);
  for (int i = 0; i < n_prompt; ++i) {
    batch.token[i] = ids[static_cast<size_t>(i)];
    batch.pos[i] = i;
    batch.n_seq_id[i] = 1;
    batch.seq_id[i][0] = 0;
    batch.logits[i] = 1;  // every position's row
  }
  batch.n_tokens = n_prompt;
  if (llama_decode(ctx, batch) != 0) die("llama_decode failed on the prompt");

  std::vector<float> rows(static_cast<size_t>(n_prompt) * static_cast<size_t>(n_vocab));
  for (int i = 0; i < n_prompt; ++i) {
    const float* r = llama_get_logits_ith(ctx, i);
    if (!r) die("no logits for prompt row " + std::to_string(i));
    std::memcpy(rows.data() + static_cast<size_t>(i) * n_vocab, r, sizeof(float) * static_cast<size_t>(n_vocab));
  }
  FILE* f = std::fopen(argv[3], "wb");
  if (!f) die(std::string("cannot write ") + argv[3]);
  if (std::fwrite(rows.data(), sizeof(float), rows.size(), f) != rows.size() || std::fclose(f) != 0)
    die(std::string("short write to ") + argv[3]);

  std::vector<llama_token> greedy;
  llama_token next = argmax(rows.data() + static_cast<size_t>(n_prompt - 1) * n_vocab, n_vocab);
  for (int s = 0; s < n_greedy; ++s) {
    greedy.push_back(next);
    if (s + 1 == n_greedy) break;  // the last id need not be decoded
    batch.token[0] = next;
    batch.pos[0] = n_prompt + s;
    batch.n_seq_id[0] = 1;
    batch.seq_id[0][0] = 0;
    batch.logits[0] = 1;
    batch.n_tokens = 1;
    if (llama_decode(ctx, batch) != 0) die("llama_decode failed at greedy step " + std::to_string(s + 1));
    next = argmax(llama_get_logits_ith(ctx, 0), n_vocab);
  }
  for (size_t i = 0; i < greedy.size(); ++i) std::printf(i ? " %d" : "%d", greedy[i]);
  std::printf("\n");

  llama_batch_free(batch);
  llama_free(ctx);
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
