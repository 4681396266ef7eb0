/* test_jinja.c - the Jinja interpreter (jinja.h), one construct at a time.
 *
 * OK[]: small templates, one or a few constructs each (text and
 * whitespace control, literals and Python's str(), operators, access and
 * slicing, if/for/set/macro/namespace/break, every filter, test, string
 * and dict method and global function we implement), rendered with the
 * variables of VARS. Each expected string is what jinja2 3.1.6 renders
 * with transformers' settings (trim_blocks, lstrip_blocks, loopcontrols,
 * json.dumps as tojson, strftime_now frozen at 2026-12-04 12:00): the
 * interpreter must match it byte for byte.
 * ERR[]: templates that must fail, each with the clear message (and for
 * parse errors the line and column) fs gives; jinja2 refuses all of them
 * too, except the limits (fs bounds what Python would run out of memory
 * or time on) and 64-bit integer overflow (Python's ints are unbounded).
 * Then: rendering limits (output size), variables (later names win, JSON
 * numbers), and the transformers-only {% generation %} tag.
 *
 * Docs: docs/chat.md
 */
#include <stdlib.h>

#include "jinja.h"
#include "test.h"

/* generated: template, jinja2 3.1.6's output under transformers' settings */
static const struct { const char *src, *want; } OK[] = {
    {"plain text",
     "plain text"},
    {"a {# note #} b",
     "a  b"},
    {"a\n  {# comment line #}\nb",
     "a\nb"},
    {"x  {{- ' y ' -}}  z",
     "x y z"},
    {"{% if true %}\nyes\n{% endif %}\nend",
     "yes\nend"},
    {"  {% if true %}\n  in\n  {% endif %}\nout",
     "  in\nout"},
    {"  {%+ if true %}kept{% endif +%}\nnext",
     "  kept\nnext"},
    {"a\r\nb\rc",
     "a\nb\nc"},
    {"{% raw %}{{ raw }} {% if %}{% endraw %}",
     "{{ raw }} {% if %}"},
    {"trailing newline goes\n",
     "trailing newline goes"},
    {"{{ 1 }} {{ -2 }} {{ 1.5 }} {{ 1.0 }} {{ 1e16 }} {{ 1e-5 }} {{ 0.1 + 0.2 }} {{ 1_000 }}",
     "1 -2 1.5 1.0 1e+16 1e-05 0.30000000000000004 1000"},
    {"{{ none }} {{ true }} {{ False }} {{ 'it''s' }}",
     "None True False its"},
    {"{{ [1, 'a', none, true, 2.5, [], {}] }}",
     "[1, 'a', None, True, 2.5, [], {}]"},
    {"{{ {'k': \"it's\", 'q': 'say \"hi\"', 'n': '\\n'} }}",
     "{'k': \"it's\", 'q': 'say \"hi\"', 'n': '\\n'}"},
    {"{{ (1,) }} {{ (1, 2) }} {{ () }}",
     "(1,) (1, 2) ()"},
    {"{{ 'a\\\nb' }}|{{ 'x' \"y\" }}",
     "ab|xy"},
    {"{{ \"\\t\\x41\\u00e9\\U0001F600\\q\" }}",
     "\tA\xc3\xa9" "\xf0\x9f\x98\x80" "\\q"},
    {"{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 / 2 }} {{ -7 % 3 }} {{ 7.5 % 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ -1 ** 2 }}",
     "3 -4 3.5 2 1.5 1024 0.5 1"},
    {"{{ 'ab' ~ 1 ~ none }} {{ 'ab' + 'cd' }} {{ [1] + [2] }} {{ 'ab' * 3 }} {{ 2 * [0] }}",
     "ab1None abcd [1, 2] ababab [0, 0]"},
    {"{{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' != 'b' }} {{ 1 < 2 <= 2 }} {{ 'abc' < 'abd' }} {{ [1, 2] < [1, 3] }}",
     "True True True True True True"},
    {"{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }}",
     "True True True True"},
    {"{{ 0 or 'x' }} {{ 1 and 'y' }} {{ none or [] }} {{ not '' }}",
     "x y [] True"},
    {"{{ 'y' if n is none else 'n' }}|{{ 'z' if false }}|",
     "y||"},
    {"{{ d.a }} {{ d['b'][1] }} {{ d.b.0 }} {{ x[-1] }} {{ x[9] }}|{{ d.zz }}|{{ s[1] }}",
     "1 x 1 2 ||\xc3\xa9" ""},
    {"{{ s[1:3] }} {{ s[::-1] }} {{ x[1:] }} {{ x[:-1] }} {{ s[-2:] }} {{ [1,2,3,4][::2] }}",
     "\xc3\xa9" "l oll\xc3\xa9" "h [2] [1] lo [1, 3]"},
    {"{{ msgs[0].role }} {{ msgs[-1]['content'] }}",
     "user yo"},
    {"{% if n %}A{% elif e %}B{% elif x %}C{% else %}D{% endif %}",
     "C"},
    {"{% for i in x %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ loop.revindex0 }},{% endfor %}",
     "10TrueFalse221,21FalseTrue210,"},
    {"{% for i in [1, 2, 3] %}{{ loop.previtem }}<{{ i }}>{{ loop.nextitem }};{% endfor %}",
     "<1>2;1<2>3;2<3>;"},
    {"{% for i in [] %}x{% else %}empty{% endfor %}",
     "empty"},
    {"{% for i in [1, 2, 3, 4] if i is even %}{{ i }}/{{ loop.length }} {% endfor %}",
     "2/2 4/2 "},
    {"{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}",
     "a=1;b=[1, 'x'];ab"},
    {"{% for c in s %}{{ c }}.{% endfor %}",
     "h.\xc3\xa9" ".l.l.o."},
    {"{% for i in [1, 2, 3, 4] %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% endif %}{{ i }}{% endfor %}",
     "13"},
    {"{% set a = 1 %}{% for i in x %}{{ a }}{% set a = i %}{{ a }}{% endfor %}{{ a }}",
     "11121"},
    {"{% set ns = namespace(total=0, seen=[]) %}{% for i in x %}{% set ns.total = ns.total + i %}{% set ns.seen = ns.seen + [i] %}{% endfor %}{{ ns.total }} {{ ns.seen }}",
     "3 [1, 2]"},
    {"{% set a, b = [1, 2] %}{{ a }}{{ b }}{% set c, d2 = 3, 4 %}{{ c }}{{ d2 }}",
     "1234"},
    {"{% set block %}  inner {{ 1 + 1 }}  {% endset %}[{{ block }}]",
     "[  inner 2  ]"},
    {"{% macro m(a, b='B', c=none) %}[{{ a }}{{ b }}{{ c }}]{% endmacro %}{{ m(1) }}{{ m(1, 2) }}{{ m(b=3, a=4) }}",
     "[1BNone][12None][43None]"},
    {"{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1) | int }}{% endif %}{% endmacro %}{{ fact(5) }}",
     "120"},
    {"{{ d | tojson }} {{ x | tojson }} {{ '\xc3\xa9" "\"\\n\\u0001' | tojson }} {{ none | tojson }} {{ 1.5 | tojson }}",
     "{\"a\": 1, \"b\": [1, \"x\"]} [1, 2] \"\xc3\xa9" "\\\"\\n\\u0001\" null 1.5"},
    {"{{ d | tojson(indent=2) }}|{{ [] | tojson(indent=2) }}|{{ {'a': {}} | tojson(indent=1) }}",
     "{\n  \"a\": 1,\n  \"b\": [\n    1,\n    \"x\"\n  ]\n}|[]|{\n \"a\": {}\n}"},
    {"{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }} {{ '\xc3\xa9" "' | tojson(ensure_ascii=true) }} {{ x | tojson(separators=(',', ':')) }}",
     "{\"a\": 2, \"b\": 1} \"\\u00e9\" [1,2]"},
    {"[{{ '  a b \\n' | trim }}] [{{ '\\u3000x\\xa0' | trim }}] [{{ 'xxaxx' | trim('x') }}]",
     "[a b] [x] [a]"},
    {"{{ s | length }} {{ x | length }} {{ d | count }} {{ u | length }}",
     "5 2 2 0"},
    {"{{ 5 | string }}{{ [1, 'a'] | string }} {{ 'aBc' | upper }} {{ 'aBc' | lower }} {{ 'hello world' | title }} {{ 'hELLO' | capitalize }}",
     "5[1, 'a'] ABC abc Hello World Hello"},
    {"{{ '\xc3\x89" "COLE \xc3\xa9" "' | lower }} {{ 'stra\xc3\x9f" "e \xc3\xbc" "n\xc3\xaf" "' | upper }} {{ '\xce\x91" "\xce\x92" "\xce\x93" "' | lower }} {{ '\xd0\xbc" "\xd0\xb8" "\xd1\x80" "' | upper }}",
     "\xc3\xa9" "cole \xc3\xa9" " STRASSE \xc3\x9c" "N\xc3\x8f" " \xce\xb1" "\xce\xb2" "\xce\xb3" " \xd0\x9c" "\xd0\x98" "\xd0\xa0" ""},
    {"{{ d | items | list }} {{ x | first }} {{ x | last }} {{ 'abc' | first }} {{ [] | first }}|",
     "[('a', 1), ('b', [1, 'x'])] 1 2 a |"},
    {"{{ x | join(', ') }} {{ ['a', 'b'] | join }} {{ msgs | join('|', attribute='role') }}",
     "1, 2 ab user|assistant"},
    {"{{ u | default('dflt') }} {{ '' | default('e') }} {{ '' | default('e', true) }} {{ none | d('x') }}",
     "dflt  e None"},
    {"{{ msgs | selectattr('role', 'equalto', 'user') | list }} {{ msgs | rejectattr('role', 'equalto', 'user') | map(attribute='content') | list }}",
     "[{'role': 'user', 'content': 'hi'}] ['yo']"},
    {"{{ [0, 1, '', 'a'] | select | list }} {{ [0, 1, '', 'a'] | reject | list }} {{ [1, 2, 3] | select('odd') | list }}",
     "[1, 'a'] [0, ''] [1, 3]"},
    {"{{ x | map('string') | join('-') }} {{ [3, 1, 2] | sort }} {{ [3, 1, 2] | sort(reverse=true) }} {{ [1, 2] | reverse | list }} {{ 'abc' | reverse }}",
     "1-2 [1, 2, 3] [3, 2, 1] [2, 1] cba"},
    {"{{ [1, 1, 2, 1] | unique | list }} {{ {'b': 1, 'a': 2} | dictsort }} {{ [1, 2, 3] | sum }} {{ [3, 1, 2] | min }} {{ [3, 1, 2] | max }}",
     "[1, 2] [('a', 2), ('b', 1)] 6 1 3"},
    {"{{ 'a-b-c' | replace('-', '+') }} {{ 'aaa' | replace('a', 'b', 2) }} {{ '12' | int }} {{ 2.7 | int }} {{ 'x' | int }} {{ '1.5' | float }} {{ -3 | abs }}",
     "a+b+c bba 12 2 0 1.5 3"},
    {"{{ 2.5 | round }} {{ 3.5 | round }} {{ 3.14159 | round(2) }} {{ 2.1 | round(0, 'ceil') }} {{ 2.9 | round(0, 'floor') }}",
     "2.0 4.0 3.14 3.0 2.0"},
    {"{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent(1, blank=true) }}",
     "a\n  b\n\n  c|  a\n  b|a\n \n b"},
    {"{{ '<b>' | safe }}",
     "<b>"},
    {"{{ u is defined }} {{ u is undefined }} {{ n is none }} {{ true is boolean }} {{ true is true }} {{ 0 is false }} {{ false is false }}",
     "False True True True True False True"},
    {"{{ s is string }} {{ 1 is number }} {{ 1 is integer }} {{ 1.0 is float }} {{ d is mapping }} {{ x is iterable }} {{ s is sequence }} {{ 1 is iterable }}",
     "True True True True True True True False"},
    {"{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(2) }} {{ 'abc' is lower }} {{ 'ABC' is upper }}",
     "True True True False True True"},
    {"{{ 1 is eq 1 }} {{ 1 is ne 2 }} {{ 1 is lt 2 }} {{ 2 is ge 2 }} {{ 'a' is in 'abc' }} {{ none is sameas none }} {{ m is callable }}",
     "True True True True True True True"},
    {"{{ s.startswith('h\xc3\xa9" "') }} {{ s.endswith(('x', 'lo')) }} {{ s.find('l') }} {{ s.rfind('l') }} {{ s.count('l') }}",
     "True True 2 3 2"},
    {"{{ '  a  '.strip() }}|{{ '  a  '.lstrip() }}|{{ '  a  '.rstrip() }}|{{ '\\n\\na\\n'.strip('\\n') }}|{{ 'xyaxy'.strip('yx') }}",
     "a|a  |  a|a|a"},
    {"{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a b c'.rsplit(' ', 1) }} {{ 'l1\\nl2\\r\\nl3'.splitlines() }}",
     "['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c'] ['a b', 'c'] ['l1', 'l2', 'l3']"},
    {"{{ 'abc'.replace('b', 'X') }} {{ 'Hi'.upper() }} {{ 'Hi'.lower() }} {{ 'hi there'.title() }} {{ 'hI'.capitalize() }} {{ '-'.join(['a', 'b']) }}",
     "aXc HI hi Hi There Hi a-b"},
    {"{{ '123'.isdigit() }} {{ 'ab'.isalpha() }} {{ ' '.isspace() }} {{ '{}-{}'.format(1, 'x') }} {{ '{1}{0}'.format('a', 'b') }}",
     "True True True 1-x ba"},
    {"{{ d.get('a') }} {{ d.get('zz') }} {{ d.get('zz', 5) }} {{ d.keys() | list }} {{ d.values() | list }} {{ d.items() | list }}",
     "1 None 5 ['a', 'b'] [1, [1, 'x']] [('a', 1), ('b', [1, 'x'])]"},
    {"{{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ range(5, 0, -2) | list }} {{ dict(a=1, b=[2]) }} {{ namespace(a=1).a }}",
     "[0, 1, 2] [1, 3, 5] [5, 3, 1] {'a': 1, 'b': [2]} 1"},
    {"{{ strftime_now('%d %b %Y') }} {{ strftime_now('%Y-%m-%d %H:%M') }}",
     "04 Dec 2026 2026-12-04 12:00"},
};
static const struct { const char *src, *err; } ERR[] = {
    {"{{ 'x' + 1 }}", "line 1, column 8: can only concatenate str (not \"int\") to str"},
    {"{{ u + 'x' }}", "column 4: 'u' is undefined"},
    {"{{ u.attr }}", "'u' is undefined"},
    {"{{ d.zz.yy }}", "'zz' is undefined"},
    {"{{ 1 < 'a' }}", "'<' not supported between instances of 'int' and 'str'"},
    {"{{ 1 / 0 }}", "division by zero"},
    {"{{ 1 // 0 }}", "integer division or modulo by zero"},
    {"{{ 9223372036854775807 + 1 }}", "integer overflow in '+'"},
    {"{{ x.append(3) }}", "'append' would change a list"},
    {"{{ s.nosuch() }}", "'str' object has no method 'nosuch'"},
    {"{{ raise_exception('no ' ~ 'way') }}", "line 1, column 4: raise_exception: no way"},
    {"{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(1) }}", "nested deeper than 100"},
    {"{% set r = range(4000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}", "more than 10000000 steps"},
    {"{{ range(10000000) }}", "range() longer than 1000000"},
    {"{{ 'ab' * 1000000000000 }}", "memory"},
    {"{% set ns = 1 %}{% set ns.a = 2 %}", "not a namespace()"},
    {"{% set a, b = [1] %}", "cannot unpack 1 values into 2 names"},
    {"{{ 5 | length }}", "object of type 'int' has no len()"},
    {"{% for i in 5 %}{% endfor %}", "'int' object is not iterable"},
    {"{{ x[1:2:0] }}", "slice step cannot be zero"},
    {"{{ u | tojson }}", "tojson: Object of type Undefined is not JSON serializable"},
    {"{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", "takes at most 1 arguments, got 2"},
    {"{% macro m(a) %}{% endmacro %}{{ m(b=2) }}", "unexpected keyword argument 'b'"},
    {"{{ 5() }}", "'int' object is not callable"},
    {"{{ {[1]: 2} }}", "unhashable type: 'list'"},
    {"{{ 1 in 5 }}", "argument of type 'int' is not iterable"},
    {"{% if %}", "line 1, column 7: expected an expression, found '%}'"},
    {"{% for %}", "expected a variable name"},
    {"{% for i x %}", "expected 'in' in a for loop"},
    {"{{ 1 +", "unclosed '{{' tag"},
    {"{% if true %}", "expected 'endif', found the end of the template"},
    {"{% for i in x %}", "expected 'endfor'"},
    {"{% endif %}", "unknown statement 'endif'"},
    {"{% extends 'x' %}", "the 'extends' statement is not supported"},
    {"{% include 'x' %}", "the 'include' statement is not supported"},
    {"{% call m() %}{% endcall %}", "the 'call' statement is not supported"},
    {"{% for i in x recursive %}{% endfor %}", "recursive loops are not supported"},
    {"{{ x | nosuch }}", "column 8: unknown filter 'nosuch'"},
    {"{{ x is nosuch }}", "unknown test 'nosuch'"},
    {"{{ 'abc }}", "unterminated string literal"},
    {"{{ '\\u12' }}", "truncated \\u escape"},
    {"{{ x[] }}", "empty subscript"},
    {"{{ f(a=1, 2) }}", "a positional argument after a keyword argument"},
    {"{# never closed", "unclosed comment"},
    {"{% raw %}no end", "'raw' without 'endraw'"},
    {"{{ @ }}", "unexpected character '@'"},
    {"{{ 99999999999999999999 }}", "integer literal too large"},
    {"ok\n\n  {{ (((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((1))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))) }}", "nested deeper than 200"},
};

static const char VARS[] =
    "{\"x\": [1, 2], \"d\": {\"a\": 1, \"b\": [1, \"x\"]}, \"s\": \"h\xc3\xa9llo\", \"e\": \"\", \"n\": null, \"f\": 1.5,"
    " \"msgs\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}";

static fs_json_doc doc;
static fs_jinja_var vars[16];
static size_t n_vars;

#define NOW 1796385600 /* 2026-12-04 12:00:00 UTC */

/* compile + render; *out NULL on error (e filled) */
static char *run(const char *src, size_t max_output, fs_err *e) {
    fs_jinja *t;
    char *out = NULL;
    size_t len;
    if (fs_jinja_compile(&t, src, strlen(src), e)) return NULL;
    fs_jinja_opts o = {NOW, max_output};
    if (fs_jinja_render(t, vars, n_vars, &o, &out, &len, e) == 0) CHECK(strlen(out) == len);
    fs_jinja_free(t);
    return out;
}

static void test_table(void) {
    for (size_t i = 0; i < sizeof OK / sizeof *OK; i++) {
        fs_err e = {{0}};
        char *got = run(OK[i].src, 0, &e);
        CHECKF(got && !strcmp(got, OK[i].want), "OK[%zu] %s\n got: [%s]\nwant: [%s]", i, OK[i].src,
               got ? got : e.msg, OK[i].want);
        free(got);
    }
    for (size_t i = 0; i < sizeof ERR / sizeof *ERR; i++) {
        fs_err e = {{0}};
        char *got = run(ERR[i].src, 0, &e);
        CHECKF(!got && strstr(e.msg, ERR[i].err) && !strncmp(e.msg, "template", 8),
               "ERR[%zu] %.60s: want an error with \"%s\", got %s", i, ERR[i].src, ERR[i].err, got ? got : e.msg);
        free(got);
    }
}

static void test_limits(void) {
    fs_err e = {{0}};
    /* the output bound: exactly at it is fine, one byte over is an error */
    char *got = run("{% for i in range(10) %}abcdefghij{% endfor %}", 100, &e);
    CHECK(got && strlen(got) == 100);
    free(got);
    got = run("{% for i in range(10) %}abcdefghij{% endfor %}!", 100, &e);
    CHECKF(!got && strstr(e.msg, "the output is larger than 100 bytes"), "%s", got ? got : e.msg);
    free(got);
    got = run("{% macro m() %}{% for i in range(20) %}0123456789{% endfor %}{% endmacro %}{% set x = m() %}", 100, &e);
    CHECKF(!got && strstr(e.msg, "larger than 100 bytes"), "%s", got ? got : e.msg);
    free(got);
    /* not UTF-8, a NUL: refused at compile time */
    CHECK(!run("a\xff", 0, &e) && strstr(e.msg, "not valid UTF-8"));
    fs_jinja *t;
    CHECK(fs_jinja_compile(&t, "a\0b", 3, &e) == -1 && strstr(e.msg, "NUL"));
}

static void test_vars_and_tags(void) {
    fs_err e = {{0}};
    /* transformers' generation tag renders its body */
    char *got = run("a{% generation %}b{{ 1 }}{% endgeneration %}c", 0, &e);
    CHECKF(got && !strcmp(got, "ab1c"), "%s", got ? got : e.msg);
    free(got);
    /* JSON numbers: integer values are ints, others floats; a later variable wins */
    fs_json_doc d2;
    const char *js = "{\"a\": 2, \"b\": 2.5, \"c\": 1e300, \"a2\": 3}";
    CHECK(fs_json_parse(&d2, js, strlen(js), &e) == 0);
    fs_jinja_var v[4] = {{"a", fs_json_get(d2.root, "a")}, {"b", fs_json_get(d2.root, "b")},
                         {"c", fs_json_get(d2.root, "c")}, {"a", fs_json_get(d2.root, "a2")}};
    fs_jinja *t;
    const char *src = "{{ a }} {{ a is integer }} {{ b }} {{ c }} {{ c is float }}";
    CHECK(fs_jinja_compile(&t, src, strlen(src), &e) == 0);
    char *out = NULL;
    CHECK(fs_jinja_render(t, v, 4, NULL, &out, NULL, &e) == 0);
    CHECKF(out && !strcmp(out, "3 True 2.5 1e+300 True"), "%s", out ? out : e.msg);
    free(out);
    fs_jinja_free(t);
    fs_json_free(&d2);
    /* one compiled template renders many times, each from a fresh start */
    src = "{% set ns = namespace(n=0) %}{% for i in x %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}";
    CHECK(fs_jinja_compile(&t, src, strlen(src), &e) == 0);
    for (int k = 0; k < 3; k++) {
        CHECK(fs_jinja_render(t, vars, n_vars, NULL, &out, NULL, &e) == 0 && !strcmp(out, "3"));
        free(out);
    }
    fs_jinja_free(t);
}

int main(void) {
    fs_err e = {{0}};
    if (fs_json_parse(&doc, VARS, strlen(VARS), &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    for (const fs_json *c = doc.root->child; c; c = c->next) vars[n_vars].name = c->key, vars[n_vars++].value = c;
    test_table();
    test_limits();
    test_vars_and_tags();
    fs_json_free(&doc);
    return TEST_SUMMARY();
}
