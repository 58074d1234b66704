"""``python -m codemode``: the ``codemode`` command (:func:`codemode.cli.main`)."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
