"""MNIST as uint8 tensors, read from torchvision's ``<root>/MNIST/raw`` layout.

The idx files are parsed here, with their headers and sizes checked, so a
truncated or corrupt file names itself instead of surfacing as a numpy error.
Missing files are downloaded with torchvision's own ``MNIST(download=True)``.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60_000),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10_000),
}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
log = logging.getLogger(__name__)


class DataError(RuntimeError):
    """MNIST files are missing, unreadable or corrupt; the message says which and what to do."""


def raw_dir(root: str | Path) -> Path:
    return Path(root).expanduser().resolve() / "MNIST" / "raw"


def _read_idx(path: Path, *, magic: int, dims: int, count: int) -> np.ndarray:
    data = path.read_bytes()
    header = 4 * (1 + dims)
    if len(data) < header:
        raise DataError(f"{path}: corrupt MNIST file ({len(data)} bytes, shorter than its header)")
    fields = np.frombuffer(data[:header], dtype=">u4")
    if fields[0] != magic:
        raise DataError(f"{path}: corrupt MNIST file (magic number {fields[0]}, expected {magic})")
    shape = tuple(int(s) for s in fields[1:])
    if shape[0] != count:
        raise DataError(f"{path}: corrupt MNIST file ({shape[0]} items, expected {count})")
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise DataError(
            f"{path}: truncated or corrupt MNIST file ({len(data)} bytes, expected {expected}); "
            "delete it to download it again, or copy an intact one"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _download(root: Path) -> None:
    from torchvision.datasets import MNIST

    try:
        MNIST(root=str(root), train=True, download=True)
        MNIST(root=str(root), train=False, download=True)
    except Exception as exc:  # torchvision raises RuntimeError/URLError variants offline
        raise DataError(
            f"MNIST is not in {raw_dir(root)} and downloading it failed ({exc}). "
            f"Copy the four idx files ({', '.join(f for t in FILES.values() for f in t[:2])}) "
            "into that folder, or point data.root (or the VITBN_DATA_DIR environment "
            "variable) at a folder whose MNIST/raw/ holds them."
        ) from exc


def load_mnist(
    root: str | Path, *, train: bool, download: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (n, 28, 28) uint8 and labels (n,) int64 of the train or test split.

    Cached per process (a local sweep runs its jobs in one process): treat the
    returned tensors as read-only.
    """
    return _load(raw_dir(root), train=train, download=download)


@lru_cache(maxsize=4)
def _load(folder: Path, *, train: bool, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    images_name, labels_name, count = FILES[train]
    missing = [n for n in (images_name, labels_name) if not (folder / n).is_file()]
    if missing:
        if not download:
            raise DataError(
                f"MNIST files {', '.join(missing)} not found in {folder} and data.download=false. "
                "Copy the idx files there, point data.root (or VITBN_DATA_DIR) at a folder "
                "whose MNIST/raw/ holds them, or set data.download=true."
            )
        log.info("MNIST: %s not in %s; downloading it there", ", ".join(missing), folder)
        _download(folder.parent.parent)
    elif train:
        log.info("MNIST: found in %s", folder)
    images = _read_idx(folder / images_name, magic=IMAGES_MAGIC, dims=3, count=count)
    labels = _read_idx(folder / labels_name, magic=LABELS_MAGIC, dims=1, count=count)
    if labels.max() > 9:
        raise DataError(f"{folder / labels_name}: corrupt MNIST labels (value {labels.max()} > 9)")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))
