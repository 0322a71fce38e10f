"""OpenNebula templates: parsing ("KEY=value" syntax, as oned's flex/bison
parser, or XML) and rendering, plus the XML helpers of the object
renderers."""

import re
import xml.etree.ElementTree as ET

from .errors import INTERNAL, OnedError


# --------------------------------------------------------------------------
# OpenNebula templates: parsing ("KEY=value" syntax or XML) and rendering
# --------------------------------------------------------------------------
# A template is a list of [KEY, VALUE] where VALUE is a str (single
# attribute) or a list of [SUBKEY, str] (vector attribute).

class TemplateSyntaxError(Exception):
    pass


# oned's template lexer (src/parsers/template_parser.l), rule by rule, in
# flex's way: the longest match wins, then the first rule. INITIAL state:
_LEX_INITIAL = [
    (re.compile(r"[ \t]*#[^\n]*\n"), None),                # comment line
    (re.compile(r"[ \t\n]+"), None),                       # blanks
    (re.compile(r"[A-Za-z0-9_]+"), "VARIABLE"),
    (re.compile(r"[ \t]*=[ \t]*"), "EQUAL"),               # -> VALUE
    (re.compile(r"[ \t]*=[ \t]*\n"), "EQUAL_EMPTY"),
    (re.compile(r"[ \t\n]*,[ \t\n]*"), "COMMA"),
    (re.compile(r"[ \t\n]*\][ \t\n]*"), "CBRACKET"),
]
# VALUE state (after EQUAL; every token goes back to INITIAL)
_LEX_VALUE = [
    (re.compile(r"[ \t]*\[[ \t\n]*"), "OBRACKET"),
    (re.compile(r"[^\n]*\]\]>[^\n]*"), "CCDATA"),
    ("quoted", "STRING"),                                  # "...\"..."
    (re.compile(r"[^=#\t \n,\[\]]+"), "STRING"),
]
# bison's token numbers order the "expecting" lists
_TOKEN_ORDER = ["$end", "EQUAL", "COMMA", "OBRACKET", "CBRACKET",
                "EQUAL_EMPTY", "CCDATA", "STRING", "VARIABLE"]


def _quoted_end(text, i):
    """End of flex's longest match of \"([^\"]|\\\")*\" at i, or None: the
    last quote before the first one that no backslash escapes."""
    if i >= len(text) or text[i] != '"':
        return None
    end = None
    j = i + 1
    while True:
        j = text.find('"', j)
        if j < 0:
            return end
        end = j + 1
        if text[j - 1] != "\\" or j - 1 == i:
            return end
        j += 1


def _lex_template(text):
    """Tokens of OpenNebula template syntax, as oned's flex lexer gives
    them: (kind, value, line, first column, last column), ending with
    $end. Columns count from the start of the text, not of the line
    (YY_USER_ACTION never resets them), and every match moves them,
    skipped blanks and comments included, so $end has the place of the
    last match. A character no rule matches is skipped (flex's default
    rule)."""
    i, n = 0, len(text)
    line, last_col = 1, 1
    value_state = False
    first_col = 1
    while i < n:
        best_len, best_kind = 0, None
        for rule, kind in (_LEX_VALUE if value_state else _LEX_INITIAL):
            if rule == "quoted":
                end = _quoted_end(text, i)
                length = 0 if end is None else end - i
            else:
                match = rule.match(text, i)
                length = match.end() - i if match else 0
            if length > best_len:
                best_len, best_kind = length, kind
        if best_len == 0:                  # flex's default rule: skip one
            best_len, best_kind = 1, None
        lexeme = text[i:i + best_len]
        first_col, last_col = last_col, last_col + best_len
        tok_line = line
        line += lexeme.count("\n")
        i += best_len
        if best_kind is None:
            continue
        if best_kind == "EQUAL":
            value_state = True
        elif value_state:
            value_state = False
        if best_kind == "STRING" and lexeme.startswith('"') and \
                _quoted_end(lexeme, 0) == len(lexeme):
            value = lexeme[1:-1].replace('\\"', '"')       # unescape()
        elif best_kind in ("STRING", "VARIABLE"):
            value = lexeme
        else:
            value = ""
        yield (best_kind, value, tok_line, first_col, last_col)
    yield ("$end", "", line, first_col, last_col)


def parse_template_text(text):
    """oned's template grammar (src/parsers/template_syntax.y) with bison's
    error messages: "syntax error, unexpected X, expecting A or B at line
    L, columns F:L" (the expected tokens in bison's order; where a new
    attribute may start, only $end, bison's default reduction)."""
    tokens = _lex_template(text)
    state = {"tok": next(tokens)}

    def peek():
        return state["tok"][0]

    def take(*expected):
        tok = state["tok"]
        if tok[0] not in expected:
            raise TemplateSyntaxError(
                "syntax error, unexpected %s, expecting %s at line %d, "
                "columns %d:%d" % (tok[0], " or ".join(
                    t for t in _TOKEN_ORDER if t in expected), tok[2],
                    tok[3], tok[4]))
        if tok[0] != "$end":
            state["tok"] = next(tokens)
        return tok

    attrs = []
    while peek() != "$end":
        if peek() != "VARIABLE":
            take("$end")
        key = take("VARIABLE")[1].upper()
        if take("EQUAL", "EQUAL_EMPTY")[0] == "EQUAL_EMPTY":
            attrs.append([key, ""])
            continue
        tok = take("OBRACKET", "CCDATA", "STRING")
        if tok[0] == "STRING":
            attrs.append([key, tok[1]])
            continue
        if tok[0] == "CCDATA":
            # the grammar aborts here (YYABORT), without a message
            raise TemplateSyntaxError("")
        vector = []
        tok = take("CBRACKET", "VARIABLE")
        while tok[0] == "VARIABLE":
            name = tok[1].upper()
            take("EQUAL")
            value = take("STRING")[1]
            # a map's insert: the first value of a repeated key stays
            if all(k != name for k, _ in vector):
                vector.append([name, value])
            if take("COMMA", "CBRACKET")[0] == "CBRACKET":
                break
            tok = take("VARIABLE")
        attrs.append([key, vector])
    return attrs


def _vector_set(vector, key, value):
    for item in vector:
        if item[0] == key:
            item[1] = value
            return
    vector.append([key, value])


def parse_template_xml(text):
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        raise TemplateSyntaxError("XML Template malformed.") from None
    attrs = []
    for child in root:
        if len(child):
            vector = []
            for sub in child:
                _vector_set(vector, sub.tag, sub.text or "")
            attrs.append([child.tag, vector])
        else:
            attrs.append([child.tag, child.text or ""])
    return attrs


def _trimmed(attrs):
    """Template::trim_attributes: blanks around every value go."""
    blanks = " \t\n\v\f\r"
    return [[k, v.strip(blanks) if isinstance(v, str) else
             [[sk, sv.strip(blanks)] for sk, sv in v]] for k, v in attrs]


def parse_template(text):
    """Parse 'KEY="v"' syntax or an XML template, as oned's parse_str_or_xml
    (XML when the very first character is '<')."""
    if text.startswith("<"):
        return _trimmed(parse_template_xml(text))
    return _trimmed(parse_template_text(text))


def parse_error_message(exc):
    """parse_str_or_xml's message: "Parse error: WHY", or "Parse error."
    when the parser gave no reason."""
    return "Parse error: %s" % exc if str(exc) else "Parse error."


def parse_or_fail(text):
    try:
        return parse_template(text)
    except TemplateSyntaxError as exc:
        raise OnedError(INTERNAL, parse_error_message(exc)) from None


def tget(tpl, key, default=None):
    for k, v in tpl:
        if k == key and isinstance(v, str):
            return v
    return default


def tvectors(tpl, key):
    return [v for k, v in tpl if k == key and isinstance(v, list)]


def tset(tpl, key, value):
    terase(tpl, key)
    tpl.append([key, value])


def terase(tpl, key):
    tpl[:] = [a for a in tpl if a[0] != key]


def tmerge(tpl, new):
    for key in {k for k, _ in new}:
        terase(tpl, key)
    for k, v in new:
        tpl.append([k, v if isinstance(v, str) else [list(x) for x in v]])


def cdata(value):
    return "<![CDATA[%s]]>" % str(value).replace("]]>", "]]]]><![CDATA[>")


def _sorted_attrs(attrs):
    # std::multimap order: by key, insertion order among equal keys
    return sorted(attrs, key=lambda a: a[0])


def template_xml(tpl, tag="TEMPLATE"):
    out = ["<%s>" % tag]
    for key, value in _sorted_attrs(tpl):
        if isinstance(value, str):
            out.append("<%s>%s</%s>" % (key, cdata(value), key))
        else:
            out.append("<%s>" % key)
            for sk, sv in _sorted_attrs(value):
                out.append("<%s>%s</%s>" % (sk, cdata(sv), sk))
            out.append("</%s>" % key)
    out.append("</%s>" % tag)
    return "".join(out)


def ids_xml(tag, ids):
    return "<%s>%s</%s>" % (tag, "".join("<ID>%d</ID>" % i for i in sorted(ids)),
                            tag)


def opt_cdata(tag, value):
    """<TAG/> when empty, <TAG><![CDATA[v]]></TAG> otherwise (oned's VNET)."""
    value = "" if value is None else str(value)
    if value == "":
        return "<%s/>" % tag
    return "<%s>%s</%s>" % (tag, cdata(value), tag)


def perms_xml(bits):
    names = ["OWNER_U", "OWNER_M", "OWNER_A", "GROUP_U", "GROUP_M", "GROUP_A",
             "OTHER_U", "OTHER_M", "OTHER_A"]
    return "<PERMISSIONS>%s</PERMISSIONS>" % "".join(
        "<%s>%d</%s>" % (n, b, n) for n, b in zip(names, bits))
