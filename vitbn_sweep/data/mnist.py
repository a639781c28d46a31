"""MNIST as uint8 tensors, read from torchvision's ``<root>/MNIST/raw`` layout.

``vitbn_sweep.data.home`` puts the four original files there (a local copy or a
download) and checks each one's size and md5 before it is read, so a damaged file
names itself instead of surfacing as a numpy error or as wrong digits.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from vitbn_sweep.data.home import prepare

SPLITS = {  # train: (images, labels)
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
log = logging.getLogger(__name__)


def _read_idx(path: Path, *, dims: int) -> np.ndarray:
    """The array of an idx file: a 4-byte magic number, ``dims`` big-endian sizes, uint8 data."""
    data = path.read_bytes()
    header = 4 * (1 + dims)
    shape = tuple(int(s) for s in np.frombuffer(data[4:header], dtype=">u4"))
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def load_mnist(
    root: str | Path, *, train: bool, download: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (n, 28, 28) uint8 and labels (n,) int64 of the train or test split.

    Cached per process (a local sweep runs its jobs in one process): treat the
    returned tensors as read-only.
    """
    folder = prepare(root, download=download)
    if train:
        log.info("MNIST: found in %s", folder)
    return _load(folder, train=train)


@lru_cache(maxsize=4)
def _load(folder: Path, *, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    images_name, labels_name = SPLITS[train]
    images = _read_idx(folder / images_name, dims=3)  # (n, 28, 28)
    labels = _read_idx(folder / labels_name, dims=1)  # (n,)
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))
