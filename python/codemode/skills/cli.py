"""``codemode skills``: look at, approve, remove, export and import the skills of a store.

    codemode skills list [--json] --store URL
    codemode skills show NAME [--version N] [--json] --store URL
    codemode skills trust NAME LEVEL [--version N] --store URL
    codemode skills rm NAME --store URL
    codemode skills export DIR [--all-versions] --store URL
    codemode skills import DIR [--all-versions] --store URL

``--store`` defaults to the ``CODEMODE_SKILLS_STORE`` environment variable (URL forms in
:func:`~.url.store_from_url`). ``trust`` sets the trust level of a skill's latest version (or
of ``--version N``) as a person's decision: ``trusted`` approves it, ``untrusted`` revokes that
(:meth:`~.store.SkillStore.set_trust`; its stats stay, and later runs keep promoting or demoting
it from there).

``export`` writes the skills into ``DIR`` as a :class:`~.file.FileSkillStore` (one ``.ts`` and
one ``.json`` per skill, to review in a pull request); ``import`` saves every skill of such a
directory into the store. Both copy the latest version of each skill (``--all-versions``: every
version, oldest first). Copying is saving: in the destination each copied version is a new
version with fresh stats and the initial trust level; a skill whose latest version already has
the same code and metadata is skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import anyio
import pydantic

from ..cli_errors import CliError, ExitCode, describe, redact_url
from .file import FileSkillStore
from .models import TRUST_LEVELS, Skill, SkillNotFoundError
from .store import SkillStore
from .url import STORE_URL_FORMS, store_from_url

STORE_ENVIRONMENT = "CODEMODE_SKILLS_STORE"

_CONTENT_FIELDS = ("description", "code", "input_schema", "output_schema", "usage_hints", "depends_on")


async def copy_skills(
    source: SkillStore, destination: SkillStore, *, all_versions: bool = False
) -> dict[str, int]:
    """Save the skills of ``source`` into ``destination``; returns ``{"copied": n, "unchanged": m}``
    (counting skills). Skills whose latest version already matches in ``destination`` are skipped."""
    copied = unchanged = 0
    for summary in await source.list_index():
        numbers = await source.versions(summary.name) if all_versions else [summary.version]
        versions = [skill for number in numbers if (skill := await source.get(summary.name, version=number))]
        existing = await destination.get(summary.name)
        if existing is not None and versions and _same(existing, versions[-1]):
            unchanged += 1
            continue
        for skill in versions:
            await destination.save(skill)
        copied += 1
    return {"copied": copied, "unchanged": unchanged}


def _same(a: Skill, b: Skill) -> bool:
    return all(getattr(a, name) == getattr(b, name) for name in _CONTENT_FIELDS)


_CREATES = ("import",)
"""The commands that make a SQLite store that does not exist; the others say it is missing."""


def _open(args: argparse.Namespace) -> SkillStore:
    url = args.store or os.environ.get(STORE_ENVIRONMENT)
    if not url:
        raise CliError(f"codemode skills: give --store URL or set {STORE_ENVIRONMENT} ({STORE_URL_FORMS})")
    try:
        return store_from_url(url, create=args.skills_command in _CREATES)
    except ValueError as e:
        raise CliError(f"codemode skills: {e}") from None
    except FileNotFoundError as e:
        raise CliError(
            f"codemode skills: no such store: {e.filename} (it is made by commands that write, "
            f"e.g. `codemode skills import DIR --store {url}`)",
            ExitCode.ENVIRONMENT,
        ) from None
    except ImportError as e:
        raise CliError(
            f"codemode skills: {e} (a PostgreSQL store needs pip install 'codemode[postgres]')",
            ExitCode.ENVIRONMENT,
        ) from None


def _run(args: argparse.Namespace, command: Any) -> int:
    store = _open(args)

    async def main() -> int:
        try:
            return int(await command(store, args))
        finally:
            await store.aclose()

    try:
        return anyio.run(main)
    except CliError:
        raise
    except (pydantic.ValidationError, json.JSONDecodeError) as e:  # a file store's .json, or DIR's
        first = e.errors()[0] if isinstance(e, pydantic.ValidationError) else None
        what = f"{'.'.join(map(str, first['loc']))}: {first['msg']}" if first else str(e)
        raise CliError(
            f"codemode skills: a .json file there is not a skill ({what}); "
            "is it a directory written by `codemode skills export`?",
            ExitCode.ENVIRONMENT,
        ) from e
    except Exception as e:
        message, code = describe(e)
        if code != ExitCode.ENVIRONMENT:
            raise
        url = redact_url(args.store or os.environ.get(STORE_ENVIRONMENT, ""))
        raise CliError(f"codemode skills: the store {url}: {message}", code) from e


async def _list(store: SkillStore, args: argparse.Namespace) -> int:
    index = await store.list_index()
    if args.json:
        print(
            json.dumps([summary.model_dump(mode="json") for summary in index], indent=2, ensure_ascii=False)
        )
        return 0
    if not index:
        print("no skills")
        return 0
    width = max(len(summary.name) for summary in index)
    for summary in index:
        stats = summary.stats
        rate = f"{stats.success_rate:4.0%}" if stats.executions else "   -"
        print(
            f"{summary.name:<{width}}  v{summary.version:<3} {summary.trust_level:<11} "
            f"{stats.executions:>6} runs {rate}  {summary.description}"
        )
    return 0


async def _show(store: SkillStore, args: argparse.Namespace) -> int:
    skill = await store.get(args.name, version=args.version)
    if skill is None:
        version = f" version {args.version}" if args.version else ""
        print(f"codemode skills: no skill {args.name!r}{version}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(skill.model_dump(mode="json"), indent=2, ensure_ascii=False))
        return 0
    stats = skill.stats
    print(f"{skill.name} (version {skill.version}, {skill.trust_level})")
    print(f"  {skill.description}")
    for hint in skill.usage_hints:
        print(f"  - {hint}")
    print(f"  runs: {stats.executions}, successes: {stats.successes} ({stats.success_rate:.0%})")
    print(f"  depends on: {', '.join(skill.depends_on) or 'nothing'}")
    print(f"  created {skill.created_at.isoformat()}, updated {skill.updated_at.isoformat()}")
    print(f"  input schema: {json.dumps(skill.input_schema, ensure_ascii=False)}")
    print(f"  output schema: {json.dumps(skill.output_schema, ensure_ascii=False)}")
    print("code:")
    print(skill.code)
    return 0


async def _trust(store: SkillStore, args: argparse.Namespace) -> int:
    try:
        skill = await store.set_trust(args.name, args.level, version=args.version)
    except (SkillNotFoundError, ValueError) as e:
        print(f"codemode skills: {e}", file=sys.stderr)
        return 1
    print(f"{skill.name} version {skill.version}: {skill.trust_level}")
    return 0


async def _rm(store: SkillStore, args: argparse.Namespace) -> int:
    if await store.delete(args.name):
        print(f"removed {args.name}")
        return 0
    print(f"codemode skills: no skill {args.name!r}", file=sys.stderr)
    return 1


async def _export(store: SkillStore, args: argparse.Namespace) -> int:
    directory = FileSkillStore(args.directory)
    counts = await copy_skills(store, directory, all_versions=args.all_versions)
    print(f"exported {counts['copied']} skills to {args.directory} ({counts['unchanged']} unchanged)")
    return 0


async def _import(store: SkillStore, args: argparse.Namespace) -> int:
    if not os.path.isdir(args.directory):
        raise CliError(
            f"codemode skills: {args.directory} is not a directory (import reads an export's DIR)",
            ExitCode.ENVIRONMENT,
        )
    counts = await copy_skills(FileSkillStore(args.directory), store, all_versions=args.all_versions)
    print(f"imported {counts['copied']} skills from {args.directory} ({counts['unchanged']} unchanged)")
    return 0


def add_skills_commands(commands: Any) -> None:
    """Add ``skills list|show|trust|rm|export|import`` to the ``codemode`` command's subparsers."""
    skills: argparse.ArgumentParser = commands.add_parser(
        "skills", help="list, show, approve (trust), remove, export and import saved skills"
    )
    actions = skills.add_subparsers(dest="skills_command", required=True)
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument("--store", help=f"the store URL (default ${STORE_ENVIRONMENT}): {STORE_URL_FORMS}")

    def add(name: str, help: str, command: Any) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help, parents=[store])
        parser.set_defaults(handler=lambda args: _run(args, command))
        return parser

    listing = add("list", "every skill: version, trust, runs, description", _list)
    listing.add_argument("--json", action="store_true", help="print the index as JSON")
    show = add("show", "one skill with its code", _show)
    show.add_argument("name")
    show.add_argument("--version", type=int, help="a previous version (default: the latest)")
    show.add_argument("--json", action="store_true", help="print the skill as JSON")
    trust = add("trust", "set a skill's trust level by hand (trusted: approve it)", _trust)
    trust.add_argument("name")
    trust.add_argument("level", metavar="LEVEL", help=f"one of {', '.join(TRUST_LEVELS)}")
    trust.add_argument("--version", type=int, help="a previous version (default: the latest)")
    remove = add("rm", "remove a skill and all its versions", _rm)
    remove.add_argument("name")
    for name, help, command in (
        ("export", "write the skills into DIR as .ts + .json files", _export),
        ("import", "save the skills of DIR (an export) into the store", _import),
    ):
        parser = add(name, help, command)
        parser.add_argument("directory", metavar="DIR")
        parser.add_argument("--all-versions", action="store_true", help="copy every version, oldest first")
