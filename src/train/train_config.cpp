#include "train/train_config.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace moe::train {

using nlohmann::json;

float RoutingOptions::dts_tau(int64_t step) const {
  if (dts_decay_steps <= 0) return dts_tau_min;
  const float t = static_cast<float>(step) / static_cast<float>(dts_decay_steps);
  return std::max(dts_tau_min, dts_tau_max - t * (dts_tau_max - dts_tau_min));
}

float OptimConfig::lr_at(int64_t step) const {
  if (step < warmup) return lr * static_cast<float>(step + 1) / static_cast<float>(warmup);
  const int64_t span = std::max<int64_t>(1, steps - warmup);
  const double progress = std::min(1.0, static_cast<double>(step - warmup) / static_cast<double>(span));
  return static_cast<float>(min_lr + 0.5 * (lr - min_lr) * (1.0 + std::cos(M_PI * progress)));
}

void TrainConfig::validate() const {
  const ModelShape& m = model;
  const RoutingOptions& r = m.routing;
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw UsageError(what);
  };
  need(m.n_layer >= 1 && m.n_layer <= 256, "--layers must be in [1, 256]");
  need(m.n_embd >= 4 && m.n_embd % 2 == 0, "--hidden must be even and >= 4");
  need(m.n_head >= 1 && m.n_head_kv >= 1 && m.n_head % m.n_head_kv == 0,
       "--heads must be a positive multiple of --kv-heads");
  need(m.head_dim >= 2 && m.head_dim % 2 == 0, "--head-dim must be even and >= 2");
  need(m.n_ctx >= 2 && m.n_ctx <= 65536, "--ctx must be in [2, 65536]");
  need(m.n_vocab >= 2, "the vocabulary needs at least 2 tokens");
  need(m.n_expert >= 1 && m.n_expert <= 1024, "--experts must be in [1, 1024]");
  need(m.n_expert_used >= 1, "--top-k must be >= 1");
  need(m.n_expert_used <= m.n_slots(), "--top-k " + std::to_string(m.n_expert_used) + " exceeds the " +
                                           std::to_string(m.n_slots()) + " experts (real + null)");
  need(m.n_ff_exp >= 1, "--expert-ffn must be >= 1");
  need(m.n_ff_shexp >= 0, "--shared-ffn must be >= 0");
  need(!m.shared_gate || m.n_ff_shexp > 0, "--shared-gate needs --shared-ffn > 0");
  need(m.rope_theta > 0 && m.rms_eps > 0, "--rope-theta and the norm epsilon must be positive");
  need(r.n_group >= 1, "--groups must be >= 1");
  if (r.n_group > 1) {
    need(m.n_expert % r.n_group == 0, "--groups " + std::to_string(r.n_group) + " does not divide --experts " +
                                          std::to_string(m.n_expert));
    need(m.n_expert_used % r.n_group == 0, "--groups " + std::to_string(r.n_group) + " does not divide --top-k " +
                                               std::to_string(m.n_expert_used));
    need(r.n_null == 0, "--groups and --null-experts cannot be combined");
    need(!r.dts, "--groups and --dts cannot be combined");
  }
  need(r.n_null >= 0 && r.n_null <= 4096, "--null-experts must be in [0, 4096]");
  need(!(r.n_null > 0 && r.dts), "--null-experts and --dts cannot be combined");
  need(!(r.bias_rate > 0 && r.n_null > 0), "the aux-loss-free bias and --null-experts cannot be combined");
  need(!(r.dts && r.gating != Gating::Softmax), "--dts needs softmax gating");
  need(r.weights_scale > 0, "--weights-scale must be positive");
  need(r.aux_alpha >= 0 && r.z_beta >= 0 && r.bias_rate >= 0, "loss coefficients and the bias rate must be >= 0");
  if (r.dts) {
    need(r.dts_tau_max >= r.dts_tau_min && r.dts_tau_min > 0, "--dts-tau needs max >= min > 0");
    need(r.dts_threshold > 0 && r.dts_threshold < 1, "--dts-threshold must be in (0, 1)");
    need(r.dts_hard_step >= 0 && r.dts_decay_steps >= 0, "--dts-hard-step and --dts-decay must be >= 0");
  }
  const OptimConfig& o = optim;
  need(o.steps >= 1, "--steps must be >= 1");
  need(o.batch >= 1 && o.accum >= 1, "--batch and --accum must be >= 1");
  need(o.lr > 0 && o.min_lr >= 0 && o.min_lr <= o.lr, "--lr must be positive and --min-lr in [0, lr]");
  need(o.warmup >= 0, "--warmup must be >= 0");
  need(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1 && o.eps > 0, "Adam betas must be in [0, 1)");
  need(o.weight_decay >= 0 && o.clip >= 0 && o.init_std > 0, "--wd and --clip must be >= 0, --init-std > 0");
  need(val_fraction >= 0 && val_fraction < 0.5, "--val-fraction must be in [0, 0.5)");
  need(eval_every >= 0 && eval_tokens >= 0 && log_every >= 1 && save_every >= 0,
       "--eval-every, --eval-tokens, --save-every must be >= 0 and --log-every >= 1");
  need(threads >= 0, "--threads must be >= 0");
}

void apply_router_preset(const std::string& name, ModelShape& m, int64_t steps) {
  RoutingOptions r;
  if (name == "topk") {
    r.aux_alpha = 0.01f;
    r.z_beta = 0.001f;
  } else if (name == "auxfree") {
    r.gating = Gating::Sigmoid;
    r.bias_rate = 0.001f;
  } else if (name == "moge") {
    r.aux_alpha = 0.01f;
    r.z_beta = 0.001f;
    r.n_group = 2;
  } else if (name == "null") {
    r.aux_alpha = 0.01f;
    r.z_beta = 0.001f;
    r.n_null = m.n_expert;
  } else if (name == "dts") {
    r.aux_alpha = 0.01f;
    r.z_beta = 0.001f;
    r.dts = true;
    r.dts_decay_steps = static_cast<int>(steps / 5);
    r.dts_hard_step = static_cast<int>(steps / 4);
  } else if (name == "dense") {
    // One expert, top-1: a dense SwiGLU FFN in MoE clothing (the router's weight is always 1).
    m.n_expert = 1;
    m.n_expert_used = 1;
  } else {
    throw UsageError("--router must be topk, auxfree, moge, null, dts or dense (got '" + name + "')");
  }
  m.routing = r;
}

json to_json(const TrainConfig& c) {
  const ModelShape& m = c.model;
  const RoutingOptions& r = m.routing;
  const OptimConfig& o = c.optim;
  json jr = {{"gating", r.gating == Gating::Softmax ? "softmax" : "sigmoid"},
             {"norm_topk", r.norm_topk},
             {"weights_scale", r.weights_scale},
             {"n_group", r.n_group},
             {"n_null", r.n_null},
             {"aux_alpha", r.aux_alpha},
             {"z_beta", r.z_beta},
             {"bias_rate", r.bias_rate},
             {"dts", r.dts},
             {"dts_tau_max", r.dts_tau_max},
             {"dts_tau_min", r.dts_tau_min},
             {"dts_threshold", r.dts_threshold},
             {"dts_decay_steps", r.dts_decay_steps},
             {"dts_hard_step", r.dts_hard_step}};
  json jm = {{"n_layer", m.n_layer},     {"n_embd", m.n_embd},     {"n_head", m.n_head},
             {"n_head_kv", m.n_head_kv}, {"head_dim", m.head_dim}, {"n_vocab", m.n_vocab},
             {"n_ctx", m.n_ctx},         {"n_expert", m.n_expert}, {"n_expert_used", m.n_expert_used},
             {"n_ff_exp", m.n_ff_exp},   {"n_ff_shexp", m.n_ff_shexp}, {"shared_gate", m.shared_gate},
             {"tied", m.tied},           {"rope_theta", m.rope_theta}, {"rms_eps", m.rms_eps},
             {"routing", jr}};
  json jo = {{"steps", o.steps}, {"batch", o.batch}, {"accum", o.accum}, {"lr", o.lr},
             {"min_lr", o.min_lr}, {"warmup", o.warmup}, {"beta1", o.beta1}, {"beta2", o.beta2},
             {"eps", o.eps}, {"weight_decay", o.weight_decay}, {"clip", o.clip}, {"init_std", o.init_std},
             {"seed", o.seed}};
  return json{{"model", jm}, {"optim", jo}, {"train_files", c.train_files}, {"vocab", c.vocab},
              {"val_fraction", c.val_fraction}, {"eval_every", c.eval_every}, {"eval_tokens", c.eval_tokens},
              {"log_every", c.log_every}, {"save_every", c.save_every}, {"threads", c.threads}};
}

TrainConfig train_config_from_json(const json& j) {
  TrainConfig c;
  const json& jm = j.at("model");
  const json& jr = jm.at("routing");
  const json& jo = j.at("optim");
  ModelShape& m = c.model;
  RoutingOptions& r = m.routing;
  OptimConfig& o = c.optim;
  r.gating = jr.at("gating").get<std::string>() == "sigmoid" ? Gating::Sigmoid : Gating::Softmax;
  jr.at("norm_topk").get_to(r.norm_topk);
  jr.at("weights_scale").get_to(r.weights_scale);
  jr.at("n_group").get_to(r.n_group);
  jr.at("n_null").get_to(r.n_null);
  jr.at("aux_alpha").get_to(r.aux_alpha);
  jr.at("z_beta").get_to(r.z_beta);
  jr.at("bias_rate").get_to(r.bias_rate);
  jr.at("dts").get_to(r.dts);
  jr.at("dts_tau_max").get_to(r.dts_tau_max);
  jr.at("dts_tau_min").get_to(r.dts_tau_min);
  jr.at("dts_threshold").get_to(r.dts_threshold);
  jr.at("dts_decay_steps").get_to(r.dts_decay_steps);
  jr.at("dts_hard_step").get_to(r.dts_hard_step);
  jm.at("n_layer").get_to(m.n_layer);
  jm.at("n_embd").get_to(m.n_embd);
  jm.at("n_head").get_to(m.n_head);
  jm.at("n_head_kv").get_to(m.n_head_kv);
  jm.at("head_dim").get_to(m.head_dim);
  jm.at("n_vocab").get_to(m.n_vocab);
  jm.at("n_ctx").get_to(m.n_ctx);
  jm.at("n_expert").get_to(m.n_expert);
  jm.at("n_expert_used").get_to(m.n_expert_used);
  jm.at("n_ff_exp").get_to(m.n_ff_exp);
  jm.at("n_ff_shexp").get_to(m.n_ff_shexp);
  jm.at("shared_gate").get_to(m.shared_gate);
  jm.at("tied").get_to(m.tied);
  jm.at("rope_theta").get_to(m.rope_theta);
  jm.at("rms_eps").get_to(m.rms_eps);
  jo.at("steps").get_to(o.steps);
  jo.at("batch").get_to(o.batch);
  jo.at("accum").get_to(o.accum);
  jo.at("lr").get_to(o.lr);
  jo.at("min_lr").get_to(o.min_lr);
  jo.at("warmup").get_to(o.warmup);
  jo.at("beta1").get_to(o.beta1);
  jo.at("beta2").get_to(o.beta2);
  jo.at("eps").get_to(o.eps);
  jo.at("weight_decay").get_to(o.weight_decay);
  jo.at("clip").get_to(o.clip);
  jo.at("init_std").get_to(o.init_std);
  jo.at("seed").get_to(o.seed);
  j.at("train_files").get_to(c.train_files);
  j.at("vocab").get_to(c.vocab);
  j.at("val_fraction").get_to(c.val_fraction);
  j.at("eval_every").get_to(c.eval_every);
  j.at("eval_tokens").get_to(c.eval_tokens);
  j.at("log_every").get_to(c.log_every);
  j.at("save_every").get_to(c.save_every);
  j.at("threads").get_to(c.threads);
  return c;
}

}  // namespace moe::train
