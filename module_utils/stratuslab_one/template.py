# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenNebula template text: render a dict as ``KEY="value"`` lines, parse it back, compare attributes."""

from __future__ import annotations

import re

from ansible.module_utils.stratuslab_one.errors import OneError


_KEY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-.]*$")


def quote_value(value):
    """Quote a scalar for OpenNebula's template syntax.

    oned's lexer knows a single escape, ``\\"`` for a double quote; every
    other backslash is literal.  So only quotes are escaped, and a value
    ending with a backslash cannot be written (it would escape the closing
    quote) and is refused.
    """
    if isinstance(value, bool):
        value = "YES" if value else "NO"
    text = str(value)
    if text.endswith("\\"):
        raise OneError("OpenNebula template values cannot end with a backslash: %r" % text)
    return '"' + text.replace('"', '\\"') + '"'


def _check_key(key):
    key = str(key)
    if not _KEY_RE.match(key):
        raise OneError("Invalid OpenNebula template attribute name %r" % key)
    return key.upper()


def render_vector(key, attrs):
    """``KEY=[A="1",B="2"]`` (one line)."""
    inner = ",".join("%s=%s" % (_check_key(k), quote_value(v)) for k, v in attrs.items()
                     if v is not None)
    return "%s=[%s]" % (_check_key(key), inner)


def render_template(attrs):
    """Render a dict as OpenNebula template text.

    Scalars become ``KEY="value"``, dicts become vector attributes
    ``KEY=[SUB="v",...]``, lists repeat the attribute (so a list of dicts
    gives several ``AR=[...]``).  None values are skipped, keys upper-cased.
    """
    lines = []
    for key, value in attrs.items():
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, dict):
                lines.append(render_vector(key, item))
            else:
                lines.append("%s=%s" % (_check_key(key), quote_value(item)))
    return "\n".join(lines) + ("\n" if lines else "")


class _TemplateParser:
    def __init__(self, text):
        self.text = text
        self.pos = 0

    def error(self, msg):
        line = self.text.count("\n", 0, self.pos) + 1
        raise OneError("Template parse error at line %d: %s" % (line, msg))

    def skip(self, newlines=True):
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            elif char in " \t\r" or (newlines and char == "\n"):
                self.pos += 1
            else:
                break

    def key(self):
        match = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-.]*").match(self.text, self.pos)
        if not match:
            self.error("attribute name expected")
        self.pos = match.end()
        return match.group(0).upper()

    def expect(self, char):
        self.skip()
        if not self.text.startswith(char, self.pos):
            self.error("%r expected" % char)
        self.pos += 1

    def scalar(self, in_vector):
        self.skip(newlines=False)
        if self.text.startswith('"', self.pos):
            self.pos += 1
            out = []
            while True:
                if self.pos >= len(self.text):
                    self.error("unterminated string")
                char = self.text[self.pos]
                if char == "\\" and self.pos + 1 < len(self.text) and self.text[self.pos + 1] == '"':
                    out.append(self.text[self.pos + 1])
                    self.pos += 2
                elif char == '"':
                    self.pos += 1
                    return "".join(out)
                else:
                    out.append(char)
                    self.pos += 1
        stop = ",]\n" if in_vector else "\n"
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in stop and self.text[self.pos] != "#":
            self.pos += 1
        return self.text[start:self.pos].strip()

    def parse(self):
        result = {}
        while True:
            self.skip()
            if self.pos >= len(self.text):
                return result
            key = self.key()
            self.expect("=")
            self.skip(newlines=False)
            if self.text.startswith("[", self.pos):
                self.pos += 1
                value = {}
                while True:
                    self.skip()
                    if self.text.startswith("]", self.pos):
                        self.pos += 1
                        break
                    sub = self.key()
                    self.expect("=")
                    value[sub] = self.scalar(in_vector=True)
                    self.skip()
                    if self.text.startswith(",", self.pos):
                        self.pos += 1
                    elif not self.text.startswith("]", self.pos):
                        self.error("',' or ']' expected")
            else:
                value = self.scalar(in_vector=False)
            if key in result:
                if not isinstance(result[key], list):
                    result[key] = [result[key]]
                result[key].append(value)
            else:
                result[key] = value


def parse_template(text):
    """Parse OpenNebula template text into the structure render_template takes."""
    return _TemplateParser(text or "").parse()


def normalize_attrs(attrs):
    """Upper-case keys and stringify values, to compare with what oned returns."""
    if attrs is None:
        return {}
    out = {}
    for key, value in attrs.items():
        if value is None:
            continue
        out[str(key).upper()] = _normalize_value(value)
    return out


def _normalize_value(value):
    if isinstance(value, dict):
        return normalize_attrs(value)
    if isinstance(value, list):
        return [_normalize_value(v) for v in value]
    if isinstance(value, bool):
        return "YES" if value else "NO"
    return str(value)


def attrs_differ(desired, current):
    """Keys of desired (normalized) whose value differs in current."""
    desired = normalize_attrs(desired)
    return sorted(k for k, v in desired.items() if current.get(k) != v)
