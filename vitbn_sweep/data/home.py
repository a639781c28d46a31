"""Where MNIST lives on a machine, and how it gets there: once, checked, under a lock.

The data home is ``$VITBN_DATA_DIR`` when set, else
``${XDG_CACHE_HOME:-~/.cache}/vitbn_sweep/data``: the default ``data.root``
(``${vitbn.data_home:}`` in ``conf/data/mnist.yaml``), so every
entry point finds MNIST there with no variable exported. It holds torchvision's layout,
``MNIST/raw/`` with the four original idx files, uncompressed. ``prepare`` fills it:

1. from a local copy: ``shared/data`` beside the checkout (this project's machines,
   which have no internet), or the folder given to ``python -m vitbn_sweep.data --from``;
2. else, with ``data.download``, from the mirrors torchvision downloads MNIST from.

Each file is written under a temporary name and renamed once its size and md5 are
the original's, so no job reads a half-written file, and the folder is filled under
a file lock (``MNIST/.lock``), so the jobs of a packed or Slurm sweep that start
together fetch it once. A file of the wrong size or md5 is named, never used.

Imports nothing heavy (no torch): the sweeper checks the data before it launches a job.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import logging
import os
import shutil
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from omegaconf import OmegaConf

log = logging.getLogger(__name__)

# The four files of the original distribution: name -> (bytes, md5 of the uncompressed file).
FILES: dict[str, tuple[int, str]] = {
    "train-images-idx3-ubyte": (47_040_016, "6bbc9ace898e44ae57da46a324031adb"),
    "train-labels-idx1-ubyte": (60_008, "a25bea736e30d166cdddb491f175f624"),
    "t10k-images-idx3-ubyte": (7_840_016, "2646ac647ad5339dbf082846283269ea"),
    "t10k-labels-idx1-ubyte": (10_008, "27ae3e4e09519cfbb04c329615203637"),
}
# torchvision's MNIST mirrors (``torchvision.datasets.MNIST.mirrors``); each serves <name>.gz.
MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
# Local copies tried before any download: ``shared/data`` beside the checkout.
LOCAL_COPIES: tuple[Path, ...] = (Path(__file__).resolve().parents[2].parent / "shared" / "data",)
DOWNLOAD_TIMEOUT_S = 60
_verified: set[tuple[str, int, int]] = set()  # (path, size, mtime_ns) whose md5 matched


class DataError(RuntimeError):
    """MNIST files are missing, unreadable or corrupt; the message says which and what to do."""


def data_home() -> str:
    """``$VITBN_DATA_DIR`` if set, else ``${XDG_CACHE_HOME:-~/.cache}/vitbn_sweep/data``."""
    if os.environ.get("VITBN_DATA_DIR"):
        return os.environ["VITBN_DATA_DIR"]
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return str(Path(cache) / "vitbn_sweep" / "data")


OmegaConf.register_new_resolver("vitbn.data_home", data_home, replace=True)


def raw_dir(root: str | Path) -> Path:
    """``<root>/MNIST/raw``, torchvision's layout, as an absolute path."""
    return Path(root).expanduser().resolve() / "MNIST" / "raw"


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_problem(path: Path, *, name: str | None = None) -> str | None:
    """Why ``path`` is not the original MNIST file ``name`` (default: its own name).

    None when it is, or is absent. The md5 is computed once per process for a file
    of a given size and mtime.
    """
    size, md5 = FILES[name or path.name]
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    if stat.st_size != size:
        return f"{path}: {stat.st_size} bytes, expected {size}"
    signature = (str(path), stat.st_size, stat.st_mtime_ns)
    if signature not in _verified:
        digest = _md5(path)
        if digest != md5:
            return f"{path}: md5 {digest}, expected {md5}"
        _verified.add(signature)
    return None


def check(folder: Path) -> tuple[list[str], list[str]]:
    """The MNIST files missing from ``folder``, and a line per corrupt one there."""
    missing = [name for name in FILES if not (folder / name).is_file()]
    corrupt = [p for name in FILES if (p := file_problem(folder / name)) is not None]
    return missing, corrupt


def local_copy(name: str, sources: Sequence[Path]) -> Path | None:
    """The first intact ``name`` under ``<source>/MNIST/raw`` of ``sources``."""
    for source in sources:
        path = raw_dir(source) / name
        if path.is_file() and file_problem(path) is None:
            return path
    return None


def prepare(root: str | Path, *, download: bool, sources: Sequence[Path] | None = None) -> Path:
    """``<root>/MNIST/raw`` with the four intact MNIST files, filled if needed; raises DataError.

    With ``download``, missing files come from a local copy in ``sources`` (default:
    ``LOCAL_COPIES``), else from ``MIRRORS``; without, the folder is only checked. A
    failed call leaves no empty folder behind.
    """
    sources = LOCAL_COPIES if sources is None else sources
    folder = raw_dir(root)
    missing, corrupt = check(folder)
    if corrupt:
        raise DataError(
            "corrupt MNIST files (delete them to fetch them again, or copy intact ones):\n  "
            + "\n  ".join(corrupt)
        )
    if not missing:
        return folder
    if not download:
        raise DataError(
            f"MNIST files {', '.join(missing)} not found in {folder} and data.download=false. "
            "Run `make data` (or python -m vitbn_sweep.data --from DIR), point data.root "
            "(or VITBN_DATA_DIR) at a folder whose MNIST/raw/ holds them, or set "
            "data.download=true."
        )
    created = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with _locked(folder.parent / ".lock"):
            for name in check(folder)[0]:  # again: another process may have filled it meanwhile
                _fetch(folder / name, local_copy(name, sources))
    except BaseException:
        if folder.parent in created:
            (folder.parent / ".lock").unlink(missing_ok=True)
        for path in created:  # only what this call made, if still empty
            with contextlib.suppress(OSError):
                path.rmdir()
        raise
    return folder


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (flock: across processes, and threads)."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fetch(target: Path, copy: Path | None) -> None:
    """Write ``target`` from ``copy``, else from the first mirror that serves it; checked."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        if copy is not None:
            log.info("MNIST: copying %s to %s", copy, target.parent)
            shutil.copyfile(copy, partial)
        else:
            _download(target.name, partial)
        problem = file_problem(partial, name=target.name)
        if problem is not None:
            raise DataError(f"MNIST file {target.name} was fetched corrupt: {problem}")
        partial.rename(target)
    finally:
        partial.unlink(missing_ok=True)


def _download(name: str, partial: Path) -> None:
    """``<mirror><name>.gz``, decompressed into ``partial``, from the first mirror that works."""
    failures = []
    for mirror in MIRRORS:
        url = f"{mirror}{name}.gz"
        log.info("MNIST: downloading %s", url)
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                with gzip.open(response) as unpacked, partial.open("wb") as out:
                    shutil.copyfileobj(unpacked, out)
            return
        except (OSError, EOFError) as exc:  # URLError, timeouts, a truncated gzip stream
            failures.append(f"{url}: {exc}")
    raise DataError(
        f"MNIST file {name} is not in {partial.parent} and downloading it failed "
        f"({'; '.join(failures)}). Copy the four idx files ({', '.join(FILES)}) into that "
        "folder, run `make data FROM=DIR`, or point data.root (or the VITBN_DATA_DIR "
        "environment variable) at a folder whose MNIST/raw/ holds them."
    )
