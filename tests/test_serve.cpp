// moe serve without sockets: request parsing and response shapes (pure functions), and the continuous-batching
// scheduler against plain single-sequence generation on the bundled model (same tokens at temperature 0).
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <sstream>
#include <thread>

#include "model/generate.h"
#include "serve/api.h"
#include "serve/scheduler.h"
#include "serve/server.h"
#include "support/testdata.h"
#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"

using namespace moe;
using namespace moe::serve;
using namespace moe::test;
using namespace std::chrono_literals;

namespace {

ApiError parse_error(bool chat, const std::string& body) {
  try {
    chat ? parse_chat_request(body) : parse_completion_request(body);
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "no error for " << body;
  return ApiError(0, "");
}

}  // namespace

TEST(ServeApi, ParsesChatRequest) {
  GenRequest r = parse_chat_request(R"({"model":"x","messages":[{"role":"system","content":"be brief"},
    {"role":"user","content":[{"type":"text","text":"hi "},{"type":"text","text":"there"}]}],
    "max_completion_tokens":7,"temperature":0,"top_p":0.5,"seed":42,"stop":["\n\n","END"],"presence_penalty":0.5,
    "frequency_penalty":-1,"logprobs":true,"top_logprobs":3,"stream":true,"stream_options":{"include_usage":true},
    "moe":{"experts_k":1,"expert_min_weight":0.3,"ban":["3:5"],"force":"*:1","stats":true},"user":"ignored"})");
  EXPECT_TRUE(r.chat);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[1].content, "hi there");
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_EQ(r.temperature, 0.f);
  EXPECT_EQ(r.top_p, 0.5f);
  EXPECT_EQ(r.seed.value(), 42u);
  EXPECT_EQ(r.stop.size(), 2u);
  EXPECT_EQ(r.presence_penalty, 0.5f);
  EXPECT_EQ(r.frequency_penalty, -1.f);
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 3);
  EXPECT_TRUE(r.stream && r.include_usage);
  EXPECT_EQ(r.moe.experts_k, 1);
  EXPECT_FLOAT_EQ(r.moe.expert_min_weight, 0.3f);
  EXPECT_EQ(r.moe.ban, std::vector<std::string>{"3:5"});
  EXPECT_EQ(r.moe.force, std::vector<std::string>{"*:1"});
  EXPECT_TRUE(r.moe.stats);
  // max_tokens is read too, and defaults are OpenAI's.
  GenRequest d = parse_chat_request(R"({"messages":[{"role":"developer","content":"x"}],"max_tokens":3})");
  EXPECT_EQ(d.max_tokens, 3);
  EXPECT_EQ(d.messages[0].role, "system");
  EXPECT_EQ(d.temperature, 1.f);
  EXPECT_FALSE(d.stream);
}

TEST(ServeApi, ParsesCompletionRequest) {
  EXPECT_EQ(parse_completion_request(R"({"prompt":"Once"})").prompt, "Once");
  EXPECT_EQ(parse_completion_request(R"({"prompt":["Once"]})").prompt, "Once");
  EXPECT_EQ(parse_completion_request(R"({"prompt":[1,2,3]})").prompt_ids, (std::vector<int32_t>{1, 2, 3}));
  GenRequest r = parse_completion_request(R"({"prompt":"a","logprobs":2})");
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 2);
}

TEST(ServeApi, RejectsBadRequestsNamingTheField) {
  const std::string long_stop = R"({"messages":[{"role":"user","content":"x"}],"stop":")" + std::string(257, 'a') + "\"}";
  struct Case {
    bool chat;
    const char* body;
    const char* param;
  } cases[] = {
      {true, "{", ""},
      {true, "[]", ""},
      {true, "{}", "messages"},
      {true, R"({"messages":[]})", "messages"},
      {true, R"({"messages":[{"role":"robot","content":"x"}]})", "messages[0].role"},
      {true, R"({"messages":[{"role":"user"}]})", "messages[0].content"},
      {true, R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})", "messages[0].content[0].type"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"temperature":3})", "temperature"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"temperature":"hot"})", "temperature"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"max_tokens":-1})", "max_tokens"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"max_tokens":1.5})", "max_tokens"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"n":2})", "n"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"stop":["a","b","c","d","e"]})", "stop"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"stop":""})", "stop"},
      {true, long_stop.c_str(), "stop"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"top_logprobs":3})", "top_logprobs"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"top_logprobs":30,"logprobs":true})", "top_logprobs"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"moe":{"experts_k":0}})", "moe.experts_k"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"moe":{"ban":[3]}})", "moe.ban[0]"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"stream":"yes"})", "stream"},
      {false, R"({})", "prompt"},
      {false, R"({"prompt":""})", "prompt"},
      {false, R"({"prompt":[1,-2]})", "prompt[1]"},
      {false, R"({"prompt":{"a":1}})", "prompt"},
      {false, R"({"prompt":"x","echo":true})", "echo"},
      {false, R"({"prompt":"x","logit_bias":[1,2]})", "logit_bias"},
      {false, R"({"prompt":"x","logit_bias":{"a":1}})", "logit_bias"},
      {false, R"({"prompt":"x","logit_bias":{"-3":1}})", "logit_bias"},
      {false, R"({"prompt":"x","logit_bias":{"3":101}})", "logit_bias"},
      {false, R"({"prompt":"x","logit_bias":{"3":"up"}})", "logit_bias"},
  };
  for (const auto& c : cases) {
    ApiError e = parse_error(c.chat, c.body);
    EXPECT_EQ(e.status, 400) << c.body;
    EXPECT_EQ(e.param, c.param) << c.body << ": " << e.what();
    EXPECT_FALSE(std::string(e.what()).empty());
  }
  json err = error_body(ApiError(400, "bad", "invalid_request_error", "temperature"));
  EXPECT_EQ(err["error"]["message"], "bad");
  EXPECT_EQ(err["error"]["type"], "invalid_request_error");
  EXPECT_EQ(err["error"]["param"], "temperature");
  EXPECT_TRUE(err["error"]["code"].is_null());
}

TEST(ServeApi, FormatsResponsesAndChunks) {
  ResponseMeta m{"chatcmpl-1", "default", 1700000000};
  std::vector<TokenLogprob> lp{{"Hi", -0.5f, {{"Hi", -0.5f}, {"Ho", -1.5f}}}};
  MoeStats st;
  st.tokens = 4;
  st.counts = {{2, 2, 4}, {}, {8, 0, 0}};
  json r = chat_response(m, "Hi", "stop", Usage{5, 1, 2}, &lp, &st);
  EXPECT_EQ(r["object"], "chat.completion");
  EXPECT_EQ(r["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(r["choices"][0]["message"]["content"], "Hi");
  EXPECT_EQ(r["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(r["choices"][0]["logprobs"]["content"][0]["top_logprobs"][1]["token"], "Ho");
  EXPECT_EQ(r["usage"]["total_tokens"], 6);
  EXPECT_EQ(r["usage"]["prompt_tokens_details"]["cached_tokens"], 2);
  EXPECT_DOUBLE_EQ(r["moe"]["experts_per_token"].get<double>(), 2.0);  // (8 + 8) selections / (4 tokens x 2 MoE layers)
  EXPECT_EQ(r["moe"]["layers"].size(), 2u);
  json c = completion_response(m, "x", "length", Usage{1, 1, 0}, &lp, nullptr);
  EXPECT_EQ(c["object"], "text_completion");
  EXPECT_EQ(c["choices"][0]["text"], "x");
  EXPECT_EQ(c["choices"][0]["logprobs"]["top_logprobs"][0]["Ho"], -1.5f);
  std::string role = "assistant", text = "\xff";  // invalid UTF-8 must not throw
  std::string ev = sse_event(chat_chunk(m, &role, &text, nullptr, nullptr));
  EXPECT_EQ(ev.rfind("data: {", 0), 0u);
  EXPECT_EQ(ev.substr(ev.size() - 2), "\n\n");
  json u = usage_chunk(m, true, Usage{3, 4, 0});
  EXPECT_TRUE(u["choices"].empty());
  EXPECT_EQ(u["usage"]["completion_tokens"], 4);
  EXPECT_EQ(models_response("default", 1, 512)["data"][0]["id"], "default");
}

TEST(ServeApi, StopScannerHoldsBackPossibleStops) {
  StopScanner s({"END", "\n\n"});
  EXPECT_EQ(s.push("hello E"), "hello ");
  EXPECT_EQ(s.push("N"), "");
  EXPECT_EQ(s.push("d!"), "ENd!");
  EXPECT_EQ(s.push("x\n"), "x");
  EXPECT_EQ(s.push("\nmore"), "");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.push("after"), "");
  StopScanner t({"END"});
  EXPECT_EQ(t.push("abcEN"), "abc");
  EXPECT_EQ(t.flush(), "EN");
  StopScanner none({});
  EXPECT_EQ(none.push("abc"), "abc");
}

// ---- the scheduler on the bundled model

namespace {

struct Bundled {
  std::unique_ptr<Model> model;
  std::optional<Tokenizer> tok;
  Bundled() {
    model = Model::load(std::string(MOE_SOURCE_DIR) + "/models/default.gguf");
    tok = Tokenizer::from_gguf(model->file());
  }
};

Bundled& bundled() {
  static Bundled b;
  return b;
}

const char* kPrompts[] = {"Tell me about the sea.", "What is the capital of France?", "Once upon a time",
                          "Write a letter to the President.", "How do whales sleep?", "The king said",
                          "List three colours.", "Why is the sky blue? Answer in one sentence please, my friend."};

std::vector<int32_t> chat_prompt(const char* text) {
  return ChatFormatter(*bundled().tok).tokenize({{"user", text}}, true);
}

// What `moe run --chat --temp 0` does: one sequence, greedy, stop at end of generation.
std::vector<int32_t> reference_tokens(const std::vector<int32_t>& prompt, int n, ThreadPool& pool) {
  Context ctx(*bundled().model, pool, {.n_ctx = 512});
  Sampler sampler(SamplerParams{.temperature = 0}, ctx.config().n_vocab);
  std::vector<int32_t> history, out;
  generate(ctx, sampler, prompt, n, history, [&](int32_t id) { out.push_back(id); return true; },
           [&](int32_t id) { return bundled().tok->is_eog(id); });
  return out;
}

std::shared_ptr<Job> greedy_job(const std::vector<int32_t>& prompt, int n) {
  auto j = std::make_shared<Job>();
  j->prompt = prompt;
  j->sampler.temperature = 0;
  j->max_tokens = n;
  return j;
}

// Generated ids without the end-of-generation token (which `moe run` does not print either).
std::vector<int32_t> text_tokens(const Job::Output& o) {
  std::vector<int32_t> t = o.tokens;
  if (!t.empty() && bundled().tok->is_eog(t.back())) t.pop_back();
  return t;
}

Job::Output wait_done(Job& j) {
  Job::Output all;
  for (int i = 0; i < 600; ++i) {
    Job::Output o = j.take(100ms);
    all.text += o.text;
    if (o.done) {
      o.text = all.text;
      return o;
    }
  }
  ADD_FAILURE() << "job did not finish";
  return all;
}

}  // namespace

TEST(ServeScheduler, SameTokensAsSingleSequenceAloneAndWithEightConcurrent) {
  ThreadPool pool(2);
  const int n = 24;
  std::vector<std::vector<int32_t>> prompts, ref;
  for (const char* p : kPrompts) {
    prompts.push_back(chat_prompt(p));
    ref.push_back(reference_tokens(prompts.back(), n, pool));
  }
  {  // alone: one slot, requests one after the other
    Context ctx(*bundled().model, pool, {.n_ctx = 512, .n_seq = 1});
    Scheduler s(ctx, *bundled().tok, {.prefill_chunk = 5});
    s.start();
    for (size_t i = 0; i < 2; ++i) {
      auto j = greedy_job(prompts[i], n);
      ASSERT_TRUE(s.submit(j));
      Job::Output o = wait_done(*j);
      EXPECT_EQ(text_tokens(o), ref[i]) << kPrompts[i];
      EXPECT_EQ(o.text, bundled().tok->decode(std::vector<int32_t>(ref[i].begin(), ref[i].end()), true)) << kPrompts[i];
    }
  }
  {  // eight at once, prompts prefilled in chunks while the others decode
    Context ctx(*bundled().model, pool, {.n_ctx = 512, .n_seq = 8});
    Scheduler s(ctx, *bundled().tok, {.prefill_chunk = 7});
    std::vector<std::shared_ptr<Job>> jobs;
    for (size_t i = 0; i < prompts.size(); ++i) {
      jobs.push_back(greedy_job(prompts[i], n - static_cast<int>(i)));  // different lengths: sequences leave at different steps
      ASSERT_TRUE(s.submit(jobs.back()));
    }
    s.start();
    for (size_t i = 0; i < jobs.size(); ++i) {
      Job::Output o = wait_done(*jobs[i]);
      std::vector<int32_t> want(ref[i].begin(), ref[i].begin() + std::min<size_t>(ref[i].size(), n - i));
      EXPECT_EQ(text_tokens(o), want) << kPrompts[i];
      EXPECT_EQ(o.finish_reason, want.size() < static_cast<size_t>(n) - i ? "stop" : "length");
      EXPECT_EQ(o.usage.completion_tokens, static_cast<int>(o.tokens.size()));
    }
    SchedulerMetrics m = s.metrics();
    EXPECT_EQ(m.active, 0);
    EXPECT_GT(static_cast<double>(m.step_sequences) / static_cast<double>(m.steps), 4.0);  // really batched
  }
}

TEST(ServeScheduler, ReusesCachedPrefixAndFreesCancelledSlots) {
  ThreadPool pool(2);
  Context ctx(*bundled().model, pool, {.n_ctx = 256, .n_seq = 2});
  Scheduler s(ctx, *bundled().tok, {.prefill_chunk = 16});
  s.start();
  const auto prompt = chat_prompt(kPrompts[3]);
  auto a = greedy_job(prompt, 8);
  ASSERT_TRUE(s.submit(a));
  Job::Output oa = wait_done(*a);
  EXPECT_EQ(oa.usage.cached_tokens, 0);
  auto b = greedy_job(prompt, 8);
  ASSERT_TRUE(s.submit(b));
  Job::Output ob = wait_done(*b);
  EXPECT_EQ(ob.usage.cached_tokens, static_cast<int>(prompt.size()) - 1);  // all but the last prompt token
  EXPECT_EQ(ob.tokens, oa.tokens);
  // A long generation whose client leaves: its slot frees at once.
  auto c = greedy_job(prompt, 200);
  c->ignore_eos = true;
  ASSERT_TRUE(s.submit(c));
  for (int i = 0; i < 100 && c->take(10ms).text.empty();) ++i;
  c->cancel();
  Job::Output oc = wait_done(*c);
  EXPECT_EQ(oc.finish_reason, "cancelled");
  EXPECT_LT(oc.usage.completion_tokens, 200);
  EXPECT_EQ(s.metrics().active, 0);
  EXPECT_EQ(s.metrics().requests_cancelled, 1);
}

TEST(ServeScheduler, QueueLimitAndDrain) {
  ThreadPool pool(2);
  Context ctx(*bundled().model, pool, {.n_ctx = 128, .n_seq = 1});
  Scheduler s(ctx, *bundled().tok, {.max_queue = 1});
  const auto prompt = chat_prompt(kPrompts[0]);
  auto j1 = greedy_job(prompt, 4), j2 = greedy_job(prompt, 4);
  EXPECT_TRUE(s.submit(j1));                       // for the slot
  EXPECT_TRUE(s.submit(j2));                       // waits
  EXPECT_FALSE(s.submit(greedy_job(prompt, 4)));  // full
  s.start();
  s.drain();  // finishes both, then refuses
  EXPECT_EQ(wait_done(*j1).finish_reason, "length");
  EXPECT_EQ(wait_done(*j2).finish_reason, "length");
  EXPECT_FALSE(s.submit(greedy_job(prompt, 4)));
}

TEST(ServeScheduler, PerRequestExpertControlsAndStats) {
  ThreadPool pool(2);
  Bundled& b = bundled();
  const ModelConfig& c = b.model->config();
  Context ctx(*b.model, pool, {.n_ctx = 256, .n_seq = 4});
  Scheduler s(ctx, *b.tok, {});
  ChatFormatter chat(*b.tok);
  auto make = [&](const std::string& body) {
    return prepare_job(parse_chat_request(body), c, *b.tok, chat, ctx.n_ctx(), RoutingControl{});
  };
  const std::string msgs = R"("messages":[{"role":"user","content":"Tell me about the sea."}],"temperature":0,"max_tokens":6)";
  auto plain = make("{" + msgs + R"(,"moe":{"stats":true}})");
  auto k1 = make("{" + msgs + R"(,"moe":{"stats":true,"experts_k":1}})");
  auto banned = make("{" + msgs + R"(,"moe":{"stats":true,"ban":["*:0","*:1"],"force":["2:5"]}})");
  EXPECT_NE(plain->routing_key, k1->routing_key);  // different controls never share a step
  for (auto& j : {plain, k1, banned}) ASSERT_TRUE(s.submit(j));
  s.start();
  Job::Output op = wait_done(*plain), o1 = wait_done(*k1), ob = wait_done(*banned);
  EXPECT_DOUBLE_EQ(op.stats.experts_per_token(), static_cast<double>(c.n_expert_used));
  EXPECT_DOUBLE_EQ(o1.stats.experts_per_token(), 1.0);
  EXPECT_EQ(op.stats.tokens, static_cast<int64_t>(plain->prompt.size() + op.tokens.size()) - 1);  // prompt + fed-back
  for (size_t l = 0; l < ob.stats.counts.size(); ++l) {
    EXPECT_EQ(ob.stats.counts[l][0], 0);
    EXPECT_EQ(ob.stats.counts[l][1], 0);
  }
  EXPECT_EQ(ob.stats.counts[2][5], ob.stats.tokens);  // forced: every token
  // The k=1 request ran with its own controls: its tokens are what a k=1 context alone gives.
  Context solo(*b.model, pool, {.n_ctx = 256});
  RoutingControl one;
  one.top_k = 1;
  solo.set_routing(one);
  Sampler sampler(SamplerParams{.temperature = 0}, c.n_vocab);
  std::vector<int32_t> hist, want;
  generate(solo, sampler, k1->prompt, 6, hist, [&](int32_t id) { want.push_back(id); return true; },
           [&](int32_t id) { return b.tok->is_eog(id); });
  EXPECT_EQ(text_tokens(o1), want);
  // Bad controls are 400s naming the field.
  try {
    make("{" + msgs + R"(,"moe":{"ban":["99:0"]}})");
    ADD_FAILURE();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.param, "moe.ban");
  }
}

TEST(ServeScheduler, PromptOverContextIs400WithTheNumbers) {
  Bundled& b = bundled();
  ChatFormatter chat(*b.tok);
  std::string big(2000, 'a');
  for (size_t i = 0; i < big.size(); i += 2) big[i] = ' ';
  try {
    prepare_job(parse_completion_request(R"({"prompt":")" + big + R"("})"), b.model->config(), *b.tok, chat, 64, {});
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_NE(std::string(e.what()).find("context holds 64"), std::string::npos) << e.what();
    EXPECT_EQ(e.code, "context_length_exceeded");
  }
  auto j = prepare_job(parse_completion_request(R"({"prompt":"Once upon","max_tokens":1000})"), b.model->config(), *b.tok, chat, 64, {});
  EXPECT_EQ(j->max_tokens, 64 - static_cast<int>(j->prompt.size()));  // clamped to the room left
}

// OpenAI's logit_bias: +100 on a token makes greedy decoding pick it at every step, -100 on the unbiased first
// choice moves the first token elsewhere; an id outside the vocabulary is a 400 naming the field.
TEST(ServeScheduler, LogitBiasForcesAndBansTokens) {
  Bundled& b = bundled();
  ChatFormatter chat(*b.tok);
  GenRequest r = parse_completion_request(R"({"prompt":"Once upon","logit_bias":{"77":100,"5":-2.5}})");
  ASSERT_EQ(r.logit_bias.size(), 2u);
  try {
    prepare_job(parse_completion_request(R"({"prompt":"x","logit_bias":{"999999":1}})"), b.model->config(), *b.tok, chat, 64, {});
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.param, "logit_bias");
  }
  ThreadPool pool(2);
  Context ctx(*b.model, pool, {.n_ctx = 256, .n_seq = 2});
  Scheduler s(ctx, *b.tok, {});
  s.start();
  const auto prompt = chat_prompt(kPrompts[2]);
  auto plain = greedy_job(prompt, 6);
  plain->ignore_eos = true;
  ASSERT_TRUE(s.submit(plain));
  const Job::Output op = wait_done(*plain);
  ASSERT_FALSE(op.tokens.empty());
  auto forced = greedy_job(prompt, 6);
  forced->ignore_eos = true;
  forced->logit_bias = {{77, 100.f}};
  auto banned = greedy_job(prompt, 6);
  banned->ignore_eos = true;
  banned->logit_bias = {{op.tokens[0], -100.f}};
  ASSERT_TRUE(s.submit(forced));
  ASSERT_TRUE(s.submit(banned));
  const Job::Output of = wait_done(*forced), ob = wait_done(*banned);
  EXPECT_EQ(of.tokens, std::vector<int32_t>(6, 77));
  ASSERT_FALSE(ob.tokens.empty());
  EXPECT_NE(ob.tokens[0], op.tokens[0]);
}

TEST(ServeScheduler, MatchesMoeRunChatTemp0) {
  // The command line and the server give the same tokens for the same message.
  CliResult r = run_moe({"run", "--chat", "-p", kPrompts[1], "--temp", "0", "-n", "16", "--print-ids"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<int32_t> cli;
  std::istringstream in(r.out);
  for (int32_t id; in >> id;) cli.push_back(id);
  ThreadPool pool(2);
  // Alone, then as one of 8 sequences sharing every step (the others sampled at temperature 0.9).
  Context ctx(*bundled().model, pool, {.n_ctx = 512, .n_seq = 8});
  Scheduler s(ctx, *bundled().tok, {.prefill_chunk = 3});
  s.start();
  auto alone = greedy_job(chat_prompt(kPrompts[1]), 16);
  ASSERT_TRUE(s.submit(alone));
  EXPECT_EQ(text_tokens(wait_done(*alone)), cli);
  std::vector<std::shared_ptr<Job>> others;
  for (int i = 0; i < 7; ++i) {
    others.push_back(greedy_job(chat_prompt(kPrompts[i == 1 ? 0 : i]), 20));
    others.back()->sampler.temperature = 0.9f;
    others.back()->sampler.seed = static_cast<uint64_t>(i);
    ASSERT_TRUE(s.submit(others.back()));
  }
  auto j = greedy_job(chat_prompt(kPrompts[1]), 16);
  ASSERT_TRUE(s.submit(j));
  Job::Output o = wait_done(*j);
  for (auto& x : others) wait_done(*x);
  // `moe run` prints the ids it streamed (end-of-generation excluded); the server's token list includes it.
  EXPECT_EQ(text_tokens(o), cli);
}

TEST(ServeCli, BadFlagsAndUnbindableAddressesAreOneLineErrors) {
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"serve", "--port", "70000"}, {"serve", "--parallel", "0"}, {"serve", "--queue", "-1"}, {"serve", "--no-such-flag"}}) {
    CliResult r = run_moe(args);
    EXPECT_EQ(r.exit_code, 2) << args[1];
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  // An address of no interface of this machine (TEST-NET-3): the bind fails with the address named.
  CliResult r = run_moe({"serve", "--host", "203.0.113.7", "--port", "8080", "-t", "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot bind 203.0.113.7:8080"), std::string::npos) << r.err;
}
