//===- ChatTemplateTest.cpp - the Jinja engine behind chat templates ------===//
//
// Feature by feature against outputs Python's jinja2 gives (as transformers sets it
// up: trim_blocks, lstrip_blocks, its tojson), the errors with their positions, the
// limits that keep any template from hanging or crashing, and the real templates in
// test/fixtures/chat_templates. The e2e suite compares many more cases with jinja2
// itself (test/e2e/test_chat_template.py).
//
//===----------------------------------------------------------------------===//
#include "chat/ChatTemplate.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>
#include <thread>

using qlc::chat::ChatTemplate;
using qlc::chat::ChatTemplateInputs;
using json = nlohmann::ordered_json;

namespace {

struct Result {
  bool ok;
  std::string text; // the rendering, or the error
};

Result render(const std::string &tmpl, const json &vars = json::object(),
              const json &messages = json::array(), bool addGenerationPrompt = false,
              int64_t maxSteps = 1'000'000) {
  std::string err;
  auto t = ChatTemplate::parse(tmpl, &err);
  if (!t)
    return {false, err};
  ChatTemplateInputs in;
  in.messages = messages;
  in.extra = vars;
  in.addGenerationPrompt = addGenerationPrompt;
  in.now = 1721952000; // 2024-07-26 00:00:00 UTC
  in.maxSteps = maxSteps;
  auto out = t->render(in, &err);
  return out ? Result{true, *out} : Result{false, err};
}

std::string ok(const std::string &tmpl, const json &vars = json::object()) {
  Result r = render(tmpl, vars);
  EXPECT_TRUE(r.ok) << tmpl << "\n  error: " << r.text;
  return r.text;
}

std::string err(const std::string &tmpl, const json &vars = json::object()) {
  Result r = render(tmpl, vars);
  EXPECT_FALSE(r.ok) << tmpl << "\n  rendered: " << r.text;
  EXPECT_EQ(r.text.find('\n'), std::string::npos) << "error is not one line: " << r.text;
  return r.text;
}

std::string fixture(const std::string &name) {
  std::ifstream in(QLC_SOURCE_DIR "/test/fixtures/chat_templates/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const json kVars = json::parse(R"({"s": "Hello World", "n": 7, "xs": [3, 1, 2],
  "d": {"b": 1, "a": [1, 2]},
  "msgs": [{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"},
           {"role": "user", "content": "u2"}]})");

} // namespace

TEST(ChatTemplateTest, OutputsLiteralsAsPythonPrintsThem) {
  EXPECT_EQ(ok("{{ 'a' }}{{ 1 }}{{ 1.5 }}{{ -3 }}{{ true }}{{ none }}"), "a11.5-3TrueNone");
  EXPECT_EQ(ok("{{ [1, 'x', none] }}{{ {'k': (2, 3)} }}{{ (1,) }}"), "[1, 'x', None]{'k': (2, 3)}(1,)");
  EXPECT_EQ(ok("{{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1e-5 }} {{ 3 * 1.0 }} {{ 1e16 }}"),
            "0.30000000000000004 1e+20 1e-05 3.0 1e+16");
  EXPECT_EQ(ok(R"({{ 'it\'s' }}{{ "\"q\"" }}{{ '\u00e9\x41\n' }}{{ 'a' 'b' }})"), "it's\"q\"éA\nab");
  EXPECT_EQ(ok("{{ \"it's\" ~ [\"it's\"] }}"), "it's[\"it's\"]");
}

TEST(ChatTemplateTest, WhitespaceControlAsTransformersConfiguresIt) {
  // trim_blocks: the newline after a block tag goes; lstrip_blocks: indentation before it.
  EXPECT_EQ(ok("a\n  {% if true %}\n    b\n  {% endif %}\nc\n"), "a\n    b\nc");
  EXPECT_EQ(ok("a  {%- if true -%}  b  {%- endif -%}  c"), "abc");
  EXPECT_EQ(ok("x\n{%+ if true %}y{% endif %}"), "x\ny");
  EXPECT_EQ(ok("{% if true +%}\nkeep{% endif %}"), "\nkeep");
  EXPECT_EQ(ok("a\n  {# comment #}\nb"), "a\nb");
  EXPECT_EQ(ok("line\n  {{ 'v' }}\n"), "line\n  v"); // print tags are not stripped
  EXPECT_EQ(ok("{{- ' x ' -}}  \n y"), " x y");
  EXPECT_EQ(ok("a\r\nb\rc"), "a\nb\nc");
  EXPECT_EQ(ok("{% raw %}{{ x }}{% endraw %}"), "{{ x }}");
}

TEST(ChatTemplateTest, Operators) {
  EXPECT_EQ(ok("{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }}"),
            "3 -4 2 3.5 1024 0.5");
  EXPECT_EQ(ok("{{ 1 + 2 * 3 }} {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }} {{ true + 1 }}"), "7 64 4 2");
  EXPECT_EQ(ok("{{ 'a' ~ 1 ~ none ~ undefined }} {{ 'ab' * 2 }} {{ [1] + [2] }}"), "a1None abab [1, 2]");
  EXPECT_EQ(ok("{{ 1 < 2 < 3 }} {{ 1 == 1.0 }} {{ 'ell' in 'hello' }} {{ 3 not in [1] }}"),
            "True True True True");
  EXPECT_EQ(ok("{{ 0 or 'y' }} {{ 'x' and 'z' }} {{ not none }} {{ 'a' if false else 'b' }}"),
            "y z True b");
  EXPECT_EQ(ok("{{ 'x' if false }}|"), "|");
}

TEST(ChatTemplateTest, SubscriptsAndSlices) {
  EXPECT_EQ(ok("{{ xs[0] }}{{ xs[-1] }}{{ xs[1:] }}{{ xs[::-1] }}{{ xs[10] is defined }}", kVars),
            "32[1, 2][2, 1, 3]False");
  EXPECT_EQ(ok("{{ 'héllo'[1] }}{{ 'héllo'[1:3] }}{{ 'héllo' | length }}{{ s[::-1] }}", kVars),
            "éél5dlroW olleH");
  EXPECT_EQ(ok("{{ msgs[1:][0].content }}{{ msgs[-1]['role'] }}{{ d.a[1] }}{{ xs.0 }}", kVars),
            "a1user23");
  EXPECT_EQ(ok("{{ d.missing }}|{{ d.missing is defined }}", kVars), "|False");
}

TEST(ChatTemplateTest, ForLoops) {
  EXPECT_EQ(ok("{% for m in msgs %}{{ loop.index }}/{{ loop.length }}{{ m.role[0] }}"
               "{{ loop.first }}{{ loop.last }};{% endfor %}",
               kVars),
            "1/3uTrueFalse;2/3aFalseFalse;3/3uFalseTrue;");
  EXPECT_EQ(ok("{% for x in xs %}{{ loop.previtem }}{{ loop.revindex0 }}{{ loop.cycle('a', 'b') }}"
               "{% endfor %}",
               kVars),
            "2a31b10a");
  EXPECT_EQ(ok("{% for x in [] %}no{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(ok("{% for x in xs if x > 1 %}{{ x }}{{ loop.length }}{% endfor %}", kVars), "3222");
  EXPECT_EQ(ok("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", kVars), "b=1;a=[1, 2];");
  EXPECT_EQ(ok("{% for x in xs %}{% if x == 1 %}{% continue %}{% endif %}{% if x == 2 %}"
               "{% break %}{% endif %}{{ x }}{% endfor %}",
               kVars),
            "3");
}

TEST(ChatTemplateTest, ScopingFollowsJinja) {
  // A for body's assignments are local to one iteration; if's are not scoped.
  EXPECT_EQ(ok("{% set x = 0 %}{% for i in [1, 2, 3] %}{% set x = x + i %}{{ x }}{% endfor %}:{{ x }}"),
            "123:0");
  EXPECT_EQ(ok("{% if true %}{% set y = 'in' %}{% endif %}{{ y }}"), "in");
  EXPECT_EQ(ok("{% set ns = namespace(t=0) %}{% for i in [1, 2, 3] %}{% set ns.t = ns.t + i %}"
               "{% endfor %}{{ ns.t }}"),
            "6");
  EXPECT_EQ(ok("{% set a, b = 1, 2 %}{{ a + b }}{% set blk %} x {% endset %}[{{ blk }}]"), "3[ x ]");
  EXPECT_EQ(ok("{% with a = 5 %}{{ a }}{% endwith %}{{ a is defined }}"), "5False");
}

TEST(ChatTemplateTest, Macros) {
  EXPECT_EQ(ok("{% macro g(name, p='!') %}Hi {{ name }}{{ p }}{% endmacro %}"
               "{{ g('a') }} {{ g('b', '?') }} {{ g(p='.', name='c') }}"),
            "Hi a! Hi b? Hi c.");
  EXPECT_EQ(ok("{% macro r(k) %}{% if k > 0 %}{{ k }}{{ r(k - 1) }}{% endif %}{% endmacro %}{{ r(3) }}"),
            "321");
}

TEST(ChatTemplateTest, Filters) {
  EXPECT_EQ(ok("{{ '  p  ' | trim }}|{{ s | upper }}|{{ 'a-b c' | title }}|{{ x | default('d') }}", kVars),
            "p|HELLO WORLD|A-B C|d");
  EXPECT_EQ(ok("{{ xs | first }}{{ xs | last }}{{ xs | join(',') }}{{ xs | sort }}{{ xs | sum }}", kVars),
            "323,1,2[1, 2, 3]6");
  EXPECT_EQ(ok("{{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='content') | join }}",
               kVars),
            "u1u2");
  EXPECT_EQ(ok("{{ ['code_interpreter', 'x'] | reject('equalto', 'code_interpreter') | list }}"), "['x']");
  EXPECT_EQ(ok("{{ d | items | list }}{{ d | dictsort }}", kVars),
            "[('b', 1), ('a', [1, 2])][('a', [1, 2]), ('b', 1)]");
  EXPECT_EQ(ok("{{ '42' | int }}{{ '4.7' | int }}{{ 'x' | int(-1) }}{{ '2.5' | float }}{{ 2.567 | round(2) }}"),
            "424-12.52.57");
  EXPECT_EQ(ok("{{ 'a\nb' | indent(2) }}|{{ 'a-b' | replace('-', '+') }}|{{ [1, 1, 2] | unique | list }}"),
            "a\n  b|a+b|[1, 2]");
}

TEST(ChatTemplateTest, TojsonIsTransformersJsonDumps) {
  // Python's separators, key order kept, non-ASCII kept, no HTML escaping.
  json vars = json::parse(R"({"t": {"z": 1, "a": [true, null, 1.5, "é<>&'"]}})");
  EXPECT_EQ(ok("{{ t | tojson }}", vars), R"({"z": 1, "a": [true, null, 1.5, "é<>&'"]})");
  EXPECT_EQ(ok("{{ t | tojson(indent=2) }}", vars),
            "{\n  \"z\": 1,\n  \"a\": [\n    true,\n    null,\n    1.5,\n    \"é<>&'\"\n  ]\n}");
  EXPECT_EQ(ok("{{ t | tojson(sort_keys=true, separators=(',', ':')) }}", vars),
            R"({"a":[true,null,1.5,"é<>&'"],"z":1})");
  EXPECT_EQ(ok("{{ 'é\n\"' | tojson(ensure_ascii=true) }}{{ [] | tojson(indent=4) }}"),
            R"x("\u00e9\n\""[])x");
}

TEST(ChatTemplateTest, TestsAndMethods) {
  EXPECT_EQ(ok("{{ n is defined }}{{ x is undefined }}{{ s is string }}{{ d is mapping }}{{ 'a' is iterable }}"
               "{{ n is odd }}{{ n is divisibleby 7 }}{{ none is none }}{{ s is not number }}",
               kVars),
            "TrueTrueTrueTrueTrueTrueTrueTrueTrue");
  EXPECT_EQ(ok("{{ ' x '.strip() }}{{ '--x'.lstrip('-') }}{{ s.startswith('He') }}{{ s.endswith(('x', 'd')) }}",
               kVars),
            "xxTrueTrue");
  EXPECT_EQ(ok("{{ 'a,b'.split(',') }}{{ ' a  b '.split() }}{{ s.replace('l', 'L', 1) }}{{ 'ab cd'.title() }}",
               kVars),
            "['a', 'b']['a', 'b']HeLlo WorldAb Cd");
  EXPECT_EQ(ok("{{ d.get('b') }}{{ d.get('q', 'dflt') }}{{ d.keys() | list }}{{ '-'.join(['a', 'b']) }}", kVars),
            "1dflt['b', 'a']a-b");
  EXPECT_EQ(ok("{{ 'ßa'.upper() }}{{ 'ΟΔΟΣ'.lower() }}{{ '\u3000x\u00a0'.strip() }}"), "SSAοδοςx");
  EXPECT_EQ(ok("{{ '%s=%d' % ('a', 3) }}{{ '{}-{name}'.format(1, name='n') }}"), "a=31-n");
}

TEST(ChatTemplateTest, LazyValuesAndMarkupBehaveAsInJinja2) {
  // map/select return generators: always true, no len, no JSON; dict methods return views.
  EXPECT_EQ(ok("{% if [] | select %}t{% endif %}{{ none | map('upper') | list }}"), "t[]");
  EXPECT_EQ(ok("{{ d.items() }} {{ d.keys() | length }}", kVars), "dict_items([('b', 1), ('a', [1, 2])]) 2");
  EXPECT_NE(err("{{ xs | map('string') | length }}", kVars).find("has no len()"), std::string::npos);
  EXPECT_NE(err("{{ xs | select | tojson }}", kVars).find("not JSON serializable"), std::string::npos);
  // A safe string escapes what is added to it; ~ does not.
  EXPECT_EQ(ok("{{ 'a<' | safe + '<b>' }} {{ 'k' ~ ('<' | safe) }} {{ '<' | e | e }}"), "a<&lt;b&gt; k< &lt;");
}

TEST(ChatTemplateTest, Globals) {
  EXPECT_EQ(ok("{{ range(3) | list }}{{ range(1, 8, 3) | list }}{{ dict(a=1) }}"), "[0, 1, 2][1, 4, 7]{'a': 1}");
  EXPECT_EQ(ok("{{ strftime_now('%d %b %Y') }}"), "26 Jul 2024");
  EXPECT_EQ(ok("{{ messages | length }}{{ add_generation_prompt }}{{ tools }}{{ documents }}"),
            "0FalseNoneNone");
  EXPECT_EQ(err("{{ raise_exception('Only user and assistant roles are supported!') }}"),
            "line 1, column 4: Only user and assistant roles are supported!");
}

TEST(ChatTemplateTest, ErrorsNameTheirPosition) {
  EXPECT_EQ(err("ab\n{% if %}"), "line 2, column 7: unexpected (end of block tag)");
  EXPECT_EQ(err("{% for x in xs %}"), "line 1, column 18: unexpected end of template, expected 'endfor' (at end of template)");
  EXPECT_EQ(err("{% endif %}"), "line 1, column 4: encountered unknown tag 'endif'");
  EXPECT_EQ(err("x\n  {{ 'a' + 1 }}"), "line 2, column 10: can only concatenate str (not \"int\") to str");
  EXPECT_EQ(err("{{ u.attr }}"), "line 1, column 5: 'u' is undefined");
  EXPECT_EQ(err("{{ msgs[0].nope.x }}", kVars), "line 1, column 16: 'dict object' has no attribute 'nope'");
  EXPECT_EQ(err("{{ xs | nofilter }}", kVars), "line 1, column 9: no filter named 'nofilter'");
  EXPECT_EQ(err("{{ 'unterminated }}"), "line 1, column 4: unterminated string literal");
  EXPECT_EQ(err("{# open"), "line 1, column 1: missing end of comment tag");
  EXPECT_EQ(err("{{ [].append(1) }}"), "line 1, column 6: access to attribute 'append' of 'list' object is unsafe.");
  EXPECT_EQ(err("{% break %}"), "line 1, column 4: 'break' outside of a loop");
  EXPECT_EQ(err("{{ raise_exception('two\nlines') }}"), "line 1, column 4: two\\nlines");
  EXPECT_EQ(err("{% include 'x' %}"), "line 1, column 4: the 'include' tag is not supported in chat templates");
  EXPECT_NE(err("{{ 1 / 0 }}").find("division by zero"), std::string::npos);
  EXPECT_NE(err("{{ 9223372036854775807 + 1 }}").find("integer overflow"), std::string::npos);
}

TEST(ChatTemplateTest, LimitsStopRunawayTemplates) {
  EXPECT_NE(err("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}")
                .find("evaluation limit"),
            std::string::npos);
  EXPECT_NE(err("{{ range(200000) | length }}").find("MAX_RANGE"), std::string::npos);
  EXPECT_NE(err("{% set s = 'x' * 1000000 %}{% for i in range(100) %}{{ s }}{% endfor %}").find("exceeds"),
            std::string::npos);
  EXPECT_NE(err("{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
                "{% endfor %}")
                .find("exceeds"),
            std::string::npos);
  EXPECT_NE(err("{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}{% endfor %}")
                .find("list exceeds"),
            std::string::npos);
  EXPECT_NE(err("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}").find("depth"), std::string::npos);
  std::string deep = std::string(5000, '(') + "1" + std::string(5000, ')');
  EXPECT_NE(err("{{ " + deep + " }}").find("nested too deeply"), std::string::npos);
  std::string deepIf;
  for (int i = 0; i < 2000; ++i)
    deepIf += "{% if true %}";
  EXPECT_NE(err(deepIf).find("nested too deeply"), std::string::npos);
  std::string deepJson = std::string(1000, '[') + std::string(1000, ']');
  EXPECT_NE(err("{{ x }}", json::object({{"x", json::parse(deepJson)}})).find("nested deeper"), std::string::npos);
}

TEST(ChatTemplateTest, NeverCrashesOnMangledTemplates) {
  // Every prefix of a real template, and random soups of Jinja fragments: each
  // renders or fails with a message, nothing else.
  std::string tmpl = fixture("llama3.1.jinja");
  ASSERT_FALSE(tmpl.empty());
  json msgs = json::parse(R"([{"role": "user", "content": "hi"}])");
  for (size_t cut = 0; cut <= tmpl.size(); ++cut) {
    Result r = render(tmpl.substr(0, cut), json::object(), msgs);
    if (!r.ok) {
      ASSERT_FALSE(r.text.empty()) << cut;
    }
  }
  const char *frags[] = {"{{", "}}", "{%", "%}", "{#", "#}", "-", "+", "if", "for", "x", "in", "endif",
                         "endfor", "set", "=", "'", "\"", "(", ")", "[", "]", "{", "}", ":", ",", "|",
                         "trim", "is", "not", "defined", ".", "loop", "1", "2.5", " ", "\n", "macro",
                         "else", "~", "*", "/", "%", "raw", "endraw", "\\", "\xff", "é", "messages"};
  std::mt19937 rng(1234);
  std::uniform_int_distribution<size_t> pick(0, sizeof(frags) / sizeof(frags[0]) - 1);
  for (int i = 0; i < 3000; ++i) {
    std::string t;
    int len = 1 + static_cast<int>(rng() % 40);
    for (int k = 0; k < len; ++k)
      t += frags[pick(rng)];
    Result r = render(t, kVars, msgs);
    if (!r.ok) {
      ASSERT_FALSE(r.text.empty()) << t;
    }
  }
}

TEST(ChatTemplateTest, RendersFromManyThreads) {
  std::string e;
  auto t = ChatTemplate::parse(fixture("qwen2.5.jinja"), &e);
  ASSERT_TRUE(t) << e;
  std::vector<std::thread> threads;
  std::vector<std::string> outs(4);
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      ChatTemplateInputs in;
      in.messages = json::array({{{"role", "user"}, {"content", "hi " + std::to_string(i)}}});
      for (int k = 0; k < 200; ++k)
        outs[i] = t->render(in, nullptr).value_or("failed");
    });
  for (auto &th : threads)
    th.join();
  for (int i = 0; i < 4; ++i)
    EXPECT_NE(outs[i].find("hi " + std::to_string(i) + "<|im_end|>"), std::string::npos) << outs[i];
}

TEST(ChatTemplateTest, RealTemplates) {
  json msgs = json::parse(R"([{"role": "system", "content": "Be brief."},
                              {"role": "user", "content": " Hi! "},
                              {"role": "assistant", "content": "Hello."},
                              {"role": "user", "content": "Bye"}])");
  json llamaTokens = {{"bos_token", "<|begin_of_text|>"}, {"eos_token", "<|eot_id|>"}};
  auto run = [&](const std::string &file, const json &vars) {
    Result r = render(fixture(file), vars, msgs, /*addGenerationPrompt=*/true);
    EXPECT_TRUE(r.ok) << file << ": " << r.text;
    return r.text;
  };
  EXPECT_EQ(run("llama3.jinja", llamaTokens),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(run("llama3.1.jinja", llamaTokens),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  const std::string chatml = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n Hi! <|im_end|>\n"
                             "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
                             "<|im_start|>assistant\n";
  EXPECT_EQ(run("qwen2.jinja", json::object()), chatml);
  EXPECT_EQ(run("qwen2.5.jinja", json::object()), chatml);
  EXPECT_EQ(run("smollm2.jinja", json::object()), chatml);
  // Without a system message the templates add their own.
  msgs.erase(0);
  EXPECT_EQ(run("smollm2.jinja", json::object()).rfind("<|im_start|>system\nYou are a helpful AI assistant "
                                                       "named SmolLM, trained by Hugging Face<|im_end|>\n"
                                                       "<|im_start|>user\n Hi! <|im_end|>",
                                                       0),
            0u);
}

TEST(ChatTemplateTest, ApplyChatTemplateConvenience) {
  std::string e;
  auto out = qlc::chat::applyChatTemplate(fixture("qwen2.jinja"),
                                          json::parse(R"([{"role": "user", "content": "x"}])"), false,
                                          json::object(), &e);
  ASSERT_TRUE(out) << e;
  EXPECT_EQ(*out, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nx<|im_end|>\n");
  EXPECT_FALSE(qlc::chat::applyChatTemplate("{% if %}", json::array(), false, json::object(), &e));
  EXPECT_EQ(e, "line 1, column 7: unexpected (end of block tag)");
}
