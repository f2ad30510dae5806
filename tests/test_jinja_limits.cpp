// Where the Jinja interpreter stops on purpose (each found by fuzz/fuzz_jinja.cpp as a crash or hang before):
// values Python would hold as big ints or build with gigabytes of memory are clear TemplateErrors, never a
// wrapped-around number, a C++ exception of another kind, or a run that does not end. What Jinja2 itself
// renders for the neighbouring cases is checked against Jinja2 in tests/jinja/snippets.txt.
#include <gtest/gtest.h>

#include <string>

#include "tokenizer/jinja/jinja.h"

namespace {

using moe::jinja::Template;
using moe::jinja::TemplateError;
using moe::jinja::TemplateRuntimeError;
using moe::jinja::TemplateSyntaxError;

std::string render(const std::string& src) { return Template(src).render(nlohmann::ordered_json::object()); }

std::string error_of(const std::string& src) {
  try {
    render(src);
  } catch (const TemplateError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(JinjaLimits, FloatLiteralsOutOfRangeAreInfOrZero) {
  EXPECT_EQ(render("{{ 1e999 }}|{{ -1e999 }}|{{ 1e-999 }}|{{ 1e308 * 10 }}"), "inf|-inf|0.0|inf");
}

TEST(JinjaLimits, IntegerLiteralsBeyondInt64AreRejectedNotWrapped) {
  EXPECT_EQ(render("{{ 9223372036854775807 }}|{{ 0x7fffffffffffffff }}"), "9223372036854775807|9223372036854775807");
  // Before: stoull accepted these and the cast to int64 wrapped them to negative numbers.
  EXPECT_THROW(render("{{ 9223372036854775808 }}"), TemplateSyntaxError);
  EXPECT_THROW(render("{{ 18446744073709551615 }}"), TemplateSyntaxError);
  EXPECT_THROW(render("{{ 0xffffffffffffffff }}"), TemplateSyntaxError);
  EXPECT_THROW(render("{{ 99999999999999999999999 }}"), TemplateSyntaxError);
}

TEST(JinjaLimits, PowerTakesLogarithmicSteps) {
  // 1 ** 10**12 looped 10**12 times before.
  EXPECT_EQ(render("{{ 1 ** 1000000000000 }}|{{ (-1) ** 999999999999 }}|{{ 0 ** 999999999999 }}|{{ 2 ** 62 }}"),
            "1|-1|0|4611686018427387904");
  EXPECT_EQ(render("{{ (-2) ** 63 }}|{{ 3 ** 39 }}|{{ 10 ** 18 }}"), "-9223372036854775808|4052555153018976267|1000000000000000000");
  EXPECT_NE(error_of("{{ 2 ** 63 }}").find("does not fit in 64 bits"), std::string::npos);
  EXPECT_NE(error_of("{{ 3 ** 100000000000 }}").find("does not fit in 64 bits"), std::string::npos);
}

TEST(JinjaLimits, HugeRepetitionIsAMemoryError) {
  EXPECT_EQ(render("{{ ('ab' * 3) }}|{{ [0] * 2 }}|{{ 'ab' * -1 }}"), "ababab|[0, 0]|");
  EXPECT_NE(error_of("{{ 'ab' * 100000000000 }}").find("MemoryError"), std::string::npos);
  EXPECT_NE(error_of("{{ [1, 2] * 100000000000 }}").find("MemoryError"), std::string::npos);
  EXPECT_THROW(render("{{ ('x' * 1000000) * 1000 }}"), TemplateRuntimeError);  // 1 GB
}

TEST(JinjaLimits, DigitKeysBeyondInt64AreRejected) {
  EXPECT_EQ(render("{{ '{0[1]}'.format([5, 6]) }}|{{ [[5, 6]]|map(attribute='1')|list }}"), "6|[6]");
  EXPECT_THROW(render("{{ '{0[99999999999999999999]}'.format([1]) }}"), TemplateRuntimeError);
  EXPECT_THROW(render("{{ '{99999999999999999999999}'.format(1) }}"), TemplateRuntimeError);  // threw out_of_range
  EXPECT_THROW(render("{{ [{'a': 1}]|map(attribute='99999999999999999999')|list }}"), TemplateRuntimeError);
}

TEST(JinjaLimits, HugeWidthsAndPrecisionsAreAMemoryError) {
  for (const char* src : {"{{ 'x'.center(1000000000000) }}", "{{ 'x'.ljust(99999999999) }}", "{{ 'x'.zfill(99999999999) }}",
                          "{{ 'x'|center(99999999999) }}", "{{ 'x'|indent(1000000000000, true) }}",
                          "{{ {'a': 1}|tojson(indent=99999999999) }}", "{{ '%999999999999d' % 1 }}",
                          "{{ '%*d' % (99999999999, 1) }}", "{{ '%.99999999999f' % 1.5 }}",
                          "{{ '{:>99999999999}'.format(1) }}", "{{ '{:099999999999}'.format(1) }}",
                          "{{ '{:.99999999999f}'.format(1.5) }}",
                          "{{ '%99999999999999999999999999d' % 1 }}"})  // past int64 too: no overflow
    EXPECT_NE(error_of(src).find("MemoryError"), std::string::npos) << src;
}

TEST(JinjaLimits, LongFloatFormatsAreNotCut) {
  // printf went through a 512-byte buffer, which cut '%.600f' at 511 characters.
  EXPECT_EQ(render("{{ '%.600f' % 1.5 }}"), "1.5" + std::string(599, '0'));
  EXPECT_EQ(render("{{ '{:.600f}'.format(0.25) }}"), "0.25" + std::string(598, '0'));
}

TEST(JinjaLimits, AbsOfTheSmallestIntegerIsAnError) {
  EXPECT_EQ(render("{{ (-9223372036854775807)|abs }}"), "9223372036854775807");
  EXPECT_THROW(render("{{ (-9223372036854775807 - 1)|abs }}"), TemplateRuntimeError);  // was itself, negative
}

TEST(JinjaLimits, IntegerEdgesDoNotTrapOrOverflow) {
  // INT64_MIN // -1 and % -1 raised SIGFPE; range() over the whole int64 span overflowed its length check.
  EXPECT_THROW(render("{{ (-9223372036854775807 - 1) // -1 }}"), TemplateRuntimeError);
  EXPECT_EQ(render("{{ (-9223372036854775807 - 1) % -1 }}|{{ 7 % -1 }}|{{ -7 // -1 }}"), "0|0|7");
  EXPECT_THROW(render("{{ range(9223372036854775807, -9223372036854775807 - 1, -1)|length }}"), TemplateRuntimeError);
  EXPECT_EQ(render("{{ range(-9223372036854775807 - 1, 9223372036854775807, 9223372036854775807)|list }}"),
            "[-9223372036854775808, -1, 9223372036854775806]");
  EXPECT_EQ(render("{{ [1, 2, 3][2::9223372036854775807] }}|{{ 'abc'[1::9223372036854775807] }}"), "[3]|b");
}

namespace {

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

std::string nesting_error(const std::string& src) {
  try {
    Template t(src);
    t.render(nlohmann::ordered_json::object());
  } catch (const TemplateSyntaxError& e) {
    return e.what();
  }
  return "(no syntax error)";
}

}  // namespace

// Each of these recursed once per level in the parser, the interpreter or the tree's destructor and died of a
// stack overflow (SIGSEGV) at about 10,000 levels; now they stop at a fixed depth with a syntax error.
TEST(JinjaLimits, DeepNestingIsASyntaxErrorNotAStackOverflow) {
  const int n = 10000;
  for (const std::string& src : {
           "{{ " + repeat("(", n) + "1" + repeat(")", n) + " }}",
           "{{ " + repeat("[", n) + repeat("]", n) + " }}",
           "{{ " + repeat("{'a': ", n) + "1" + repeat("}", n) + " }}",
           "{{ " + repeat("not ", n) + "1 }}",
           "{{ " + repeat("-", n) + "1 }}",
           "{{ 1" + repeat(" + 1", 10 * n) + " }}",
           "{{ 1" + repeat(" and 1", 10 * n) + " }}",
           "{{ x" + repeat(".a", 10 * n) + " }}",
           "{{ x" + repeat("[0]", 10 * n) + " }}",
           "{{ x" + repeat("|first", 10 * n) + " }}",
           "{{ f" + repeat("()", 10 * n) + " }}",
           "{{ 1 if 1 else" + repeat(" 1 if 1 else", n) + " 2 }}",
           repeat("{% if 1 %}", n) + "x" + repeat("{% endif %}", n),
           repeat("{% for i in [1] %}", n) + "x" + repeat("{% endfor %}", n),
       }) {
    EXPECT_NE(nesting_error(src).find("nests deeper than"), std::string::npos) << src.substr(0, 40);
  }
}

TEST(JinjaLimits, OrdinaryNestingStillRenders) {
  const int n = 100;
  EXPECT_EQ(render("{{ " + repeat("(", 250) + "7" + repeat(")", 250) + " }}"), "7");  // one level per bracket
  EXPECT_EQ(render("{{ " + repeat("not ", 250) + "1 }}"), "True");
  EXPECT_EQ(render("{{ 0" + repeat(" + 1", n) + " }}"), "100");
  EXPECT_EQ(render(repeat("{% if 1 %}", n) + "x" + repeat("{% endif %}", n)), "x");
  EXPECT_EQ(render("{{ " + repeat("[", n) + repeat("]", n) + "|length }}"), "1");
}

TEST(JinjaLimits, DeepJsonContextIsAnErrorNotAStackOverflow) {
  const int n = 10000;
  auto deep = nlohmann::ordered_json::parse("{\"x\": " + repeat("[", n) + repeat("]", n) + "}");
  try {
    Template("{{ x|length }}").render(deep);
    ADD_FAILURE() << "no error";
  } catch (const TemplateError& e) {
    EXPECT_NE(std::string(e.what()).find("JSON context nests deeper than"), std::string::npos) << e.what();
  }
  auto ok = nlohmann::ordered_json::parse("{\"x\": " + repeat("[", 100) + repeat("]", 100) + "}");
  EXPECT_EQ(Template("{{ x|length }}").render(ok), "1");
}
