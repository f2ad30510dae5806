#include "cli/command.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "core/error.h"

namespace moe::cli {

namespace {

CLI::Validator number_check(bool allow_zero) {
  return CLI::Validator(
      [allow_zero](std::string& value) -> std::string {
        double v = 0;
        char* end = nullptr;
        errno = 0;
        v = std::strtod(value.c_str(), &end);
        if (end == value.c_str() || *end != 0 || std::isnan(v)) return "'" + value + "' is not a number";
        if (allow_zero ? v < 0 : v <= 0) return value + (allow_zero ? " is negative" : " is not positive");
        return "";
      },
      allow_zero ? "NUMBER >= 0" : "NUMBER > 0");
}

}  // namespace

const CLI::Validator NonNegative = number_check(true);
const CLI::Validator Positive = number_check(false);

int run_command(CLI::App& app, int argc, char** argv, const std::function<int()>& body) {
  // Defaults shown in --help: every option bound to a variable shows the value it starts with.
  for (CLI::Option* opt : app.get_options())
    if (opt->get_expected_max() > 0 && !opt->get_required()) opt->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::fputs(app.help("", CLI::AppFormatMode::All).c_str(), stdout);
    return 0;
  } catch (const CLI::CallForVersion&) {
    std::printf("moe %s\n", MOE_VERSION);
    return 0;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "moe %s: %s (see --help)\n", app.get_name().c_str(), e.what());
    return 2;
  }
  try {
    return body();
  } catch (const UsageError& e) {
    std::fprintf(stderr, "moe %s: %s\n", app.get_name().c_str(), e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moe %s: error: %s\n", app.get_name().c_str(), e.what());
    return 1;
  }
}

}  // namespace moe::cli
