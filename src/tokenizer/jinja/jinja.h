// A Jinja2 interpreter for chat templates that renders byte for byte what Jinja2 renders when configured
// as Hugging Face transformers does (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks,
// loopcontrols, a json.dumps-based `tojson`, raise_exception and strftime_now globals, and the
// {% generation %} tag). Constructs we do not implement are errors naming the template line, never a
// different rendering.
#pragma once
#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>

#include "core/error.h"

namespace moe::jinja {

struct RenderOptions {
  // "YYYY-MM-DD": strftime_now() formats that date at midnight, so renderings can be reproduced;
  // unset: the current local date and time.
  std::optional<std::string> now_date;
};

// A problem in the template itself: a syntax error, an unsupported construct, or an error while
// rendering (undefined attribute, type error, sandbox violation). The message names the line.
class TemplateError : public moe::Error {
 public:
  TemplateError(int line, const std::string& message);
  int line() const { return line_; }

 private:
  int line_;
};

class TemplateSyntaxError : public TemplateError {
 public:
  using TemplateError::TemplateError;
};

class TemplateRuntimeError : public TemplateError {
 public:
  using TemplateError::TemplateError;
};

// The template called raise_exception(message); what() is the message exactly.
class RaiseException : public moe::Error {
 public:
  using moe::Error::Error;
};

struct Program;

class Template {
 public:
  // Parses once; throws TemplateSyntaxError. The parsed template is immutable and can render many times.
  explicit Template(std::string source);
  ~Template();
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;

  // Every key of `context` (a JSON object) is a template variable. The ordered_json keeps the key order of
  // objects, which `tojson` and `items()` reproduce as Python's json.load does.
  std::string render(const nlohmann::ordered_json& context, const RenderOptions& options = {}) const;

 private:
  std::unique_ptr<const Program> program_;
};

}  // namespace moe::jinja
