"""Open an execution store from a URL (a setting or a command line's ``--store``)."""

from __future__ import annotations

import errno
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .store import ExecutionStore

EXECUTION_STORE_URL_FORMS = (
    "memory:, sqlite:relative/path.db, sqlite:///absolute/path.db, postgresql://user@host:port/database"
)


def execution_store_from_url(url: str, *, create: bool = True) -> ExecutionStore:
    """The store a URL names.

    * ``memory:``: a :class:`~.store.MemoryExecutionStore` (empty; for tests and one process);
    * ``sqlite:///abs/runs.db`` (three slashes: an absolute path) or ``sqlite:runs.db``
      (relative to the working directory): :class:`~.sqlite.SQLiteExecutionStore`;
    * ``postgresql://...`` or ``postgres://...`` (passed to psycopg as is):
      :class:`~.postgres.PostgresExecutionStore` (needs ``codemode[postgres]``).

    Paths are percent-decoded. Raises ``ValueError`` for any other URL (the message names the
    accepted forms), and ``ImportError`` for a PostgreSQL URL when psycopg is not installed.
    With ``create=False`` a SQLite database that does not exist is not made: ``FileNotFoundError``
    (its ``filename`` the path) instead.
    """
    scheme, _, rest = url.partition(":") if ":" in url else ("", "", url)
    scheme = scheme.lower()
    if scheme in ("postgresql", "postgres"):
        from .postgres import PostgresExecutionStore

        return PostgresExecutionStore(url)
    if scheme == "memory" and rest in ("", "//"):
        from .store import MemoryExecutionStore

        return MemoryExecutionStore()
    if scheme == "sqlite":
        from .sqlite import SQLiteExecutionStore

        path = _path(url)
        if not create and not path.exists():
            raise FileNotFoundError(errno.ENOENT, "no such SQLite execution store", str(path))
        return SQLiteExecutionStore(path)
    raise ValueError(f"not an execution store URL: {url!r} (use {EXECUTION_STORE_URL_FORMS})")


def _path(url: str) -> Path:
    """The file a ``sqlite:`` URL names (the same rules as the skill stores' URLs)."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ValueError(
            f"{url!r}: a host is not allowed here; use three slashes for an absolute path "
            f"(accepted forms: {EXECUTION_STORE_URL_FORMS})"
        )
    if not parts.path:
        raise ValueError(f"{url!r} names no path (accepted forms: {EXECUTION_STORE_URL_FORMS})")
    return Path(unquote(parts.path))
