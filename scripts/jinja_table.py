#!/usr/bin/env python3
"""jinja_table.py - the expected strings of tests/test_jinja.c, from jinja2.

Renders each small template of OK below with jinja2 configured as
transformers configures it for chat templates (ImmutableSandboxedEnvironment,
trim_blocks, lstrip_blocks, loopcontrols, json.dumps as tojson,
raise_exception, strftime_now frozen at 2026-12-04 12:00) and the variables
of VARS, and prints the C tables OK[] (template, output) and ERR[]
(template, the message fs gives) that tests/test_jinja.c holds between its
"generated" marker and the end of ERR[]. Run it after changing the lists,
paste the output there:

    python3 scripts/jinja_table.py > /tmp/table.h     (needs jinja2 >= 3.1)

Docs: docs/chat.md
"""
import datetime
import json

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = lambda fmt: datetime.datetime(2026, 12, 4, 12, 0).strftime(fmt)
V = {"x": [1, 2], "d": {"a": 1, "b": [1, "x"]}, "s": "h\u00e9llo", "e": "", "n": None, "f": 1.5,
     "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
OK = [
 # text, output, comments, whitespace control
 "plain text",
 "a {# note #} b",
 "a\n  {# comment line #}\nb",
 "x  {{- ' y ' -}}  z",
 "{% if true %}\nyes\n{% endif %}\nend",
 "  {% if true %}\n  in\n  {% endif %}\nout",
 "  {%+ if true %}kept{% endif +%}\nnext",
 "a\r\nb\rc",
 "{% raw %}{{ raw }} {% if %}{% endraw %}",
 "trailing newline goes\n",
 # literals and str()
 "{{ 1 }} {{ -2 }} {{ 1.5 }} {{ 1.0 }} {{ 1e16 }} {{ 1e-5 }} {{ 0.1 + 0.2 }} {{ 1_000 }}",
 "{{ none }} {{ true }} {{ False }} {{ 'it''s' }}",
 "{{ [1, 'a', none, true, 2.5, [], {}] }}",
 "{{ {'k': \"it's\", 'q': 'say \"hi\"', 'n': '\\n'} }}",
 "{{ (1,) }} {{ (1, 2) }} {{ () }}",
 "{{ 'a\\\nb' }}|{{ 'x' \"y\" }}",
 "{{ \"\\t\\x41\\u00e9\\U0001F600\\q\" }}",
 # operators
 "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 / 2 }} {{ -7 % 3 }} {{ 7.5 % 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ -1 ** 2 }}",
 "{{ 'ab' ~ 1 ~ none }} {{ 'ab' + 'cd' }} {{ [1] + [2] }} {{ 'ab' * 3 }} {{ 2 * [0] }}",
 "{{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' != 'b' }} {{ 1 < 2 <= 2 }} {{ 'abc' < 'abd' }} {{ [1, 2] < [1, 3] }}",
 "{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }}",
 "{{ 0 or 'x' }} {{ 1 and 'y' }} {{ none or [] }} {{ not '' }}",
 "{{ 'y' if n is none else 'n' }}|{{ 'z' if false }}|",
 # access
 "{{ d.a }} {{ d['b'][1] }} {{ d.b.0 }} {{ x[-1] }} {{ x[9] }}|{{ d.zz }}|{{ s[1] }}",
 "{{ s[1:3] }} {{ s[::-1] }} {{ x[1:] }} {{ x[:-1] }} {{ s[-2:] }} {{ [1,2,3,4][::2] }}",
 "{{ msgs[0].role }} {{ msgs[-1]['content'] }}",
 # statements
 "{% if n %}A{% elif e %}B{% elif x %}C{% else %}D{% endif %}",
 "{% for i in x %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ loop.revindex0 }},{% endfor %}",
 "{% for i in [1, 2, 3] %}{{ loop.previtem }}<{{ i }}>{{ loop.nextitem }};{% endfor %}",
 "{% for i in [] %}x{% else %}empty{% endfor %}",
 "{% for i in [1, 2, 3, 4] if i is even %}{{ i }}/{{ loop.length }} {% endfor %}",
 "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}",
 "{% for c in s %}{{ c }}.{% endfor %}",
 "{% for i in [1, 2, 3, 4] %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% endif %}{{ i }}{% endfor %}",
 "{% set a = 1 %}{% for i in x %}{{ a }}{% set a = i %}{{ a }}{% endfor %}{{ a }}",
 "{% set ns = namespace(total=0, seen=[]) %}{% for i in x %}{% set ns.total = ns.total + i %}{% set ns.seen = ns.seen + [i] %}{% endfor %}{{ ns.total }} {{ ns.seen }}",
 "{% set a, b = [1, 2] %}{{ a }}{{ b }}{% set c, d2 = 3, 4 %}{{ c }}{{ d2 }}",
 "{% set block %}  inner {{ 1 + 1 }}  {% endset %}[{{ block }}]",
 "{% macro m(a, b='B', c=none) %}[{{ a }}{{ b }}{{ c }}]{% endmacro %}{{ m(1) }}{{ m(1, 2) }}{{ m(b=3, a=4) }}",
 "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1) | int }}{% endif %}{% endmacro %}{{ fact(5) }}",
 # filters
 "{{ d | tojson }} {{ x | tojson }} {{ 'é\"\\n\\u0001' | tojson }} {{ none | tojson }} {{ 1.5 | tojson }}",
 "{{ d | tojson(indent=2) }}|{{ [] | tojson(indent=2) }}|{{ {'a': {}} | tojson(indent=1) }}",
 "{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }} {{ 'é' | tojson(ensure_ascii=true) }} {{ x | tojson(separators=(',', ':')) }}",
 "[{{ '  a b \\n' | trim }}] [{{ '\\u3000x\\xa0' | trim }}] [{{ 'xxaxx' | trim('x') }}]",
 "{{ s | length }} {{ x | length }} {{ d | count }} {{ u | length }}",
 "{{ 5 | string }}{{ [1, 'a'] | string }} {{ 'aBc' | upper }} {{ 'aBc' | lower }} {{ 'hello world' | title }} {{ 'hELLO' | capitalize }}",
 "{{ 'ÉCOLE é' | lower }} {{ 'straße ünï' | upper }} {{ 'ΑΒΓ' | lower }} {{ 'мир' | upper }}",
 "{{ d | items | list }} {{ x | first }} {{ x | last }} {{ 'abc' | first }} {{ [] | first }}|",
 "{{ x | join(', ') }} {{ ['a', 'b'] | join }} {{ msgs | join('|', attribute='role') }}",
 "{{ u | default('dflt') }} {{ '' | default('e') }} {{ '' | default('e', true) }} {{ none | d('x') }}",
 "{{ msgs | selectattr('role', 'equalto', 'user') | list }} {{ msgs | rejectattr('role', 'equalto', 'user') | map(attribute='content') | list }}",
 "{{ [0, 1, '', 'a'] | select | list }} {{ [0, 1, '', 'a'] | reject | list }} {{ [1, 2, 3] | select('odd') | list }}",
 "{{ x | map('string') | join('-') }} {{ [3, 1, 2] | sort }} {{ [3, 1, 2] | sort(reverse=true) }} {{ [1, 2] | reverse | list }} {{ 'abc' | reverse }}",
 "{{ [1, 1, 2, 1] | unique | list }} {{ {'b': 1, 'a': 2} | dictsort }} {{ [1, 2, 3] | sum }} {{ [3, 1, 2] | min }} {{ [3, 1, 2] | max }}",
 "{{ 'a-b-c' | replace('-', '+') }} {{ 'aaa' | replace('a', 'b', 2) }} {{ '12' | int }} {{ 2.7 | int }} {{ 'x' | int }} {{ '1.5' | float }} {{ -3 | abs }}",
 "{{ 2.5 | round }} {{ 3.5 | round }} {{ 3.14159 | round(2) }} {{ 2.1 | round(0, 'ceil') }} {{ 2.9 | round(0, 'floor') }}",
 "{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent(1, blank=true) }}",
 "{{ '<b>' | safe }}",
 # tests
 "{{ u is defined }} {{ u is undefined }} {{ n is none }} {{ true is boolean }} {{ true is true }} {{ 0 is false }} {{ false is false }}",
 "{{ s is string }} {{ 1 is number }} {{ 1 is integer }} {{ 1.0 is float }} {{ d is mapping }} {{ x is iterable }} {{ s is sequence }} {{ 1 is iterable }}",
 "{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(2) }} {{ 'abc' is lower }} {{ 'ABC' is upper }}",
 "{{ 1 is eq 1 }} {{ 1 is ne 2 }} {{ 1 is lt 2 }} {{ 2 is ge 2 }} {{ 'a' is in 'abc' }} {{ none is sameas none }} {{ m is callable }}",
 # methods
 "{{ s.startswith('hé') }} {{ s.endswith(('x', 'lo')) }} {{ s.find('l') }} {{ s.rfind('l') }} {{ s.count('l') }}",
 "{{ '  a  '.strip() }}|{{ '  a  '.lstrip() }}|{{ '  a  '.rstrip() }}|{{ '\\n\\na\\n'.strip('\\n') }}|{{ 'xyaxy'.strip('yx') }}",
 "{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a b c'.rsplit(' ', 1) }} {{ 'l1\\nl2\\r\\nl3'.splitlines() }}",
 "{{ 'abc'.replace('b', 'X') }} {{ 'Hi'.upper() }} {{ 'Hi'.lower() }} {{ 'hi there'.title() }} {{ 'hI'.capitalize() }} {{ '-'.join(['a', 'b']) }}",
 "{{ '123'.isdigit() }} {{ 'ab'.isalpha() }} {{ ' '.isspace() }} {{ '{}-{}'.format(1, 'x') }} {{ '{1}{0}'.format('a', 'b') }}",
 "{{ d.get('a') }} {{ d.get('zz') }} {{ d.get('zz', 5) }} {{ d.keys() | list }} {{ d.values() | list }} {{ d.items() | list }}",
 # globals
 "{{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ range(5, 0, -2) | list }} {{ dict(a=1, b=[2]) }} {{ namespace(a=1).a }}",
 "{{ strftime_now('%d %b %Y') }} {{ strftime_now('%Y-%m-%d %H:%M') }}",
 # jinja2's own quirks
 "{{ 'hello world-wide (x) [y' | title }} {{ \"they're\" | title }} {{ \"they're\".title() }}",
 "{% if [] | select %}T{% else %}F{% endif %}{% if x | select('odd') | list %}L{% endif %}{{ x | select | list | length }}",
 "{{ 0.5 is odd }} {{ 2.0 is even }} {{ 3.0 is odd }} {{ [u, 1] }} {{ (x | select)[0] }}|{{ s[1:][::-1] }}",
]
ERR = [
 ("{{ x | select | length }}", "object of type 'generator' has no len()"),
 ("{{ x | map('string') | last }}", "'generator' object is not reversible"),
 ("{{ x | unique | tojson }}", "Object of type generator is not JSON serializable"),
 ("{{ 'x' + 1 }}", "line 1, column 8: can only concatenate str (not \"int\") to str"),
 ("{{ u + 'x' }}", "column 4: 'u' is undefined"),
 ("{{ u.attr }}", "'u' is undefined"),
 ("{{ d.zz.yy }}", "'zz' is undefined"),
 ("{{ 1 < 'a' }}", "'<' not supported between instances of 'int' and 'str'"),
 ("{{ 1 / 0 }}", "division by zero"),
 ("{{ 1 // 0 }}", "integer division or modulo by zero"),
 ("{{ 9223372036854775807 + 1 }}", "integer overflow in '+'"),
 ("{{ x.append(3) }}", "'append' would change a list"),
 ("{{ s.nosuch() }}", "'str' object has no method 'nosuch'"),
 ("{{ raise_exception('no ' ~ 'way') }}", "line 1, column 4: raise_exception: no way"),
 ("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(1) }}", "nested deeper than 100"),
 ("{% set r = range(4000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}", "more than 10000000 steps"),
 ("{{ range(10000000) }}", "range() longer than 1000000"),
 ("{{ 'ab' * 1000000000000 }}", "memory"),
 ("{% set ns = 1 %}{% set ns.a = 2 %}", "not a namespace()"),
 ("{% set a, b = [1] %}", "cannot unpack 1 values into 2 names"),
 ("{{ 5 | length }}", "object of type 'int' has no len()"),
 ("{% for i in 5 %}{% endfor %}", "'int' object is not iterable"),
 ("{{ x[1:2:0] }}", "slice step cannot be zero"),
 ("{{ u | tojson }}", "tojson: Object of type Undefined is not JSON serializable"),
 ("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", "takes at most 1 arguments, got 2"),
 ("{% macro m(a) %}{% endmacro %}{{ m(b=2) }}", "unexpected keyword argument 'b'"),
 ("{{ 5() }}", "'int' object is not callable"),
 ("{{ {[1]: 2} }}", "unhashable type: 'list'"),
 ("{{ 1 in 5 }}", "argument of type 'int' is not iterable"),
 # parse errors
 ("{% if %}", "line 1, column 7: expected an expression, found '%}'"),
 ("{% for %}", "expected a variable name"),
 ("{% for i x %}", "expected 'in' in a for loop"),
 ("{{ 1 +", "unclosed '{{' tag"),
 ("{% if true %}", "expected 'endif', found the end of the template"),
 ("{% for i in x %}", "expected 'endfor'"),
 ("{% endif %}", "unknown statement 'endif'"),
 ("{% extends 'x' %}", "the 'extends' statement is not supported"),
 ("{% include 'x' %}", "the 'include' statement is not supported"),
 ("{% call m() %}{% endcall %}", "the 'call' statement is not supported"),
 ("{% for i in x recursive %}{% endfor %}", "recursive loops are not supported"),
 ("{{ x | nosuch }}", "column 8: unknown filter 'nosuch'"),
 ("{{ x is nosuch }}", "unknown test 'nosuch'"),
 ("{{ 'abc }}", "unterminated string literal"),
 ("{{ '\\u12' }}", "truncated \\u escape"),
 ("{{ x[] }}", "empty subscript"),
 ("{{ f(a=1, 2) }}", "a positional argument after a keyword argument"),
 ("{# never closed", "unclosed comment"),
 ("{% raw %}no end", "'raw' without 'endraw'"),
 ("{{ @ }}", "unexpected character '@'"),
 ("{{ 99999999999999999999 }}", "integer literal too large"),
 ("ok\n\n  {{ (((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((1))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))) }}", "nested deeper than 200"),
]
def c_str(s):
    out = '"'
    for ch in s:
        o = ord(ch)
        if ch == '"': out += '\\"'
        elif ch == '\\': out += '\\\\'
        elif ch == '\n': out += '\\n'
        elif ch == '\r': out += '\\r'
        elif ch == '\t': out += '\\t'
        elif o < 0x20: out += '\\%03o' % o
        elif o >= 0x80:
            for b in ch.encode('utf-8'): out += '\\x%02x' % b
            out += '" "'
        else: out += ch
    return out + '"'
lines = []
for src in OK:
    want = env.from_string(src).render(**V)
    lines.append("    {%s,\n     %s}," % (c_str(src), c_str(want)))
print("/* generated by scripts/jinja_table.py: template, jinja2's output under transformers' settings */")
print("static const struct { const char *src, *want; } OK[] = {")
print("\n".join(lines))
print("};")
print("static const struct { const char *src, *err; } ERR[] = {")
for src, err in ERR:
    print("    {%s, %s}," % (c_str(src), c_str(err)))
print("};")
