// `moe template`: renders a chat template for a JSON context exactly as transformers' apply_chat_template
// would (Jinja2 semantics), printing the bytes and nothing else. A stable hook for tools and checks.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/command.h"
#include "cli/template_model_source.h"
#include "core/error.h"
#include "tokenizer/jinja/jinja.h"

namespace moe::cli {
namespace {

std::string read_text_file(const std::string& path, const char* what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(std::string("cannot read ") + what + " " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) throw Error(std::string("cannot read ") + what + " " + path);
  return ss.str();
}

bool valid_date(const std::string& s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9})
    if (s[i] < '0' || s[i] > '9') return false;
  int month = std::stoi(s.substr(5, 2)), day = std::stoi(s.substr(8, 2));
  return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

}  // namespace

int cmd_template(int argc, char** argv) {
  CLI::App app{"Render a chat template for a JSON context, byte for byte as Jinja2 (transformers) renders it",
               "template"};
  std::string template_path, model_path, context_path, now;
  auto* t_opt = app.add_option("--template", template_path, "Jinja2 chat template file");
  auto* m_opt = app.add_option("-m,--model", model_path, "GGUF model: use its tokenizer.chat_template and BOS/EOS");
  t_opt->excludes(m_opt);
  app.add_option("--context", context_path,
                 "JSON object; every key is a template variable (messages, tools, add_generation_prompt, ...)")
      ->required();
  app.add_option("--now", now, "date for strftime_now() as YYYY-MM-DD (midnight); default: the current time");
  return run_command(app, argc, argv, [&]() -> int {
    if (template_path.empty() && model_path.empty()) throw UsageError("give --template FILE or -m MODEL.gguf");
    if (!now.empty() && !valid_date(now)) throw UsageError("--now must be a date YYYY-MM-DD, got '" + now + "'");

    nlohmann::ordered_json context;
    std::string context_text = read_text_file(context_path, "context file");
    try {
      context = nlohmann::ordered_json::parse(context_text);
    } catch (const nlohmann::json::parse_error& e) {
      throw Error("context " + context_path + " is not valid JSON: " + e.what());
    }
    if (!context.is_object()) throw Error("context " + context_path + " must be a JSON object");

    std::string source, source_name;
    if (!model_path.empty()) {
      bool tools = context.contains("tools") && !context["tools"].is_null();
      ModelTemplate mt = read_model_template(model_path, tools);
      source = std::move(mt.chat_template);
      source_name = model_path + " (tokenizer.chat_template)";
      if (mt.bos && !context.contains("bos_token")) context["bos_token"] = *mt.bos;
      if (mt.eos && !context.contains("eos_token")) context["eos_token"] = *mt.eos;
    } else {
      source = read_text_file(template_path, "template file");
      source_name = template_path;
    }

    jinja::RenderOptions options;
    if (!now.empty()) options.now_date = now;
    std::string out;
    try {
      jinja::Template tmpl(std::move(source));
      out = tmpl.render(context, options);
    } catch (const jinja::TemplateError& e) {
      throw Error(source_name + ": " + e.what());
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
    return 0;
  });
}

}  // namespace moe::cli
