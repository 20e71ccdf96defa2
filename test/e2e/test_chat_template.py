"""Chat templates: qlc's Jinja engine against Python's jinja2, byte for byte.

The reference is set up as transformers' apply_chat_template sets it up:
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the
loopcontrols extension and a `generation` block tag, transformers' `tojson` filter
(json.dumps, ensure_ascii=False), `raise_exception` and `strftime_now` (a fixed date
here), and the variables messages, tools=None, documents=None, add_generation_prompt
plus the special tokens. Each real template (test/fixtures/chat_templates, see its
README for provenance) is rendered for many conversations; then many small templates
exercise the engine feature by feature, including the errors both must raise.
"""
import datetime
import json
import subprocess

import pytest

from conftest import FIXTURES, tool

jinja2 = pytest.importorskip("jinja2")
from jinja2 import nodes  # noqa: E402
from jinja2.exceptions import TemplateError  # noqa: E402
from jinja2.ext import Extension, loopcontrols  # noqa: E402
from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: E402

TEMPLATES = FIXTURES / "chat_templates"
DATE = datetime.datetime(2024, 7, 26)
DATE_ARG = "2024-07-26"

LLAMA3_TOKENS = {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"}
LLAMA31_TOKENS = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}
CHATML_TOKENS = {"bos_token": "", "eos_token": "<|im_end|>"}
MODELS = {
    "llama3": LLAMA3_TOKENS,
    "llama3.1": LLAMA31_TOKENS,
    "llama3.2": LLAMA31_TOKENS,
    "qwen2": CHATML_TOKENS,
    "qwen2.5": CHATML_TOKENS,
    "smollm2": {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"},
}


# ----------------------------------------------------------------------------- reference

class GenerationTag(Extension):
    """transformers' AssistantTracker, less the mask bookkeeping: the body as a call block."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def _raise_exception(message):
    raise TemplateError(message)


def _tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def reference_env():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTag, loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: DATE.strftime(fmt)
    return env


ENV = reference_env()


def render_reference(template, messages, add_generation_prompt=False, extra=None):
    """The rendering, or None when jinja2 raises."""
    ctx = {"messages": messages, "tools": None, "documents": None,
           "add_generation_prompt": add_generation_prompt}
    ctx.update(extra or {})
    try:
        return ENV.from_string(template).render(**ctx)
    except Exception:  # noqa: BLE001 - any jinja2 failure counts as "must fail"
        return None


def render_ours(tmp_path, template, messages, add_generation_prompt=False, extra=None):
    """Runs qlc-chat-template; returns (returncode, stdout bytes, stderr text)."""
    t = tmp_path / "template.jinja"
    t.write_bytes(template.encode("utf-8"))
    m = tmp_path / "messages.json"
    m.write_text(json.dumps(messages, ensure_ascii=False), encoding="utf-8")
    args = [tool("qlc-chat-template"), "--template", t, "--messages", m, "--date", DATE_ARG]
    if add_generation_prompt:
        args.append("--add-generation-prompt")
    if extra:
        e = tmp_path / "extra.json"
        e.write_text(json.dumps(extra, ensure_ascii=False), encoding="utf-8")
        args += ["--extra", e]
    p = subprocess.run([str(a) for a in args], capture_output=True, timeout=60)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def assert_same(tmp_path, template, messages, add_generation_prompt=False, extra=None):
    want = render_reference(template, messages, add_generation_prompt, extra)
    rc, out, err = render_ours(tmp_path, template, messages, add_generation_prompt, extra)
    if want is None:
        assert rc == 2, f"jinja2 fails but qlc rendered {out!r} (rc {rc})"
        lines = err.strip("\n").split("\n")
        assert len(lines) == 1 and lines[0].startswith("qlc-chat-template: error: "), err
        return err
    assert rc == 0, f"qlc failed (rc {rc}): {err}\nexpected: {want!r}"
    got = out.decode("utf-8", "surrogateescape")
    assert got == want, f"\nqlc:    {got!r}\njinja2: {want!r}"
    return got


# ----------------------------------------------------------------------------- conversations

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
CONVERSATIONS = {
    "system_user": [SYSTEM, {"role": "user", "content": "Hello!"}],
    "user_only": [{"role": "user", "content": "What is 2+2?"}],
    "multi_turn": [
        SYSTEM,
        {"role": "user", "content": "Name a prime."},
        {"role": "assistant", "content": "7"},
        {"role": "user", "content": "Another?"},
        {"role": "assistant", "content": "11"},
        {"role": "user", "content": "And one more."},
    ],
    "no_system_multi_turn": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello, how can I help?"},
        {"role": "user", "content": "Tell me a joke."},
    ],
    "empty_system": [{"role": "system", "content": ""}, {"role": "user", "content": "Hi"}],
    "empty_user": [SYSTEM, {"role": "user", "content": ""}],
    "unicode": [
        {"role": "system", "content": "Réponds en français, s'il te plaît. 日本語も OK 🦙"},
        {"role": "user", "content": "Ça va ? Привет! مرحبا \u00a0nbsp\u3000 ZWJ 👩\u200d💻 e\u0301"},
        {"role": "assistant", "content": "\u3000 Très bien 😀 \u2028"},
        {"role": "user", "content": "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ß İ ǅ"},
    ],
    "jinja_like": [
        SYSTEM,
        {"role": "user", "content": "{{ messages }} {% if true %}x{% endif %} {# c #} {%- raw -%}"},
        {"role": "assistant", "content": "Literal: '{{' and '}}' and \"%}\""},
        {"role": "user", "content": "<|im_end|><|eot_id|><|start_header_id|>system"},
    ],
    "whitespace": [
        {"role": "system", "content": "\n\n  padded system \t\n"},
        {"role": "user", "content": "  line one\n\n\tline two  \r\n"},
        {"role": "assistant", "content": "\n"},
        {"role": "user", "content": " "},
    ],
    "escapes": [
        {"role": "user", "content": "back\\slash \"quotes\" 'single' \x01 \x7f tab\there"},
    ],
    "long": [SYSTEM] + [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} " * (i % 5 + 1)}
        for i in range(41)
    ],
}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather — in °C.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City, e.g. Zürich"},
                "days": {"type": "integer", "minimum": 1, "maximum": 7.5},
                "units": {"type": "string", "enum": ["c", "f"]},
                "flags": {"type": "array", "items": {"type": "boolean"}},
            },
            "required": ["city"],
        },
    },
}
TOOL_CALL_CONVERSATION = [
    SYSTEM,
    {"role": "user", "content": "Weather in Zürich?"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {
            "name": "get_weather", "arguments": {"city": "Zürich", "days": 2, "ok": None}}}]},
    {"role": "tool", "content": "{\"temp\": 21.5, \"sky\": \"clear\"}"},
    {"role": "tool", "content": "second result"},
    {"role": "assistant", "content": "It is 21.5 °C and clear."},
    {"role": "user", "content": "Thanks"},
]


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("conversation", sorted(CONVERSATIONS))
@pytest.mark.parametrize("add_generation_prompt", [False, True])
def test_real_template(tmp_path, model, conversation, add_generation_prompt):
    template = (TEMPLATES / f"{model}.jinja").read_text(encoding="utf-8")
    assert_same(tmp_path, template, CONVERSATIONS[conversation], add_generation_prompt,
                MODELS[model])


@pytest.mark.parametrize("model", ["llama3.1", "llama3.2", "qwen2.5"])
@pytest.mark.parametrize("variant", ["tools", "tool_calls", "tools_in_system", "builtin",
                                     "ipython_mapping", "no_user_message"])
def test_tool_use(tmp_path, model, variant):
    template = (TEMPLATES / f"{model}.jinja").read_text(encoding="utf-8")
    extra = dict(MODELS[model])
    messages = [SYSTEM, {"role": "user", "content": "Weather in Zürich?"}]
    if variant in ("tools", "tool_calls", "tools_in_system", "no_user_message"):
        extra["tools"] = [WEATHER_TOOL]
    if variant == "tool_calls":
        messages = TOOL_CALL_CONVERSATION
    if variant == "tools_in_system":
        extra["tools_in_user_message"] = False
    if variant == "builtin":
        extra["builtin_tools"] = ["code_interpreter", "brave_search", "wolfram_alpha"]
        messages = messages + [{"role": "assistant", "tool_calls": [{"function": {
            "name": "brave_search", "arguments": {"query": "weather Zürich"}}}]}]
    if variant == "ipython_mapping":
        messages = messages + [{"role": "ipython", "content": {"temp": 21, "note": "ünï"}},
                               {"role": "tool", "content": ["a", 1]}]
    if variant == "no_user_message":
        messages = [SYSTEM]  # llama 3.x raise_exception: no first user message for the tools
    assert_same(tmp_path, template, messages, True, extra)


def test_llama32_uses_strftime_now(tmp_path):
    template = (TEMPLATES / "llama3.2.jinja").read_text(encoding="utf-8")
    got = assert_same(tmp_path, template, CONVERSATIONS["system_user"], True, LLAMA31_TOKENS)
    assert "Today Date: 26 Jul 2024" in got


def test_raise_exception_message(tmp_path):
    template = (TEMPLATES / "llama3.1.jinja").read_text(encoding="utf-8")
    err = assert_same(tmp_path, template, [SYSTEM], True, {**LLAMA31_TOKENS, "tools": [WEATHER_TOOL]})
    assert "Cannot put tools in the first user message when there's no first user message!" in err


# ----------------------------------------------------------------------------- features

NS = {"s": "Hello World", "n": 7, "f": 2.5, "xs": [3, 1, 2], "d": {"b": 1, "a": [1, 2]},
      "msgs": [{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"},
               {"role": "user", "content": "u2"}], "none": None, "t": True, "e": ""}

FEATURES = [
    # output, literals, whitespace control
    "{{ 'a' }}{{ \"b\" }}{{ 1 }}{{ 1.5 }}{{ -3 }}{{ true }}{{ none }}{{ [1, 'x', none] }}",
    "{{ {'k': 'v', 'n': [1, (2, 3)]} }}{{ (1,) }}{{ () }}{{ 1, 2 }}",
    "{{ 'it\\'s' }} {{ \"say \\\"hi\\\"\" }} {{ 'tab\\tnl\\nuni\\u00e9\\x41\\U0001F999' }}",
    "{{ 'adjacent' ' strings' }}",
    "a\n  {% if true %}\n    b\n  {% endif %}\nc\n",
    "a  {%- if true -%}  b  {%- endif -%}  c",
    "x\n{%+ if true %}y{% endif %}\n{# comment #}\nz\n  {#- c2 -#}  w",
    "{% if true +%}\nkeep{% endif %}",
    "line\n    {{ 'var' }}\n  {% for i in xs %}\n  - {{ i }}\n  {% endfor %}\nend\n",
    "{% raw %}{{ not rendered }}{% endraw %}|{%- raw -%}  x  {%- endraw -%}|",
    "trailing newline kept once\n\n",
    "{{ s }}\r\nwindows\rmac",
    # operators
    "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }}",
    "{{ 1 + 2 * 3 - 4 }} {{ (1 + 2) * 3 }} {{ 10 - 2 - 3 }} {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }}",
    "{{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1e-5 }} {{ 1.0 }} {{ 3 * 1.0 }} {{ 1e16 }} {{ 123456789.125 }}",
    "{{ 'a' ~ 1 ~ none ~ undefined_var ~ [1] }} {{ 'ab' * 3 }} {{ [1] * 2 }} {{ [1] + [2] }}",
    "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ [1, 2] == [1, 2] }}",
    "{{ 'ell' in s }} {{ 3 in xs }} {{ 'a' in d }} {{ 'z' not in d }} {{ 'x' in undefined_var }}",
    "{{ true and 'x' }} {{ 0 or 'y' }} {{ not none }} {{ none or false }} {{ '' and 1 }}",
    "{{ 'yes' if n > 5 else 'no' }} {{ 'x' if false }}| {{ 1 if 0 else 2 if 0 else 3 }}",
    "{{ true + 1 }} {{ n + f }} {{ 'b' > 'a' }} {{ [1, 2] < [1, 3] }} {{ not not 'x' }}",
    # subscripts and slices
    "{{ xs[0] }} {{ xs[-1] }} {{ xs[1:] }} {{ xs[:-1] }} {{ xs[::-1] }} {{ xs[::2] }} {{ xs[5:] }}",
    "{{ s[0] }} {{ s[-5:] }} {{ s[::-1] }} {{ s[100:] }}| {{ 'héllo'[1] }} {{ 'héllo'[1:3] }}",
    "{{ msgs[1:][0].content }} {{ msgs[-1]['role'] }} {{ d.a[1] }} {{ d['a'].1 }} {{ xs.0 }}",
    "{{ d.missing }}|{{ d.missing is defined }}|{{ xs[10] is defined }}|{{ msgs[0].nope }}",
    # statements
    "{% for m in msgs %}{{ loop.index }}/{{ loop.length }}:{{ m.role }}{% if not loop.last %},{% endif %}{% endfor %}",
    "{% for m in msgs %}{{ loop.index0 }}{{ loop.first }}{{ loop.revindex }}{{ loop.revindex0 }}{% endfor %}",
    "{% for x in xs %}{{ loop.previtem }}>{{ x }}>{{ loop.nextitem }};{{ loop.cycle('a', 'b') }}{% endfor %}",
    "{% for x in [] %}never{% else %}empty{% endfor %}{% for x in xs if x > 1 %}{{ x }}{{ loop.length }}{% endfor %}",
    "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}",
    "{% for a, b in [[1, 2], (3, 4)] %}{{ a + b }}{% endfor %}{% for c in 'héy' %}[{{ c }}]{% endfor %}",
    "{% for x in xs %}{% if x == 1 %}{% continue %}{% endif %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% endfor %}",
    "{% for i in range(3) %}{% for j in range(i) %}{{ i }}{{ j }} {% endfor %}{% endfor %}",
    "{% if n > 10 %}a{% elif n > 5 %}b{% else %}c{% endif %}{% if none %}x{% endif %}",
    "{% set x = 1 %}{% set y, z = 2, 3 %}{{ x + y + z }}{% set x = x + 10 %}{{ x }}",
    "{% set x = 0 %}{% for i in xs %}{% set x = x + i %}{{ x }}{% endfor %}:{{ x }}",
    "{% set ns = namespace(total=0, seen=[]) %}{% for i in xs %}{% set ns.total = ns.total + i %}{% set ns.seen = ns.seen + [i] %}{% endfor %}{{ ns.total }}{{ ns.seen }}",
    "{% set ns = namespace() %}{% set ns.a = 'x' %}{{ ns.a }}{{ ns.b is defined }}",
    "{% if true %}{% set inner = 'set in if' %}{% endif %}{{ inner }}",
    "{% set block %}  body {{ n }} {% endset %}[{{ block }}]{% set up | upper %}shout{% endset %}{{ up }}",
    "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('a') }} {{ greet('b', '?') }} {{ greet(punct='.', name='c') }}",
    "{% macro rec(k) %}{% if k > 0 %}{{ k }}{{ rec(k - 1) }}{% endif %}{% endmacro %}{{ rec(4) }}",
    "{% macro m(a) %}{{ a }}|{{ varargs }}|{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, z=4) }}",
    "{% with a = 1, b = n %}{{ a + b }}{% endwith %}{{ a is defined }}",
    "{% filter upper %}shout {{ s }}{% endfilter %}",
    "{% for x in xs %}{% generation %}{{ x }}{% set g = 1 %}{% endgeneration %}{% endfor %}{{ g is defined }}",
    # filters
    "{{ '  pad  ' | trim }}|{{ 'xxhixx' | trim('x') }}|{{ s | length }}|{{ 'é' | length }}|{{ d | length }}",
    "{{ s | upper }} {{ s | lower }} {{ 'hello wORLD-foo(bar)' | title }} {{ 'hELLO' | capitalize }}",
    "{{ undefined_var | default('dflt') }} {{ '' | default('e', true) }} {{ none | default('n') }} {{ n | d(0) }}",
    "{{ xs | first }} {{ xs | last }} {{ s | first }} {{ xs | join(', ') }} {{ xs | join }} {{ msgs | map(attribute='role') | join('/') }}",
    "{{ xs | sort }} {{ xs | sort(reverse=true) }} {{ ['b', 'A', 'a'] | sort }} {{ msgs | sort(attribute='content') | map(attribute='content') | list }}",
    "{{ xs | reverse | list }} {{ s | reverse }} {{ xs | sum }} {{ xs | min }} {{ xs | max }} {{ [1, 1, 2] | unique | list }}",
    "{{ msgs | selectattr('role', 'equalto', 'user') | list | length }} {{ msgs | rejectattr('role', 'eq', 'user') | map(attribute='content') | first }}",
    "{{ xs | select('odd') | list }} {{ xs | reject('equalto', 1) | list }} {{ [0, 1, '', 'a'] | select | list }}",
    "{{ d | items | list }} {{ d | dictsort }} {{ d | tojson }} {{ d | list }} {{ s | list | length }}",
    "{{ msgs[0] | tojson }} {{ 'é\"\\n' | tojson }} {{ [1.5, none, true] | tojson }} {{ d | tojson(indent=2) }}",
    "{{ {'z': {'y': []}, 'e': {}} | tojson(indent=4) }} {{ d | tojson(separators=(',', ':')) }} {{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }}",
    "{{ '42' | int }} {{ '4.7' | int }} {{ 'x' | int }} {{ 'x' | int(-1) }} {{ 3.9 | int }} {{ '2.5' | float }} {{ 'x' | float }}",
    "{{ 2.567 | round(2) }} {{ 2.5 | round }} {{ 3 | round }} {{ 2.4 | round(0, 'ceil') }} {{ -3 | abs }}",
    "{{ 'a-b-c' | replace('-', '+') }} {{ 'aaa' | replace('a', 'b', 2) }} {{ n | string }} {{ xs | string }}",
    "{{ 'line1\nline2\n\nline4' | indent(2) }}|{{ 'a\nb' | indent(first=true) }}|{{ 'a\n\nb' | indent(2, blank=true) }}",
    "{{ 'one two  three' | wordcount }} {{ '<a href=\"x\">&</a>' | e }} {{ '%s-%d' | format('a', 3) }} {{ msgs | count }}",
    "{{ msgs | map(attribute='missing', default='?') | list }} {{ ['a', 'b'] | map('upper') | join }}",
    # tests
    "{{ n is defined }} {{ nope is undefined }} {{ none is none }} {{ s is string }} {{ d is mapping }} {{ xs is iterable }}",
    "{{ n is number }} {{ n is integer }} {{ f is float }} {{ t is boolean }} {{ t is true }} {{ n is odd }} {{ n is even }}",
    "{{ n is divisibleby 7 }} {{ n is divisibleby(2) }} {{ 'a' is in 'abc' }} {{ n is eq 7 }} {{ n is gt 3 }} {{ n is le 7 }}",
    "{{ s is lower }} {{ 'abc' is lower }} {{ 'ABC' is upper }} {{ none is sameas none }} {{ s is not string }} {{ e is string }}",
    "{{ 'upper' is filter }} {{ 'nope' is filter }} {{ 'odd' is test }} {{ range is callable }} {{ s is sequence }}",
    # string methods
    "{{ '  x  '.strip() }}|{{ '  x  '.lstrip() }}|{{ '  x  '.rstrip() }}|{{ '--x--'.strip('-') }}|{{ '\u3000x\u00a0'.strip() }}",
    "{{ s.startswith('He') }} {{ s.endswith('ld') }} {{ s.startswith(('x', 'H')) }} {{ s.upper() }} {{ s.lower() }} {{ s.title() }}",
    "{{ 'a,b,,c'.split(',') }} {{ '  a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a b c'.rsplit(' ', 1) }} {{ 'l1\nl2'.splitlines() }}",
    "{{ s.replace('l', 'L') }} {{ s.replace('l', 'L', 1) }} {{ s.find('o') }} {{ s.count('l') }} {{ '-'.join(['a', 'b']) }}",
    "{{ \"they're bill's\".title() }} {{ 'ßtraße'.upper() }} {{ 'ÉCOLE'.lower() }} {{ 'éa'.capitalize() }} {{ '123'.isdigit() }}",
    "{{ '{} and {}'.format('a', 'b') }} {{ '{0}{name}'.format('x', name='y') }} {{ '{:>5}|{:<4}|{:^5}'.format('r', 'l', 'c') }}",
    "{{ '%s is %d years, %.2f' % ('x', 3, 2.5) }} {{ '%5s|%-5s|%03d' % ('a', 'b', 7) }} {{ '100%%' % () }}",
    # dict methods and globals
    "{{ d.get('b') }} {{ d.get('zz') }} {{ d.get('zz', 'dflt') }} {{ d.keys() | list }} {{ d.values() | list }} {{ d.items() | list }}",
    "{{ range(5) | list }} {{ range(1, 10, 3) | list }} {{ range(5, 0, -2) | list }} {{ dict(a=1, b=[2]) }}",
    "{{ strftime_now('%Y-%m-%d %d %b %Y %A') }}",
    "{{ xs.index(2) }} {{ xs.count(3) }} {{ namespace(a=1) }} {{ [].append is defined }}",
    "{{ messages | length }} {{ add_generation_prompt }} {{ tools }} {{ documents }}",
    # lazy values: generators are always true, dict views print as views, Markup escapes
    "{% if [] | select %}generator is true{% endif %}{% if [] | list %}no{% endif %}{{ none | selectattr('x') | list }}",
    "{{ d.items() }} {{ d.keys() }} {{ d.values() }} {{ d.items() | length }} {{ (xs | map('string'))[0] }}|",
    "{{ 'a<' | safe + '<b>' }} {{ '<x>' + '&' | e }} {{ ('<' | e) | e }} {{ 'k' ~ ('<' | safe) }}",
    "{# only a comment #}",
    "",
]

ERRORS = [
    "{{ raise_exception('custom failure') }}",
    "{% if %}",
    "{% if true %}unclosed",
    "{% for x in xs %}",
    "{% endfor %}",
    "{{ 1 + }}",
    "{{ 'unterminated }}",
    "{# unterminated comment",
    "{{ x",
    "{% unknowntag %}",
    "{{ 'a' + 1 }}",
    "{{ 1 + 'a' }}",
    "{{ undefined_var.attr }}",
    "{{ undefined_var + 1 }}",
    "{{ undefined_var() }}",
    "{{ 1 / 0 }}",
    "{{ 1 // 0 }}",
    "{{ xs | nosuchfilter }}",
    "{{ xs is nosuchtest }}",
    "{{ 1 < 'a' }}",
    "{{ [].append(1) }}",
    "{{ d.pop('a') }}",
    "{{ 5 in 5 }}",
    "{{ n() }}",
    "{% for a, b in xs %}{% endfor %}",
    "{% set n.attr = 1 %}",
    "{{ range(200000) | length }}",
    "{{ xs[::0] }}",
    "{% break %}",
    "{{ 'x'.nosuchmethod() }}",
    "{{ undefined_var | tojson }}",
    "{{ s | items | list }}",
    "{{ msgs[0].nope.deeper }}",
    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    "{{ xs | map('string') | length }}",
    "{{ xs | select | tojson }}",
    "{{ d.items() | tojson }}",
    "{{ xs | map('string') | last }}",
]


@pytest.mark.parametrize("index", range(len(FEATURES)))
def test_feature(tmp_path, index):
    assert_same(tmp_path, FEATURES[index], [SYSTEM], False, NS)


@pytest.mark.parametrize("index", range(len(ERRORS)))
def test_error(tmp_path, index):
    assert render_reference(ERRORS[index], [], False, NS) is None, "jinja2 renders it"
    assert_same(tmp_path, ERRORS[index], [], False, NS)


def test_error_names_position(tmp_path):
    rc, _, err = render_ours(tmp_path, "line one\n{{ 'a' + 1 }}", [])
    assert rc == 2
    assert "line 2, column" in err and "can only concatenate str" in err, err


def test_bad_input_files(tmp_path):
    t = tmp_path / "t.jinja"
    t.write_text("{{ messages }}")
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    for args, needle in [
        (["--template", tmp_path / "missing.jinja", "--messages", bad], "missing.jinja"),
        (["--template", t, "--messages", bad], "bad.json"),
        (["--template", t, "--messages", t], "t.jinja"),
        (["--template", t], "--messages"),
    ]:
        p = subprocess.run([tool("qlc-chat-template"), *map(str, args)], capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 2, p
        assert p.stderr.startswith("qlc-chat-template: error: ") and needle in p.stderr, p.stderr
