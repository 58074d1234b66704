"""How long ``import codemode`` takes in a fresh interpreter (issue 17: <= 150 ms here).

    python3 benches/import_time.py [--runs 15]

Each run starts a new Python process that times the import with ``time.perf_counter`` (the
interpreter's own start-up is not counted); prints the median and the minimum, and the
modules ``-X importtime`` finds slowest in one more run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

TIMED = "import time; t = time.perf_counter(); import codemode; print((time.perf_counter() - t) * 1000)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    samples = [
        float(
            subprocess.run([sys.executable, "-c", TIMED], capture_output=True, text=True, check=True).stdout
        )
        for _ in range(args.runs)
    ]
    median, fastest = statistics.median(samples), min(samples)
    print(f"import codemode: median {median:.1f} ms, min {fastest:.1f} ms ({args.runs} runs)")
    profile = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import codemode"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr.splitlines()[1:]
    rows = sorted((int(line.split("|")[1]), line.split("|")[2].rstrip()) for line in profile if "|" in line)
    print("slowest (cumulative us):")
    for cumulative, name in rows[-8:][::-1]:
        print(f"  {cumulative:8d}  {name.strip()}")


if __name__ == "__main__":
    main()
