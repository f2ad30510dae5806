// libFuzzer target for `moe template --context`: any bytes after the first must either be rejected as JSON
// or not an object, or render under a real chat template (the first byte picks one of the .jinja files in
// $MOE_FUZZ_TEMPLATES) or fail with a moe::Error; never crash or throw anything else. Templates meet
// messages that are not lists, contents that are numbers, tool calls without functions, and so on.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "tokenizer/jinja/jinja.h"

namespace {

std::vector<moe::jinja::Template> load_templates() {
  const char* dir = std::getenv("MOE_FUZZ_TEMPLATES");
  if (!dir || !*dir) {
    std::fprintf(stderr, "fuzz_template_context: set MOE_FUZZ_TEMPLATES to a folder of .jinja chat templates\n");
    std::exit(2);
  }
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".jinja") files.push_back(e.path());
  std::sort(files.begin(), files.end());  // the first byte must pick the same template in every run
  std::vector<moe::jinja::Template> out;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    try {
      out.emplace_back(ss.str());
    } catch (const moe::Error& e) {
      std::fprintf(stderr, "fuzz_template_context: skipping %s: %s\n", f.c_str(), e.what());
    }
  }
  if (out.empty()) {
    std::fprintf(stderr, "fuzz_template_context: no template parses in %s\n", dir);
    std::exit(2);
  }
  return out;
}

const std::vector<moe::jinja::Template>& templates() {
  static const std::vector<moe::jinja::Template> t = load_templates();
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::fprintf(stderr, "fuzz_template_context: %zu templates\n", templates().size());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto& all = templates();
  const moe::jinja::Template& tmpl = all[data[0] % all.size()];
  // As cmd_template reads the context: ordered JSON (key order kept), which must be an object.
  const auto context = nlohmann::ordered_json::parse(data + 1, data + size, nullptr, /*allow_exceptions=*/false);
  if (context.is_discarded() || !context.is_object()) return 0;
  moe::jinja::RenderOptions options;
  options.now_date = "2025-01-31";
  try {
    (void)tmpl.render(context, options);
  } catch (const moe::Error&) {
  }
  return 0;
}
