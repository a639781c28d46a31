"""MNIST loading, its errors, and the reference (torchvision) augmentation pipeline."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode, v2

from tests.conftest import compose_config
from vitbn_sweep.data import DataError, build_pipeline, load_mnist
from vitbn_sweep.data.base import subset_indices
from vitbn_sweep.data.torchvision_pipeline import study_transform

RAW = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


def test_load_mnist_shapes(data_dir: Path) -> None:
    images, labels = load_mnist(data_dir, train=False, download=False)
    assert images.shape == (10_000, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (10_000,) and labels.dtype == torch.int64
    assert set(labels.unique().tolist()) == set(range(10))


def copy_raw(data_dir: Path, tmp_path: Path) -> Path:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in RAW:
        shutil.copy(data_dir / "MNIST" / "raw" / name, raw / name)
    return raw


@pytest.mark.parametrize("damage", ["truncate", "empty", "magic", "one pixel"])
def test_corrupt_file_is_named(data_dir: Path, tmp_path: Path, damage: str) -> None:
    raw = copy_raw(data_dir, tmp_path)
    target = raw / "t10k-images-idx3-ubyte"
    data = target.read_bytes()
    damaged = {
        "truncate": data[: len(data) // 2],
        "empty": b"",
        "magic": b"\x00\x00\x08\x01" + data[4:],
        "one pixel": data[:5000] + bytes([data[5000] ^ 1]) + data[5001:],  # only the md5 tells
    }[damage]
    target.write_bytes(damaged)
    with pytest.raises(DataError, match=r"(?s)corrupt MNIST files.*t10k-images-idx3-ubyte: "):
        load_mnist(tmp_path, train=False, download=True)
    assert target.read_bytes() == damaged  # named, never silently replaced


def test_missing_files_without_download_say_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_mnist(tmp_path, train=True, download=False)
    message = str(err.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "VITBN_DATA_DIR" in message and "data.root" in message


def test_subsets() -> None:
    assert subset_indices(100, None, how="first", seed=0) is None
    assert subset_indices(100, 5, how="first", seed=0).tolist() == [0, 1, 2, 3, 4]
    a = subset_indices(100, 10, how="random", seed=3)
    assert torch.equal(a, subset_indices(100, 10, how="random", seed=3))
    assert len(a.unique()) == 10 and not torch.equal(a, torch.arange(10))


def augment_cfg() -> dict:
    return compose_config([])["data"]["augment"]


def test_reference_transform_is_the_spec() -> None:
    rot, affine, zoom, resize, *_ = study_transform(augment_cfg(), image_size=28).transforms
    assert isinstance(rot, v2.RandomRotation) and rot.degrees == [-20.0, 20.0]
    assert rot.interpolation == InterpolationMode.NEAREST and rot.fill == 0
    assert isinstance(affine, v2.RandomAffine) and affine.degrees == [0.0, 0.0]
    assert affine.translate == (0.2, 0.2)
    assert affine.interpolation == InterpolationMode.NEAREST
    assert isinstance(zoom, v2.RandomZoomOut) and zoom.side_range == (2.0, 3.0) and zoom.p == 0.2
    assert isinstance(resize, v2.Resize) and resize.size == [28] and resize.antialias
    assert resize.interpolation == InterpolationMode.BILINEAR


def test_reference_parameters_within_spec_ranges() -> None:
    rot, affine, zoom, *_ = study_transform(augment_cfg(), image_size=28).transforms
    img = [Image.new("L", (28, 28))]
    torch.manual_seed(0)
    angles = torch.tensor([rot.make_params(img)["angle"] for _ in range(2000)])
    assert angles.min() >= -20 and angles.max() <= 20 and angles.std() > 10  # U[-20,20]: 11.5
    shifts = torch.tensor([affine.make_params(img)["translate"] for _ in range(2000)]).float()
    # torchvision draws U[-5.6, 5.6] and rounds to whole pixels: |shift| <= 6
    assert shifts.abs().max() == round(0.2 * 28) and shifts.abs().min() == 0
    big = [Image.new("L", (28, 28))]
    pads = torch.tensor([zoom.make_params(big)["padding"] for _ in range(500)]).float()
    side = (pads[:, 0] + pads[:, 2] + 28) / 28  # canvas side / image side
    assert side.min() >= 2.0 and side.max() <= 3.0 + 1 / 28


def test_zoom_out_probability_near_spec() -> None:
    # An all-white image keeps >= ~55 % white after rotation and translation alone;
    # after a zoom-out (canvas 2-3x its side) at most 1/4 is white.
    transform = study_transform(augment_cfg(), image_size=28)
    white = Image.new("L", (28, 28), color=255)
    torch.manual_seed(0)
    n = 2000
    zoomed = sum(transform(white).mean().item() < 0.35 for _ in range(n))
    assert abs(zoomed / n - 0.2) < 0.04  # 4.5 standard errors of a Binomial(2000, 0.2)


def pipeline(*overrides: str):
    cfg = compose_config(
        ["data.train_size=300", "data.test_size=200", "data.pipeline=torchvision", *overrides]
    )
    return build_pipeline(
        cfg["data"], batch_size=100, test_batch_size=200, seed=0, device=torch.device("cpu")
    )


def test_batches_are_28x28_in_unit_range(data_dir: Path) -> None:
    images, labels = next(iter(pipeline().train_batches(1)))
    assert images.shape == (100, 1, 28, 28) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1 and labels.shape == (100,)


def test_test_augmentation_on_and_off(data_dir: Path) -> None:
    on, off = pipeline(), pipeline("data.augment.test=false")
    ((clean, y0),) = list(on.test_batches(1, augmented=False))
    ((aug, y1),) = list(on.test_batches(1, augmented=True))
    ((plain, y2),) = list(off.test_batches(1, augmented=True))
    assert torch.equal(y0, y1) and torch.equal(y0, y2)  # test set is not shuffled
    torch.testing.assert_close(plain, clean, rtol=0, atol=1e-6)
    assert (aug - clean).abs().mean() > 0.05
    images, _ = load_mnist(data_dir, train=False, download=False)
    torch.testing.assert_close(clean[:, 0], images[:200].float() / 255)


def test_epochs_replay_exactly_and_differ_between_epochs(data_dir: Path) -> None:
    a, b = pipeline(), pipeline()
    first = [x for x, _ in a.train_batches(1)]
    assert all(
        torch.equal(x, y) for x, y in zip(first, (x for x, _ in b.train_batches(1)), strict=True)
    )
    second = [x for x, _ in a.train_batches(2)]
    assert not torch.equal(first[0], second[0])


def test_train_augmentation_off_gives_the_clean_images(data_dir: Path) -> None:
    p = pipeline("data.augment.train=false")
    images, labels = next(iter(p.train_batches(1)))
    raw, raw_labels = load_mnist(data_dir, train=True, download=False)
    # shuffled: each batch image is one of the first 300 clean training images
    lookup = {raw[i].numpy().tobytes(): raw_labels[i].item() for i in range(300)}
    for img, label in zip(images, labels, strict=True):
        key = (img[0] * 255).round().to(torch.uint8).numpy().tobytes()
        assert lookup[key] == label.item()


def test_batch_bounds_never_leave_one_sample_alone() -> None:
    from vitbn_sweep.data.base import batch_bounds

    assert batch_bounds(500, 100) == [(0, 100), (100, 200), (200, 300), (300, 400), (400, 500)]
    assert batch_bounds(501, 100)[-1] == (400, 501) and len(batch_bounds(501, 100)) == 5
    assert batch_bounds(502, 100)[-1] == (500, 502)
    assert batch_bounds(1, 100) == [(0, 1)]
    for n in range(1, 260):
        bounds = batch_bounds(n, 50)
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
        assert n == 1 or min(stop - start for start, stop in bounds) >= 2


def _torchvision_test_images(*overrides: str, epoch: int) -> torch.Tensor:
    data = compose_config(["data.pipeline=torchvision", "data.test_size=50", *overrides])["data"]
    pipe = build_pipeline(
        data, batch_size=50, test_batch_size=50, seed=0, device=torch.device("cpu")
    )
    return torch.cat([x for x, _ in pipe.test_batches(epoch, augmented=True)])


def test_torchvision_pipeline_honours_test_seed_and_test_redraw(data_dir: Path) -> None:
    fixed = _torchvision_test_images(epoch=1)
    assert torch.equal(fixed, _torchvision_test_images(epoch=2))  # the same every epoch
    assert not torch.equal(fixed, _torchvision_test_images("data.test_seed=1", epoch=1))
    one, two = (_torchvision_test_images("data.test_redraw=true", epoch=e) for e in (1, 2))
    assert not torch.equal(one, two)
