"""Quoting untrusted text (manifest values, error details, video ids, reasons) into
what we render: markdown/HTML for the dataset card, plain text for a terminal.

A quoted value can neither start markup (a link, an image, a tag, a table cell, a
heading) nor break the line it sits in, and is cut at ``limit`` characters.
"""

from __future__ import annotations

import html
import re

# Every C0/C1 control (NUL, ESC of terminal sequences, newlines, tabs) and the Unicode
# line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Markdown's inline punctuation that can open or close markup (links, images, code,
# emphasis, strikethrough, table cells); an underscore only at a word's edge (inside a
# word, as in ``wrong_language``, it cannot). <>&"' are left to html.escape.
_MARKDOWN = re.compile(r"([\\`*\[\]()!|~]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z]))")
# What would start a block (heading, list, quote) when a value opens a list item.
_BLOCK_START = re.compile(r"^(\s*\d*)([#+\-=>.)])")


def _cut(value: object, limit: int) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "…"


def quote_md(value: object, limit: int = 200) -> str:
    """``value`` as inert text inside a markdown line or table cell."""
    text = _MARKDOWN.sub(r"\\\1", _CONTROL.sub(" ", _cut(value, limit)))
    text = _BLOCK_START.sub(lambda m: m.group(1) + "\\" + m.group(2), text)
    return html.escape(text, quote=True)


def quote_terminal(value: object, limit: int = 200) -> str:
    """``value`` on one terminal line: control characters shown escaped (``\\x1b``),
    never sent to the terminal."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), _cut(value, limit))
