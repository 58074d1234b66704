"""``codemode cloudflare``: write the Worker's project (and deploy it), or run it locally."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..cli_errors import CliError, ExitCode
from .bundle import COMPATIBILITY_DATE, worker_script

WRANGLER_CONFIG = "wrangler.jsonc"


def wrangler_config(name: str) -> str:
    """The ``wrangler.jsonc`` of the Worker: the script, its Worker Loader binding, no routes."""
    config = {
        "$schema": "node_modules/wrangler/config-schema.json",
        "name": name,
        "main": "worker.js",
        "compatibility_date": COMPATIBILITY_DATE,
        "worker_loaders": [{"binding": "LOADER"}],
    }
    return (
        "// codemode's Worker: runs the programs of codemode.CloudflareDriver.\n"
        "// Its secret (16 characters or more, as given to the driver): `npx wrangler secret put SECRET`\n"
        + json.dumps(config, indent=2)
        + "\n"
    )


def write_project(directory: Path, name: str, *, force: bool = False) -> list[Path]:
    """Write ``worker.js`` and ``wrangler.jsonc`` into ``directory``; the paths written.
    ``FileExistsError`` if a project is there already (unless ``force``)."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / WRANGLER_CONFIG
    if config.exists() and not force:
        raise FileExistsError(f"{config} exists (--force writes over it)")
    script = directory / "worker.js"
    script.write_text(worker_script(), encoding="utf-8")
    config.write_text(wrangler_config(name), encoding="utf-8")
    return [config, script]


def _init(args: argparse.Namespace) -> int:
    directory = Path(args.directory)
    try:
        written = write_project(directory, args.name, force=args.force)
    except FileExistsError as e:
        raise CliError(f"codemode cloudflare init: {e}", ExitCode.USAGE) from None
    for path in written:
        print(f"wrote {path}")
    print(
        f"\nNext:\n  cd {directory}\n  npx wrangler secret put SECRET   # 16 characters or more\n"
        "  npx wrangler deploy\nthen: CloudflareDriver('https://<name>.<account>.workers.dev', secret)"
    )
    if args.deploy:
        npx = shutil.which("npx")
        if npx is None:
            raise CliError(
                "codemode cloudflare init: --deploy needs npx (Node.js) on the PATH", ExitCode.ENVIRONMENT
            )
        return subprocess.call([npx, "--yes", "wrangler", "deploy"], cwd=directory)
    return 0


def _dev(args: argparse.Namespace) -> int:
    from .local import LocalWorker

    try:
        worker = LocalWorker(port=args.port, host=args.host, secret=args.secret)
        worker.start()
    except RuntimeError as e:  # no workerd, or it did not start
        raise CliError(f"codemode cloudflare dev: {e}", ExitCode.ENVIRONMENT) from None
    print(f"the Worker is on {worker.url} (local workerd; Ctrl-C stops it)")
    print(f"secret: {worker.secret}")
    print(f"\n    codemode.CloudflareDriver({worker.url!r}, {worker.secret!r})\n", flush=True)
    stalled_since: float | None = None
    try:
        while True:
            time.sleep(0.5)
            proc = worker.proc
            if proc is not None and proc.poll() is not None:
                print("workerd stopped; starting it again", file=sys.stderr, flush=True)
                worker.restart()
                stalled_since = None
            elif not worker.answers():
                # A local workerd has no CPU limit: a program that never yields holds it.
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since >= args.restart_after:
                    print(
                        f"workerd has not answered for {args.restart_after:g} s (a program that never "
                        "yields?); starting it again",
                        file=sys.stderr,
                        flush=True,
                    )
                    worker.restart()
                    stalled_since = None
            else:
                stalled_since = None
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    finally:
        worker.stop()


def add_cloudflare_commands(commands: Any) -> None:
    """The ``cloudflare`` command and its actions, on the CLI's subparsers."""
    cloudflare = commands.add_parser(
        "cloudflare",
        help="the Worker of CloudflareDriver: write its project and deploy it, or run it locally",
    )
    actions = cloudflare.add_subparsers(dest="cloudflare_command", required=True)
    init = actions.add_parser("init", help="write the Worker's project (worker.js, wrangler.jsonc)")
    init.add_argument(
        "directory", nargs="?", default="codemode-worker", help="where (default ./codemode-worker)"
    )
    init.add_argument("--name", default="codemode", help="the Worker's name (default codemode)")
    init.add_argument("--force", action="store_true", help="write over an existing project")
    init.add_argument("--deploy", action="store_true", help="then deploy it with `npx wrangler deploy`")
    init.set_defaults(handler=_init)
    dev = actions.add_parser("dev", help="run the Worker on a local workerd and print its URL and secret")
    dev.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    dev.add_argument("--port", type=int, default=8787, help="port (default 8787)")
    dev.add_argument("--secret", help="the secret to use (default: a new random one)")
    dev.add_argument(
        "--restart-after",
        type=float,
        default=5.0,
        help="restart workerd when it has not answered for this many seconds (default 5)",
    )
    dev.set_defaults(handler=_dev)
