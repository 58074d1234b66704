"""Skills as files a person can review in a pull request.

Layout of the directory::

    fetch_weather.ts              the code of the latest version, as it is
    fetch_weather.json            its metadata (schemas, hints, trust, stats, version, digest of the code)
    fetch_weather.versions/
        1.ts  1.json              each previous version, the same way
    .lock                         taken (fcntl.flock) by every write, across processes

Every file is written to a temporary file beside it, flushed to disk and moved into place with
``os.replace``: a crash leaves either the old file or the new one, never half of one. A save
writes the archived copy of the previous version first, then the code, then the metadata (the
commit point); the metadata carries the code's SHA-256, so a reader that finds code newer than
the metadata (a crash between the two) serves the archived code of the version the metadata
names. A ``.ts`` edited by hand (no archived copy with its digest) is served as edited.

Listing and search read every metadata file (BM25 computed in Python): this store is meant for
the hundreds of skills a team reviews, not for 10,000 (use :class:`~.sqlite.SQLiteSkillStore`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from .models import InvalidSkillName, Skill, SkillSummary, TrustLevel, validate_skill_name
from .store import (
    StoreBase,
    bm25_rank,
    checked_trust_level,
    code_digest,
    new_version,
    not_found,
    summaries_by_name,
)
from .trust import TrustStrategy, record_decision, record_outcomes

T = TypeVar("T")

_DIGEST_KEY = "code_sha256"


class FileSkillStore(StoreBase):
    """A :class:`~.store.SkillStore` in ``directory`` (created if missing), one file pair per skill."""

    def __init__(self, directory: str | os.PathLike[str], *, trust: TrustStrategy | None = None) -> None:
        super().__init__(trust)
        self.directory = Path(directory)

    # -- async API: every call runs its blocking file work in a worker thread

    async def get(self, name: str, *, version: int | None = None) -> Skill | None:
        return await self._run(self._get, name, version)

    async def versions(self, name: str) -> list[int]:
        return await self._run(self._versions, name)

    async def save(self, skill: Skill) -> Skill:
        return await self._run(self._save, skill)

    async def delete(self, name: str) -> bool:
        return await self._run(self._delete, name)

    async def list_index(self) -> list[SkillSummary]:
        return await self._run(self._list_index)

    async def search(self, query: str, limit: int = 10) -> list[SkillSummary]:
        summaries = await self.list_index()
        return bm25_rank(summaries, query, limit)

    async def record_runs(
        self,
        name: str,
        outcomes: Sequence[bool],
        *,
        version: int | None = None,
        trust: TrustStrategy | None = None,
    ) -> Skill:
        strategy = trust if trust is not None else self.trust
        return await self._run(self._record_runs, name, list(outcomes), version, strategy)

    async def set_trust(self, name: str, level: TrustLevel, *, version: int | None = None) -> Skill:
        return await self._run(self._set_trust, name, checked_trust_level(level), version)

    async def record_decision(self, name: str, approved: bool, *, version: int | None = None) -> Skill:
        return await self._run(self._record_decision, name, approved, version)

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(function, *args)

    # -- paths

    def _code_path(self, name: str) -> Path:
        return self.directory / f"{_file_name(name)}.ts"

    def _meta_path(self, name: str) -> Path:
        return self.directory / f"{_file_name(name)}.json"

    def _versions_dir(self, name: str) -> Path:
        return self.directory / f"{_file_name(name)}.versions"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "a") as lock_file:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)

    # -- blocking implementations

    def _get(self, name: str, version: int | None) -> Skill | None:
        if not _valid(name):
            return None
        current = self._read_current(name)
        if current is None or version is None or version == current.version:
            return current
        return self._read_archived(name, version)

    def _versions(self, name: str) -> list[int]:
        if not _valid(name):
            return []
        meta = _read_json(self._meta_path(name))
        if meta is None:
            return []
        numbers = {int(meta["version"])}
        versions_dir = self._versions_dir(name)
        if versions_dir.is_dir():
            numbers.update(int(path.stem) for path in versions_dir.glob("*.json") if path.stem.isdigit())
        return sorted(number for number in numbers if number <= int(meta["version"]))

    def _save(self, skill: Skill) -> Skill:
        with self._locked():
            latest = self._read_current(skill.name)
            stored = new_version(skill, latest, self.trust)
            if latest is None:  # leftovers of an interrupted delete belong to no version
                shutil.rmtree(self._versions_dir(skill.name), ignore_errors=True)
            else:
                self._write_version(self._versions_dir(skill.name), str(latest.version), latest)
            self._write_version(self.directory, skill.name, stored)
            return stored

    def _delete(self, name: str) -> bool:
        if not _valid(name):
            return False
        with self._locked():
            meta_path = self._meta_path(name)
            existed = meta_path.exists()
            with contextlib.suppress(FileNotFoundError):
                meta_path.unlink()  # the commit point: without metadata there is no skill
            with contextlib.suppress(FileNotFoundError):
                self._code_path(name).unlink()
            shutil.rmtree(self._versions_dir(name), ignore_errors=True)
            _fsync_directory(self.directory)
            return existed

    def _list_index(self) -> list[SkillSummary]:
        if not self.directory.is_dir():
            return []
        summaries = []
        for path in self.directory.glob("*.json"):
            if path.name.startswith(".") or not _valid(path.stem):
                continue
            meta = _read_json(path)
            if meta is not None:
                summaries.append(SkillSummary.model_validate(meta))
        return summaries_by_name(summaries)

    def _record_runs(
        self, name: str, outcomes: list[bool], version: int | None, trust: TrustStrategy
    ) -> Skill:
        with self._locked():
            skill = self._get(name, version)
            if skill is None:
                raise not_found(name, version)
            if not outcomes:
                return skill
            stats, level = record_outcomes(skill.stats, skill.trust_level, outcomes, trust)
            updated = skill.model_copy(update={"stats": stats, "trust_level": level})
            self._write_metadata(updated)
            return updated

    def _set_trust(self, name: str, level: TrustLevel, version: int | None) -> Skill:
        with self._locked():
            skill = self._get(name, version)
            if skill is None:
                raise not_found(name, version)
            updated = skill.model_copy(update={"trust_level": level})
            self._write_metadata(updated)
            return updated

    def _record_decision(self, name: str, approved: bool, version: int | None) -> Skill:
        with self._locked():
            skill = self._get(name, version)
            if skill is None:
                raise not_found(name, version)
            updated = skill.model_copy(update={"stats": record_decision(skill.stats, approved)})
            self._write_metadata(updated)
            return updated

    # -- reading and writing one version

    def _read_current(self, name: str) -> Skill | None:
        meta = _read_json(self._meta_path(name))
        if meta is None:
            return None
        code = _read_text(self._code_path(name))
        if code is None or code_digest(code) != meta.get(_DIGEST_KEY):
            # code newer than the metadata (a save interrupted between the two): the archived
            # copy of the version the metadata names is the right one; else the code was edited
            archived = _read_text(self._versions_dir(name) / f"{meta['version']}.ts")
            if archived is not None and code_digest(archived) == meta.get(_DIGEST_KEY):
                code = archived
        if code is None:
            return None
        return Skill.model_validate({**meta, "code": code})

    def _read_archived(self, name: str, version: int) -> Skill | None:
        versions_dir = self._versions_dir(name)
        meta = _read_json(versions_dir / f"{version}.json")
        code = _read_text(versions_dir / f"{version}.ts")
        if meta is None or code is None:
            return None
        return Skill.model_validate({**meta, "code": code})

    def _write_metadata(self, skill: Skill) -> None:
        """Rewrite the metadata of ``skill``'s version (its stats or trust changed, not its code),
        the current one's or an archived one's. Called under the lock."""
        current = _read_json(self._meta_path(skill.name))
        if current is not None and int(current["version"]) == skill.version:
            _atomic_write(self._meta_path(skill.name), _metadata(skill))
        else:
            _atomic_write(self._versions_dir(skill.name) / f"{skill.version}.json", _metadata(skill))

    def _write_version(self, directory: Path, stem: str, skill: Skill) -> None:
        _atomic_write(directory / f"{stem}.ts", skill.code)
        _atomic_write(directory / f"{stem}.json", _metadata(skill))


def _valid(name: str) -> bool:
    try:
        validate_skill_name(name)
    except InvalidSkillName:
        return False
    return True


def _metadata(skill: Skill) -> str:
    meta = skill.summary().model_dump(mode="json")
    meta[_DIGEST_KEY] = code_digest(skill.code)
    return json.dumps(meta, indent=2, ensure_ascii=False) + "\n"


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _read_json(path: Path) -> dict[str, Any] | None:
    text = _read_text(path)
    return json.loads(text) if text is not None else None


def _atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a crash leaves the old file or the new one, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _file_name(name: str) -> str:
    """``name`` as a file name in the store's folder. A :class:`Skill` validates its name, but
    one built with ``model_construct`` skips that: a name that is not a skill name (``../x``,
    ``a/b``) never becomes a path."""
    return validate_skill_name(name)
