"""Open a skill store from a URL (the CLI's ``--store``)."""

from __future__ import annotations

import errno
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .store import SkillStore
from .trust import TrustStrategy

STORE_URL_FORMS = (
    "sqlite:///absolute/path.db, sqlite:relative/path.db, file:///absolute/dir, file:relative/dir, "
    "postgresql://user@host:port/database, memory:"
)


def store_from_url(url: str, *, trust: TrustStrategy | None = None, create: bool = True) -> SkillStore:
    """The store a URL names.

    * ``sqlite:///abs/skills.db`` (three slashes: an absolute path) or ``sqlite:skills.db``
      (relative to the working directory): :class:`~.sqlite.SQLiteSkillStore`;
    * ``file:///abs/dir`` or ``file:dir``: :class:`~.file.FileSkillStore`;
    * ``postgresql://...`` or ``postgres://...`` (passed to psycopg as is):
      :class:`~.postgres.PostgresSkillStore` (needs ``codemode[postgres]``);
    * ``memory:``: a :class:`~.memory.MemorySkillStore` (empty, for tests).

    Paths are percent-decoded. Raises ``ValueError`` for any other URL (the message names the
    accepted forms). With ``create=False`` a SQLite database that does not exist is not made:
    ``FileNotFoundError`` (its ``filename`` the path) instead.
    """
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme in ("postgresql", "postgres"):
        from .postgres import PostgresSkillStore

        return PostgresSkillStore(url, trust=trust)
    if scheme == "memory":
        from .memory import MemorySkillStore

        return MemorySkillStore(trust=trust)
    if scheme in ("sqlite", "file"):
        path = _path(url)
        if scheme == "sqlite":
            from .sqlite import SQLiteSkillStore

            if not create and not path.exists():
                raise FileNotFoundError(errno.ENOENT, "no such SQLite skill store", str(path))
            return SQLiteSkillStore(path, trust=trust)
        from .file import FileSkillStore

        return FileSkillStore(path, trust=trust)
    raise ValueError(f"not a skill store URL: {url!r} (use {STORE_URL_FORMS})")


def _path(url: str) -> Path:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ValueError(
            f"{url!r}: a host is not allowed here; use three slashes for an absolute path "
            f"(accepted forms: {STORE_URL_FORMS})"
        )
    if not parts.path:
        raise ValueError(f"{url!r} names no path (accepted forms: {STORE_URL_FORMS})")
    return Path(unquote(parts.path))
