"""Collect stage: take submissions from a folder, an LMS zip or nbgrader's exchange and store
them under ``submitted/<student>/<assignment>/`` as nbgrader expects.

Sources
    ``collect`` reads a folder, a ``.zip`` (an LMS download) or a single ``.ipynb``. The student
    id comes from the POSIX path of each file relative to the folder or inside the zip, through a
    regular expression with a named group ``student`` (the user's, the course's
    ``student_pattern``, else :data:`DEFAULT_PATTERN`); ids are lower-cased and must be
    ``[a-z0-9][a-z0-9._-]*``. The timestamp is an nbgrader ``timestamp.txt`` beside the notebook
    when there is one, else the file's mtime or the zip entry's date. ``collect_exchange`` reads
    nbgrader's exchange, ``<exchange>/<course_id>/inbound/<student>+<assignment>+<timestamp>
    [+<random>]/``, taking the student and the timestamp from the folder name (``timestamp.txt``
    inside as fallback).

Storage (nbgrader's course-directory convention, so ``nbgrader autograde`` reads it too)
    ``submitted/<student>/<assignment>/<released name>`` holds the notebook byte for byte, beside
    ``timestamp.txt`` (nbgrader's format, ``2026-12-04 19:55:06.123456 UTC``) and
    ``submission.json`` (student, assignment, sha256, ISO 8601 UTC timestamp, source,
    original name, attempt, collected_at). Earlier attempts live in
    ``submitted/.attempts/<student>/<assignment>/attempt-<n>/`` (hidden from nbgrader's globs).
    Attempt numbers count collections in order; the timestamps give the submission order.

Safety
    Each submission is built complete in ``submitted/.staging/`` (``submission.json`` written
    last, as the commit mark) and moved into place with directory renames, so a crash never
    leaves a half-written submission; the next run finishes or discards what a crash left there.
    Nothing collected is ever deleted: a replaced submission is moved to ``.attempts`` first.
    Zip entries are never extracted to disk: names are checked, sizes and compression ratios are
    bounded before reading and every read is bounded. One bad file is reported and skipped; the
    rest of the batch goes on.

Notebooks older than nbformat 4 are rejected rather than upgraded: the stored file must be the
bytes the student submitted (its SHA-256 is the receipt), and a v3 notebook carries none of the
released notebook's nbgrader cells anyway.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import stat
import struct
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import nbformat

from autograder.config import CourseConfig
from autograder.errors import AutograderError

#: The student id is the first component of the relative path up to its first ``/`` or ``_``:
#: ``ivanova/lesson25.ipynb``, ``ivanova/Copy of lesson25.ipynb``, ``ivanova_lesson25.ipynb``,
#: Canvas ``ivanova_12345_67890_lesson25.ipynb`` (and ``ivanova_LATE_…``) and Moodle-style
#: ``ivanova_123_assignsubmission_file_/lesson25.ipynb`` all give ``ivanova``. Anchoring on the
#: first component (not the file's folder) keeps underscores in file names out of the id. A zip
#: with a wrapper folder needs a pattern such as ``^[^/]+/(?P<student>[^/_]+)``.
DEFAULT_PATTERN = r"^(?P<student>[A-Za-z0-9][A-Za-z0-9.-]*?)(?:/|_)"

MB = 1024 * 1024
MAX_NOTEBOOK_BYTES = 20 * MB  # per file (folder) and per zip entry, uncompressed
MAX_ZIP_TOTAL_BYTES = 200 * MB  # declared uncompressed total of a zip; over it the zip is refused
MAX_ZIP_ENTRIES = 10_000
MAX_COMPRESSION_RATIO = 100  # for entries above RATIO_MIN_BYTES
RATIO_MIN_BYTES = 1 * MB

ATTEMPTS = ".attempts"
STAGING = ".staging"
LOCK = ".collect.lock"
RECORD = "submission.json"
TIMESTAMP = "timestamp.txt"
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"  # nbgrader's default Exchange.timestamp_format

_ID_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_SYSTEM_PARTS = {"__MACOSX", "__pycache__", "Thumbs.db", "desktop.ini"}


class IntakeError(AutograderError):
    """A collect run cannot start: bad pattern, missing source or release, corrupt zip."""


@dataclass(frozen=True)
class Stored:
    """A notebook stored by this run: as the current submission, or as an older attempt."""

    student: str
    path: Path
    attempt: int
    sha256: str
    note: str = ""
    source: str = ""
    current: bool = True


@dataclass(frozen=True)
class Unchanged:
    """A notebook whose content (and, for old attempts, timestamp) is already stored."""

    student: str
    source: str
    attempt: int | None


@dataclass(frozen=True)
class Rejected:
    """A file not collected. ``skipped`` marks files that were never submissions (not a
    notebook, hidden, system); ``str()`` gives the one-line message naming the file."""

    path: str
    reason: str
    skipped: bool = False

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class CollectReport:
    """Everything one collect run did, in the order it did it."""

    assignment: str
    stored: list[Stored] = field(default_factory=list)
    unchanged: list[Unchanged] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Rejected]:
        """The rejections that were submissions (not merely skipped files)."""
        return [r for r in self.rejected if not r.skipped]

    def summary(self) -> str:
        """One line: ``lesson25: 3 stored, 1 unchanged, 2 rejected, 1 skipped, 1 warning``."""
        older = sum(1 for s in self.stored if not s.current)
        stored = f"{len(self.stored)} stored" + (f" ({older} as older attempts)" if older else "")
        skipped = len(self.rejected) - len(self.errors)
        warns = len(self.warnings)
        return (
            f"{self.assignment}: {stored}, {len(self.unchanged)} unchanged, "
            f"{len(self.errors)} rejected, {skipped} skipped, "
            f"{warns} warning{'' if warns == 1 else 's'}"
        )


class _Reject(Exception):
    """Internal: this one file is rejected with this reason."""


@dataclass(frozen=True)
class _Candidate:
    student: str
    source: str  # what the user sees: a path, or ``<zip>:<entry>``
    original_name: str
    timestamp: datetime  # aware, UTC
    group: str  # candidates of one student in one group are duplicates
    read: Callable[[], bytes]  # bounded read; raises _Reject


@dataclass(frozen=True)
class _Record:
    sha256: str | None
    timestamp: datetime | None
    attempt: int | None


# --------------------------------------------------------------------------- public helpers


def compile_pattern(pattern: str | None) -> re.Pattern[str]:
    """The student pattern compiled; an :class:`IntakeError` when it is not a valid regular
    expression or has no named group ``student``."""
    text = DEFAULT_PATTERN if pattern is None else pattern
    try:
        rx = re.compile(text)
    except re.error as err:
        raise IntakeError(f"invalid student pattern {text!r}: {err}") from err
    if "student" not in rx.groupindex:
        raise IntakeError(
            f"student pattern {text!r} has no named group 'student'; write it as "
            r"e.g. '^(?P<student>[^/_]+)_'"
        )
    return rx


def normalise_student_id(raw: str) -> str | None:
    """``raw`` lower-cased and stripped when it is a valid id (``[a-z0-9][a-z0-9._-]*``, at
    most 64 characters), else ``None``."""
    text = raw.strip().lower()
    return text if _ID_RE.fullmatch(text) else None


def student_from_path(rel_path: str, rx: re.Pattern[str]) -> str:
    """The normalised student id that ``rx`` finds in the POSIX relative path ``rel_path``;
    :class:`ValueError` with the reason when there is none."""
    match = rx.search(rel_path)
    raw = match.group("student") if match else None
    if not raw:
        raise ValueError(f"no student id in its path (pattern {rx.pattern!r})")
    student = normalise_student_id(raw)
    if student is None:
        raise ValueError(
            f"student id {raw!r} from its path is not valid (letters, digits, '.', '_', '-')"
        )
    return student


def format_nbgrader_timestamp(moment: datetime) -> str:
    """``moment`` in UTC, as nbgrader writes ``timestamp.txt``.

    For example ``2026-12-04 19:55:06.123456 UTC``.
    """
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def parse_nbgrader_timestamp(text: str) -> datetime:
    """An aware UTC datetime from nbgrader's timestamp format (time zone as a name such as
    ``UTC``, an IANA key, or an offset such as ``+0300``) or from ISO 8601. Naive times are
    taken as UTC, as nbgrader does. :class:`ValueError` when unreadable."""
    text = text.strip()
    parts = text.split(" ")
    if len(parts) == 3:
        naive = datetime.fromisoformat(f"{parts[0]}T{parts[1]}")
        return naive.replace(tzinfo=_zone(parts[2])).astimezone(UTC)
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def released_notebook(config: CourseConfig, assignment: str) -> Path:
    """The released notebook of ``assignment`` (``release/<assignment>/*.ipynb``, exactly one)."""
    folder = config.release_dir / assignment
    notebooks = sorted(p for p in folder.glob("*.ipynb") if p.is_file())
    if not notebooks:
        raise IntakeError(
            f"{folder}: no released notebook for {assignment!r}; "
            f"run `autograder release {assignment}` first"
        )
    if len(notebooks) > 1:
        names = ", ".join(p.name for p in notebooks)
        raise IntakeError(
            f"{folder}: several released notebooks ({names}); collecting assignments with "
            "more than one notebook is not supported"
        )
    return notebooks[0]


# --------------------------------------------------------------------------- entry points


def collect(
    config: CourseConfig,
    assignment: str,
    source: Path,
    *,
    pattern: str | None = None,
    now: datetime | None = None,
) -> CollectReport:
    """Collect ``assignment`` from ``source``: a folder, a ``.zip`` or one ``.ipynb``.

    The student id of each file comes from its relative POSIX path through ``pattern``
    (``config.student_pattern`` when ``None``, else :data:`DEFAULT_PATTERN`); its timestamp
    is an nbgrader ``timestamp.txt`` beside it when there is one, else the file's mtime or the
    zip entry's date (Info-ZIP extended timestamp when present, else the DOS date in this
    machine's local time zone). Raises :class:`IntakeError` only for what stops the whole run
    (bad pattern, missing source or release, corrupt or oversized zip); each bad file becomes a
    :class:`Rejected` entry and the rest of the batch goes on.
    """
    config.assignment(assignment)
    rx = compile_pattern(pattern if pattern is not None else config.student_pattern)
    released = released_notebook(config, assignment)
    source = Path(source)
    if not source.exists():
        raise IntakeError(f"{source}: no such folder or file to collect from")
    submitted = config.submitted_dir.resolve()
    if source.resolve() == submitted or submitted in source.resolve().parents:
        raise IntakeError(f"{source}: is inside {submitted}; collect from elsewhere")
    report = CollectReport(assignment)
    if source.is_dir():
        candidates = _folder_candidates(source, rx, report)
        return _collect(config, assignment, released, candidates, report, now)
    if source.suffix.lower() == ".ipynb":
        candidates = _file_candidates(source, source.name, rx, str(source), report)
        return _collect(config, assignment, released, candidates, report, now)
    if source.suffix.lower() == ".zip" or zipfile.is_zipfile(source):
        with _open_zip(source) as archive:
            candidates = _zip_candidates(source, archive, rx, report)
            return _collect(config, assignment, released, candidates, report, now)
    raise IntakeError(f"{source}: not a folder, a .zip or a .ipynb; nothing to collect")


def collect_exchange(
    config: CourseConfig, assignment: str, exchange_root: Path, *, now: datetime | None = None
) -> CollectReport:
    """Collect ``assignment`` from nbgrader's exchange inbound folder.

    Every ``<student>+<assignment>+<timestamp>[+<random>]`` folder is a submission; all are
    kept (the newest as current, the others as attempts), where nbgrader keeps only the newest.
    """
    config.assignment(assignment)
    released = released_notebook(config, assignment)
    inbound = Path(exchange_root) / config.course_id / "inbound"
    if not inbound.is_dir():
        raise IntakeError(f"{inbound}: no nbgrader inbound folder for course {config.course_id!r}")
    report = CollectReport(assignment)
    candidates: list[_Candidate] = []
    for folder in sorted(inbound.iterdir()):
        if f"+{assignment}+" not in folder.name:
            continue  # another assignment's submission
        if folder.is_symlink() or not folder.is_dir():
            report.rejected.append(Rejected(str(folder), "not a submission folder; skipped"))
            continue
        try:
            student, moment = _exchange_name(folder, assignment)
        except ValueError as err:
            report.rejected.append(Rejected(str(folder), str(err)))
            continue
        for path, rel in _walk(folder, report):
            if rel == TIMESTAMP:
                continue
            candidates.append(
                _Candidate(student, str(path), path.name, moment, folder.name, _file_reader(path))
            )
    return _collect(config, assignment, released, candidates, report, now)


# --------------------------------------------------------------------------- sources


def _folder_candidates(root: Path, rx: re.Pattern[str], report: CollectReport) -> list[_Candidate]:
    found: list[_Candidate] = []
    for path, rel in _walk(root, report):
        if path.name != TIMESTAMP:  # nbgrader's, read beside its notebook
            found.extend(_file_candidates(path, rel, rx, str(path), report))
    return found


def _file_candidates(
    path: Path, rel: str, rx: re.Pattern[str], shown: str, report: CollectReport
) -> list[_Candidate]:
    if path.suffix.lower() != ".ipynb":
        report.rejected.append(Rejected(shown, "not a notebook (.ipynb); skipped", True))
        return []
    try:
        student = student_from_path(rel, rx)
        moment = _sibling_timestamp(path.parent / TIMESTAMP) or datetime.fromtimestamp(
            path.lstat().st_mtime, UTC
        )
    except (ValueError, OSError) as err:
        report.rejected.append(Rejected(shown, str(err)))
        return []
    return [_Candidate(student, shown, path.name, moment, "batch", _file_reader(path))]


def _sibling_timestamp(path: Path) -> datetime | None:
    """The time in an nbgrader ``timestamp.txt`` (a regular file), or ``None``."""
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return None
        with open(path, "rb") as fh:
            return parse_nbgrader_timestamp(fh.read(200).decode("utf-8"))
    except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
        return None


def _walk(root: Path, report: CollectReport) -> Iterator[tuple[Path, str]]:
    """Regular files under ``root`` with their POSIX relative paths. Symbolic links are
    rejected and never followed; hidden and system entries (``.ipynb_checkpoints``,
    ``__MACOSX``, dot files) are reported as skipped."""
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder)
        for name in sorted(dirs):
            path = here / name
            if path.is_symlink():
                report.rejected.append(Rejected(str(path), "symbolic link; not followed"))
                dirs.remove(name)
            elif _is_junk(name):
                report.rejected.append(
                    Rejected(str(path), "hidden or system folder; skipped", True)
                )
                dirs.remove(name)
        dirs.sort()
        for name in sorted(files):
            path = here / name
            if path.is_symlink():
                report.rejected.append(Rejected(str(path), "symbolic link; not followed"))
            elif _is_junk(name):
                report.rejected.append(Rejected(str(path), "hidden or system file; skipped", True))
            elif not stat.S_ISREG(path.lstat().st_mode):
                report.rejected.append(Rejected(str(path), "not a regular file; skipped", True))
            else:
                yield path, path.relative_to(root).as_posix()


def _file_reader(path: Path) -> Callable[[], bytes]:
    def read() -> bytes:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as fh:
                data = fh.read(MAX_NOTEBOOK_BYTES + 1)
        except OSError as err:
            raise _Reject(f"cannot read it: {err.strerror or err}") from err
        if len(data) > MAX_NOTEBOOK_BYTES:
            raise _Reject(_too_large(path.stat().st_size))
        return data

    return read


@contextlib.contextmanager
def _open_zip(path: Path) -> Iterator[zipfile.ZipFile]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise IntakeError(f"{path}: not a readable zip ({err}); nothing collected") from err
    with archive:
        yield archive


def _zip_candidates(
    source: Path, archive: zipfile.ZipFile, rx: re.Pattern[str], report: CollectReport
) -> list[_Candidate]:
    infos = archive.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        raise IntakeError(
            f"{source}: {len(infos)} entries (limit {MAX_ZIP_ENTRIES}); refusing the whole zip, "
            "nothing collected"
        )
    total = sum(info.file_size for info in infos)
    if total > MAX_ZIP_TOTAL_BYTES:
        raise IntakeError(
            f"{source}: declares {_mb(total)} uncompressed (limit {_mb(MAX_ZIP_TOTAL_BYTES)}); "
            "refusing the whole zip as a possible zip bomb, nothing collected"
        )
    budget = [MAX_ZIP_TOTAL_BYTES]  # actual bytes read, shared by every entry's reader
    fallback = datetime.fromtimestamp(source.stat().st_mtime, UTC)
    stamps: dict[str, zipfile.ZipInfo] = {}  # folder -> its safe nbgrader timestamp.txt
    notebooks: list[tuple[zipfile.ZipInfo, str, str]] = []
    for info in infos:
        if info.is_dir():
            continue
        name = info.filename.replace("\\", "/")
        shown = f"{source}:{name}"
        try:
            skip = _zip_entry_problem(info, name)
        except _Reject as err:
            report.rejected.append(Rejected(shown, str(err)))
            continue
        folder, _, base = name.rpartition("/")
        if base == TIMESTAMP and not any(_is_junk(part) for part in folder.split("/")):
            stamps[folder] = info
        elif skip:
            report.rejected.append(Rejected(shown, skip, True))
        else:
            notebooks.append((info, name, shown))
    found: list[_Candidate] = []
    for info, name, shown in notebooks:
        try:
            student = student_from_path(name, rx)
        except ValueError as err:
            report.rejected.append(Rejected(shown, str(err)))
            continue
        stamp = stamps.get(name.rpartition("/")[0])
        moment = (stamp and _zip_timestamp_txt(archive, stamp)) or _zip_time(info) or fallback
        reader = _zip_reader(archive, info, budget)
        base = PurePosixPath(name).name
        found.append(_Candidate(student, shown, base, moment, "batch", reader))
    return found


def _zip_entry_problem(info: zipfile.ZipInfo, name: str) -> str:
    """Raises :class:`_Reject` for an unsafe entry; returns a skip reason for a harmless
    non-submission, or ``""`` for a notebook to read."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in info.orig_filename):
        raise _Reject("unsafe name in the zip (control or NUL characters); rejected")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise _Reject("absolute path in the zip; rejected")
    parts = [p for p in name.split("/") if p]
    if ".." in parts:
        raise _Reject("'..' in its path in the zip (path traversal); rejected")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise _Reject("symbolic link in the zip; rejected")
    if any(_is_junk(part) for part in parts):
        return "hidden or system file; skipped"
    if not name.lower().endswith(".ipynb"):
        return "not a notebook (.ipynb); skipped"
    if info.flag_bits & 0x1:
        raise _Reject("encrypted zip entry; rejected")
    if info.file_size > MAX_NOTEBOOK_BYTES:
        raise _Reject(f"{_too_large(info.file_size)} (possible zip bomb)")
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > RATIO_MIN_BYTES and ratio > MAX_COMPRESSION_RATIO:
        raise _Reject(
            f"compression ratio {ratio:.0f}:1 (over {MAX_COMPRESSION_RATIO}:1 for entries above "
            f"{_mb(RATIO_MIN_BYTES)}) looks like a zip bomb; rejected (collect it from a folder "
            "if it is genuine)"
        )
    return ""


def _zip_reader(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: list[int]
) -> Callable[[], bytes]:
    def read() -> bytes:
        limit = min(MAX_NOTEBOOK_BYTES, budget[0])
        try:
            with archive.open(info) as fh:
                data = fh.read(limit + 1)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError) as err:
            raise _Reject(f"damaged zip entry ({err}); rejected") from err
        except NotImplementedError as err:
            raise _Reject(f"unsupported zip compression ({err}); rejected") from err
        budget[0] -= len(data)
        if len(data) > limit:
            if limit < MAX_NOTEBOOK_BYTES:
                raise _Reject(
                    f"the zip's total uncompressed size passed {_mb(MAX_ZIP_TOTAL_BYTES)}"
                )
            raise _Reject(f"{_too_large(len(data))} (possible zip bomb)")
        return data

    return read


def _zip_timestamp_txt(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> datetime | None:
    """The time in a zipped nbgrader ``timestamp.txt`` (bounded read), or ``None``."""
    if info.file_size > 200 or info.flag_bits & 0x1:
        return None
    try:
        with archive.open(info) as fh:
            return parse_nbgrader_timestamp(fh.read(200).decode("utf-8"))
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, ValueError):
        return None
    except NotImplementedError:  # an unsupported compression method
        return None


def _zip_time(info: zipfile.ZipInfo) -> datetime | None:
    """The entry's mtime: Info-ZIP extended timestamp (UTC) when present, else the DOS date
    read in this machine's local time zone; ``None`` when the date is invalid."""
    extra = info.extra
    offset = 0
    while offset + 4 <= len(extra):
        header, size = struct.unpack_from("<HH", extra, offset)
        body = extra[offset + 4 : offset + 4 + size]
        if header == 0x5455 and len(body) >= 5 and body[0] & 0x1:
            (mtime,) = struct.unpack_from("<I", body, 1)
            return datetime.fromtimestamp(mtime, UTC)
        offset += 4 + size
    try:
        return datetime(*info.date_time).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _exchange_name(folder: Path, assignment: str) -> tuple[str, datetime]:
    """Student and timestamp from ``<student>+<assignment>+<timestamp>[+<random>]``."""
    name = folder.name
    usage = f"not an nbgrader submission folder (<student>+{assignment}+<timestamp>+<random>)"
    for splits in (3, 2):
        parts = name.rsplit("+", splits)
        if len(parts) != splits + 1 or parts[1] != assignment:
            continue
        student = normalise_student_id(parts[0])
        if student is None:
            raise ValueError(f"{usage}: student id {parts[0]!r} is not valid")
        try:
            return student, parse_nbgrader_timestamp(parts[2])
        except ValueError:
            pass
        try:
            return student, parse_nbgrader_timestamp((folder / TIMESTAMP).read_text("utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            raise ValueError(
                f"{usage}: unreadable timestamp {parts[2]!r} and no readable {TIMESTAMP}"
            ) from None
    raise ValueError(usage)


# --------------------------------------------------------------------------- checks


def _notebook_problem(data: bytes) -> tuple[str, Any]:
    """``("", notebook)`` for a valid nbformat 4 notebook with code; else ``(reason, None)``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.end != len(data):
            return f"not UTF-8 text (byte {err.start}); not a saved notebook", None
        text = data[: err.start].decode("utf-8", "replace")  # cut mid-character: truncated
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        return f"invalid JSON (line {err.lineno}: {err.msg}); damaged or not a notebook", None
    except RecursionError:
        return "invalid JSON (nested too deeply); not a notebook", None
    if not isinstance(raw, dict) or "nbformat" not in raw:
        return "JSON but not a Jupyter notebook (no 'nbformat' field)", None
    version = raw["nbformat"]
    if not isinstance(version, int) or isinstance(version, bool):
        return f"invalid nbformat version {version!r}", None
    if version < 4:
        return f"nbformat {version} notebook: open and save it in Jupyter 4+", None
    if version > 4:
        return f"nbformat {version} is newer than this grader reads (4)", None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nbformat.validate(raw)
    except nbformat.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "top level"
        return f"invalid nbformat at {where}: {_one_line(str(err.message))}", None
    except Exception as err:
        return f"invalid notebook: {_one_line(str(err))}", None
    nb: dict[str, Any] = raw
    cells = list(nb.get("cells", []))
    code = [c for c in cells if c.get("cell_type") == "code"]
    if not cells:
        return "empty notebook (no cells)", None
    if not code:
        return "empty notebook (no code cells)", None
    if all(not _source(c).strip() for c in code):
        return "empty notebook (every code cell is blank)", None
    return "", nb


def _source(cell: Any) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _grade_ids(nb: Any) -> set[str]:
    ids: set[str] = set()
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader")
        grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
        if isinstance(grade_id, str):
            ids.add(grade_id)
    return ids


def _is_junk(name: str) -> bool:
    return name.startswith(".") or name in _SYSTEM_PARTS


def _is_released_name(original: str, released: str) -> bool:
    return original == released or original.endswith("_" + released)


# --------------------------------------------------------------------------- storing


class _Store:
    """The ``submitted/`` folder of one course, for one assignment, under its lock."""

    def __init__(self, root: Path, assignment: str, released: str, now: datetime) -> None:
        self.root = root
        self.assignment = assignment
        self.released = released
        self.now = now
        self.staging = root / STAGING
        self.placed: dict[Path, int] = {}  # current folder -> index in report.stored

    def current(self, student: str) -> Path:
        return self.root / student / self.assignment

    def attempts(self, student: str) -> Path:
        return self.root / ATTEMPTS / student / self.assignment

    def archived(self, student: str) -> dict[int, Path]:
        folder = self.attempts(student)
        found: dict[int, Path] = {}
        if folder.is_dir():
            for child in folder.iterdir():
                match = re.fullmatch(r"attempt-(\d+)", child.name)
                if match and child.is_dir():
                    found[int(match.group(1))] = child
        return found

    def record(self, folder: Path) -> _Record:
        """What is stored in ``folder``: from ``submission.json``, else from the files."""
        try:
            data = json.loads((folder / RECORD).read_text("utf-8"))
            attempt = data.get("attempt")
            return _Record(
                str(data["sha256"]),
                parse_nbgrader_timestamp(str(data["timestamp"])),
                attempt if isinstance(attempt, int) else None,
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        notebook = folder / self.released
        sha = hashlib.sha256(notebook.read_bytes()).hexdigest() if notebook.is_file() else None
        try:
            moment: datetime | None = parse_nbgrader_timestamp(
                (folder / TIMESTAMP).read_text("utf-8")
            )
        except (OSError, ValueError, UnicodeDecodeError):
            moment = None
        return _Record(sha, moment, None)

    def next_attempt(self, student: str) -> int:
        numbers = list(self.archived(student))
        current = self.current(student)
        if current.is_dir():
            numbers.append(self.record(current).attempt or 0)
        return max(numbers, default=0) + 1

    def stage(
        self, cand: _Candidate, data: bytes, sha: str, attempt: int, notes: list[str]
    ) -> Path:
        """A complete submission folder in ``.staging``; ``submission.json`` written last."""
        self.staging.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="collect-", dir=self.staging))
        _write(folder / self.released, data)
        _write(folder / TIMESTAMP, format_nbgrader_timestamp(cand.timestamp).encode())
        record = {
            "student": cand.student,
            "assignment": self.assignment,
            "notebook": self.released,
            "sha256": sha,
            "timestamp": cand.timestamp.astimezone(UTC).isoformat(),
            "source": cand.source,
            "original_name": cand.original_name,
            "attempt": attempt,
            "collected_at": self.now.astimezone(UTC).isoformat(),
            "notes": notes,
        }
        _write(folder / RECORD, (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode())
        _fsync_dir(folder)
        return folder

    def free_number(self, student: str, wanted: int | None) -> int:
        """``wanted`` when no archived attempt has it, else the next unused number."""
        if wanted is not None and wanted not in self.archived(student):
            return wanted
        return self.next_attempt(student)

    def archive(self, student: str, folder: Path, number: int) -> Path:
        """Move ``folder`` to ``.attempts/<student>/<assignment>/attempt-<number>`` (a rename:
        it fails rather than overwrite an existing attempt)."""
        target_root = self.attempts(student)
        target_root.mkdir(parents=True, exist_ok=True)
        target = target_root / f"attempt-{number}"
        os.replace(folder, target)
        _fsync_dir(target_root)
        _fsync_dir(folder.parent)
        return target

    def recover(self, report: CollectReport) -> None:
        """Finish what an interrupted run left in ``.staging``: a complete folder (its
        ``submission.json`` is written last) is stored as if collected now; an incomplete one
        is removed (nothing of it was placed, and its source is untouched)."""
        if not self.staging.is_dir():
            return
        for folder in sorted(self.staging.iterdir()):
            try:
                data = json.loads((folder / RECORD).read_text("utf-8"))
                student = normalise_student_id(str(data["student"]))
                assignment, notebook = str(data["assignment"]), str(data["notebook"])
                moment = parse_nbgrader_timestamp(str(data["timestamp"]))
                content = (folder / notebook).read_bytes()
                if student is None or not _ID_RE.fullmatch(assignment.lower()) or "/" in notebook:
                    raise ValueError(folder)
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                shutil.rmtree(folder, ignore_errors=True)
                continue
            cand = _Candidate(
                student,
                str(data.get("source", folder)),
                str(data.get("original_name", notebook)),
                moment,
                "recovered",
                functools.partial(bytes, content),
            )
            other = _Store(self.root, assignment, notebook, self.now)
            sha = hashlib.sha256(content).hexdigest()
            other.store(cand, content, sha, report, note="recovered from an interrupted collect")
            shutil.rmtree(folder)
            report.warnings.append(
                f"{cand.source}: recovered for {student}/{assignment} from what an interrupted "
                f"collect left in {self.staging}"
            )

    def store(
        self, cand: _Candidate, data: bytes, sha: str, report: CollectReport, note: str = ""
    ) -> None:
        """Store one valid notebook: unchanged, new current (archiving the old one first), or
        an older attempt when it is older than the current submission."""
        current = self.current(cand.student)
        record = self.record(current) if current.is_dir() else None
        if record is not None and record.sha256 == sha:
            report.unchanged.append(Unchanged(cand.student, cand.source, record.attempt))
            return
        for number, folder in sorted(self.archived(cand.student).items()):
            old = self.record(folder)
            if old.sha256 == sha and old.timestamp == cand.timestamp:
                report.unchanged.append(Unchanged(cand.student, cand.source, number))
                return
        notes = [note] if note else []
        if not _is_released_name(cand.original_name, self.released):
            notes.append(f"renamed notebook: {cand.original_name!r} stored as {self.released}")
        if (
            record is not None
            and record.timestamp is not None
            and cand.timestamp < record.timestamp
        ):
            attempt = self.next_attempt(cand.student)
            notes.append(
                f"older ({format_nbgrader_timestamp(cand.timestamp)}) than the current "
                f"submission ({format_nbgrader_timestamp(record.timestamp)}); kept as an attempt"
            )
            staged = self.stage(cand, data, sha, attempt, notes)
            target = self.archive(cand.student, staged, attempt)
            path = target / self.released
            report.stored.append(
                Stored(cand.student, path, attempt, sha, "; ".join(notes), cand.source, False)
            )
            return
        previous = self.free_number(cand.student, record.attempt) if record is not None else 0
        attempt = max(self.next_attempt(cand.student), previous + 1)
        staged = self.stage(cand, data, sha, attempt, notes[:])
        if record is not None:
            moved = self.archive(cand.student, current, previous)
            if record.attempt != previous:
                _set_attempt(moved, previous)
            notes.append(f"replaces attempt {previous} (kept in {moved})")
            self._moved(current, moved, report)
        current.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, current)
        _fsync_dir(current.parent)
        self.placed[current] = len(report.stored)
        path = current / self.released
        report.stored.append(
            Stored(cand.student, path, attempt, sha, "; ".join(notes), cand.source, True)
        )

    def _moved(self, current: Path, moved: Path, report: CollectReport) -> None:
        """Keep report paths true when a submission stored earlier in this run is archived."""
        index = self.placed.pop(current, None)
        if index is not None:
            entry = report.stored[index]
            report.stored[index] = replace(entry, path=moved / self.released, current=False)


def _collect(
    config: CourseConfig,
    assignment: str,
    released: Path,
    candidates: list[_Candidate],
    report: CollectReport,
    now: datetime | None,
) -> CollectReport:
    released_bytes = released.read_bytes()
    released_sha = hashlib.sha256(released_bytes).hexdigest()
    _, released_nb = _notebook_problem(released_bytes)
    released_ids = _grade_ids(released_nb) if released_nb is not None else set()
    roster = {s.id.lower() for s in config.students}
    moment = now or datetime.now(UTC)
    root = config.submitted_dir
    root.mkdir(parents=True, exist_ok=True)
    by_student: dict[str, list[_Candidate]] = {}
    for cand in candidates:
        by_student.setdefault(cand.student, []).append(cand)
    with _locked(root / LOCK):
        store = _Store(root, assignment, released.name, moment)
        store.recover(report)
        for student in sorted(by_student):
            valid: list[tuple[_Candidate, bytes, str]] = []
            for cand in by_student[student]:
                try:
                    data = cand.read()
                except _Reject as err:
                    report.rejected.append(Rejected(cand.source, str(err)))
                    continue
                problem, nb = _notebook_problem(data)
                if problem:
                    report.rejected.append(Rejected(cand.source, problem))
                    continue
                sha = hashlib.sha256(data).hexdigest()
                if sha == released_sha:
                    report.warnings.append(
                        f"{cand.source}: identical to the released notebook (nothing answered)"
                    )
                elif released_ids and not released_ids & _grade_ids(nb):
                    report.warnings.append(
                        f"{cand.source}: has none of the nbgrader cells of {released}; "
                        "is it the right notebook?"
                    )
                valid.append((cand, data, sha))
            if not valid:
                continue
            if roster and student not in roster:
                report.warnings.append(
                    f"{student} (from {valid[0][0].source}) is not on the course roster; "
                    "stored anyway"
                )
            valid.sort(key=lambda v: _order(v[0], released.name))
            _warn_duplicates(student, [v[0] for v in valid], report)
            for cand, data, sha in valid:
                store.store(cand, data, sha, report)
        with contextlib.suppress(OSError):
            store.staging.rmdir()  # only when empty
    return report


def _order(cand: _Candidate, released: str) -> tuple[datetime, bool, str]:
    """Oldest first; at equal times a file with the released name counts as the newer."""
    return cand.timestamp, _is_released_name(cand.original_name, released), cand.source


def _warn_duplicates(student: str, ordered: list[_Candidate], report: CollectReport) -> None:
    groups: dict[str, list[_Candidate]] = {}
    for cand in ordered:
        groups.setdefault(cand.group, []).append(cand)
    for group in groups.values():
        if len(group) < 2:
            continue
        files = ", ".join(c.source for c in group)
        newest = group[-1]
        report.warnings.append(
            f"{student}: {len(group)} notebooks for one student in one batch ({files}); "
            f"the newest, {newest.source} ({format_nbgrader_timestamp(newest.timestamp)}), "
            "wins and the others are kept as older attempts"
        )


# --------------------------------------------------------------------------- small helpers


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` so two collect runs never interleave."""
    with open(path, "a+b") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise IntakeError(f"{path}: another collect is running; try again later") from err
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _write(path: Path, data: bytes) -> None:
    """Write a new file and flush it to disk."""
    with open(path, "xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _set_attempt(folder: Path, number: int) -> None:
    """Rewrite the attempt number in ``folder``'s record (temp file + ``os.replace``)."""
    path = folder / RECORD
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(data, dict):
        return
    data["attempt"] = number
    tmp = path.with_name(f".{RECORD}.tmp")
    tmp.unlink(missing_ok=True)
    _write(tmp, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode())
    os.replace(tmp, path)
    _fsync_dir(folder)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _zone(name: str) -> timezone | ZoneInfo:
    if name.upper() in {"UTC", "GMT", "Z"}:
        return UTC
    match = re.fullmatch(r"([+-])(\d\d):?(\d\d)", name)
    if match:
        sign = 1 if match.group(1) == "+" else -1
        delta = timedelta(hours=int(match.group(2)), minutes=int(match.group(3)))
        return timezone(sign * delta)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"unknown time zone {name!r}") from err


def _too_large(size: int) -> str:
    return (
        f"larger than {_mb(MAX_NOTEBOOK_BYTES)} ({_mb(size)}); not a homework notebook "
        "(clear its outputs and resubmit)"
    )


def _mb(size: int) -> str:
    return f"{size / MB:.0f} MB" if size >= 10 * MB else f"{size / MB:.1f} MB"


def _one_line(text: str, limit: int = 160) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
