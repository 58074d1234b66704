"""A Griffe extension for the API reference: the docstrings' reST markup, rendered.

The docstrings are written to be read in an editor, with Sphinx roles
(:class:`Limits`, :meth:`CodeMode.resume`, :func:`~codemode.skills.with_skills`) and
paragraphs that end in ``::`` before an indented example. The reference renders docstrings
as Markdown, where both would show as written. This extension, loaded by mkdocstrings
(``extensions`` in mkdocs.yml), rewrites each docstring once the package is loaded:

- a role becomes an *optional* cross-reference (the name resolved in the docstring's own
  scope, ``~`` keeping only its last part): a link when the reference renders that object,
  plain code when it does not, never a warning;
- a closing ``::`` becomes ``:``, and a line of only ``::`` goes (the indented block after it
  is a code block in Markdown too);
- reST's escaped space after inline markup (``\\ `` in ``Tool``\\ s) goes.

It is part of the documentation's build only; nothing in the package imports it.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|data|exc|obj|const):`(~?)([^`<>]+)`")
_LITERAL_BLOCK = re.compile(r"(?<=\S)::(?=\n\s*\n)")
_LONE_LITERAL_MARKER = re.compile(r"^[ \t]*::[ \t]*\n(?=[ \t]*\n)", re.MULTILINE)
_ESCAPED_SPACE = re.compile(r"(?<=`)\\ ")


class SphinxRoles(griffe.Extension):
    """Rewrites the roles and literal-block markers of every docstring of a loaded package."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for obj in _objects(pkg):
            if obj.docstring is not None:
                obj.docstring.value = _rewrite(obj, obj.docstring.value)


def _objects(obj: griffe.Object) -> Any:
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _objects(member)  # type: ignore[arg-type]


def _rewrite(obj: griffe.Object, text: str) -> str:
    def link(match: re.Match[str]) -> str:
        short, name = match.group(1), match.group(2).strip()
        title = name.rsplit(".", 1)[-1] if short else name
        return f'<autoref identifier="{_resolve(obj, name)}" optional><code>{title}</code></autoref>'

    text = _ROLE.sub(link, _ESCAPED_SPACE.sub("", text))
    return _LONE_LITERAL_MARKER.sub("", _LITERAL_BLOCK.sub(":", text))


def _resolve(obj: griffe.Object, name: str) -> str:
    """The full path of ``name`` as the docstring of ``obj`` means it (``name`` itself when
    it is already full, or when it cannot be resolved)."""
    if name.startswith("codemode."):
        return name
    head, _, rest = name.partition(".")
    scope: griffe.Object | None = obj
    while scope is not None:
        try:
            path = scope.resolve(head)
        except (griffe.NameResolutionError, AttributeError):
            scope = scope.parent
            continue
        return f"{path}.{rest}" if rest else path
    return name
