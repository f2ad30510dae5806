// Unit tests of the Jinja2 interpreter: each expectation below is what Jinja2 3.1 renders when set up as
// transformers sets it up (checked with the oracle in tests/jinja/gen_expected.py).
#include <gtest/gtest.h>

#include <string>

#include "support/testdata.h"
#include "tokenizer/jinja/jinja.h"

#include "format/gguf.h"

namespace {

using moe::jinja::RaiseException;
using moe::jinja::RenderOptions;
using moe::jinja::Template;
using moe::jinja::TemplateError;
using moe::jinja::TemplateRuntimeError;
using moe::jinja::TemplateSyntaxError;
using json = nlohmann::ordered_json;

std::string render(const std::string& src, const json& ctx = json::object(), RenderOptions opt = {}) {
  return Template(src).render(ctx, opt);
}

const json kCtx = json::parse(R"({
  "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
               {"role": "assistant", "content": "Hello", "tool_calls": [{"function": {"name": "f", "arguments": {"b": 1, "a": [true, null]}}}]}],
  "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "u": "Grüße 日本語 🙂", "n": 42, "f": 1.5
})");

// ---- whitespace: trim_blocks, lstrip_blocks, -, +, keep_trailing_newline=False ----

TEST(Jinja, TrimAndLstripBlocks) {
  EXPECT_EQ(render("{% if true %}\n  yes\n{% endif %}\nend\n"), "  yes\nend");
  EXPECT_EQ(render("  {% if true %}a{% endif %}  \n  b"), "a  \n  b");  // lstrip only before the tag
  EXPECT_EQ(render("x {% if true %}y{% endif %}"), "x y");                // not at line start: kept
  EXPECT_EQ(render("  {{ 'v' }}\n"), "  v");                              // {{ }} is not lstripped or trimmed
  EXPECT_EQ(render("a\n  {# c #}\nb"), "a\nb");                          // comments are blocks too
}

TEST(Jinja, WhitespaceControlSigns) {
  EXPECT_EQ(render("a   {%- if true -%}   b   {%- endif -%}   c"), "abc");
  EXPECT_EQ(render("{%+ if true %}x{% endif +%}\ny"), "x\ny");
  EXPECT_EQ(render("  {%+ if true %}x{% endif %}"), "  x");
  EXPECT_EQ(render("{{- 'a' -}}\n\n  {{ 'b' }}"), "ab");
  EXPECT_EQ(render("1\n{#- c -#}\n2"), "12");
  EXPECT_EQ(render("   {% raw -%}  {{ x }}  {%- endraw %}"), "{{ x }}");
}

TEST(Jinja, TrailingNewlineAndLineEndings) {
  EXPECT_EQ(render("a\n"), "a");
  EXPECT_EQ(render("a\n\n"), "a\n");
  EXPECT_EQ(render("a\r\nb\rc\n\n"), "a\nb\nc\n");
  EXPECT_EQ(render("{{ 'x\r\ny' }}"), "x\ny");
}

// ---- values print as Python's str() ----

TEST(Jinja, PythonPrinting) {
  EXPECT_EQ(render("{{ none }}|{{ true }}|{{ 1.0 }}|{{ 1e16 }}|{{ 1e-5 }}|{{ 0.1 + 0.2 }}|{{ 7 / 2 }}|{{ 6 / 3 }}"),
            "None|True|1.0|1e+16|1e-05|0.30000000000000004|3.5|2.0");
  EXPECT_EQ(render("{{ [1.0, 'x', none, true] }}{{ {'a': (1,)} }}{{ ('a', 'b') }}"),
            "[1.0, 'x', None, True]{'a': (1,)}('a', 'b')");
  EXPECT_EQ(render(R"({{ ["it's", 'say "hi"', "both ' \"", "nl\n", "é🙂"] }})"),
            R"(["it's", 'say "hi"', 'both \' "', 'nl\n', 'é🙂'])");
  EXPECT_EQ(render("{{ messages[2].tool_calls[0].function.arguments }}", kCtx), "{'b': 1, 'a': [True, None]}");
}

TEST(Jinja, Arithmetic) {
  EXPECT_EQ(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 7.5 // 2 }}"),
            "3 -4 2 -2 1024 0.5 3.0");
  EXPECT_EQ(render("{{ 'ab' * 2 }} {{ [1] * 2 }} {{ [1] + [2] }} {{ true + 1 }} {{ -2 ** 2 }} {{ 1 + 1 is odd }}"),
            "abab [1, 1] [1, 2] 2 4 2");
  EXPECT_EQ(render("{{ 'a' ~ 1 ~ none ~ undefined_name }}"), "a1None");
  EXPECT_THROW(render("{{ 'a' + 1 }}"), TemplateRuntimeError);
  EXPECT_THROW(render("{{ 1 / 0 }}"), TemplateRuntimeError);
}

TEST(Jinja, ComparisonsAndMembership) {
  EXPECT_EQ(render("{{ 1 < 2 < 3 }} {{ 1 < 3 < 2 }} {{ 1 == 1.0 }} {{ (1, 2) == [1, 2] }} {{ 'a' in 'abc' }} "
                   "{{ 'a' in d }} {{ 5 not in l }}", kCtx),
            "True False True False True True True");
  EXPECT_THROW(render("{{ [1, 'a']|sort }}"), TemplateRuntimeError);
}

// ---- scoping ----

TEST(Jinja, LoopScopeDoesNotLeak) {
  EXPECT_EQ(render("{% set x = 5 %}{% for i in [1, 2] %}[{{ x }}]{% set x = i %}{% endfor %}{{ x }}"), "[5][5]5");
  EXPECT_EQ(render("{% for i in [1, 2] %}{% if i == 1 %}{% set a = 'set' %}{% endif %}[{{ a }}]{% endfor %}"),
            "[set][]");
  EXPECT_EQ(render("{% if true %}{% set y = 3 %}{% endif %}{{ y }}"), "3");
}

TEST(Jinja, NamespaceCarriesStateOutOfLoops) {
  EXPECT_EQ(render("{% set ns = namespace(n=0, seen=[]) %}{% for i in l %}{% set ns.n = ns.n + i %}"
                   "{% set ns.seen = ns.seen + [i] %}{% endfor %}{{ ns.n }} {{ ns.seen }} {{ ns }}", kCtx),
            "6 [3, 1, 2] <Namespace {'n': 6, 'seen': [3, 1, 2]}>");
  EXPECT_THROW(render("{% set x = 1 %}{% set x.a = 2 %}"), TemplateRuntimeError);
}

TEST(Jinja, Macros) {
  EXPECT_EQ(render("{% macro g(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}"
                   "{{ g('Ann') }}|{{ g('Bo', 'Hi') }}|{{ g(greeting='Yo', name='Cy') }}|{{ g() }}"),
            "Hello, Ann!|Hi, Bo!|Yo, Cy!|Hello, !");
  EXPECT_EQ(render("{% macro m(a, b=a ~ 'x') %}{{ a }}{{ b }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, k=4) }}"),
            "12(3,){'k': 4}");
  // Top-level names are looked up when the macro runs.
  EXPECT_EQ(render("{% macro s() %}{{ later }}{% endmacro %}{% set later = 1 %}{{ s() }}{% set later = 2 %}{{ s() }}"),
            "12");
  EXPECT_EQ(render("{% macro w(t) %}<{{ t }}>{{ caller() }}</{{ t }}>{% endmacro %}{% call w('b') %}in{% endcall %}"),
            "<b>in</b>");
  EXPECT_THROW(render("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}"), TemplateRuntimeError);
}

TEST(Jinja, LoopVariables) {
  EXPECT_EQ(render("{% for x in l %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.first }}"
                   "{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }}{{ loop.cycle('a', 'b') }}|"
                   "{% endfor %}", kCtx),
            "103TrueFalse31a|212FalseFalse332b|321FalseTrue31a|");
  EXPECT_EQ(render("{% for x in [1, 2, 3, 4, 5] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}"
                   "{% break %}{% endif %}{{ x }}{% endfor %}|{% for x in l if x > 1 %}{{ loop.index }}/{{ loop.length }} "
                   "{% endfor %}|{% for x in [] %}x{% else %}empty{% endfor %}", kCtx),
            "13|1/2 2/2 |empty");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }} {% endfor %}{% for c in 'hé' %}{{ c }}.{% endfor %}", kCtx),
            "b=2 a=1 h.é.");
}

TEST(Jinja, SetBlocksAndFilterBlocks) {
  EXPECT_EQ(render("{% set x %}n={{ 1 }}{% endset %}[{{ x }}]{% set y | upper | trim %} up {% endset %}[{{ y }}]"),
            "[n=1][UP]");
  EXPECT_EQ(render("{% filter upper %}abc{% endfilter %}"), "ABC");
  EXPECT_EQ(render("{% generation %}kept {{ 1 }}{% endgeneration %}"), "kept 1");
}

// ---- Undefined behaves as Jinja2's default Undefined ----

TEST(Jinja, Undefined) {
  EXPECT_EQ(render("[{{ nope }}]{{ nope is defined }}{{ nope|default('x') }}{{ nope|length }}{{ nope|list }}"
                   "{% for x in nope %}no{% endfor %}{{ nope == other }}{{ d.missing is defined }}", kCtx),
            "[]Falsex0[]TrueFalse");
  EXPECT_THROW(render("{{ nope.attr }}"), TemplateRuntimeError);
  EXPECT_THROW(render("{{ nope + 1 }}"), TemplateRuntimeError);
  EXPECT_THROW(render("{{ nope|tojson }}"), TemplateRuntimeError);
  EXPECT_EQ(render("{{ d.a.b is defined }}", kCtx), "False");
  EXPECT_THROW(render("{{ d.a.b.c }}", kCtx), TemplateRuntimeError);
}

TEST(Jinja, SandboxRefusesMutation) {
  try {
    render("{{ l.append(4) }}", kCtx);
    FAIL() << "expected a sandbox error";
  } catch (const TemplateRuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("unsafe"), std::string::npos) << e.what();
  }
  EXPECT_THROW(render("{{ d.pop('a') }}", kCtx), TemplateRuntimeError);
}

// ---- filters, tests and methods ----

TEST(Jinja, Tojson) {
  EXPECT_EQ(render("{{ u|tojson }}|{{ u|tojson(ensure_ascii=true) }}|{{ d|tojson }}|{{ [1.0, none]|tojson }}", kCtx),
            "\"Grüße 日本語 🙂\"|\"Gr\\u00fc\\u00dfe \\u65e5\\u672c\\u8a9e \\ud83d\\ude42\"|{\"b\": 2, \"a\": 1}|[1.0, null]");
  EXPECT_EQ(render("{{ d|tojson(indent=2) }}", kCtx), "{\n  \"b\": 2,\n  \"a\": 1\n}");
  EXPECT_EQ(render("{{ d|tojson(sort_keys=true, separators=(',', ':')) }}", kCtx), "{\"a\":1,\"b\":2}");
  EXPECT_EQ(render("{{ '<&>\"'|tojson }}"), "\"<&>\\\"\"");  // not HTML-escaped (transformers' override)
}

TEST(Jinja, StringFilters) {
  EXPECT_EQ(render("{{ '  a b  '|trim }}|{{ 'xxhixx'|trim('x') }}|{{ u|length }}|{{ u|upper }}|{{ 'hello wORLD'|title }}"
                   "|{{ 'aaa'|replace('a', 'b', 2) }}|{{ 'x'|center(5) }}|{{ 'one two'|wordcount }}", kCtx),
            "a b|hi|11|GRÜSSE 日本語 🙂|Hello World|bba|  x  |2");
  EXPECT_EQ(render("{{ 'a\nb\n'|indent(2) }}|{{ 'a\nb'|indent(2, true) }}"), "a\n  b\n|  a\n  b");
  EXPECT_EQ(render("{{ '42'|int + '2.5'|float }}|{{ 'x'|int(7) }}|{{ '%s-%d'|format('a', 3) }}|{{ 2.675|round(2) }}"),
            "44.5|7|a-3|2.67");
}

TEST(Jinja, SequenceFilters) {
  EXPECT_EQ(render("{{ l|sort }}|{{ l|sort(reverse=true)|first }}|{{ l|join(',') }}|{{ l|reverse|list }}|{{ l|min }}"
                   "|{{ l|max }}|{{ l|sum }}|{{ ['b', 'A', 'a']|unique|list }}|{{ l|batch(2)|list }}", kCtx),
            "[1, 2, 3]|3|3,1,2|[2, 1, 3]|1|3|6|['b', 'A']|[[3, 1], [2]]");
  EXPECT_EQ(render("{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|list }}"
                   "|{{ messages|rejectattr('tool_calls', 'defined')|list|length }}|{{ l|select('odd')|list }}"
                   "|{{ d|dictsort }}|{{ d|items|list }}", kCtx),
            "['Hi']|2|[3, 1]|[('a', 1), ('b', 2)]|[('b', 2), ('a', 1)]");
  // map/select return generators: no len(), consumed once.
  EXPECT_THROW(render("{{ l|map('string')|length }}", kCtx), TemplateRuntimeError);
  EXPECT_EQ(render("{% set g = l|map('string') %}{{ g|join }}|{{ g|join }}", kCtx), "312|");
}

TEST(Jinja, Tests) {
  EXPECT_EQ(render("{{ nope is undefined }}{{ none is none }}{{ 'a' is string }}{{ d is mapping }}{{ l is iterable }}"
                   "{{ 'a' is sequence }}{{ 1 is number }}{{ true is boolean }}{{ 3 is odd }}{{ 9 is divisibleby 3 }}"
                   "{{ 2 is in l }}{{ 1.0 is integer }}", kCtx),
            "TrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueFalse");
}

TEST(Jinja, StringMethods) {
  EXPECT_EQ(render("{{ ' a '.strip() }}|{{ 'a,b,c'.split(',', 1) }}|{{ '  a  b  '.split(none, 1) }}|{{ 'abc'.startswith(('x', 'a')) }}"
                   "|{{ 'hello'.find('l') }}|{{ u.find('本') }}|{{ '{:>5}|{:.2f}|{!r}'.format('a', 3.14159, 'q') }}"
                   "|{{ '%05.1f %s' % (2.25, none) }}|{{ 'ß'.upper() }}", kCtx),
            "a|['a', 'b,c']|['a', 'b  ']|True|2|7|    a|3.14|'q'|002.2 None|SS");
  EXPECT_EQ(render("{{ d.get('a') }}{{ d.get('z', 'dflt') }}{{ d.keys()|list }}{{ d.items() }}", kCtx),
            "1dflt['b', 'a']dict_items([('b', 2), ('a', 1)])");
}

TEST(Jinja, MarkupEscapesWhenConcatenated) {
  // markupsafe.Markup: `+` escapes the plain side; `~` joins plain strings.
  EXPECT_EQ(render("{{ ('<a>'|safe) + '<b>' }}|{{ ('<a>'|safe) ~ '<b>' }}|{{ '\"'|safe + 'it\\'s' }}"),
            "<a>&lt;b&gt;|<a><b>|\"it&#39;s");
}

TEST(Jinja, CompileTimeFoldingAndLaziness) {
  // Slices are plain Python subscripts at render time, but a print Jinja2 evaluates while compiling
  // goes through getitem, where a failed slice is Undefined.
  EXPECT_EQ(render("[{{ (100)[::-1] }}]"), "[]");
  EXPECT_THROW(render("{% set x = (3)[:2] %}"), TemplateRuntimeError);
  EXPECT_EQ(render("{% set x = ((3)[:2])|string %}[{{ x }}]"), "[]");
  EXPECT_THROW(render("{{ n[1:] }}", kCtx), TemplateRuntimeError);
  // Generator filters check their arguments only when consumed; a generator is always true.
  EXPECT_EQ(render("{% if l|selectattr() %}lazy{% endif %}", kCtx), "lazy");
  EXPECT_THROW(render("{{ l|selectattr()|list }}", kCtx), TemplateRuntimeError);
  // Set blocks are inlined: a break inside one leaves the loop and skips the assignment.
  EXPECT_EQ(render("{% for i in [1, 2, 3] %}{% set x %}a{% if i == 2 %}{% break %}{% endif %}b{% endset %}"
                   "[{{ x }}]{% endfor %}"),
            "[ab]");
}

TEST(Jinja, Slicing) {
  EXPECT_EQ(render("{{ l[1:] }}{{ l[::-1] }}{{ l[-1] }}{{ l[10] is defined }}{{ u[1:4] }}{{ u[-1] }}", kCtx),
            "[1, 2][2, 1, 3]2Falserüß🙂");
}

// ---- globals ----

TEST(Jinja, Globals) {
  RenderOptions opt;
  opt.now_date = "2025-03-14";
  EXPECT_EQ(render("{{ strftime_now('%d %b %Y %H:%M %A') }}", json::object(), opt), "14 Mar 2025 00:00 Friday");
  EXPECT_EQ(render("{{ range(3)|list }}{{ range(5, 0, -2)|list }}{{ dict(a=1) }}"), "[0, 1, 2][5, 3, 1]{'a': 1}");
  try {
    render("{{ raise_exception('Only user and assistant roles are supported!') }}");
    FAIL() << "expected RaiseException";
  } catch (const RaiseException& e) {
    EXPECT_STREQ(e.what(), "Only user and assistant roles are supported!");
  }
  EXPECT_THROW(render("{{ range(200000)|length }}"), TemplateRuntimeError);  // the sandbox's MAX_RANGE
}

TEST(Jinja, ContextKeysAreVariables) {
  json ctx = {{"custom_flag", true}, {"range", "shadowed"}};
  EXPECT_EQ(render("{{ custom_flag }} {{ range }}", ctx), "True shadowed");
}

// ---- errors name the line ----

TEST(Jinja, SyntaxErrorsNameTheLine) {
  try {
    Template("line1\nline2\n{{ 1 +* 2 }}");
    FAIL() << "expected a syntax error";
  } catch (const TemplateSyntaxError& e) {
    EXPECT_EQ(e.line(), 3);
    EXPECT_NE(std::string(e.what()).find("line 3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Template("{% if x %}unclosed"), TemplateSyntaxError);
  EXPECT_THROW(Template("{% do x.append(1) %}"), TemplateSyntaxError);   // the do extension is not enabled
  EXPECT_THROW(Template("{{ x|no_such_filter }}"), TemplateSyntaxError);  // unknown filters fail at parse time...
  EXPECT_EQ(render("{% if false %}{{ x|no_such_filter }}{% endif %}ok"), "ok");  // ...except inside if
  EXPECT_THROW(render("{% if true %}{{ x|no_such_filter }}{% endif %}"), TemplateRuntimeError);
}

TEST(Jinja, UnsupportedConstructsAreErrorsNotWrongOutput) {
  for (const char* src : {"{% include 'x.jinja' %}", "{% extends 'base' %}", "{% for x in y recursive %}{% endfor %}",
                          "{% block b %}{% endblock %}"}) {
    try {
      Template t(src);
      FAIL() << src;
    } catch (const TemplateSyntaxError& e) {
      EXPECT_NE(std::string(e.what()).find("unsupported"), std::string::npos) << e.what();
    }
  }
  // Python prints generators and methods with a memory address: refuse rather than invent one.
  EXPECT_THROW(render("{{ [1]|map('string') }}"), TemplateRuntimeError);
  EXPECT_THROW(render("{{ 'a'.upper }}"), TemplateRuntimeError);
}

TEST(Jinja, RuntimeErrorsNameTheLine) {
  try {
    render("a\nb\n{{ nope.x }}");
    FAIL();
  } catch (const TemplateRuntimeError& e) {
    EXPECT_EQ(e.line(), 3);
    EXPECT_NE(std::string(e.what()).find("'nope' is undefined"), std::string::npos) << e.what();
  }
}

TEST(Jinja, TemplateIsReusable) {
  Template t("{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}");
  EXPECT_EQ(t.render(kCtx), "system:Be brief.;user:Hi;assistant:Hello;");
  json other = {{"messages", json::array({json{{"role", "user"}, {"content", "x"}}})}};
  EXPECT_EQ(t.render(other), "user:x;");
  EXPECT_EQ(t.render(kCtx), "system:Be brief.;user:Hi;assistant:Hello;");
}

// ---- the `moe template` command ----

class TemplateCli : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = moe::test::scratch_dir("template_cli"); }
  std::string file(const std::string& name, const std::string& bytes) {
    std::string p = dir_ + "/" + name;
    moe::test::write_file(p, bytes);
    return p;
  }
  std::string dir_;
};

TEST_F(TemplateCli, PrintsExactlyTheRendering) {
  auto t = file("t.jinja", "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}\n");
  auto c = file("c.json", R"({"bos_token": "<s>", "messages": [{"role": "user", "content": "Grüße\n"}]})");
  auto r = moe::test::run_moe({"template", "--template", t, "--context", c});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "<s>Grüße\n");  // the template's own trailing newline is dropped; nothing is added
  EXPECT_EQ(r.err, "");
}

TEST_F(TemplateCli, NowFixesStrftime) {
  auto t = file("t.jinja", "{{ strftime_now('%Y-%m-%d %H:%M') }}");
  auto c = file("c.json", "{}");
  auto r = moe::test::run_moe({"template", "--template", t, "--context", c, "--now", "2024-02-29"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "2024-02-29 00:00");
  EXPECT_NE(moe::test::run_moe({"template", "--template", t, "--context", c, "--now", "29/02/2024"}).exit_code, 0);
}

TEST_F(TemplateCli, RaiseExceptionFailsWithTheMessage) {
  auto t = file("t.jinja", "{{ raise_exception('System role not supported') }}");
  auto c = file("c.json", "{}");
  auto r = moe::test::run_moe({"template", "--template", t, "--context", c});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("System role not supported"), std::string::npos) << r.err;
}

TEST_F(TemplateCli, BadInputIsOneLineAndNonZero) {
  auto good_t = file("good.jinja", "{{ x }}");
  auto good_c = file("good.json", "{\"x\": 1}");
  auto check = [](const moe::test::CliResult& r, const std::string& needle) {
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(r.out, "");
    ASSERT_FALSE(r.err.empty());
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not one line: " << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  };
  check(moe::test::run_moe({"template", "--template", good_t, "--context", file("bad.json", "{\"x\": ")}),
        "not valid JSON");
  check(moe::test::run_moe({"template", "--template", good_t, "--context", file("arr.json", "[1]")}), "JSON object");
  check(moe::test::run_moe({"template", "--template", file("syntax.jinja", "ok\n{% if %}\n"), "--context", good_c}),
        "line 2");
  check(moe::test::run_moe({"template", "--template", dir_ + "/missing.jinja", "--context", good_c}), "missing.jinja");
  check(moe::test::run_moe({"template", "--template", good_t, "--context", dir_ + "/missing.json"}), "missing.json");
  check(moe::test::run_moe({"template", "--context", good_c}), "--template");
  check(moe::test::run_moe({"template", "--template", good_t}), "--context");
  check(moe::test::run_moe({"template", "--template", good_t, "-m", "x.gguf", "--context", good_c}), "excludes");
}

TEST_F(TemplateCli, ModelSuppliesTemplateAndSpecialTokens) {
  moe::GgufWriter w;
  w.set("general.architecture", moe::GgufValue::make_string("llama"));
  w.set("tokenizer.chat_template",
        moe::GgufValue::make_string("{{ bos_token }}{% for m in messages %}[{{ m.content }}]{% endfor %}{{ eos_token }}\n"));
  w.set("tokenizer.ggml.tokens", moe::GgufValue::make_string_array({"<unk>", "<|begin|>", "<|end|>", "a"}));
  w.set("tokenizer.ggml.bos_token_id", moe::GgufValue::make_u32(1));
  w.set("tokenizer.ggml.eos_token_id", moe::GgufValue::make_u32(2));
  std::string model = dir_ + "/tiny.gguf";
  w.write(model);
  auto c = file("c.json", R"({"messages": [{"role": "user", "content": "hi"}]})");
  auto r = moe::test::run_moe({"template", "-m", model, "--context", c});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "<|begin|>[hi]<|end|>");
  // The context wins over the file's special tokens.
  auto c2 = file("c2.json", R"({"bos_token": "B", "messages": []})");
  r = moe::test::run_moe({"template", "-m", model, "--context", c2});
  EXPECT_EQ(r.out, "B<|end|>");
  // With tools, a tool_use template wins (transformers' rule for files with several templates).
  w.set("tokenizer.chat_template.tool_use", moe::GgufValue::make_string("tools:{{ tools|length }}"));
  w.write(model);
  auto c3 = file("c3.json", R"({"tools": [{"type": "function"}], "messages": []})");
  EXPECT_EQ(moe::test::run_moe({"template", "-m", model, "--context", c3}).out, "tools:1");
  EXPECT_EQ(moe::test::run_moe({"template", "-m", model, "--context", c2}).out, "B<|end|>");
  moe::GgufWriter bare;
  bare.set("general.architecture", moe::GgufValue::make_string("llama"));
  bare.write(dir_ + "/bare.gguf");
  r = moe::test::run_moe({"template", "-m", dir_ + "/bare.gguf", "--context", c});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("chat_template"), std::string::npos) << r.err;
}

}  // namespace
