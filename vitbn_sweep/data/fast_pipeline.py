"""The fast pipeline: the study's augmentation as batched tensor operations on the device.

The dataset is held once as uint8 on the training device. Each sample's random
parameters are drawn in batch, on that device, from a generator seeded by
(seed, epoch), with the distributions torchvision v2 draws them from::

    angle      ~ U[-degrees, degrees]                          RandomRotation
    tx, ty     = round(U[-t*W, t*W]), round(U[-t*H, t*H])      RandomAffine (whole pixels)
    zoom       ~ Bernoulli(p)                                  RandomZoomOut
    side C     = floor(W * r), r ~ U[low, high]                 (square canvas)
    left, top  = floor((C - W) * U[0, 1))

and the image is made in two batched samplings that follow PIL's arithmetic
(the reference pipeline runs torchvision's transforms on PIL images):

1. rotation and translation as one gather: output pixel (x, y) reads input pixel
   floor(R (x - tx + 1/2 - c, y - ty + 1/2 - c) + c), with R PIL's inverse rotation
   about the image centre c (nearest neighbour, fill 0). The shift is whole pixels,
   so folding it into the rotation's gather is exact.
2. zoom-out placement and the antialiased bilinear resize to S x S as two per-sample
   matrix products. PIL's resize is separable, out = A_y img A_x^T, where A holds
   PIL's triangle-filter weights for canvas side C (support scaled by C / S, weights
   in PIL's 22-bit fixed point), restricted to the W columns the image covers on the
   canvas; like PIL, each of the two passes rounds to 8 bits. A sample without
   zoom-out has C = W and no offset (then A is the identity when S = W).

The augmented test set is drawn once from ``data.test_seed`` and cached (as the
uint8 values the augmentation yields, exactly), so every model of a sweep is
scored on the same images; ``data.test_redraw: true`` draws it anew every epoch,
as the study did (still from ``data.test_seed``, so all models see the same
images in the same epoch).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from vitbn_sweep.data.base import Batch, Pipeline, batch_bounds, epoch_seed, load_split

TRAIN_STREAM, TEST_STREAM = 0, 1
PIL_PRECISION_BITS = 22  # PIL's fixed-point resampling weights (32 - 8 - 2 bits)
CHUNK = {"cpu": 1000, "cuda": 20_000}  # images augmented per tensor operation


@dataclass(frozen=True)
class Augmentation:
    """The study's augmentation for ``size`` x ``size`` inputs, resized to ``out_size``."""

    size: int
    out_size: int
    degrees: float
    translate: float
    zoom_p: float
    side_range: tuple[float, float]

    @classmethod
    def from_config(cls, augment: Mapping[str, Any], *, size: int, out_size: int) -> Augmentation:
        low, high = augment["zoom_out_side_range"]
        return cls(
            size=size,
            out_size=out_size,
            degrees=float(augment["rotation_degrees"]),
            translate=float(augment["translate"]),
            zoom_p=float(augment["zoom_out_p"]),
            side_range=(float(low), float(high)),
        )

    @property
    def max_side(self) -> int:
        return int(self.size * self.side_range[1])

    def draw(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Parameters of ``n`` samples, drawn on the generator's device.

        ``angle`` (float, degrees counter-clockwise), ``tx``/``ty`` (int shifts),
        ``zoom`` (bool), ``side`` (canvas side; ``size`` where no zoom-out) and
        ``left``/``top`` (the image's place on the canvas; 0 where no zoom-out).
        """
        device = generator.device
        u = torch.rand(6, n, generator=generator, device=device)
        max_shift = self.translate * self.size
        low, high = self.side_range
        zoom = u[0] < self.zoom_p
        side = torch.floor(self.size * (low + u[1] * (high - low))).long().clamp_max(self.max_side)
        side = torch.where(zoom, side, self.size)
        room = side - self.size
        return {
            "angle": (2 * u[2] - 1) * self.degrees,
            "tx": torch.round((2 * u[3] - 1) * max_shift).long(),
            "ty": torch.round((2 * u[4] - 1) * max_shift).long(),
            "zoom": zoom,
            "side": side,
            "left": torch.floor(room * u[5]).long(),
            # a second offset draw from the same uniform would correlate left and top
            "top": torch.floor(room * torch.rand(n, generator=generator, device=device)).long(),
        }

    def resize_table(self, device: torch.device) -> torch.Tensor:
        """Resize weights per canvas side C and image offset: (sides, offsets, out_size, size).

        Entry [C - size, o] holds the columns o .. o + size - 1 of PIL's bilinear weights
        for a C -> out_size resize: the image's share of the canvas it is placed on.
        """
        w, sides = self.size, range(self.size, self.max_side + 1)
        table = torch.zeros(len(sides), self.max_side - w + 1, self.out_size, w)
        for i, side in enumerate(sides):
            weights = pil_bilinear_weights(side, self.out_size).float()
            for offset in range(side - w + 1):
                table[i, offset] = weights[:, offset : offset + w]
        return table.to(device)

    def apply(
        self, images: torch.Tensor, params: Mapping[str, torch.Tensor], table: torch.Tensor
    ) -> torch.Tensor:
        """uint8 (n, size, size) -> augmented pixel values, float32 (n, out, out) in 0..255."""
        images = self._rotate_shift(images, params)
        # A canvas already out x out (no zoom-out, out = size) is left as it is, as by PIL.
        todo = (params["side"] != self.out_size).nonzero().squeeze(1)
        if len(todo) == len(images):
            return self._resize(images, params, table)
        resized = self._resize(images[todo], {k: p[todo] for k, p in params.items()}, table)
        return images.index_copy_(0, todo, resized)

    def _rotate_shift(
        self, images: torch.Tensor, params: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        """Nearest-neighbour rotation then whole-pixel shift, as one gather: (n, W, W)."""
        n, w = images.shape[0], self.size
        pix = torch.arange(w, device=images.device, dtype=torch.float32)
        # Output pixel (x, y) shows rotated pixel (u, v) = (x - tx, y - ty), blank outside.
        u = pix - params["tx"][:, None]  # (n, W)
        v = pix - params["ty"][:, None]  # (n, W)
        inside = ((u >= 0) & (u < w))[:, None, :] & ((v >= 0) & (v < w))[:, :, None]  # (n, W, W)
        # PIL's inverse rotation about the centre c = W/2, sampled at pixel centres.
        theta = torch.deg2rad(params["angle"])[:, None]
        cos, sin, c = torch.cos(theta), torch.sin(theta), w / 2
        du, dv = u + 0.5 - c, v + 0.5 - c
        src_x = (cos * du)[:, None, :] - (sin * dv)[:, :, None] + c  # (n, W, W)
        src_y = (sin * du)[:, None, :] + (cos * dv)[:, :, None] + c
        # Sources off the image land on a one-pixel blank border around it.
        src_x = src_x.floor_().clamp_(-1, w).add_(1)
        src_y = src_y.floor_().clamp_(-1, w).add_(1)
        index = src_y.mul_(w + 2).add_(src_x).long().view(n, -1)
        framed = F.pad(images, (1, 1, 1, 1)).view(n, -1)  # (n, (W+2)^2), blank border
        return torch.gather(framed, 1, index).view(n, w, w).float().mul_(inside)

    def _resize(
        self, images: torch.Tensor, params: Mapping[str, torch.Tensor], table: torch.Tensor
    ) -> torch.Tensor:
        """Zoom-out placement and antialiased resize: (n, W, W) -> (n, S, S), 8-bit rounding."""
        side = params["side"] - self.size
        a_x = table[side, params["left"]]  # (n, S, W)
        a_y = table[side, params["top"]]  # (n, S, W)
        rows = torch.floor(images @ a_x.transpose(1, 2) + 0.5)  # horizontal pass (n, W, S)
        return torch.floor(a_y @ rows + 0.5).clamp_(0, 255)  # vertical pass (n, S, S)


def pil_bilinear_weights(in_size: int, out_size: int) -> torch.Tensor:
    """PIL's antialiased bilinear resample weights (out_size, in_size), in its fixed point.

    As ``precompute_coeffs`` and ``normalize_coeffs_8bpc`` in PIL's Resample.c: a
    triangle filter whose support widens by in/out when shrinking, normalised per
    output pixel, then rounded to ``PIL_PRECISION_BITS`` bits.
    """
    scale = in_size / out_size
    filter_scale = max(scale, 1.0)
    support = filter_scale
    weights = torch.zeros(out_size, in_size, dtype=torch.float64)
    for out in range(out_size):
        centre = (out + 0.5) * scale
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), in_size)
        taps = torch.arange(lo, hi, dtype=torch.float64)
        k = (1 - ((taps - centre + 0.5) / filter_scale).abs()).clamp_min(0)
        if k.sum() > 0:
            k = k / k.sum()
        weights[out, lo:hi] = k
    one = 1 << PIL_PRECISION_BITS
    return torch.floor(weights * one + 0.5) / one


class FastPipeline(Pipeline):
    """Whole-batch augmentation on the training device; no DataLoader, no per-sample loop."""

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
        self.seed, self.device = seed, device
        self.augment = data["augment"]
        self.test_seed, self.test_redraw = data["test_seed"], data["test_redraw"]
        train_images, train_labels = load_split(data, train=True)
        test_images, test_labels = load_split(data, train=False)
        self.num_train, self.num_test = len(train_labels), len(test_labels)
        self.aug = Augmentation.from_config(
            self.augment, size=train_images.shape[-1], out_size=data["image_size"]
        )
        self.table = self.aug.resize_table(device)
        self.chunk = max(
            batch_size, CHUNK.get(device.type, CHUNK["cuda"]) // batch_size * batch_size
        )
        self.train_images, self.train_labels = train_images.to(device), train_labels.to(device)
        self.test_images, self.test_labels = test_images.to(device), test_labels.to(device)
        self._test_cache: torch.Tensor | None = None

    def _params(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """``n`` samples' augmentation parameters, drawn on the CPU and moved to the device.

        Every random number is drawn on the CPU: the data stream is the same on
        every device, so a job cut on one device continues on another with the same data.
        """
        return {k: p.to(self.device) for k, p in self.aug.draw(n, generator).items()}

    def augmented(self, images: torch.Tensor, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """uint8 (n, W, W) -> float32 (n, 1, S, S) in [0, 1], in chunks."""
        out = [
            self.aug.apply(
                images[i : i + self.chunk],
                {k: p[i : i + self.chunk] for k, p in params.items()},
                self.table,
            )
            for i in range(0, len(images), self.chunk)
        ]
        return torch.cat(out).div_(255).unsqueeze(1)

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, epoch, TRAIN_STREAM))
        order = torch.randperm(self.num_train, generator=generator).to(self.device)
        params = self._params(self.num_train, generator) if self.augment["train"] else {}
        # Chunks are whole batches, so a lone last sample merges into the last chunk too.
        for start, stop in batch_bounds(self.num_train, self.chunk):
            idx = order[start:stop]
            images = self.train_images[idx]
            if not self.augment["train"]:
                images = images.unsqueeze(1).float().div_(255)
            else:
                chunk_params = {k: p[start:stop] for k, p in params.items()}
                images = self.aug.apply(images, chunk_params, self.table).div_(255).unsqueeze(1)
            labels = self.train_labels[idx]
            for i, j in batch_bounds(len(idx), self.batch_size):
                yield images[i:j], labels[i:j]

    def test_batches(self, epoch: int, *, augmented: bool) -> Iterator[Batch]:
        if augmented and self.augment["test"]:
            images = self._augmented_test(epoch)
        else:
            images = self.test_images.unsqueeze(1).float().div_(255)
        for i in range(0, self.num_test, self.test_batch_size):
            yield (
                images[i : i + self.test_batch_size],
                self.test_labels[i : i + self.test_batch_size],
            )

    def _augmented_test(self, epoch: int) -> torch.Tensor:
        if self.test_redraw:
            return self._draw_test(epoch_seed(self.test_seed, epoch, TEST_STREAM))
        if self._test_cache is None:
            # 8-bit values exactly (the resize rounds like PIL): cached as uint8.
            self._test_cache = self._draw_test(epoch_seed(self.test_seed, 0, TEST_STREAM))
            self._test_cache = self._test_cache.mul(255).round_().to(torch.uint8)
        return self._test_cache.float().div_(255)

    def _draw_test(self, seed: int) -> torch.Tensor:
        params = self._params(self.num_test, torch.Generator().manual_seed(seed))
        return self.augmented(self.test_images, params)
