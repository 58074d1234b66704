"""Keep modules and functions small enough to read: no Python module over 700 lines and no
function over 80, outside tests and generated code; no Rust module (a .rs file under
crates/*/src) over 700 lines either. Rust functions are held to 80 lines by clippy
(clippy.toml's too-many-lines-threshold, which each crate's lib.rs turns on).

    python3 scripts/check_sizes.py [--max-module 700] [--max-function 80]

Prints each one over its limit and exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "python" / "codemode"
CRATES = ROOT / "crates"


def oversized(max_module: int, max_function: int) -> list[str]:
    problems: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        name = path.relative_to(ROOT)
        lines = text.count("\n") + 1
        if lines > max_module:
            problems.append(f"{name}: {lines} lines (module limit {max_module})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > max_function:
                    where = f"{name}:{node.lineno}: {node.name}"
                    problems.append(f"{where} is {length} lines (limit {max_function})")
    for path in sorted(CRATES.glob("*/src/**/*.rs")):
        lines = path.read_text().count("\n") + 1
        if lines > max_module:
            name = path.relative_to(ROOT)
            problems.append(f"{name}: {lines} lines (module limit {max_module})")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-module", type=int, default=700)
    parser.add_argument("--max-function", type=int, default=80)
    args = parser.parse_args()
    problems = oversized(args.max_module, args.max_function)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
