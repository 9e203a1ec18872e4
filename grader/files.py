"""Submissions are data: how the grader finds, names and reads files it did not write.

Only regular files are read, opened without following a link and without blocking (a FIFO
or a device answers at once instead of hanging the batch), up to a size cap. Folders are
walked without following links. Output folder names are made from file names but are
always safe: no separators, no control characters, no leading dot, no name the class files
use, and unique in the batch even on a case-insensitive file system.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

NOTEBOOK_SUFFIX = ".ipynb"
SKIPPED_FOLDERS = {".ipynb_checkpoints", ".git", "__pycache__"}
# Names of the files a batch writes beside the submission folders, and names some systems reserve.
RESERVED_NAMES = {"index.html", "gradebook.csv", "gradebook.json", "junit.xml", "results.json", "shard.json", "con", "prn", "aux",
                  "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
MAX_NAME = 80
UNSAFE_CHARACTERS = re.compile(r"[^\w.\-]+")  # \w is Unicode-aware: a student's name in any script stays


class NotRegularFile(OSError):
    """The path is a link, FIFO, device, socket or folder: never read as a submission."""

    def __init__(self, path: Path, kind: str):
        super().__init__(f"{path}: {kind}")
        self.kind = kind


class FileTooLarge(OSError):
    def __init__(self, size: int):
        super().__init__(f"larger than the limit ({size} bytes)")
        self.size = size


def file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISLNK, "symbolic link"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "device"),
                       (stat.S_ISBLK, "device"), (stat.S_ISSOCK, "socket"), (stat.S_ISDIR, "folder")):
        if test(mode):
            return kind
    return "regular file" if stat.S_ISREG(mode) else "special file"


def read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of a regular file at ``path`` (never a link's target), or NotRegularFile / FileTooLarge."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        if exc.errno == 40:  # ELOOP: the last component is a symbolic link
            raise NotRegularFile(path, "symbolic link") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(path, file_kind(mode))
        size = os.fstat(fd).st_size
        if size > limit:
            raise FileTooLarge(size)
        chunks, total = [], 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # it grew while being read
                raise FileTooLarge(total)
        return b"".join(chunks)
    finally:
        os.close(fd)


def find_notebooks(paths: list[str | Path]) -> list[Path]:
    """Paths given as files are kept whatever they are (reading them says what is wrong); folders are
    walked without following links and give every entry named *.ipynb, sorted."""
    found: list[Path] = []
    for path in map(Path, paths):
        try:
            is_folder = stat.S_ISDIR(os.lstat(path).st_mode)
        except OSError:
            is_folder = False
        found += sorted(_walk(path)) if is_folder else [path]
    return list(dict.fromkeys(found))


def _walk(folder: Path):
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if entry.name not in SKIPPED_FOLDERS:
                yield from _walk(Path(entry.path))
        elif entry.name.endswith(NOTEBOOK_SUFFIX):
            yield Path(entry.path)


def safe_name(text: str) -> str:
    """A file-system-, URL- and spreadsheet-safe folder name for ``text`` (which may be anything)."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")  # control and format characters
    name = UNSAFE_CHARACTERS.sub("_", text).strip("._-") or "submission"
    if name.lower() in RESERVED_NAMES or name.lower().split(".")[0] in RESERVED_NAMES:
        name += "_"
    if len(name) > MAX_NAME:
        name = name[:MAX_NAME - 9] + "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return name


def submission_names(notebooks: list[Path]) -> dict[Path, str]:
    """Output folder names: the stem, with the parent folder's name where stems collide, with a
    hash of the whole path where that still collides (case-insensitively)."""
    stems = {nb: safe_name(nb.name[: -len(NOTEBOOK_SUFFIX)] if nb.name.endswith(NOTEBOOK_SUFFIX) else nb.name)
             for nb in notebooks}
    count = Counter(s.lower() for s in stems.values())
    names = {nb: stem if count[stem.lower()] == 1 else safe_name(f"{nb.parent.name}__{stem}")
             for nb, stem in stems.items()}
    for digits in (8, 16):
        count = Counter(n.lower() for n in names.values())
        names = {nb: name if count[name.lower()] == 1 else
                 f"{name[:MAX_NAME - 9]}-{hashlib.sha256(str(nb).encode()).hexdigest()[:digits]}"
                 for nb, name in names.items()}
    return names


def class_folders(paths: list[str | Path], out_dir: Path) -> list[Path]:
    """The class's folders and the output, hidden from every worker so that no student sees another's notebook:
    each folder given (all under it), the folder of each notebook given as a file, and the output folder; only the
    outermost ones. A class of a folder per student is then one path for each worker's start to hide, not one per
    student (each start checks every path it hides: per student, the batch's cost grew with the square of its size).
    """
    folders = set()
    for path in map(Path, paths):
        try:
            is_folder = stat.S_ISDIR(os.lstat(path).st_mode)
        except OSError:
            is_folder = False
        folders.add(Path(os.path.abspath(path if is_folder else path.parent)))
    folders.add(Path(os.path.abspath(out_dir)))
    return sorted(folder for folder in folders if not any(parent in folders for parent in folder.parents))


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based, as job arrays number their tasks): a stable share of the names."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> "Shard":
        index, _, count = text.partition("/")
        shard = cls(int(index), int(count))
        if not 1 <= shard.index <= shard.count:
            raise ValueError(f"shard {text!r}: expected k/N with 1 <= k <= N")
        return shard

    def holds(self, name: str) -> bool:
        """By a hash of the output name: the same split on every machine and run, whatever the file order."""
        return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
