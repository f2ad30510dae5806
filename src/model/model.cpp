#include "model/model.h"

#include "core/error.h"
#include "format/tensor_names.h"
#include "model/weights.h"

namespace moe {

// Defined in the architecture files.
extern const Architecture kArchQwen3Moe;
extern const Architecture kArchQwen2Moe;
extern const Architecture kArchOlmoe;
extern const Architecture kArchLlama;
extern const Architecture kArchGptOss;
extern const Architecture kArchSmallThinker;
extern const Architecture kArchDeepseek2;
extern const Architecture kArchGlm4Moe;

static const Architecture* const kArchitectures[] = {&kArchQwen3Moe, &kArchQwen2Moe, &kArchOlmoe,   &kArchLlama,
                                                     &kArchGptOss,   &kArchSmallThinker, &kArchDeepseek2, &kArchGlm4Moe};

const Architecture* find_architecture(const std::string& name) {
  for (const Architecture* a : kArchitectures)
    if (name == a->name) return a;
  return nullptr;
}

std::vector<std::string> supported_architectures() {
  std::vector<std::string> v;
  for (const Architecture* a : kArchitectures) v.emplace_back(a->name);
  return v;
}

std::unique_ptr<Model> Model::load(const std::string& path) {
  std::unique_ptr<Model> m(new Model());
  m->file_ = std::make_unique<GgufFile>(path);
  const GgufFile& f = *m->file_;
  const std::string arch_name = f.get_string("general.architecture").value_or("");
  m->arch_ = find_architecture(arch_name);
  if (!m->arch_) {
    std::string list;
    for (const auto& n : supported_architectures()) list += (list.empty() ? "" : ", ") + n;
    if (arch_name.empty()) throw FormatError(path + ": missing metadata 'general.architecture'");
    throw FormatError(path + ": unknown architecture '" + arch_name + "' (supported: " + list + ")");
  }
  ModelConfig cfg = read_common_config(f);
  m->arch_->configure(f, cfg);

  TensorBinder b(f);
  const GgufTensorInfo* emb = f.tensor(tensor_name::kTokenEmbd);
  if (!emb) throw FormatError(path + ": missing tensor 'token_embd.weight'");
  if (emb->n_dims != 2 || emb->ne[0] != cfg.n_embd)
    throw FormatError(path + ": tensor 'token_embd.weight' has shape " + emb->shape_string() +
                      ", expected [" + std::to_string(cfg.n_embd) + ", n_vocab]");
  cfg.n_vocab = static_cast<int>(emb->ne[1]);
  if (auto toks = f.find("tokenizer.ggml.tokens"); toks && toks->array_size() != static_cast<size_t>(cfg.n_vocab))
    throw FormatError(path + ": tokenizer has " + std::to_string(toks->array_size()) + " tokens but token_embd has " +
                      std::to_string(cfg.n_vocab) + " rows");
  m->tok_embd = b.mat(tensor_name::kTokenEmbd, cfg.n_embd, cfg.n_vocab);
  m->output_norm = b.vec(tensor_name::kOutputNorm, cfg.n_embd);
  m->output = b.mat(tensor_name::kOutput, cfg.n_embd, cfg.n_vocab, false);
  cfg.tied_output = !m->output.present();
  if (cfg.tied_output) m->output = m->tok_embd;
  m->rope_freqs = b.vec(tensor_name::kRopeFreqs, cfg.n_rot / 2, false);

  m->layers.resize(static_cast<size_t>(cfg.n_layer));
  for (int il = 0; il < cfg.n_layer; ++il) m->arch_->bind_layer(b, cfg, il, m->layers[static_cast<size_t>(il)]);
  b.check_all_used();
  m->cfg_ = std::move(cfg);
  return m;
}

}  // namespace moe
