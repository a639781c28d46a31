"""The faithful reference pipeline: the study's torchvision transforms on PIL images.

Exactly the SPEC's augmentation, with torchvision's own transforms, applied
per sample in a DataLoader, as the study did. The augmented test set comes from
``data.test_seed``, drawn anew every epoch with ``data.test_redraw`` (the study's
behaviour), else the same every epoch, as in the fast pipeline.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler
from torchvision.transforms import InterpolationMode, v2

from vitbn_sweep.data.base import Batch, Pipeline, batch_bounds, epoch_seed, load_split

TRAIN_STREAM, TEST_STREAM = 0, 1


def study_transform(augment: Mapping[str, Any], *, image_size: int) -> v2.Compose:
    """SPEC's augmentation: rotation, translation, zoom-out with p, resize back; to [0, 1]."""
    return v2.Compose(
        [
            v2.RandomRotation(
                augment["rotation_degrees"], interpolation=InterpolationMode.NEAREST, fill=0
            ),
            v2.RandomAffine(
                degrees=0,
                translate=(augment["translate"], augment["translate"]),
                interpolation=InterpolationMode.NEAREST,
                fill=0,
            ),
            v2.RandomZoomOut(
                fill=0, side_range=tuple(augment["zoom_out_side_range"]), p=augment["zoom_out_p"]
            ),
            v2.Resize(image_size, interpolation=InterpolationMode.BILINEAR, antialias=True),
            *to_tensor(),
        ]
    )


def to_tensor() -> list[v2.Transform]:
    return [v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True)]


class PILDigits(Dataset):
    """uint8 images as PIL images through a transform, as ``torchvision.datasets.MNIST`` does."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: v2.Compose) -> None:
        self.images, self.labels, self.transform = images.numpy(), labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(Image.fromarray(self.images[i], mode="L")), self.labels[i]


class MergedBatches(Sampler[list[int]]):
    """Batches of indices in ``order``, bounded by ``batch_bounds`` (no lone last sample)."""

    def __init__(self, order: RandomSampler | range, batch_size: int) -> None:
        self.order, self.batch_size = order, batch_size

    def __len__(self) -> int:
        return len(batch_bounds(len(self.order), self.batch_size))

    def __iter__(self) -> Iterator[list[int]]:
        indices = list(self.order)
        for start, stop in batch_bounds(len(indices), self.batch_size):
            yield indices[start:stop]


class TorchvisionPipeline(Pipeline):
    def __init__(
        self,
        data: Mapping[str, Any],
        *,
        batch_size: int,
        test_batch_size: int,
        seed: int,
        device: torch.device,
    ) -> None:
        self.batch_size, self.test_batch_size = batch_size, test_batch_size
        self.seed, self.device, self.num_workers = seed, device, data["num_workers"]
        self.test_seed, self.test_redraw = data["test_seed"], data["test_redraw"]
        augment, size = data["augment"], data["image_size"]
        train_images, train_labels = load_split(data, train=True)
        test_images, test_labels = load_split(data, train=False)
        self.num_train, self.num_test = len(train_labels), len(test_labels)
        plain = v2.Compose(to_tensor())
        augmented = study_transform(augment, image_size=size)
        self.train_set = PILDigits(
            train_images, train_labels, augmented if augment["train"] else plain
        )
        self.test_set = PILDigits(test_images, test_labels, augmented if augment["test"] else plain)
        self.clean_test = (test_images.unsqueeze(1).float().div(255), test_labels)

    def _loader(
        self, dataset: Dataset, *, batch_size: int, shuffle: bool, seed: int
    ) -> Iterable[Batch]:
        # The transforms draw from torch's global generator (in-process) or from
        # worker seeds drawn from the loader's generator: seed both per epoch.
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        order = RandomSampler(dataset, generator=generator) if shuffle else range(len(dataset))
        loader = DataLoader(
            dataset,
            batch_sampler=MergedBatches(order, batch_size),
            num_workers=self.num_workers,
            generator=generator,
            pin_memory=self.device.type == "cuda",
        )
        for images, labels in loader:
            yield (
                images.to(self.device, non_blocking=True),
                labels.to(self.device, non_blocking=True),
            )

    def train_batches(self, epoch: int) -> Iterable[Batch]:
        seed = epoch_seed(self.seed, epoch, TRAIN_STREAM)
        return self._loader(self.train_set, batch_size=self.batch_size, shuffle=True, seed=seed)

    def test_batches(self, epoch: int, *, augmented: bool) -> Iterable[Batch]:
        if augmented:
            # From data.test_seed, as the fast pipeline: every model of a sweep is scored
            # on the same images; drawn anew each epoch only with data.test_redraw.
            seed = epoch_seed(self.test_seed, epoch if self.test_redraw else 0, TEST_STREAM)
            return self._loader(
                self.test_set, batch_size=self.test_batch_size, shuffle=False, seed=seed
            )
        images, labels = self.clean_test
        return (
            (
                images[i : i + self.test_batch_size].to(self.device),
                labels[i : i + self.test_batch_size].to(self.device),
            )
            for i in range(0, len(labels), self.test_batch_size)
        )
