"""MkDocs hooks of the documentation site (``hooks`` in mkdocs.yml).

The pages are also read on GitHub, whose Markdown differs from Python-Markdown's in two ways
the pages rely on. As each page is read, this hook makes Python-Markdown see what GitHub
shows, without changing the files:

- GitHub's tables need a pipe inside a code span escaped (``quickjs\\|v8``); Python-Markdown's
  keep code spans whole and would show the backslash, so it is dropped there (table rows only);
- GitHub starts a list right after a line of text; Python-Markdown needs a blank line before
  it, else the items run into the paragraph, so one is added (outside fenced code).
"""

from __future__ import annotations

import re
from typing import Any

_TABLE_ROW = re.compile(r"^\|.*\|[ \t]*$", re.MULTILINE)
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_LIST_ITEM = re.compile(r"^(?:[-*+]|\d+\.) ")
_FENCE = re.compile(r"^\s*(```|~~~)")


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    return _lists_after_text(_table_pipes(markdown))


def _table_pipes(markdown: str) -> str:
    def row(match: re.Match[str]) -> str:
        return _CODE_SPAN.sub(lambda span: span.group(0).replace("\\|", "|"), match.group(0))

    return _TABLE_ROW.sub(row, markdown)


def _lists_after_text(markdown: str) -> str:
    lines: list[str] = []
    fenced = False
    previous = ""
    for line in markdown.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and _LIST_ITEM.match(line) and _is_text(previous):
            lines.append("")
        lines.append(line)
        previous = "" if fenced else line
    return "\n".join(lines)


def _is_text(line: str) -> bool:
    """A line of a paragraph: not blank, indented, a list item, a heading, a table row or a quote."""
    return bool(line.strip()) and not (line[0] in " \t#|>" or _LIST_ITEM.match(line) or _FENCE.match(line))
