"""``codemode skills`` end to end, in a subprocess, on a SQLite store and a file store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from codemode.skills import FileSkillStore, MemorySkillStore, Skill, SQLiteSkillStore
from codemode.skills.url import store_from_url

from .conftest import REPO_ROOT

SCHEMA = {"type": "object", "properties": {"n": {"type": "number"}}, "required": ["n"]}


def skills_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codemode.cli", "skills", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def seed(url: str) -> None:
    """Two skills, the first with two versions and a few runs."""

    async def main() -> None:
        store = store_from_url(url)
        try:
            await store.save(Skill(name="double", description="Double a number", code="return input.n * 2;"))
            await store.save(
                Skill(
                    name="double",
                    description="Double a number",
                    code="return { value: input.n * 2 };",
                    input_schema=SCHEMA,
                    usage_hints=["n is any number"],
                )
            )
            for success in (True, True, False):
                await store.record_run("double", success)
            await store.save(
                Skill(
                    name="quadruple",
                    description="Multiply by four",
                    code="const d = await skill_double(input);\nreturn skill_double({ n: d.value });",
                    depends_on=["double"],
                )
            )
        finally:
            await store.aclose()

    anyio.run(main)


@pytest.fixture(params=["sqlite", "file"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'skills.db'}"
    return f"file://{tmp_path / 'skills'}"


def test_store_from_url(tmp_path: Path) -> None:
    assert isinstance(store_from_url(f"sqlite://{tmp_path}/a.db"), SQLiteSkillStore)
    assert store_from_url(f"sqlite://{tmp_path}/a%20b.db").path == f"{tmp_path}/a b.db"  # type: ignore[attr-defined]
    assert store_from_url("sqlite:relative.db").path == "relative.db"  # type: ignore[attr-defined]
    assert store_from_url(f"file://{tmp_path}/d").directory == tmp_path / "d"  # type: ignore[attr-defined]
    assert isinstance(store_from_url("file:dir"), FileSkillStore)
    assert isinstance(store_from_url("memory:"), MemorySkillStore)
    for bad in ("sqlite://host/x.db", "redis://x", "skills.db", "sqlite://"):
        with pytest.raises(ValueError):
            store_from_url(bad)


def test_list_show_rm(store_url: str) -> None:
    seed(store_url)
    listing = skills_cli("list", "--store", store_url)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].split()[:4] == ["double", "v2", "untrusted", "3"]
    assert "67%" in lines[0] and lines[0].endswith("Double a number")
    assert lines[1].split()[:2] == ["quadruple", "v1"]

    as_json = json.loads(skills_cli("list", "--json", "--store", store_url).stdout)
    assert [s["name"] for s in as_json] == ["double", "quadruple"]
    assert "code" not in as_json[0] and as_json[0]["stats"]["executions"] == 3

    shown = skills_cli("show", "quadruple", "--store", store_url)
    assert shown.returncode == 0
    assert "quadruple (version 1, untrusted)" in shown.stdout
    assert "depends on: double" in shown.stdout
    assert shown.stdout.rstrip().endswith("return skill_double({ n: d.value });")
    old = json.loads(skills_cli("show", "double", "--version", "1", "--json", "--store", store_url).stdout)
    assert old["version"] == 1 and old["code"] == "return input.n * 2;"

    missing = skills_cli("show", "nothing", "--store", store_url)
    assert missing.returncode == 1 and "no skill 'nothing'" in missing.stderr

    removed = skills_cli(
        "rm", "double", env={"CODEMODE_SKILLS_STORE": store_url}
    )  # the store from the environment
    assert removed.returncode == 0 and removed.stdout.strip() == "removed double"
    assert skills_cli("rm", "double", "--store", store_url).returncode == 1
    assert [s["name"] for s in json.loads(skills_cli("list", "--json", "--store", store_url).stdout)] == [
        "quadruple"
    ]


def test_trust(store_url: str) -> None:
    seed(store_url)
    approved = skills_cli("trust", "double", "trusted", "--store", store_url)
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.strip() == "double version 2: trusted"
    listing = skills_cli("list", "--store", store_url).stdout.splitlines()
    assert listing[0].split()[:4] == ["double", "v2", "trusted", "3"]  # the runs stay
    old = skills_cli("trust", "double", "provisional", "--version", "1", "--store", store_url)
    assert old.returncode == 0 and old.stdout.strip() == "double version 1: provisional"
    shown = json.loads(skills_cli("show", "double", "--version", "1", "--json", "--store", store_url).stdout)
    assert shown["trust_level"] == "provisional"
    again = skills_cli("trust", "double", "trusted", env={"CODEMODE_SKILLS_STORE": store_url})
    assert again.returncode == 0 and again.stdout.strip() == "double version 2: trusted"


def test_trust_errors(store_url: str) -> None:
    seed(store_url)
    for args, message in (
        (("nothing", "trusted"), "codemode skills: no skill 'nothing'"),
        (("double", "trusted", "--version", "5"), "codemode skills: no skill 'double' version 5"),
        (("double", "approved"), "codemode skills: unknown trust level 'approved'"),
    ):
        failed = skills_cli("trust", *args, "--store", store_url)
        assert failed.returncode == 1, (args, failed.stderr)
        assert failed.stdout == "" and len(failed.stderr.splitlines()) == 1  # one line, no traceback
        assert failed.stderr.startswith(message), failed.stderr
    shown = json.loads(skills_cli("show", "double", "--json", "--store", store_url).stdout)
    assert shown["trust_level"] == "untrusted"


def test_export_then_import(store_url: str, tmp_path: Path) -> None:
    seed(store_url)
    exported = tmp_path / "exported"
    out = skills_cli("export", str(exported), "--store", store_url)
    assert out.returncode == 0, out.stderr
    assert "exported 2 skills" in out.stdout
    # the FileSkillStore layout: a .ts with the code and a .json with the metadata per skill
    assert (exported / "double.ts").read_text() == "return { value: input.n * 2 };"
    meta = json.loads((exported / "double.json").read_text())
    assert meta["input_schema"] == SCHEMA and meta["usage_hints"] == ["n is any number"]
    assert meta["version"] == 1 and meta["stats"]["executions"] == 0  # a copy starts again

    target = f"sqlite://{tmp_path / 'imported.db'}"
    imported = skills_cli("import", str(exported), "--store", target)
    assert imported.returncode == 0, imported.stderr
    assert "imported 2 skills" in imported.stdout
    again = skills_cli("import", str(exported), "--store", target)
    assert "imported 0 skills" in again.stdout and "(2 unchanged)" in again.stdout
    skill = json.loads(skills_cli("show", "quadruple", "--json", "--store", target).stdout)
    assert skill["depends_on"] == ["double"] and skill["version"] == 1

    # every version, oldest first
    history = tmp_path / "history"
    assert skills_cli("export", str(history), "--all-versions", "--store", store_url).returncode == 0
    first = json.loads(
        skills_cli("show", "double", "--version", "1", "--json", "--store", f"file://{history}").stdout
    )
    assert first["code"] == "return input.n * 2;"


def test_errors(tmp_path: Path) -> None:
    no_store = skills_cli("list", env={"CODEMODE_SKILLS_STORE": ""})
    assert no_store.returncode != 0 and "give --store URL" in no_store.stderr
    bad = skills_cli("list", "--store", "redis://x")
    assert bad.returncode != 0 and "not a skill store URL" in bad.stderr
    not_dir = skills_cli("import", str(tmp_path / "missing"), "--store", f"sqlite://{tmp_path}/s.db")
    assert not_dir.returncode == 6 and "is not a directory" in not_dir.stderr  # ExitCode.ENVIRONMENT
    empty = skills_cli("list", "--store", f"file://{tmp_path}/empty")
    assert empty.returncode == 0 and empty.stdout.strip() == "no skills"


def test_postgres_store(postgres_server: str) -> None:
    from .conftest import _new_database

    url = _new_database(postgres_server)
    seed(url)
    listing = skills_cli("list", "--json", "--store", url)
    assert listing.returncode == 0, listing.stderr
    assert [s["name"] for s in json.loads(listing.stdout)] == ["double", "quadruple"]
