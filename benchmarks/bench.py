"""``make bench``: the fast pipeline and the torchvision reference, side by side on this device.

    python -m benchmarks.bench [--repeats 5] [--seconds 1.5] [--out benchmark.json]

(a) augmentation images/s of both pipelines; (b) train samples/s of ViT and ViTBNFFN at
depth 1, 4 and 7, end to end with each pipeline and model-only on pre-made tensors (the
difference is the data path's share of a step); (c) the study's full grid (2 models x
depths 1-7 x 2 learning rates x 10 epochs = 280 epochs) in epochs per hour: the reference
one job at a time with all threads, the fast pipeline one job at a time, and the fast
pipeline packed (N jobs at once with cores/N threads each, measured with N concurrent
worker processes), and the fast pipeline stacked (``hydra/launcher=stacked``: ``--members``
jobs of one model and depth as one stacked model in one process, each member drawing its
own batches; on CUDA also with each step replayed from a CUDA graph,
``trainer.cuda_graph``); (d) the peak resident memory of a depth-7 run, in a fresh
process; (e) the distance to the limit: per model and depth, the training GFLOP/s these rates reach
(``benchmarks.flops``: matrix-product FLOPs per sample, forward and backward) and their
share of the device's measured matrix-multiply peak, fp32 and, where the device has bf16
matrix support, bf16.

Every figure is the median of ``--repeats`` timed windows of ``--seconds`` each; the two
pipelines are timed alternately within each repeat, so drifting load hits both alike.
Prints a Markdown table and writes ``benchmark.json`` with, per case, both figures and
their ratio, and a summary ``ratios`` {augment, train_d1, train_d4, train_d7, grid,
grid_stacked}.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import multiprocessing as mp
import os
import platform
import queue
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from torch import nn

from benchmarks.bench_report import markdown
from benchmarks.flops import matmul_peak, train_flops
from benchmarks.reference_models import build_reference_model
from vitbn_sweep.accel import autocast_factory, cpu_bf16_flags
from vitbn_sweep.choices import PIPELINES
from vitbn_sweep.cuda_graph import WARMUP_STEPS, GraphedStep, eager_step
from vitbn_sweep.data import Batch, Pipeline, build_pipeline
from vitbn_sweep.epoch_times import depth_line
from vitbn_sweep.models import build_model
from vitbn_sweep.models.stacked import build_stacked_model, stack_states
from vitbn_sweep.stacked_adam import StackedAdam
from vitbn_sweep.train import build, evaluate

MODELS = ("vit", "vitbnffn")
DEPTHS = (1, 4, 7)
GRID_DEPTHS = range(1, 8)
GRID_LRS, GRID_EPOCHS = 2, 10
STACKED_MEMBERS = 6  # a group of experiment=article_full: 2 learning rates x 3 seeds
EVAL_REPEATS = 3  # one 5,000-image forward each: eval is a small part of an epoch


def study_config(*overrides: str) -> dict[str, Any]:
    """The composed job config (defaults of conf/), as a plain dict."""
    with initialize_config_module(config_module="vitbn_sweep.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rate(work: Callable[[], int], *, seconds: float, device: torch.device) -> float:
    """Items per second of ``work()`` (returning the items it did), repeated for ``seconds``
    (at least once)."""
    sync(device)
    start, done = time.perf_counter(), work()
    while time.perf_counter() - start < seconds:
        done += work()
    sync(device)
    return done / (time.perf_counter() - start)


def endless(pipeline: Pipeline) -> Iterator[Batch]:
    """Training batches of epoch 1, 2, ... without end."""
    return itertools.chain.from_iterable(pipeline.train_batches(e) for e in itertools.count(1))


class Bench:
    """Pipelines, models and the timed work, for one device and thread count."""

    def __init__(self, device: torch.device, *, seconds: float) -> None:
        self.device, self.seconds = device, seconds
        self.bf16 = device.type == "cuda" or (device.type == "cpu" and bool(cpu_bf16_flags()))
        self.cfg = {p: study_config(f"data.pipeline={p}") for p in PIPELINES}
        self.flush_denormal = bool(self.cfg["fast"]["trainer"]["flush_denormal"])
        if device.type == "cpu":  # as train.run sets it
            torch.set_flush_denormal(self.flush_denormal)
        trainer = self.cfg["fast"]["trainer"]
        self.batch_size, self.test_batch_size = trainer["batch_size"], trainer["test_batch_size"]
        self.pipelines = {
            p: build_pipeline(
                self.cfg[p]["data"],
                batch_size=self.batch_size,
                test_batch_size=self.test_batch_size,
                seed=0,
                device=device,
            )
            for p in PIPELINES
        }
        self.streams = {p: endless(pipe) for p, pipe in self.pipelines.items()}
        images, labels = next(iter(self.pipelines["fast"].train_batches(0)))
        self.premade = (images, labels)
        test = next(iter(self.pipelines["fast"].test_batches(0, augmented=True)))[0]
        self.test_batch = test[: self.test_batch_size]

    def model(
        self, name: str, depth: int, *, plain: bool = False
    ) -> tuple[nn.Module, torch.optim.Optimizer]:
        """The lean model, or (``plain``) the study's straightforward implementation of it."""
        cfg = study_config(f"model={name}", f"model.depth={depth}")
        data = cfg["data"]
        torch.manual_seed(0)
        if plain:
            model = build_reference_model(cfg["model"])
        else:
            model = build_model(
                cfg["model"],
                image_size=data["image_size"],
                channels=data["channels"],
                num_classes=data["num_classes"],
            )
        model = model.to(self.device)
        return model, torch.optim.Adam(model.parameters(), lr=cfg["optim"]["lr"])

    def stacked(self, name: str, depth: int, members: int) -> tuple[nn.Module, StackedAdam]:
        """``members`` lean models (seeds 0, 1, ...) as one stacked model, with its Adam."""
        cfg = study_config(f"model={name}", f"model.depth={depth}")
        data, optim = cfg["data"], cfg["optim"]
        sizes = {k: data[k] for k in ("image_size", "channels", "num_classes")}
        singles = []
        for seed in range(members):
            torch.manual_seed(seed)
            singles.append(build_model(cfg["model"], **sizes))
        model = build_stacked_model(cfg["model"], members=members, **sizes)
        model.load_state_dict(stack_states([m.state_dict() for m in singles]))
        model = model.to(self.device)
        optimizer = StackedAdam(list(model.parameters()), lr=[optim["lr"]] * members,
                                betas=tuple(optim["betas"]), eps=optim["eps"],
                                weight_decay=optim["weight_decay"])  # fmt: skip
        return model, optimizer

    def stacked_train_rate(
        self, model: nn.Module, optimizer: StackedAdam, *, graphed: bool = False
    ) -> float:
        """Train samples/s of all members together, each member with its own fast batches;
        ``graphed``: each step replayed from a CUDA graph (``trainer.cuda_graph``)."""
        model.train()
        stream, members = self.streams["fast"], optimizer.members
        loss_sum = torch.zeros(members, device=self.device)
        no_autocast = contextlib.nullcontext
        train_step: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
        if graphed:
            train_step = GraphedStep(model, optimizer, autocast=no_autocast)
        else:
            train_step = partial(eager_step, model, optimizer, autocast=no_autocast)

        def step() -> int:  # the per-step work of stacked_train.train_epoch
            nonlocal loss_sum
            batches = [next(stream) for _ in range(members)]
            images, labels = (torch.stack([b[i] for b in batches]) for i in (0, 1))
            _, losses = train_step(images, labels)
            loss_sum = loss_sum + losses.detach() * labels.shape[1]
            return labels.numel()

        for _ in range(WARMUP_STEPS + 1 if graphed else 1):  # warmed up (and captured)
            step()
        return rate(step, seconds=self.seconds, device=self.device)

    def kernels_per_step(self, model: nn.Module, optimizer: StackedAdam) -> int:
        """CUDA kernels one eager stacked training step launches (forward, backward, Adam)."""
        from torch.profiler import ProfilerActivity, profile

        members = optimizer.members
        batches = [next(self.streams["fast"]) for _ in range(members)]
        images, labels = (torch.stack([b[i] for b in batches]) for i in (0, 1))
        eager_step(model, optimizer, images, labels, autocast=contextlib.nullcontext)
        sync(self.device)
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            eager_step(model, optimizer, images, labels, autocast=contextlib.nullcontext)
            sync(self.device)
        return sum(1 for e in prof.events() if e.device_type.name == "CUDA")

    def engine_train_rate(self, name: str, depth: int, members: int, groups: int = 4) -> float:
        """Train samples/s of ``groups`` stacked groups stepped in turn from one process,
        each on its own CUDA stream, as ``vitbn_sweep.engine`` trains them (graphed steps)."""
        runs = []
        for _ in range(groups):
            model, optimizer = self.stacked(name, depth, members)
            model.train()
            stream = torch.cuda.Stream(self.device)
            stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(stream):
                runs.append(
                    (stream, GraphedStep(model, optimizer, autocast=contextlib.nullcontext))
                )
        batches = [next(self.streams["fast"]) for _ in range(members)]
        images, labels = (torch.stack([b[i] for b in batches]) for i in (0, 1))

        def step() -> int:
            for stream, graphed in runs:
                with torch.cuda.stream(stream):
                    graphed(images, labels)
            return groups * labels.numel()

        for _ in range(WARMUP_STEPS + 1):  # warmed up and captured
            step()
        return rate(step, seconds=self.seconds, device=self.device)

    @torch.no_grad()
    def stacked_eval_rate(self, model: nn.Module, members: int) -> float:
        """Test samples/s of all members together, scored as stacked_train.evaluate scores."""
        model.eval()
        chunk = max(1, self.cfg["fast"]["trainer"]["eval_chunk"] // members)
        images = self.test_batch.expand(members, *self.test_batch.shape)  # (M, n, c, H, W)

        def forward() -> int:
            for i in range(0, images.shape[1], chunk):
                model(images[:, i : i + chunk]).argmax(-1)
            return images.shape[0] * images.shape[1]

        return median([rate(forward, seconds=0.0, device=self.device) for _ in range(EVAL_REPEATS)])

    def augment_rate(self, pipeline: str) -> float:
        stream = self.streams[pipeline]
        return rate(lambda: len(next(stream)[1]), seconds=self.seconds, device=self.device)

    def train_rate(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        source: str,
        *,
        precision: str = "fp32",
    ) -> float:
        """Train samples/s with batches from a pipeline, or the same pre-made batch."""
        model.train()
        autocast = autocast_factory(precision, self.device)
        stream = itertools.repeat(self.premade) if source == "model" else self.streams[source]
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)

        def step() -> int:  # the per-step work of train.train_epoch
            nonlocal loss_sum, correct
            images, labels = next(stream)
            with autocast():
                logits = model(images)
                loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum = loss_sum + loss.detach() * len(labels)
            correct = correct + (logits.argmax(1) == labels).sum()
            return len(labels)

        step()
        return rate(step, seconds=self.seconds, device=self.device)

    @torch.no_grad()
    def eval_rate(
        self, model: nn.Module, repeats: int = EVAL_REPEATS, *, precision: str = "fp32"
    ) -> float:
        """Test samples/s of eval-mode forward passes at the test batch size (median)."""
        model.eval()
        images = self.test_batch
        autocast = autocast_factory(precision, self.device)
        with autocast():
            model(images[:100])

        def forward() -> int:
            with autocast():
                model(images).argmax(1)
            return len(images)

        return median([rate(forward, seconds=0.0, device=self.device) for _ in range(repeats)])


def median(values: list[float]) -> float:
    return statistics.median(values)


# (figure, model, batches): the study's set-up is the torchvision pipeline with the plain
# model; "torchvision" alone keeps the lean model, to isolate the data path.
SOURCES = (
    ("fast", "lean", "fast"),
    ("torchvision", "lean", "torchvision"),
    ("study", "plain", "torchvision"),
    ("model", "lean", "model"),
    ("model_plain", "plain", "model"),
)


def measure_cases(bench: Bench, repeats: int) -> dict[str, Any]:
    """Medians of every train and eval figure, the set-ups alternating within each repeat."""
    out: dict[str, Any] = {}
    for name, depth in itertools.product(MODELS, DEPTHS):
        models = {"lean": bench.model(name, depth), "plain": bench.model(name, depth, plain=True)}
        samples: dict[str, list[float]] = {figure: [] for figure, _, _ in SOURCES}
        if bench.bf16:  # the lean model under bf16 autocast, a copy with its own Adam
            models["bf16"] = bench.model(name, depth)
            samples["fast_bf16"] = []
        for _ in range(repeats):
            for figure, kind, source in SOURCES:
                samples[figure].append(bench.train_rate(*models[kind], source))
            if bench.bf16:
                samples["fast_bf16"].append(bench.train_rate(*models["bf16"], "fast",
                                                             precision="bf16"))  # fmt: skip
        out[f"{name}_d{depth}"] = {k: median(v) for k, v in samples.items()} | {
            "eval": bench.eval_rate(models["lean"][0]),
            "eval_plain": bench.eval_rate(models["plain"][0]),
        }
        if bench.bf16:
            out[f"{name}_d{depth}"]["eval_bf16"] = bench.eval_rate(models["bf16"][0],
                                                                   precision="bf16")  # fmt: skip
        figures = ", ".join(f"{k} {v:.0f}/s" for k, v in out[f"{name}_d{depth}"].items())
        print(f"  {name} depth {depth}: {figures}", file=sys.stderr, flush=True)
    return out


def measure_stacked(bench: Bench, repeats: int, members: int) -> dict[str, Any]:
    """Samples/s (all members together) of stacked training and scoring, per model and depth."""
    out: dict[str, Any] = {}
    for name, depth in itertools.product(MODELS, DEPTHS):
        model, optimizer = bench.stacked(name, depth, members)
        train = [bench.stacked_train_rate(model, optimizer) for _ in range(repeats)]
        out[f"{name}_d{depth}"] = {
            "stacked": median(train),
            "eval": bench.stacked_eval_rate(model, members),
        }
        if bench.device.type == "cuda":  # side by side with the eager steps above
            graphed = [
                bench.stacked_train_rate(model, optimizer, graphed=True) for _ in range(repeats)
            ]
            out[f"{name}_d{depth}"]["graphed"] = median(graphed)
            out[f"{name}_d{depth}"]["kernels_per_step"] = bench.kernels_per_step(model, optimizer)
            engine = [bench.engine_train_rate(name, depth, members) for _ in range(repeats)]
            out[f"{name}_d{depth}"]["engine"] = median(engine)
        figures = ", ".join(f"{k} {v:.0f}/s" for k, v in out[f"{name}_d{depth}"].items())
        print(f"  {name} depth {depth}, {members} stacked: {figures}", file=sys.stderr, flush=True)
    return out


MIDTRAIN = {"name": "vit", "depth": 3, "lr": 0.005}  # the job of issue 11, part 0


def measure_midtrain(bench: Bench, repeats: int, steps: int) -> dict[str, Any]:
    """Train samples/s of ViT depth 3 after ``steps`` training steps at lr 0.005 (the less
    stable of the study's learning rates), with subnormal floats flushed to zero and kept,
    alternately; and of the fresh model. On the CPU, subnormals in the activations and
    gradients of an unstable run slow every operation that touches them; a fresh model
    has none, so only a model in mid-training shows what ``trainer.flush_denormal`` buys."""
    model, optimizer = bench.model(MIDTRAIN["name"], MIDTRAIN["depth"])
    for group in optimizer.param_groups:
        group["lr"] = MIDTRAIN["lr"]
    flushes = (True, False) if bench.device.type == "cpu" else (bench.flush_denormal,)
    fresh = bench.train_rate(model, optimizer, "fast")
    stream = bench.streams["fast"]
    model.train()
    for _ in range(steps):
        images, labels = next(stream)
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    rates: dict[bool, list[float]] = {f: [] for f in flushes}
    try:
        for _ in range(repeats):
            for flush in flushes:
                if bench.device.type == "cpu":
                    torch.set_flush_denormal(flush)
                rates[flush].append(bench.train_rate(model, optimizer, "fast"))
    finally:
        if bench.device.type == "cpu":
            torch.set_flush_denormal(bench.flush_denormal)
    out = {**MIDTRAIN, "steps": steps, "fresh": fresh, "loss": loss.item()}
    out |= {("flush_on" if f else "flush_off"): median(v) for f, v in rates.items()}
    if "flush_off" in out:
        out["flush_gain"] = out["flush_on"] / out["flush_off"]
    print(f"  mid-training: {out}", file=sys.stderr, flush=True)
    return out


def packed_worker(
    rank: int, threads: int, repeats: int, seconds: float, barrier: Any, results: Any
) -> None:
    """One of the N concurrent jobs: the fast pipeline's figures under packing."""
    torch.set_num_threads(threads)
    bench = Bench(torch.device("cpu"), seconds=seconds)
    barrier.wait()
    out = {}
    for name, depth in itertools.product(MODELS, DEPTHS):
        model, optimizer = bench.model(name, depth)
        train = []
        for _ in range(repeats):
            barrier.wait()  # all jobs run the same case at the same time
            train.append(bench.train_rate(model, optimizer, "fast"))
        barrier.wait()
        out[f"{name}_d{depth}"] = {"fast": median(train), "eval": bench.eval_rate(model)}
    results.put((rank, out))


def measure_packed(jobs: int, threads: int, repeats: int, seconds: float) -> dict[str, Any]:
    """Per-job figures with ``jobs`` worker processes running side by side."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(jobs), ctx.Queue()
    workers = [
        ctx.Process(target=packed_worker, args=(r, threads, repeats, seconds, barrier, results))
        for r in range(jobs)
    ]
    for w in workers:
        w.start()
    per_job: dict[int, Any] = {}
    while len(per_job) < jobs:
        try:
            rank, out = results.get(timeout=5)
            per_job[rank] = out
        except queue.Empty:
            failed = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
            if failed:
                for w in workers:
                    w.terminate()
                raise RuntimeError(f"a packed bench worker failed (exit codes {failed})") from None
    for w in workers:
        w.join()
    keys = per_job[0].keys()
    return {
        k: {m: median([per_job[r][k][m] for r in per_job]) for m in ("fast", "eval")} for k in keys
    }


def per_depth(rates: dict[int, float]) -> Callable[[int], float]:
    """Seconds per sample at any depth, from samples/s at the measured depths: the line in
    depth that also prices the ETA and resolve's rounds (``epoch_times.depth_line``)."""
    return depth_line({d: 1 / rate for d, rate in rates.items()})


def grid_epochs_per_hour(
    figures: dict[str, Any],
    train_key: str,
    *,
    eval_key: str = "eval",
    num_train: int,
    num_test: int,
    test_aug_s: float,
    jobs: int = 1,
) -> float:
    """The study's full grid in epochs/h from the train and eval rates at depths 1, 4, 7:
    per epoch the training set, the augmented and the clean test set (+ ``test_aug_s`` to
    augment the test set, for a pipeline that redraws it every epoch), ``jobs`` at a time."""
    seconds = 0.0
    for name in MODELS:
        train = per_depth({d: figures[f"{name}_d{d}"][train_key] for d in DEPTHS})
        evals = per_depth({d: figures[f"{name}_d{d}"][eval_key] for d in DEPTHS})
        for depth in GRID_DEPTHS:
            epoch = num_train * train(depth) + 2 * num_test * evals(depth) + test_aug_s
            seconds += GRID_LRS * GRID_EPOCHS * epoch
    epochs = len(MODELS) * len(GRID_DEPTHS) * GRID_LRS * GRID_EPOCHS
    return epochs / (seconds / jobs / 3600)


def peaks(device: torch.device, *, bf16: bool) -> dict[str, float]:
    """The device's matrix-multiply peak in FLOP/s: fp32, and bf16 where it has bf16 matrix
    support (``Bench.bf16``: CUDA, or a CPU with AMX or AVX-512 bf16)."""
    out = {"fp32": matmul_peak(device, torch.float32)}
    if bf16:
        out["bf16"] = matmul_peak(device, torch.bfloat16)
    return out


def distance_to_limit(
    figures: dict[str, Any], stacked: dict[str, Any], model_cfg: dict[str, dict[str, Any]],
    sizes: dict[str, int], peak: dict[str, float], *, samples_per_step: int,
) -> dict[str, Any]:  # fmt: skip
    """Per model and depth: training FLOPs per sample, GFLOP/s reached one job at a time
    (fast pipeline) and stacked, and their share of each measured peak; and the stacked
    group's step time (``samples_per_step``: all members' batches) against the arithmetic
    time of the same step at the fp32 peak: what launches, syncs and memory traffic cost
    above the arithmetic."""
    out: dict[str, Any] = {}
    for key, f in figures.items():
        name, depth = key.rsplit("_d", 1)
        flops = train_flops({**model_cfg[name], "depth": int(depth)}, **sizes)
        reached = {"single": f["fast"] * flops, "stacked": stacked[key]["stacked"] * flops}
        out[key] = {
            "train_flops_per_sample": flops,
            "step_ms_stacked": 1e3 * samples_per_step / stacked[key]["stacked"],
            "arithmetic_ms_fp32": 1e3 * samples_per_step * flops / peak["fp32"],
        } | {
            f"gflops_{how}": rate / 1e9 for how, rate in reached.items()
        } | {
            f"share_{how}_{dtype}": rate / p for how, rate in reached.items()
            for dtype, p in peak.items()
        }  # fmt: skip
    return out


def rss_probe() -> None:
    """A depth-7 run's working set: the default (fast) pipeline on the full data, model,
    optimiser, 50 train steps, then the augmented and clean test sets at batch 5,000, scored
    as train.py scores them."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg = study_config("model=vitbnffn", "model.depth=7")
    model, optimizer, pipeline = build(cfg, device, checkpoint={})  # as a job is built
    model.train()
    for images, labels in itertools.islice(pipeline.train_batches(1), 50):
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    chunk = cfg["trainer"]["eval_chunk"]
    for augmented in (True, False):
        evaluate(model, pipeline.test_batches(1, augmented=augmented), chunk=chunk)
    print(json.dumps({"peak_rss_mb": own_peak_rss_mb()}))


def own_peak_rss_mb() -> float:
    """This process's peak resident memory. Linux: VmHWM, which starts afresh at exec;
    ``ru_maxrss`` does not (a child started from a big parent reports the parent's peak)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_mb() -> float:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench", "--rss-probe"],
        cwd=Path(__file__).resolve().parents[1],  # the repository root (not installed)
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mb"])


def case(name: str, unit: str, fast: float, reference: float, **extra: float) -> dict[str, Any]:
    return {
        "case": name,
        "unit": unit,
        "fast": fast,
        "torchvision": reference,
        "ratio": fast / reference,
        **extra,
    }


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.5, help="length of one timed window")
    parser.add_argument("--jobs", type=int, default=None, help="packed jobs (default: cores)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads of the one-job-at-a-time figures (default: torch's)",
    )
    parser.add_argument(
        "--members",
        type=int,
        default=STACKED_MEMBERS,
        help=f"jobs per stacked model in the stacked grid figure (default {STACKED_MEMBERS})",
    )
    parser.add_argument(
        "--midtrain-steps",
        type=int,
        default=300,
        help="training steps at lr 0.005 before the mid-training figures (default 300)",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmark.json"))
    parser.add_argument("--rss-probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_probe:
        rss_probe()
        return None

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    cores = os.cpu_count() or 1
    jobs = args.jobs or (1 if device.type == "cuda" else cores)
    threads_per_job = max(cores // jobs, 1)
    print(f"bench on {device}, {torch.get_num_threads()} threads ...", file=sys.stderr)
    bench = Bench(device, seconds=args.seconds)
    augment: dict[str, list[float]] = {p: [] for p in PIPELINES}
    for _ in range(args.repeats):
        for p in PIPELINES:
            augment[p].append(bench.augment_rate(p))
    aug = {p: median(v) for p, v in augment.items()}
    print(f"  augment: {aug}", file=sys.stderr, flush=True)
    figures = measure_cases(bench, args.repeats)

    cases = [case("augment", "images/s", aug["fast"], aug["torchvision"])]
    shares = {}
    for key, f in figures.items():
        share = {p: 1 - f[p] / f["model"] for p in PIPELINES}
        shares[key] = share["fast"]
        cases.append(
            case(
                f"train {key}",
                "samples/s",
                f["fast"],
                f["study"],
                torchvision_lean_model=f["torchvision"],
                ratio_same_model=f["fast"] / f["torchvision"],
                model_only=f["model"],
                model_only_plain=f["model_plain"],
                data_share_fast=share["fast"],
                data_share_torchvision=share["torchvision"],
            )
        )

    num_train, num_test = bench.pipelines["fast"].num_train, bench.pipelines["fast"].num_test
    sizes = {"num_train": num_train, "num_test": num_test}
    grid = {
        "torchvision_sequential": grid_epochs_per_hour(
            figures, "study", eval_key="eval_plain", test_aug_s=num_test / aug["torchvision"],
            **sizes,
        ),
        "fast_sequential": grid_epochs_per_hour(figures, "fast", test_aug_s=0.0, **sizes),
    }  # fmt: skip
    if jobs > 1:
        print(f"  packed: {jobs} jobs x {threads_per_job} threads ...", file=sys.stderr)
        packed = measure_packed(jobs, threads_per_job, args.repeats, args.seconds)
        grid["fast_packed"] = grid_epochs_per_hour(
            packed, "fast", test_aug_s=0.0, jobs=jobs, **sizes
        )
    else:
        packed, grid["fast_packed"] = {}, grid["fast_sequential"]
    grid["packing_gain"] = grid["fast_packed"] / grid["fast_sequential"]
    print(f"  stacked: {args.members} jobs per model ...", file=sys.stderr)
    stacked = measure_stacked(bench, args.repeats, args.members)
    grid["fast_stacked"] = grid_epochs_per_hour(stacked, "stacked", test_aug_s=0.0, **sizes)
    if device.type == "cuda":
        grid["fast_stacked_graphed"] = grid_epochs_per_hour(
            stacked, "graphed", test_aug_s=0.0, **sizes
        )
    bf16 = None
    if bench.bf16:
        grid["fast_bf16_sequential"] = grid_epochs_per_hour(
            figures, "fast_bf16", eval_key="eval_bf16", test_aug_s=0.0, **sizes
        )
        bf16 = {
            "cpu_flags": cpu_bf16_flags() if device.type == "cpu" else None,
            "speedup": {k: f["fast_bf16"] / f["fast"] for k, f in figures.items()},
            "grid_vs_fp32": grid["fast_bf16_sequential"] / grid["fast_sequential"],
            "grid_vs_study": grid["fast_bf16_sequential"] / grid["torchvision_sequential"],
        }
    print(f"  mid-training: {args.midtrain_steps} steps ...", file=sys.stderr)
    midtrain = measure_midtrain(bench, args.repeats, args.midtrain_steps)
    print("  matrix-multiply peak ...", file=sys.stderr)
    peak = peaks(device, bf16=bench.bf16)
    data = bench.cfg["fast"]["data"]
    limit = distance_to_limit(
        figures,
        stacked,
        {m: study_config(f"model={m}")["model"] for m in MODELS},
        {k: data[k] for k in ("image_size", "channels", "num_classes")},
        peak,
        samples_per_step=args.members * bench.batch_size,
    )
    members = args.members
    for title, key, extra in [
        ("fast packed", "fast_packed", {"fast_sequential": grid["fast_sequential"]}),
        ("fast stacked", "fast_stacked", {"fast_packed": grid["fast_packed"], "members": members}),
        ("fast stacked + CUDA graphs", "fast_stacked_graphed",  # on CUDA only
         {"fast_stacked": grid["fast_stacked"], "members": members}),
    ]:  # fmt: skip
        if key in grid:
            reference = grid["torchvision_sequential"]
            title = f"grid: {title} vs study one at a time"
            cases.append(case(title, "epochs/h", grid[key], reference, **extra))

    def train_ratio(depth: int) -> float:  # the weaker of the two models
        return min(figures[f"{m}_d{depth}"]["fast"] / figures[f"{m}_d{depth}"]["study"]
                   for m in MODELS)  # fmt: skip

    report: dict[str, Any] = {
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "cores": cores,
        "packed": {"jobs": jobs, "threads_per_job": threads_per_job, "per_job": packed},
        "stacked": {
            "members": args.members,
            "threads": torch.get_num_threads(),
            "per_model": stacked,
        },
        "repeats": args.repeats,
        "seconds": args.seconds,
        "legend": "train cases: fast = fast pipeline + lean model (vitbn_sweep.models); "
        "torchvision = the study's set-up, torchvision pipeline + plain model "
        "(benchmarks.reference_models); torchvision_lean_model = torchvision pipeline + lean "
        "model (ratio_same_model isolates the data path). grid: fast packed vs study set-up "
        "one job at a time with all threads.",
        "cases": cases,
        "grid": grid,
        "peak_gflops": {dtype: p / 1e9 for dtype, p in peak.items()},
        "bf16": bf16,
        "midtrain": midtrain,
        "cpu_bf16_flags": cpu_bf16_flags(),
        "limit": limit,
        "data_share_d1_fast": max(shares["vit_d1"], shares["vitbnffn_d1"]),
        "peak_rss_mb_depth7": peak_rss_mb(),
        "ratios": {
            "augment": aug["fast"] / aug["torchvision"],
            "train_d1": train_ratio(1),
            "train_d4": train_ratio(4),
            "train_d7": train_ratio(7),
            "grid": grid["fast_packed"] / grid["torchvision_sequential"],
            "grid_stacked": grid["fast_stacked"] / grid["torchvision_sequential"],
        },
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    print(f"\nwrote {args.out}", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
