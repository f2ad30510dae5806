#include "model/synth.h"
#include "model/synth_routing.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "core/byte_alphabet.h"
#include "core/error.h"
#include "core/quant.h"
#include "format/gguf.h"
#include "format/tensor_names.h"

namespace moe {
namespace {

// A valid byte-level BPE vocabulary: 256 byte tokens, then merges of byte pairs, then three control tokens.
void add_synthetic_vocab(GgufWriter& w, int vocab) {
  const int n_special = 3;
  const int n_merge = vocab - 256 - n_special;
  if (n_merge < 0 || n_merge > 256 * 256) throw UsageError("--vocab must be between 259 and 65795");
  std::vector<std::string> tokens, merges;
  std::vector<int32_t> types;
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(gpt2_byte_symbol(static_cast<uint8_t>(b)));
    types.push_back(1);
  }
  // Pairs of printable ASCII first (they occur in text), then the rest.
  std::vector<std::pair<int, int>> pairs;
  for (int a = 32; a < 127; ++a)
    for (int b = 32; b < 127; ++b) pairs.emplace_back(a, b);
  for (int a = 0; a < 256; ++a)
    for (int b = 0; b < 256; ++b)
      if (!(a >= 32 && a < 127 && b >= 32 && b < 127)) pairs.emplace_back(a, b);
  for (int i = 0; i < n_merge; ++i) {
    auto [a, b] = pairs[static_cast<size_t>(i)];
    tokens.push_back(gpt2_byte_symbol(static_cast<uint8_t>(a)) + gpt2_byte_symbol(static_cast<uint8_t>(b)));
    merges.push_back(gpt2_byte_symbol(static_cast<uint8_t>(a)) + " " + gpt2_byte_symbol(static_cast<uint8_t>(b)));
    types.push_back(1);
  }
  for (const char* sp : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    tokens.emplace_back(sp);
    types.push_back(3);
  }
  const uint32_t eos = static_cast<uint32_t>(vocab - 3);
  w.set("tokenizer.ggml.model", GgufValue::make_string("gpt2"));
  w.set("tokenizer.ggml.pre", GgufValue::make_string("gpt-2"));
  w.set("tokenizer.ggml.tokens", GgufValue::make_string_array(std::move(tokens)));
  w.set("tokenizer.ggml.token_type", GgufValue::make_i32_array(types));
  w.set("tokenizer.ggml.merges", GgufValue::make_string_array(std::move(merges)));
  w.set("tokenizer.ggml.bos_token_id", GgufValue::make_u32(eos));
  w.set("tokenizer.ggml.eos_token_id", GgufValue::make_u32(eos));
  w.set("tokenizer.ggml.add_bos_token", GgufValue::make_bool(false));
  w.set("tokenizer.chat_template",
        GgufValue::make_string("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
                               "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"));
}

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

void synth_normal_row(uint64_t seed, uint64_t tensor, uint64_t row, float* out, int64_t n) {
  uint64_t s = seed * 0x100000001B3ull ^ (tensor << 40) ^ row;
  splitmix(s);
  for (int64_t i = 0; i < n; i += 2) {
    const double u1 = (static_cast<double>(splitmix(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    const double u2 = static_cast<double>(splitmix(s) >> 11) * (1.0 / 9007199254740992.0);
    const double r = std::sqrt(-2.0 * std::log(u1));
    out[i] = static_cast<float>(r * std::cos(2.0 * M_PI * u2));
    if (i + 1 < n) out[i + 1] = static_cast<float>(r * std::sin(2.0 * M_PI * u2));
  }
}

namespace {

struct TensorPlan {
  std::string name;
  std::vector<int64_t> ne;
  DType type;
  enum Kind { Normal, Norm, Sink } kind;
};

}  // namespace

void write_synth_model(const SynthSpec& sp, const std::string& path, const std::function<void(uint64_t, uint64_t)>& progress,
                       int n_threads) {
  const std::string a = sp.arch;
  const bool oss = a == "gpt-oss", st = a == "smallthinker";
  const bool moe_arch = a == "qwen3moe" || a == "qwen2moe" || a == "olmoe" || oss || st || synth_is_deepseek_style(a);
  if (!moe_arch && a != "llama")
    throw UsageError("--arch must be qwen3moe, qwen2moe, olmoe, llama, gpt-oss, smallthinker, deepseek2 or glm4moe");
  if (oss && (sp.window <= 0 || sp.window > sp.ctx)) throw UsageError("gpt-oss needs --window in [1, --ctx]");
  if (sp.window < 0 || sp.swa_period < 0) throw UsageError("--window and --swa-period must not be negative");
  if (sp.layers <= 0 || sp.hidden <= 0 || sp.heads <= 0 || sp.kv_heads <= 0 || sp.heads % sp.kv_heads)
    throw UsageError("layers, hidden and heads must be positive, heads a multiple of kv-heads");
  if (moe_arch && sp.experts <= 0) throw UsageError(a + " needs --experts > 0");
  if (sp.experts > 0 && (sp.top_k <= 0 || sp.top_k > sp.experts)) throw UsageError("--top-k must be in [1, experts]");
  const int hd = sp.head_dim > 0 ? sp.head_dim : sp.hidden / sp.heads;
  if (hd <= 0 || hd % 2) throw UsageError("head size must be positive and even");
  const int q_dim = sp.heads * hd, kv_dim = sp.kv_heads * hd;
  if (a == "olmoe" && (q_dim != sp.hidden || kv_dim != sp.hidden))
    throw UsageError("olmoe: --heads x head size and --kv-heads x head size must equal --hidden (OLMoE has no "
                     "grouped-query attention: its q/k norms and output projection span the hidden size, and "
                     "llama.cpp refuses a file without that)");
  const int ffn = sp.ffn > 0 ? sp.ffn : 4 * sp.hidden;
  const int shared = sp.shared_ffn > 0 ? sp.shared_ffn : sp.expert_ffn;

  GgufWriter w;
  w.set("general.architecture", GgufValue::make_string(a));
  w.set("general.name", GgufValue::make_string("synthetic-" + a));
  w.set("general.description", GgufValue::make_string("random weights from moe synth, seed " + std::to_string(sp.seed)));
  w.set(a + ".context_length", GgufValue::make_u32(static_cast<uint32_t>(sp.ctx)));
  w.set(a + ".embedding_length", GgufValue::make_u32(static_cast<uint32_t>(sp.hidden)));
  w.set(a + ".block_count", GgufValue::make_u32(static_cast<uint32_t>(sp.layers)));
  w.set(a + ".attention.head_count", GgufValue::make_u32(static_cast<uint32_t>(sp.heads)));
  w.set(a + ".attention.head_count_kv", GgufValue::make_u32(static_cast<uint32_t>(sp.kv_heads)));
  w.set(a + ".attention.key_length", GgufValue::make_u32(static_cast<uint32_t>(hd)));
  w.set(a + ".attention.value_length", GgufValue::make_u32(static_cast<uint32_t>(hd)));
  w.set(a + ".rope.dimension_count", GgufValue::make_u32(static_cast<uint32_t>(hd)));
  w.set(a + ".rope.freq_base", GgufValue::make_f32(sp.rope_theta));
  w.set(a + ".attention.layer_norm_rms_epsilon", GgufValue::make_f32(1e-6f));
  w.set(a + ".feed_forward_length", GgufValue::make_u32(static_cast<uint32_t>(a == "olmoe" || oss || st || (a == "llama" && sp.experts > 0) ? sp.expert_ffn : ffn)));
  if (sp.experts > 0) {
    w.set(a + ".expert_count", GgufValue::make_u32(static_cast<uint32_t>(sp.experts)));
    w.set(a + ".expert_used_count", GgufValue::make_u32(static_cast<uint32_t>(sp.top_k)));
    w.set(a + ".expert_feed_forward_length", GgufValue::make_u32(static_cast<uint32_t>(sp.expert_ffn)));
    if (a == "qwen2moe") w.set(a + ".expert_shared_feed_forward_length", GgufValue::make_u32(static_cast<uint32_t>(shared)));
    if (st) w.set(a + ".expert_gating_func", GgufValue::make_u32(2));
  }
  if ((oss || st) && sp.window > 0) {
    w.set(a + ".attention.sliding_window", GgufValue::make_u32(static_cast<uint32_t>(sp.window)));
    if (sp.swa_period > 0)
      w.set(a + ".attention.sliding_window_pattern", GgufValue::make_u32(static_cast<uint32_t>(sp.swa_period)));
  }
  if (synth_is_deepseek_style(a)) synth_deepseek_keys(sp, w);
  if (oss && sp.ds.yarn_factor != 0.0f) {
    // As the converter writes real gpt-oss files (factor 32 from 4096): no yarn_log_multiplier key.
    if (sp.ds.yarn_factor <= 1.0f) throw UsageError("--yarn-factor must be > 1");
    const int orig = sp.ds.yarn_orig_ctx > 0 ? sp.ds.yarn_orig_ctx : std::max(1, static_cast<int>(sp.ctx / sp.ds.yarn_factor));
    w.set(a + ".rope.scaling.type", GgufValue::make_string("yarn"));
    w.set(a + ".rope.scaling.factor", GgufValue::make_f32(sp.ds.yarn_factor));
    w.set(a + ".rope.scaling.original_context_length", GgufValue::make_u32(static_cast<uint32_t>(orig)));
  }

  int vocab = sp.vocab;
  if (!sp.vocab_from.empty()) {
    GgufFile src(sp.vocab_from);
    for (const auto& [key, v] : src.metadata())
      if (key.rfind("tokenizer.", 0) == 0) w.set(key, v);
    auto toks = src.get_string_array("tokenizer.ggml.tokens");
    if (!toks) throw UsageError(sp.vocab_from + ": no tokenizer.ggml.tokens to copy");
    vocab = static_cast<int>(toks->size());
  } else {
    add_synthetic_vocab(w, vocab);
  }

  // The tensors, in llama.cpp's order. MXFP4 is for routed experts only (as llama-quantize's MXFP4_MOE): the
  // other matrices get Q8_0.
  const DType dense = sp.type == DType::MXFP4 ? DType::Q8_0 : sp.type;
  std::vector<TensorPlan> plan;
  auto mat = [&](const std::string& n, int64_t cols, int64_t rows, DType t) { plan.push_back({n, {cols, rows}, t, TensorPlan::Normal}); };
  auto norm = [&](const std::string& n, int64_t len) { plan.push_back({n, {len}, DType::F32, TensorPlan::Norm}); };
  auto bias = [&](const std::string& n, int64_t len) { plan.push_back({n, {len}, DType::F32, TensorPlan::Normal}); };
  mat("token_embd.weight", sp.hidden, vocab, sp.embd_type);
  for (int il = 0; il < sp.layers && !synth_is_deepseek_style(a); ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    norm(b + "attn_norm.weight", sp.hidden);
    mat(b + "attn_q.weight", sp.hidden, q_dim, dense);
    mat(b + "attn_k.weight", sp.hidden, kv_dim, dense);
    mat(b + "attn_v.weight", sp.hidden, kv_dim, dense);
    mat(b + "attn_output.weight", q_dim, sp.hidden, dense);
    if (a == "qwen3moe") {
      norm(b + tensor_name::kAttnQNorm, hd);
      norm(b + tensor_name::kAttnKNorm, hd);
    } else if (a == "olmoe") {
      norm(b + tensor_name::kAttnQNorm, q_dim);
      norm(b + tensor_name::kAttnKNorm, kv_dim);
    } else if (a == "qwen2moe") {
      norm(b + "attn_q.bias", q_dim);
      norm(b + "attn_k.bias", kv_dim);
      norm(b + "attn_v.bias", kv_dim);
    } else if (oss) {
      bias(b + "attn_q.bias", q_dim);
      bias(b + "attn_k.bias", kv_dim);
      bias(b + "attn_v.bias", kv_dim);
    }
    if (oss) {
      bias(b + "attn_output.bias", sp.hidden);
      plan.push_back({b + "attn_sinks.weight", {sp.heads}, DType::F32, TensorPlan::Sink});
      norm(b + "post_attention_norm.weight", sp.hidden);
    } else {
      norm(b + "ffn_norm.weight", sp.hidden);
    }
    if (sp.experts > 0) {
      mat(b + "ffn_gate_inp.weight", sp.hidden, sp.experts, DType::F32);
      if (oss) bias(b + "ffn_gate_inp.bias", sp.experts);
      plan.push_back({b + "ffn_gate_exps.weight", {sp.hidden, sp.expert_ffn, sp.experts}, sp.type, TensorPlan::Normal});
      if (oss) plan.push_back({b + "ffn_gate_exps.bias", {sp.expert_ffn, sp.experts}, DType::F32, TensorPlan::Normal});
      plan.push_back({b + "ffn_up_exps.weight", {sp.hidden, sp.expert_ffn, sp.experts}, sp.type, TensorPlan::Normal});
      if (oss) plan.push_back({b + "ffn_up_exps.bias", {sp.expert_ffn, sp.experts}, DType::F32, TensorPlan::Normal});
      plan.push_back({b + "ffn_down_exps.weight", {sp.expert_ffn, sp.hidden, sp.experts}, sp.type, TensorPlan::Normal});
      if (oss) plan.push_back({b + "ffn_down_exps.bias", {sp.hidden, sp.experts}, DType::F32, TensorPlan::Normal});
      if (a == "qwen2moe") {
        mat(b + "ffn_gate_inp_shexp.weight", sp.hidden, 1, DType::F32);
        mat(b + "ffn_gate_shexp.weight", sp.hidden, shared, dense);
        mat(b + "ffn_up_shexp.weight", sp.hidden, shared, dense);
        mat(b + "ffn_down_shexp.weight", shared, sp.hidden, dense);
      }
    } else {
      mat(b + "ffn_gate.weight", sp.hidden, ffn, dense);
      mat(b + "ffn_up.weight", sp.hidden, ffn, dense);
      mat(b + "ffn_down.weight", ffn, sp.hidden, dense);
    }
  }
  if (synth_is_deepseek_style(a))
    for (auto& t : synth_deepseek_layers(sp)) plan.push_back({t.name, t.ne, t.type, t.norm ? TensorPlan::Norm : TensorPlan::Normal});
  norm(tensor_name::kOutputNorm, sp.hidden);
  if (!sp.tied) mat(tensor_name::kOutput, sp.hidden, vocab, sp.embd_type);
  for (auto& t : plan)
    if (t.ne.size() == 2 && t.ne[1] == 1 && t.name.find("shexp") != std::string::npos) t.ne.resize(1);  // {n_embd}

  const int threads = std::max(1, n_threads);
  for (size_t ti = 0; ti < plan.size(); ++ti) {
    const TensorPlan& t = plan[ti];
    const int64_t cols = t.ne[0];
    if (cols % dtype_info(t.type).block_size != 0)
      throw UsageError("tensor " + t.name + ": row length " + std::to_string(cols) + " is not a multiple of the " +
                       dtype_name(t.type) + " block size");
    w.add_tensor_generated(t.name, t.type, t.ne, [&, ti, t, cols](uint8_t* dst) {
      int64_t rows = 1;
      for (size_t d = 1; d < t.ne.size(); ++d) rows *= t.ne[d];
      const size_t rb = row_bytes(t.type, cols);
      const float stdev = sp.std;
      auto store_row = [&](const float* row, int64_t r) {
        if (t.type == DType::F32) std::memcpy(dst + r * rb, row, rb);
        else quantize_row(t.type, row, dst + r * rb, cols);
      };
      auto run_split = [&](int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t min_split) {
        if (threads == 1 || n < min_split) return fn(0, n);
        std::vector<std::thread> pool;
        for (int k = 0; k < threads; ++k) pool.emplace_back(fn, n * k / threads, n * (k + 1) / threads);
        for (auto& th : pool) th.join();
      };
      if (!sp.routing_target.empty() && writes_residual(t.name)) {
        // Whole matrices at a time: the routing direction is projected out of what the block adds to the residual.
        const int64_t m = t.ne[1];
        run_split(rows / m, [&](int64_t i0, int64_t i1) {
          std::vector<float> mat(static_cast<size_t>(m * cols));
          for (int64_t i = i0; i < i1; ++i) {
            for (int64_t j = 0; j < m; ++j) {
              float* row = mat.data() + j * cols;
              synth_normal_row(sp.seed, ti, static_cast<uint64_t>(i * m + j), row, cols);
              for (int64_t c = 0; c < cols; ++c) row[c] *= stdev;
            }
            project_out_routing_direction(sp, mat.data(), m, cols);
            for (int64_t j = 0; j < m; ++j) store_row(mat.data() + j * cols, i * m + j);
          }
        }, 2);
        return;
      }
      auto work = [&](int64_t r0, int64_t r1) {
        std::vector<float> row(static_cast<size_t>(cols));
        for (int64_t r = r0; r < r1; ++r) {
          synth_normal_row(sp.seed, ti, static_cast<uint64_t>(r), row.data(), cols);
          for (float& x : row)
            x = t.kind == TensorPlan::Norm ? 1.0f + sp.norm_noise * x : (t.kind == TensorPlan::Sink ? sp.sink_std : stdev) * x;
          if (t.name == "token_embd.weight" && !sp.routing_target.empty()) add_routing_direction(sp, r, row.data(), cols);
          store_row(row.data(), r);
        }
      };
      run_split(rows, work, 64);
    });
  }
  if (progress) w.set_progress([&](size_t, size_t, uint64_t done, uint64_t total) { progress(done, total); });
  w.write(path);
}

}  // namespace moe
