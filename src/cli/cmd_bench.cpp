// `moe bench`: prompt-processing and generation speed of a model, next to the machine's memory bandwidth
// measured in the same run, so that generation can be reported as a percent of its bandwidth bound
// (bytes of weights read per generated token / bandwidth).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/common.h"
#include "cli/memory_flags.h"
#include "core/file_io.h"
#include "core/error.h"
#include "kernels/kernels.h"
#include "model/context.h"
#include "model/model_info.h"
#include "moe/cached_store.h"
#include "ops/packed_weights.h"

namespace moe::cli {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Summary {
  double median = 0, min = 0, max = 0;
};

Summary summarize(std::vector<double> v) {
  Summary s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  s.min = v.front();
  s.max = v.back();
  return s;
}

// Read bandwidth with every thread of the pool streaming its own part of a buffer far larger than the L3
// cache; the best of `passes` full passes, in GB/s.
class BandwidthProbe {
 public:
  BandwidthProbe(ThreadPool& pool, size_t bytes) : pool_(pool), words_(bytes / 8) {
    buf_.reset(new uint64_t[words_]);
    pool_.parallel_for(pool_.size(), [&](int64_t i, int) {  // first touch by the threads that will read it
      const size_t per = words_ / pool_.size();
      uint64_t* p = buf_.get() + i * per;
      for (size_t w = 0; w < per; ++w) p[w] = w * 0x9E3779B97F4A7C15ULL;  // distinct pages (no zero-page tricks)
    });
  }
  double measure(int passes) {
    double best = 0;
    const size_t per = words_ / pool_.size();
    std::vector<uint64_t> sums(static_cast<size_t>(pool_.size()));
    for (int p = 0; p < passes; ++p) {
      const auto t0 = Clock::now();
      pool_.run_on_all([&](int tid) { sums[static_cast<size_t>(tid)] = simd_stream_sum(buf_.get() + tid * per, per); });
      const double s = seconds_since(t0);
      best = std::max(best, static_cast<double>(per * pool_.size() * 8) / s / 1e9);
    }
    sink_ += sums[0];
    return best;
  }

 private:
  ThreadPool& pool_;
  size_t words_;
  std::unique_ptr<uint64_t[]> buf_;
  uint64_t sink_ = 0;
};

// Disk read bandwidth as the expert cache sees it: expert-sized O_DIRECT reads at spread-out offsets of the model
// file, on as many threads as the cache's I/O threads, for about `bytes` in all; GB/s.
double measure_disk(const std::string& path, size_t chunk, int threads, size_t bytes) {
  DirectFile f(path);
  if (f.size() < 2 * chunk) return 0;
  const size_t n_chunks = std::max<size_t>(1, bytes / chunk);
  std::atomic<size_t> next{0};
  const auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      uint8_t* staging = alloc_pages(DirectFile::staging_bytes(chunk));
      for (size_t i; (i = next++) < n_chunks;) {
        const uint64_t off = (i * 0x9E3779B97F4A7C15ULL % (f.size() / chunk - 1)) * chunk;
        f.read(off, chunk, staging);
      }
      free_pages(staging, DirectFile::staging_bytes(chunk));
    });
  for (auto& t : ts) t.join();
  return static_cast<double>(n_chunks * chunk) / seconds_since(t0) / 1e9;
}

// Bytes of one expert in every MoE layer, and the distinct experts a generation step read per MoE layer (from the
// store's request count: it is asked once per distinct expert of a step).
struct StepExperts {
  double bytes_all_layers = 0;
  double distinct_per_layer = 0;
};
StepExperts step_experts(const Model& m, uint64_t requests, int64_t steps) {
  StepExperts r;
  int moe_layers = 0;
  for (const LayerWeights& lw : m.layers) {
    const MoeWeights& w = lw.moe;
    if (!w.gate.present()) continue;
    ++moe_layers;
    for (const ExpertMats* e : {&w.gate, &w.up, &w.down})
      r.bytes_all_layers += static_cast<double>(row_bytes(e->type, e->cols)) * static_cast<double>(e->rows);
  }
  if (moe_layers > 0 && steps > 0) r.distinct_per_layer = static_cast<double>(requests) / static_cast<double>(steps) / moe_layers;
  return r;
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  CLI::App app{"Benchmark prompt processing and generation, with the memory-bandwidth bound measured alongside",
               "bench"};
  std::string path, kernels = "simd";
  int n_prompt = 64, n_gen = 32, threads = 0, reps = 5, bw_mib = 512, n_par = 1;
  bool json = false, no_repack = false, profile = false;
  app.add_option("-m,--model", path, "GGUF file (default: the bundled model)");
  app.add_option("-p,--n-prompt", n_prompt, "prompt tokens processed as one batch from an empty context")
      ->check(Positive);
  app.add_option("-n,--n-gen", n_gen, "one-token decodes timed after the prompt")->check(NonNegative);
  app.add_option("-t,--threads", threads, "threads (0: all)");
  app.add_option("--parallel", n_par,
                 "sequences decoded together (continuous batching as moe serve does it): each gets its own -p prompt, "
                 "then every step decodes one token of each; tokens/s are aggregate")
      ->check(CLI::Range(1, 256));
  app.add_option("-r,--repetitions", reps, "repetitions (median and min/max are reported)")->check(Positive);
  app.add_option("--kernels", kernels, "kernel set: simd or ref")->check(CLI::IsMember({"simd", "ref"}));
  app.add_flag("--no-repack", no_repack, "use every weight in its file layout (no load-time repacking)");
  app.add_option("--bw-mib", bw_mib, "size of the bandwidth probe buffer in MiB")->check(CLI::Range(64, 65536));
  app.add_flag("--json", json, "print one JSON object instead of text");
  app.add_flag("--profile", profile, "also print where the time goes (wall time per kind of op)");
  MemoryFlags mf;
  mf.add_to(app, "load");
  int disk_mib = 512;
  app.add_option("--disk-mib", disk_mib, "with --mem-budget: bytes read by the disk bandwidth probe, in MiB")
      ->check(CLI::Range(16, 65536));
  return run_command(app, argc, argv, [&] {
    const auto t_load = Clock::now();
    auto model = Model::load(resolve_model_path(path));
    const ModelConfig& c = model->config();
    const double load_s = seconds_since(t_load);
    ThreadPool pool(resolve_threads(threads));
    const KernelSet& ks = kernels_by_name(kernels.c_str());
    const auto t_pack = Clock::now();
    const bool pack = !no_repack && &ks == &simd_kernels();
    const auto store = mf.make_store(*model, RoutingControl{}, pack);
    Context ctx(*model, pool,
                {.n_ctx = n_prompt + n_gen + 1, .n_batch = std::max(n_prompt, n_par), .kernels = &ks,
                 .repack = !no_repack, .pack_experts_on_use = mf.pack_experts_on_use(), .experts = store, .n_seq = n_par, .prefetch = !mf.no_prefetch,
                 .cache_type = mf.kv_type()});
    const double pack_s = seconds_since(t_pack);
    const ModelStats st = model_stats(*model);
    // Under a memory budget the probe buffer counts against it too: keep it small unless asked otherwise.
    if (mf.active() && app.count("--bw-mib") == 0) bw_mib = 128;
    BandwidthProbe probe(pool, static_cast<size_t>(bw_mib) << 20);

    // Deterministic token ids (as llama-bench, the values do not matter for speed beyond routing).
    uint64_t seed = 12345;
    auto next_id = [&] {
      seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
      return static_cast<int32_t>((seed >> 33) % static_cast<uint64_t>(c.n_vocab));
    };
    std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(n_par), std::vector<int32_t>(static_cast<size_t>(n_prompt)));
    for (auto& prompt : prompts)
      for (auto& id : prompt) id = next_id();
    std::vector<float> logits(static_cast<size_t>(c.n_vocab) * static_cast<size_t>(n_par));
    std::vector<int32_t> step_ids(static_cast<size_t>(n_par));
    std::vector<SeqInput> step(static_cast<size_t>(n_par));

    OpTimes pp_times, tg_times;
    double pp_seconds = 0, tg_seconds = 0;
    ExpertStoreStats tg_store;  // the store's counters over the timed generation phases only
    auto add_delta = [](ExpertStoreStats& acc, const ExpertStoreStats& a, const ExpertStoreStats& b) {
      acc.requests += b.requests - a.requests;
      acc.hits += b.hits - a.hits;
      acc.bytes_read += b.bytes_read - a.bytes_read;
      acc.stall_seconds += b.stall_seconds - a.stall_seconds;
      acc.prefetch_hinted += b.prefetch_hinted - a.prefetch_hinted;
      acc.prefetch_hint_hits += b.prefetch_hint_hits - a.prefetch_hint_hits;
      acc.acquired_after_hint += b.acquired_after_hint - a.acquired_after_hint;
    };
    auto run_once = [&](double* pp, double* tg) {
      for (int s = 0; s < n_par; ++s) ctx.truncate(s, 0);
      if (profile) ctx.set_op_times(&pp_times);
      auto t0 = Clock::now();
      if (n_par == 1) {
        ctx.decode(prompts[0], logits.data(), false);
      } else {
        for (int s = 0; s < n_par; ++s) {
          const SeqInput in{.seq = s, .tokens = prompts[static_cast<size_t>(s)], .logits = false};
          ctx.decode_step(std::span<const SeqInput>(&in, 1), logits.data());
        }
      }
      pp_seconds += seconds_since(t0);
      *pp = static_cast<double>(n_prompt) * n_par / seconds_since(t0);
      if (profile) ctx.set_op_times(&tg_times);
      const ExpertStoreStats before = ctx.expert_store().stats();
      t0 = Clock::now();
      for (int i = 0; i < n_gen; ++i) {
        for (int s = 0; s < n_par; ++s) {
          step_ids[static_cast<size_t>(s)] = next_id();
          step[static_cast<size_t>(s)] = {.seq = s, .tokens = std::span<const int32_t>(&step_ids[static_cast<size_t>(s)], 1)};
        }
        ctx.decode_step(step, logits.data());
      }
      tg_seconds += seconds_since(t0);
      add_delta(tg_store, before, ctx.expert_store().stats());
      *tg = n_gen > 0 ? static_cast<double>(n_gen) * n_par / seconds_since(t0) : 0.0;
      ctx.set_op_times(nullptr);
    };
    double pp, tg;
    run_once(&pp, &tg);  // warm-up: page faults, caches, thread spin-up
    pp_times = tg_times = OpTimes{};
    pp_seconds = tg_seconds = 0;
    tg_store = {};
    std::vector<double> pps, tgs, bws;
    for (int r = 0; r < reps; ++r) {
      bws.push_back(probe.measure(3));
      run_once(&pp, &tg);
      pps.push_back(pp);
      tgs.push_back(tg);
    }
    bws.push_back(probe.measure(3));
    const Summary P = summarize(pps), G = summarize(tgs), B = summarize(bws);
    const double bw = B.max;  // the best bandwidth seen: the most demanding bound
    // Weights read per generated token. With parallel sequences a step reads the non-expert weights once and each
    // distinct expert its tokens picked once (the store counts them): per token that is the step's bytes / n_par.
    const StepExperts se = step_experts(*model, tg_store.requests, static_cast<int64_t>(reps) * n_gen);
    const double bytes_per_token =
        n_par == 1 || n_gen == 0
            ? static_cast<double>(st.bytes_per_token)
            : (static_cast<double>(st.bytes_per_token) - c.n_expert_used * se.bytes_all_layers +
               se.distinct_per_layer * se.bytes_all_layers) / n_par;
    const double bound = bw * 1e9 / bytes_per_token;
    const double pct = n_gen > 0 ? 100.0 * G.median / bound : 0.0;
    // The same against the median bandwidth (the typical rather than the best moment of a shared machine).
    const double bound_median = B.median * 1e9 / bytes_per_token;
    const double pct_median = n_gen > 0 ? 100.0 * G.median / bound_median : 0.0;
    // Under a budget: the disk bandwidth measured now, and the generation bound it implies.
    double disk_bw = 0, disk_per_tok = 0, io_bound = 0, io_pct = 0, hit_rate = 1, pf_prec = 0, pf_rec = 0;
    if (store) {
      const auto& cs = static_cast<const CachedExpertStore&>(*store);
      disk_bw = measure_disk(model->file().path(), cs.slot_bytes() / 3, mf.io_threads, static_cast<size_t>(disk_mib) << 20);
      const double gen_tokens = static_cast<double>(reps) * std::max(n_gen, 1);
      disk_per_tok = static_cast<double>(tg_store.bytes_read) / gen_tokens;
      io_bound = disk_per_tok > 0 ? disk_bw * 1e9 / disk_per_tok : 0;
      io_pct = io_bound > 0 ? 100.0 * G.median / io_bound : 0;
      hit_rate = tg_store.requests ? static_cast<double>(tg_store.hits) / static_cast<double>(tg_store.requests) : 1.0;
      pf_prec = tg_store.prefetch_hinted ? static_cast<double>(tg_store.prefetch_hint_hits) /
                                               static_cast<double>(tg_store.prefetch_hinted)
                                         : 0;
      pf_rec = tg_store.acquired_after_hint ? static_cast<double>(tg_store.prefetch_hint_hits) /
                                                  static_cast<double>(tg_store.acquired_after_hint)
                                            : 0;
    }
    const auto packed = ctx.packed_weights();
    const std::string target = &ks == &simd_kernels() ? simd_target_name() : "scalar reference";

    if (json) {
      nlohmann::json j = {
          {"model", model->file().path()}, {"arch", c.arch}, {"params", st.params_total},
          {"threads", pool.size()}, {"kernels", ks.name}, {"simd_target", target},
          {"repacked_bytes", packed ? packed->bytes() : 0}, {"n_prompt", n_prompt}, {"n_gen", n_gen},
          {"repetitions", reps}, {"pp_tokens_per_s", P.median}, {"pp_min", P.min}, {"pp_max", P.max},
          {"tg_tokens_per_s", G.median}, {"tg_min", G.min}, {"tg_max", G.max}, {"membw_gb_per_s", bw},
          {"membw_median_gb_per_s", B.median}, {"bytes_per_token", st.bytes_per_token},
          {"tg_bound_tokens_per_s", bound}, {"tg_percent_of_bound", pct},
          {"tg_percent_of_median_bound", pct_median}, {"load_seconds", load_s}, {"parallel", n_par},
          {"tg_bytes_per_token", bytes_per_token}, {"tg_distinct_experts_per_layer_step", se.distinct_per_layer},
          {"repack_seconds", pack_s}, {"peak_rss_bytes", peak_rss_bytes()}};
      if (store) {
        j["mem_budget_bytes"] = parse_size(mf.budget, "--mem-budget");
        j["cache_policy"] = mf.policy;
        j["cache_hit_rate"] = hit_rate;
        j["disk_bytes_per_token"] = disk_per_tok;
        j["disk_gb_per_s"] = disk_bw;
        j["io_bound_tokens_per_s"] = io_bound;
        j["tg_percent_of_io_bound"] = io_pct;
        j["prefetch_precision"] = pf_prec;
        j["prefetch_recall"] = pf_rec;
        j["io_stall_seconds_per_token"] = tg_store.stall_seconds / (static_cast<double>(reps) * std::max(n_gen, 1));
      }
      std::printf("%s\n", j.dump().c_str());
      return 0;
    }
    std::printf("model:      %s (%s, %s params, %s of weights read per generated token)\n",
                model->file().path().c_str(), c.arch.c_str(), human_count(st.params_total).c_str(),
                human_bytes(st.bytes_per_token).c_str());
    std::printf("setup:      %d threads, %s kernels (%s), %s; load %.2f s, context + repack %.2f s\n", pool.size(),
                ks.name, target.c_str(),
                packed ? ("weights repacked: " + human_bytes(static_cast<double>(packed->bytes()))).c_str()
                       : "file layout (no repacking)",
                load_s, pack_s);
    std::printf("memory:     %.1f GB/s read bandwidth (best; median %.1f, min %.1f) -> generation bound %.1f tokens/s\n",
                bw, B.median, B.min, bound);
    if (n_par > 1)
      std::printf("parallel:   %d sequences; each generation step read %.1f distinct experts per MoE layer (one sequence "
                  "reads %d) -> %s of weights per generated token, bound %.1f tokens/s\n",
                  n_par, se.distinct_per_layer, c.n_expert_used, human_bytes(bytes_per_token).c_str(), bound);
    std::printf("pp%-4d      %8.2f tokens/s  (median of %d; min %.2f, max %.2f)\n", n_prompt, P.median, reps, P.min,
                P.max);
    if (n_gen > 0)
      std::printf("tg%-4d      %8.2f tokens/s  (median of %d; min %.2f, max %.2f) = %.1f%% of the bandwidth bound"
                  " (%.1f%% of the median-bandwidth bound)\n",
                  n_gen, G.median, reps, G.min, G.max, pct, pct_median);
    if (store)
      std::printf("cache:      %s, hit rate %.1f%%, %.1f MiB read from disk per token; disk %.2f GB/s -> I/O bound %.2f"
                  " tokens/s, generation = %.1f%% of it; prefetch precision %.0f%% recall %.0f%%; stalled %.1f ms/token;"
                  " peak RSS %s\n",
                  mf.policy.c_str(), 100 * hit_rate, disk_per_tok / (1024.0 * 1024.0), disk_bw, io_bound, io_pct,
                  100 * pf_prec, 100 * pf_rec,
                  1e3 * tg_store.stall_seconds / (static_cast<double>(reps) * std::max(n_gen, 1)),
                  format_bytes(peak_rss_bytes()).c_str());
    else
      std::printf("memory:     peak RSS %s\n", format_bytes(peak_rss_bytes()).c_str());
    if (profile) {
      std::printf("\nprofile (ms per token)        prompt   generation\n");
      const double pn = static_cast<double>(reps) * n_prompt, gn = static_cast<double>(reps) * std::max(n_gen, 1);
      double ps = 0, gs = 0;
      for (int op = 0; op < OpTimes::kCount; ++op) {
        std::printf("  %-26s %8.3f %10.3f\n", OpTimes::name(op), 1e3 * pp_times.seconds[op] / pn,
                    1e3 * tg_times.seconds[op] / gn);
        ps += pp_times.seconds[op];
        gs += tg_times.seconds[op];
      }
      std::printf("  %-26s %8.3f %10.3f\n", "other", 1e3 * (pp_seconds - ps) / pn, 1e3 * (tg_seconds - gs) / gn);
      std::printf("  %-26s %8.3f %10.3f\n", "total", 1e3 * pp_seconds / pn, 1e3 * tg_seconds / gn);
    }
    return 0;
  });
}

}  // namespace moe::cli
