"""Write THIRD_PARTY_NOTICES.md: the crates linked into the extension, by license.

    python3 scripts/third_party_notices.py

Reads ``cargo metadata`` (the normal dependencies of ``codemode-core``, which the wheel's
``_core`` module is built from) and lists each crate with its version and license.
"""

from __future__ import annotations

import collections
import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = """# Third-party notices

codemode is MIT-licensed (LICENSE). Its wheels also contain:

- **QuickJS** (QuickJS-ng, through the `rquickjs` crates; MIT), compiled into `codemode/_core`;
- **isolated-vm** (ISC), the V8 engine addon in `codemode/v8/engine/` when it was built, with its
  license beside it (`LICENSE.isolated-vm`);
- the Rust crates below, compiled into `codemode/_core`, each under the license its authors
  publish on crates.io (where a choice is offered, the first is used here). Their sources are on
  crates.io at the versions given.
"""


def main() -> None:
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    nodes = {node["id"]: node for node in metadata["resolve"]["nodes"]}
    packages = {package["id"]: package for package in metadata["packages"]}
    root = next(p["id"] for p in metadata["packages"] if p["name"] == "codemode-core")
    seen: set[str] = set()
    pending = [root]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        for dependency in nodes[current]["deps"]:
            if any(kind["kind"] is None for kind in dependency["dep_kinds"]):
                pending.append(dependency["pkg"])
    by_license: dict[str, list[str]] = collections.defaultdict(list)
    for package_id in seen:
        package = packages[package_id]
        if package["source"] is None:  # the workspace's own crates (and vendored ones, below)
            continue
        by_license[package["license"] or "see the crate"].append(f"{package['name']} {package['version']}")
    lines = [HEADER]
    for license_name in sorted(by_license):
        lines.append(f"\n## {license_name}\n")
        lines.extend(f"- {crate}" for crate in sorted(by_license[license_name]))
    (ROOT / "THIRD_PARTY_NOTICES.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
