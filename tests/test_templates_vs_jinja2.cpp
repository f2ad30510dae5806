// Differential test: every chat template in the test data folder x every conversation in
// tests/jinja/conversations, rendered by Jinja2 (set up exactly as transformers sets it up, see
// tests/jinja/gen_expected.py) and by `moe template`; plus a corpus of small templates
// (tests/jinja/snippets.txt) that pins down Jinja2/Python semantics one construct at a time. Our output
// must equal Jinja2's byte for byte wherever Jinja2 renders, and must fail wherever Jinja2 fails.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "support/testdata.h"
#include "tokenizer/jinja/jinja.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

constexpr const char* kPython = "/usr/bin/python3";
constexpr const char* kNow = "2025-03-14";  // the same fixed date for strftime_now on both sides

bool have_jinja2() {
  std::string cmd = std::string(kPython) + " -c 'import jinja2' > /dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

std::string quote(const std::string& s) { return "'" + s + "'"; }

// Runs the oracle and returns its manifest.
json run_oracle(const std::string& mode, const std::string& a, const std::string& b, const std::string& out) {
  std::string cmd = std::string(kPython) + " " + quote(std::string(MOE_SOURCE_DIR) + "/tests/jinja/gen_expected.py") +
                    " " + mode + " " + quote(a) + " " + quote(b) + " " + quote(out) + " --now " + kNow +
                    " 2> " + quote(out + "/oracle.log");
  int rc = std::system(cmd.c_str());
  if (rc != 0) throw std::runtime_error("gen_expected.py failed: " + moe::test::read_file(out + "/oracle.log"));
  return json::parse(moe::test::read_file(out + "/manifest.json"));
}

// A short description of where two renderings first differ.
std::string first_difference(const std::string& want, const std::string& got) {
  size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  auto around = [&](const std::string& s) {
    size_t b = i < 40 ? 0 : i - 40;
    return json(s.substr(b, 80)).dump(-1, ' ', false, json::error_handler_t::replace);
  };
  std::ostringstream os;
  os << "first difference at byte " << i << ": want " << around(want) << " got " << around(got);
  return os.str();
}

TEST(TemplatesVsJinja2, EveryTemplateAndConversationMatchesThroughTheCli) {
  MOE_REQUIRE_TESTDATA();
  if (!have_jinja2()) MOE_ORACLE_MISSING(kPython << " with jinja2 is not available");
  const std::string templates = moe::test::testdata_path("templates");
  if (!fs::is_directory(templates)) MOE_ORACLE_MISSING("no templates folder in the test data");
  const std::string conversations = std::string(MOE_SOURCE_DIR) + "/tests/jinja/conversations";
  const std::string out = moe::test::scratch_dir("templates_vs_jinja2");
  json manifest = run_oracle("templates", templates, conversations, out);

  size_t matched = 0, raised = 0, errors = 0;
  std::vector<std::string> failures;
  for (const auto& e : manifest) {
    const std::string tmpl = e["template"], conv = e["conversation"], status = e["status"];
    auto r = moe::test::run_moe({"template", "--template", templates + "/" + tmpl, "--context",
                                 conversations + "/" + conv, "--now", kNow});
    const std::string what = tmpl + " x " + conv;
    if (status == "ok") {
      std::string want = moe::test::read_file(out + "/" + e["file"].get<std::string>());
      if (r.exit_code == 0 && r.out == want) ++matched;
      else if (r.exit_code != 0) failures.push_back(what + ": Jinja2 renders, we fail: " + r.err);
      else failures.push_back(what + ": " + first_difference(want, r.out));
    } else {
      // Jinja2 failed: through raise_exception (we must fail with its message) or another error.
      const std::string message = e["message"];
      bool ok = r.exit_code != 0 && r.out.empty();
      if (ok && status == "raise_exception" && r.err.find(message) == std::string::npos) ok = false;
      if (ok) {
        ++matched;
        (status == "raise_exception" ? raised : errors)++;
      } else {
        failures.push_back(what + ": Jinja2 fails (" + message + ") but we printed " + std::to_string(r.out.size()) +
                           " bytes, exit " + std::to_string(r.exit_code) + ", stderr: " + r.err);
      }
    }
  }
  std::printf("%zu/%zu templates×conversations match Jinja2 (%zu rendered identically, %zu raise_exception, "
              "%zu other Jinja2 errors)\n",
              matched, manifest.size(), matched - raised - errors, raised, errors);
  for (const auto& f : failures) ADD_FAILURE() << f;
  EXPECT_EQ(matched, manifest.size());
}

TEST(TemplatesVsJinja2, SnippetCorpusMatches) {
  if (!have_jinja2()) MOE_ORACLE_MISSING(kPython << " with jinja2 is not available");
  const std::string dir = std::string(MOE_SOURCE_DIR) + "/tests/jinja";
  const std::string out = moe::test::scratch_dir("snippets_vs_jinja2");
  json manifest = run_oracle("snippets", dir + "/snippets.txt", dir + "/snippet_context.json", out);
  json context = json::parse(moe::test::read_file(dir + "/snippet_context.json"));
  moe::jinja::RenderOptions options;
  options.now_date = kNow;

  size_t matched = 0;
  for (const auto& e : manifest) {
    const std::string source = e["source"], status = e["status"];
    const std::string where = "snippet at tests/jinja/snippets.txt:" + std::to_string(e["line"].get<int>());
    std::string got, error;
    bool failed = false;
    try {
      got = moe::jinja::Template(source).render(context, options);
    } catch (const std::exception& ex) {
      failed = true;
      error = ex.what();
    }
    if (status == "ok") {
      std::string want = moe::test::read_file(out + "/" + e["file"].get<std::string>());
      if (!failed && got == want) ++matched;
      else if (failed) ADD_FAILURE() << where << ": Jinja2 renders, we fail: " << error;
      else ADD_FAILURE() << where << ": " << first_difference(want, got);
    } else if (failed) {
      ++matched;
    } else {
      ADD_FAILURE() << where << ": Jinja2 fails (" << e["message"].get<std::string>() << ") but we rendered "
                    << json(got).dump();
    }
  }
  std::printf("%zu/%zu snippets match Jinja2\n", matched, manifest.size());
  EXPECT_EQ(matched, manifest.size());
}

}  // namespace
