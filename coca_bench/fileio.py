"""Bytes on disk: the one atomic writer, the one content hash, and strict JSON.

Why one module: results, feature-cache chunks and checkpoints all need the same two guarantees (a crash leaves the
previous file or none, never half a file; a file is identified by its bytes), and one implementation keeps them
equally true everywhere. Content hashes are remembered by (path, size, mtime, ctime, inode) in a small SQLite table
under the cache root, so a rerun over a 6 GB dataset stats its files instead of reading them again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from coca_bench.cache import cache_root

_HASH_BLOCK = 1 << 20


def _default_file_mode() -> int:
    """What ``open()`` would give a new file (0o666 less the umask); ``mkstemp`` alone gives 0o600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


# --------------------------------------------------------------------------- atomic writes
TEMP_PREFIX, TEMP_SUFFIX = ".", ".tmp"  # an atomic write's temp file: ".<name>.<random>.tmp" beside its target


@contextlib.contextmanager
def atomic_file(path: Path | str, mode: str = "w") -> Iterator[IO[Any]]:
    """A temp file next to ``path`` that replaces it (after fsync) only if the block finishes; removed otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        text_mode = "b" not in mode  # text: UTF-8 and "\n" untranslated, so hashes of the text match the bytes
        with open(fd, mode, encoding="utf-8" if text_mode else None, newline="" if text_mode else None) as handle:
            yield handle
            handle.flush()
            os.chmod(tmp_name, _default_file_mode())  # results are shared: readable like any other new file
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def atomic_write_text(path: Path | str, text: str) -> None:
    with atomic_file(path, "w") as handle:
        handle.write(text)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    with atomic_file(path, "wb") as handle:
        handle.write(data)


def atomic_write_jsonl(path: Path | str, rows: Iterable[Mapping[str, Any]]) -> None:
    with atomic_file(path, "w") as handle:
        for row in rows:
            handle.write(dumps_json(row) + "\n")


# --------------------------------------------------------------------------- hashing


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hash_file_bytes(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


class _HashMemo:
    """sha256 by (resolved path, size, mtime_ns, ctime_ns, inode).

    The inode change time is what makes the memo safe: a user (or ``touch -d``, or a restore tool) can set the
    mtime back after editing a file in place, but no user can set ``st_ctime`` back, and every write, chmod or
    ``utime`` moves it. In :func:`fresh_hashes` mode (``--force``) stored rows are not trusted at all: every file
    is hashed from its bytes once per process, and the rows are rewritten.
    """

    _TABLE = "hashes_v2"  # v1 rows lacked ctime_ns; they are never read

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._root: Path | None = None
        self.trust_stored = True
        self._hashed_this_process: dict[tuple[str, tuple[int, ...]], str] = {}

    def _db(self) -> sqlite3.Connection | None:
        root = cache_root()
        if self._connection is not None and self._root == root:
            return self._connection
        try:
            root.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(root / "file_hashes.sqlite3", timeout=30, check_same_thread=False)
            connection.execute(
                f"CREATE TABLE IF NOT EXISTS {self._TABLE} (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER,"
                " ctime_ns INTEGER, inode INTEGER, sha256 TEXT)"
            )
        except (OSError, sqlite3.Error):
            return None  # a read-only or broken cache only costs speed
        self._connection, self._root = connection, root
        return connection

    def sha256(self, path: Path) -> str:
        resolved = str(Path(path).resolve())
        stat = os.stat(resolved)
        signature = (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
        with self._lock:
            known = self._hashed_this_process.get((resolved, signature))
            if known is not None:
                return known
            db = self._db() if self.trust_stored else None
            if db is not None:
                with contextlib.suppress(sqlite3.Error):
                    row = db.execute(
                        f"SELECT size, mtime_ns, ctime_ns, inode, sha256 FROM {self._TABLE} WHERE path = ?",
                        (resolved,),
                    ).fetchone()
                    if row is not None and tuple(row[:4]) == signature:
                        return str(row[4])
        digest = _hash_file_bytes(Path(resolved))
        if _signature(resolved) != signature:  # written while being read: hash what is there now, next time
            return digest
        with self._lock:
            if not self.trust_stored:  # only then: the stored rows serve every other case
                self._hashed_this_process[(resolved, signature)] = digest
            db = self._db()
            if db is not None:
                with contextlib.suppress(sqlite3.Error):
                    db.execute(
                        f"INSERT OR REPLACE INTO {self._TABLE} VALUES (?, ?, ?, ?, ?, ?)",
                        (resolved, *signature, digest),
                    )
                    db.commit()
        return digest

    def distrust_stored(self) -> None:
        """From now on in this process, hash every file from its bytes (once), never from a stored row."""
        with self._lock:
            self.trust_stored = False
            self._hashed_this_process.clear()


def _signature(resolved: str) -> tuple[int, ...]:
    stat = os.stat(resolved)
    return (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)


_MEMO = _HashMemo()


def sha256_file(path: Path | str) -> str:
    """sha256 of the file's bytes (remembered by path, size, mtime, ctime and inode); ``OSError`` if unreadable."""
    return _MEMO.sha256(Path(path))


def hash_every_file_afresh() -> None:
    """``--force``: every file this process hashes from now on is read again, whatever the memo says.

    So a forced run can never record, or key features under, a checksum it did not compute itself.
    """
    _MEMO.distrust_stored()


# --------------------------------------------------------------------------- JSON


def to_json_value(value: Any, where: str = "value") -> Any:
    """Plain JSON data from ``value``; NaN/inf become ``None`` so files stay valid JSON.

    Unknown objects are refused rather than ``repr``-ed: a repr may hold a memory address, which would make keys
    unstable and files unreadable.
    """
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        return sorted((to_json_value(v, where) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, Path):
        return str(value)
    if type(value).__module__ == "numpy":  # numpy scalars and arrays, without importing numpy here
        return to_json_value(value.tolist(), where)
    raise TypeError(
        f"{where} is a {type(value).__name__}, which cannot be stored in a result file; "
        "use numbers, strings, lists or dicts."
    )


def dumps_json(value: Any, *, indent: int | None = None, sort_keys: bool = False) -> str:
    """Strict JSON text (``allow_nan=False`` after NaN -> null), UTF-8 friendly."""
    return json.dumps(
        to_json_value(value),
        indent=indent,
        sort_keys=sort_keys,
        allow_nan=False,
        ensure_ascii=False,
        separators=(",", ": ") if indent is not None else (",", ":"),
    )


def canonical_json(value: Any) -> str:
    """The one text form used for hashing: sorted keys, no whitespace."""
    return dumps_json(value, sort_keys=True)


def read_json(path: Path) -> Any:
    """Parsed JSON; a damaged file is a ``ValueError`` naming it and how to recover."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"{path} is not valid JSON ({exc}); delete it, or rerun that task with --force to rewrite it."
        ) from None


__all__ = [
    "atomic_file",
    "atomic_write_bytes",
    "atomic_write_jsonl",
    "atomic_write_text",
    "canonical_json",
    "dumps_json",
    "hash_every_file_afresh",
    "read_json",
    "sha256_bytes",
    "sha256_file",
    "sha256_text",
    "to_json_value",
]
