#include "train/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "train/blas.h"
#include "train/data.h"
#include "train/evaluate.h"
#include "train/export_gguf.h"
#include "train/model_train.h"
#include "train/optimizer.h"
#include "train/rng.h"
#include "train/svg_plot.h"

namespace moe::train {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string hms(double s) {
  char b[32];
  const long t = static_cast<long>(s + 0.5);
  if (t >= 3600) std::snprintf(b, sizeof(b), "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else std::snprintf(b, sizeof(b), "%ldm%02lds", t / 60, t % 60);
  return b;
}

// Per-layer load statistics accumulated over a logging interval.
struct LoadStats {
  std::vector<std::vector<double>> load;  // [layer][slot]
  double tokens = 0;
  void reset(const ModelShape& m) {
    load.assign(static_cast<size_t>(m.n_layer), std::vector<double>(static_cast<size_t>(m.n_slots()), 0.0));
    tokens = 0;
  }
  void add(const TrainModel& model, double n_tokens) {
    for (size_t il = 0; il < load.size(); ++il) {
      const auto& l = model.layer_load(static_cast<int>(il));
      for (size_t i = 0; i < l.size(); ++i) load[il][i] += l[i];
    }
    tokens += n_tokens;
  }
  // max/mean over the real experts of a layer.
  double max_over_mean(const ModelShape& m, size_t il) const {
    double mx = 0, sum = 0;
    for (int e = 0; e < m.n_expert; ++e) {
      mx = std::max(mx, load[il][static_cast<size_t>(e)]);
      sum += load[il][static_cast<size_t>(e)];
    }
    return sum > 0 ? mx / (sum / m.n_expert) : 0.0;
  }
  // Real experts per token, averaged over layers.
  double experts_per_token(const ModelShape& m) const {
    if (tokens <= 0) return 0;
    double sum = 0;
    for (const auto& l : load)
      for (int e = 0; e < m.n_expert; ++e) sum += l[static_cast<size_t>(e)];
    return sum / tokens / static_cast<double>(load.size());
  }
};

class Trainer {
 public:
  Trainer(const TrainConfig& cfg, const Checkpoint* resume, const RunOptions& opt);
  RunSummary run();

 private:
  void step_once();
  void log_line(double interval_seconds, int64_t interval_steps);
  void evaluate_val();
  void save();
  void write_plot() const;
  void append_metrics(const json& j);

  TrainConfig cfg_;
  RunOptions opt_;
  std::string ckpt_path_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<TextCodec> codec_;
  Corpus corpus_;
  std::unique_ptr<BatchSampler> sampler_;
  std::unique_ptr<TrainModel> model_;
  std::unique_ptr<AdamW> adam_;
  TrainProgress prog_;
  std::vector<int32_t> tokens_, targets_;
  LoadStats step_load_, log_load_;
  double log_loss_ = 0, log_aux_ = 0, log_z_ = 0, last_norm_ = 0, last_loss_ = 0;
  int64_t log_count_ = 0;
};

Trainer::Trainer(const TrainConfig& cfg, const Checkpoint* resume, const RunOptions& opt)
    : cfg_(resume ? resume->config : cfg), opt_(opt) {
  if (opt_.out_dir.empty()) throw UsageError("give an output folder with --out DIR");
  fs::create_directories(opt_.out_dir);
  ckpt_path_ = (fs::path(opt_.out_dir) / "checkpoint.bin").string();
  // A killed run can leave the temp file of an atomic write behind (never a torn destination): remove ours.
  for (const auto& e : fs::directory_iterator(opt_.out_dir)) {
    const std::string n = e.path().filename().string();
    if (n.find(".tmp.") != std::string::npos &&
        (n.rfind("checkpoint.bin", 0) == 0 || n.rfind("loss.svg", 0) == 0 || n.rfind("model.gguf", 0) == 0 ||
         n.rfind("tokens-", 0) == 0))
      fs::remove(e.path());
  }
  const std::string corename = blas_setup();
  pool_ = std::make_unique<ThreadPool>(resolve_threads(cfg_.threads));
  codec_ = cfg_.vocab.empty() ? make_byte_codec() : make_gguf_codec(cfg_.vocab);
  if (!resume) cfg_.model.n_vocab = codec_->n_vocab();
  if (cfg_.model.n_vocab != codec_->n_vocab())
    throw UsageError("the vocabulary " + cfg_.vocab + " has " + std::to_string(codec_->n_vocab()) +
                     " tokens, the checkpoint's model " + std::to_string(cfg_.model.n_vocab));
  cfg_.validate();
  const auto t0 = Clock::now();
  corpus_ = load_corpus(cfg_.train_files, *codec_, cfg_.val_fraction, *pool_, opt_.out_dir);
  if (resume && resume->progress.data_fingerprint != corpus_.fingerprint)
    throw UsageError("the training files or vocabulary differ from the checkpoint's (" + resume->progress.data_fingerprint +
                     " vs " + corpus_.fingerprint + ")");
  sampler_ = std::make_unique<BatchSampler>(corpus_.train, cfg_.model.n_ctx, cfg_.optim.seed);
  model_ = std::make_unique<TrainModel>(cfg_.model, cfg_.optim.batch, *pool_);
  adam_ = std::make_unique<AdamW>(model_->layout(), cfg_.optim);
  if (resume) {
    if (resume->params.size() != model_->params.size()) throw FormatError(ckpt_path_ + ": parameter count mismatch");
    model_->params = resume->params;
    adam_->m = resume->adam_m;
    adam_->v = resume->adam_v;
    adam_->t = resume->progress.adam_t;
    for (size_t il = 0; il < model_->sel_bias.size(); ++il)
      if (!model_->sel_bias[il].empty()) model_->sel_bias[il] = resume->sel_bias[il];
    prog_ = resume->progress;
  } else {
    init_params(model_->layout(), cfg_.model, cfg_.optim.init_std, cfg_.optim.seed, model_->params.data());
    prog_.data_fingerprint = corpus_.fingerprint;
  }
  const size_t n = static_cast<size_t>(cfg_.optim.batch) * cfg_.model.n_ctx;
  tokens_.assign(n, 0);
  targets_.assign(n, 0);
  step_load_.reset(cfg_.model);
  log_load_.reset(cfg_.model);
  if (!opt_.quiet) {
    const ParamCounts pc = count_params(cfg_.model);
    std::fprintf(stderr, "moe train: %s %d threads, BLAS %s\n", resume ? "resuming," : "",
                 pool_->size(), corename.empty() ? "(generic)" : corename.c_str());
    std::fprintf(stderr,
                 "model: %d layers, hidden %d, %d heads (%d kv) x %d, %d experts top-%d ffn %d%s, vocab %d, ctx %d; "
                 "%.2fM params, %.2fM active per token\n",
                 cfg_.model.n_layer, cfg_.model.n_embd, cfg_.model.n_head, cfg_.model.n_head_kv, cfg_.model.head_dim,
                 cfg_.model.n_expert, cfg_.model.n_expert_used, cfg_.model.n_ff_exp,
                 cfg_.model.n_ff_shexp ? (" + shared " + std::to_string(cfg_.model.n_ff_shexp)).c_str() : "",
                 cfg_.model.n_vocab, cfg_.model.n_ctx, pc.total / 1e6, pc.active / 1e6);
    std::fprintf(stderr, "data: %zu train / %zu held-out tokens from %zu files (%.1f s)\n", corpus_.train.size(),
                 corpus_.val.size(), corpus_.files.size(), seconds_since(t0));
  }
}

void Trainer::step_once() {
  const OptimConfig& o = cfg_.optim;
  const int B = o.batch, T = cfg_.model.n_ctx;
  const float lr = o.lr_at(prog_.step);
  std::fill(model_->grads.begin(), model_->grads.end(), 0.0f);
  step_load_.reset(cfg_.model);
  double loss = 0, aux = 0, z = 0;
  const float inv_accum = 1.0f / static_cast<float>(o.accum);
  for (int micro = 0; micro < o.accum; ++micro) {
    sampler_->fill(prog_.sample, B, tokens_.data(), targets_.data());
    prog_.sample += B;
    RouteStep rs;
    rs.step = prog_.step;
    rs.micro = micro;
    rs.seed = o.seed;
    model_->forward(tokens_.data(), B, rs);
    const MicroLoss l = model_->loss(targets_.data(), inv_accum / static_cast<float>(static_cast<int64_t>(B) * T));
    model_->backward(tokens_.data(), inv_accum);
    loss += l.ce_mean() / o.accum;
    aux += l.aux / o.accum;
    z += l.z / o.accum;
    step_load_.add(*model_, static_cast<double>(B) * T);
  }
  last_norm_ = adam_->grad_norm(*pool_, model_->grads.data());
  adam_->step(*pool_, model_->params.data(), model_->grads.data(), lr, AdamW::clip_factor(last_norm_, o.clip));
  if (cfg_.model.routing.bias_rate > 0)
    for (int il = 0; il < cfg_.model.n_layer; ++il)
      update_selection_bias(model_->sel_bias[static_cast<size_t>(il)], step_load_.load[static_cast<size_t>(il)],
                            cfg_.model.routing.bias_rate);
  for (size_t il = 0; il < log_load_.load.size(); ++il)
    for (size_t i = 0; i < log_load_.load[il].size(); ++i) log_load_.load[il][i] += step_load_.load[il][i];
  log_load_.tokens += step_load_.tokens;
  ++prog_.step;
  prog_.tokens += static_cast<int64_t>(B) * T * o.accum;
  prog_.adam_t = adam_->t;
  prog_.train_curve.push_back({static_cast<double>(prog_.step), loss});
  last_loss_ = loss;
  log_loss_ += loss;
  log_aux_ += aux;
  log_z_ += z;
  ++log_count_;
  if (!std::isfinite(loss)) throw Error("training diverged at step " + std::to_string(prog_.step) + " (loss is not finite)");
}

void Trainer::log_line(double interval_seconds, int64_t interval_steps) {
  const ModelShape& m = cfg_.model;
  const double tok_s = static_cast<double>(interval_steps) * cfg_.optim.batch * m.n_ctx * cfg_.optim.accum /
                       std::max(interval_seconds, 1e-9);
  const double eta = static_cast<double>(cfg_.optim.steps - prog_.step) * interval_seconds /
                     static_cast<double>(std::max<int64_t>(1, interval_steps));
  const double loss = log_loss_ / static_cast<double>(log_count_);
  std::vector<double> lm;
  std::string loads;
  for (int il = 0; il < m.n_layer; ++il) {
    lm.push_back(log_load_.max_over_mean(m, static_cast<size_t>(il)));
    char b[16];
    std::snprintf(b, sizeof(b), " %.2f", lm.back());
    loads += b;
  }
  const double ept = log_load_.experts_per_token(m);
  if (!opt_.quiet) {
    std::string extra;
    char b[96];
    if (m.routing.aux_alpha > 0 || m.routing.z_beta > 0) {
      std::snprintf(b, sizeof(b), " aux %.4f z %.4f", log_aux_ / log_count_, log_z_ / log_count_);
      extra += b;
    }
    if (m.routing.n_null > 0 || m.routing.dts) {
      std::snprintf(b, sizeof(b), " | experts/token %.2f", ept);
      extra += b;
    }
    if (m.routing.dts_soft(prog_.step)) {
      std::snprintf(b, sizeof(b), " tau %.2f", m.routing.dts_tau(prog_.step));
      extra += b;
    }
    std::fprintf(stderr, "step %lld/%lld | loss %.4f%s | lr %.2e | %.0f tok/s | ETA %s | load max/mean%s%s\n",
                 static_cast<long long>(prog_.step), static_cast<long long>(cfg_.optim.steps), loss, "",
                 cfg_.optim.lr_at(prog_.step - 1), tok_s, hms(eta).c_str(), loads.c_str(), extra.c_str());
  }
  append_metrics({{"step", prog_.step}, {"loss", loss}, {"aux", log_aux_ / log_count_}, {"z", log_z_ / log_count_},
                  {"lr", cfg_.optim.lr_at(prog_.step - 1)}, {"tok_s", tok_s}, {"grad_norm", last_norm_},
                  {"load_max_mean", lm}, {"experts_per_token", ept}, {"seconds", prog_.seconds}});
  log_loss_ = log_aux_ = log_z_ = 0;
  log_count_ = 0;
  log_load_.reset(m);
}

void Trainer::evaluate_val() {
  if (corpus_.val.size() < static_cast<size_t>(cfg_.model.n_ctx) + 1) return;
  const auto t0 = Clock::now();
  const EvalResult r = evaluate_stream(*model_, *codec_, corpus_.val, cfg_.eval_tokens);
  prog_.val_curve.push_back({static_cast<double>(prog_.step), r.loss(), r.bits_per_byte()});
  if (!opt_.quiet)
    std::fprintf(stderr, "eval step %lld | held-out loss %.4f | %.4f bits/byte | %lld tokens in %.1f s\n",
                 static_cast<long long>(prog_.step), r.loss(), r.bits_per_byte(), static_cast<long long>(r.tokens),
                 seconds_since(t0));
  append_metrics({{"step", prog_.step}, {"val_loss", r.loss()}, {"val_bpb", r.bits_per_byte()}, {"val_tokens", r.tokens}});
}

void Trainer::save() {
  Checkpoint c;
  c.config = cfg_;
  c.progress = prog_;
  c.params = model_->params;
  c.adam_m = adam_->m;
  c.adam_v = adam_->v;
  c.sel_bias = model_->sel_bias;
  save_checkpoint(ckpt_path_, c);
  write_plot();
}

void Trainer::write_plot() const {
  PlotSeries train{"train loss (EMA)", "#1f77b4", {}, false};
  double ema = 0;
  bool first = true;
  for (const auto& p : prog_.train_curve) {
    ema = first ? p[1] : 0.95 * ema + 0.05 * p[1];
    first = false;
    train.points.emplace_back(p[0], ema);
  }
  PlotSeries val{"held-out loss", "#d62728", {}, false};
  for (const auto& p : prog_.val_curve) val.points.emplace_back(p[0], p[1]);
  write_file_atomic((fs::path(opt_.out_dir) / "loss.svg").string(),
                    svg_line_plot("moe train: loss", "step", "cross-entropy (nats/token)", {train, val}));
}

void Trainer::append_metrics(const json& j) {
  std::ofstream f(fs::path(opt_.out_dir) / "metrics.jsonl", std::ios::app);
  f << j.dump() << "\n";
}

RunSummary Trainer::run() {
  RunSummary s;
  const OptimConfig& o = cfg_.optim;
  if (prog_.step == 0) {
    append_metrics({{"config", to_json(cfg_)}, {"command", opt_.command_line}});
    if (cfg_.eval_every > 0) evaluate_val();
  }
  auto interval_t0 = Clock::now();
  int64_t interval_steps = 0;
  while (prog_.step < o.steps && !opt_.finish_now) {
    const auto t0 = Clock::now();
    step_once();
    prog_.seconds += seconds_since(t0);
    ++interval_steps;
    const bool last = prog_.step == o.steps;
    if (prog_.step % cfg_.log_every == 0 || last) {
      log_line(seconds_since(interval_t0), interval_steps);
      interval_t0 = Clock::now();
      interval_steps = 0;
    }
    if (cfg_.eval_every > 0 && prog_.step % cfg_.eval_every == 0 && !last) evaluate_val();
    const bool stop = opt_.stop_after > 0 && prog_.step >= opt_.stop_after && !last;
    if ((cfg_.save_every > 0 && prog_.step % cfg_.save_every == 0) || stop) {
      save();
      interval_t0 = Clock::now();  // saving is not training time
    }
    if (stop) {
      s.stopped_early = true;
      s.steps = prog_.step;
      return s;
    }
  }
  s.steps = prog_.step;
  s.tokens = prog_.tokens;
  s.seconds = prog_.seconds;
  s.final_train_loss = last_loss_;
  evaluate_val();
  if (!prog_.val_curve.empty()) {
    s.val_loss = prog_.val_curve.back()[1];
    s.val_bpb = prog_.val_curve.back()[2];
  }
  save();
  ExportOptions eo;
  eo.type = opt_.export_type;
  eo.description = opt_.command_line;
  const std::string out = opt_.export_path.empty() ? (fs::path(opt_.out_dir) / "model.gguf").string() : opt_.export_path;
  export_gguf(*model_, *codec_, out, eo);
  if (!opt_.quiet) std::fprintf(stderr, "wrote %s and %s\n", out.c_str(), ckpt_path_.c_str());
  if (!opt_.eval_text.empty()) {
    std::ifstream f(opt_.eval_text, std::ios::binary);
    if (!f) throw UsageError("cannot read --eval-text " + opt_.eval_text);
    const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::vector<int32_t> toks{codec_->eos()};
    const std::vector<int32_t> enc = encode_parallel(*codec_, text, *pool_);
    toks.insert(toks.end(), enc.begin(), enc.end());
    const auto t0 = Clock::now();
    const int stride = opt_.eval_stride > 0 ? opt_.eval_stride : std::max(1, cfg_.model.n_ctx / 2);
    const EvalResult r = evaluate_text(*model_, *codec_, toks, stride);
    s.eval_text_bpb = r.bits_per_byte();
    s.eval_text_loss = r.loss();
    s.eval_text_tokens = r.tokens;
    s.eval_text_bytes = r.bytes;
    if (!opt_.quiet)
      std::fprintf(stderr, "eval %s: %.4f bits/byte (%lld tokens, %lld bytes; text is %zu bytes), loss %.4f, %.1f s\n",
                   opt_.eval_text.c_str(), s.eval_text_bpb, static_cast<long long>(r.tokens),
                   static_cast<long long>(r.bytes), text.size(), r.loss(), seconds_since(t0));
    append_metrics({{"eval_text", opt_.eval_text}, {"bpb", s.eval_text_bpb}, {"loss", s.eval_text_loss},
                    {"tokens", r.tokens}, {"bytes", r.bytes}, {"text_bytes", text.size()}, {"stride", stride}});
  }
  append_metrics({{"final", true}, {"steps", s.steps}, {"tokens", s.tokens}, {"seconds", s.seconds},
                  {"train_loss", s.final_train_loss}, {"val_loss", s.val_loss}, {"val_bpb", s.val_bpb}});
  return s;
}

}  // namespace

RunSummary run_training(const TrainConfig& cfg, const std::string& resume_path, const RunOptions& opt) {
  if (!resume_path.empty()) {
    const Checkpoint c = load_checkpoint(resume_path);
    Trainer t(cfg, &c, opt);
    return t.run();
  }
  Trainer t(cfg, nullptr, opt);
  return t.run();
}

double run_benchmark(const TrainConfig& cfg_in, int warmup, int steps, bool quiet) {
  TrainConfig cfg = cfg_in;
  cfg.validate();
  const std::string corename = blas_setup();
  ThreadPool pool(resolve_threads(cfg.threads));
  const ModelShape& m = cfg.model;
  TrainModel model(m, cfg.optim.batch, pool);
  init_params(model.layout(), m, cfg.optim.init_std, cfg.optim.seed, model.params.data());
  AdamW adam(model.layout(), cfg.optim);
  const size_t n = static_cast<size_t>(cfg.optim.batch) * m.n_ctx;
  std::vector<int32_t> tokens(n), targets(n);
  Rng rng(cfg.optim.seed);
  for (size_t i = 0; i < n; ++i) {
    tokens[i] = static_cast<int32_t>(rng.below(static_cast<uint64_t>(m.n_vocab)));
    targets[i] = static_cast<int32_t>(rng.below(static_cast<uint64_t>(m.n_vocab)));
  }
  auto one_step = [&](int64_t step) {
    std::fill(model.grads.begin(), model.grads.end(), 0.0f);
    for (int micro = 0; micro < cfg.optim.accum; ++micro) {
      RouteStep rs;
      rs.step = step;
      rs.micro = micro;
      rs.seed = cfg.optim.seed;
      model.forward(tokens.data(), cfg.optim.batch, rs);
      model.loss(targets.data(), 1.0f / static_cast<float>(n * cfg.optim.accum));
      model.backward(tokens.data(), 1.0f / static_cast<float>(cfg.optim.accum));
    }
    const double norm = adam.grad_norm(pool, model.grads.data());
    adam.step(pool, model.params.data(), model.grads.data(), cfg.optim.lr_at(step), AdamW::clip_factor(norm, cfg.optim.clip));
  };
  for (int i = 0; i < warmup; ++i) one_step(i);
  const auto t0 = Clock::now();
  for (int i = 0; i < steps; ++i) one_step(warmup + i);
  const double secs = seconds_since(t0);
  const double tok_s = static_cast<double>(steps) * static_cast<double>(n) * cfg.optim.accum / secs;
  if (!quiet)
    std::fprintf(stderr, "bench: %d steps of %zu tokens in %.2f s: %.0f tokens/s (%d threads, BLAS %s)\n", steps,
                 n * static_cast<size_t>(cfg.optim.accum), secs, tok_s, pool.size(),
                 corename.empty() ? "generic" : corename.c_str());
  return tok_s;
}

}  // namespace moe::train
