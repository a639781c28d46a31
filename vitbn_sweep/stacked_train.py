"""Train a group of jobs as one stacked model: ``group_steps(configs, job_dirs)``.

The jobs of a group differ only in ``optim.lr`` and ``trainer.seed`` (and how-keys;
``vitbn_sweep.stacked`` forms the groups). Their models become one stacked model
(``vitbn_sweep.models.stacked``) trained by one fused forward and backward per step, and
each member still gets exactly what ``train.run`` gives that job alone:

- initial weights: ``torch.manual_seed(seed)`` then ``build_model``, as in train.py; the
  stacked model is these M models' parameters stacked;
- data: its own pipeline built with its own seed, so the same shuffle, augmentation and
  test images as the job alone (the batches of all members are stacked step by step);
- optimiser: Adam with its own learning rate and bias correction (``StackedAdam``);
- results: metrics.csv after every epoch, result.json at the end and its own tracker run,
  in its own job directory; checkpoint.pt in the single job's layout (the model's state
  dict, ``torch.optim.Adam``'s state dict), so a member can resume as a single job and a
  single job's checkpoint as a member;
- resume: ``resume.plan`` per member (skip, continue, start). Members cut at different
  epochs train side by side, each at its own epoch: every epoch has the same number of
  steps, so the members' epochs end together;
- divergence: checked as a single job checks it (every ``DIVERGENCE_CHECK_EVERY`` steps
  and at the end of an epoch); a diverged member is recorded with the epoch and step a
  single job would record and leaves the stack, the others go on; a member whose last
  epoch is done leaves it too.

Only the timings differ from a job alone: ``epoch_seconds`` is the group's epoch and
``samples_per_s`` a member's own samples over the group's training time. Per-member log
lines carry the member's job directory (``lifecycle.JOB_LOG_KEY``), so a launcher can write
each member's log into its directory (``lifecycle.JobLogFilter``).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import time
from collections.abc import Generator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn

from vitbn_sweep import store
from vitbn_sweep.accel import Autocast, autocast_factory, prepare_model
from vitbn_sweep.cuda_graph import GraphedStep, eager_step
from vitbn_sweep.data import Pipeline
from vitbn_sweep.lifecycle import Job, open_jobs, training
from vitbn_sweep.models.stacked import (
    build_stacked_model,
    keep_members,
    member_state,
    stack_states,
)
from vitbn_sweep.stacked import group_key
from vitbn_sweep.stacked_adam import StackedAdam
from vitbn_sweep.train import DIVERGENCE_CHECK_EVERY, build, resolve_device
from vitbn_sweep.validate import ConfigError, validate

log = logging.getLogger(__name__)

Steps = Generator[None, None, Any]  # yields after every step; returns its result


class Member(Job):
    """One job of the group: its lifecycle and the single model's layout (initial weights,
    checkpoints)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs, side_by_side=True)
        self.model: nn.Module | None = None
        self.optimizer: torch.optim.Adam | None = None
        self.pipeline: Pipeline | None = None


class Stack:
    """The members in training, as one stacked model and one stacked optimiser."""

    def __init__(
        self,
        members: list[Member],
        model: nn.Module,
        optimizer: StackedAdam,
        *,
        autocast: Autocast,
        cuda_graph: bool,
    ) -> None:
        self.members, self.model, self.optimizer = members, model, optimizer
        self.autocast, self.cuda_graph = autocast, cuda_graph
        self.param_names = [n for n, _ in model.named_parameters()]
        self.graphed: GraphedStep | None = None

    def step(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One training step of every member: (logits (M, b, classes), losses (M,))."""
        if not self.cuda_graph:
            return eager_step(self.model, self.optimizer, images, labels, autocast=self.autocast)
        if self.graphed is None:
            self.graphed = GraphedStep(self.model, self.optimizer, autocast=self.autocast)
        return self.graphed(images, labels)

    def keep(self, index: list[int]) -> None:
        """Keep only the members at ``index``; the others stop costing compute."""
        device = next(self.model.parameters()).device
        keep_members(self.model, torch.tensor(index, dtype=torch.long, device=device))
        self.optimizer.keep(index)
        self.members = [self.members[i] for i in index]
        self.graphed = None  # its graph holds the old tensors' addresses

    def checkpoint_state(self, k: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """(model, optimizer) state dicts of member ``k`` as its single job would save them."""
        member = self.members[k]
        assert member.model is not None and member.optimizer is not None
        member.model.load_state_dict(member_state(self.model, k))
        step, exp_avg, exp_avg_sq = self.optimizer.member_state(k)
        for p, m1, m2 in zip(member.model.parameters(), exp_avg, exp_avg_sq, strict=True):
            member.optimizer.state[p] = {
                "step": torch.tensor(float(step), dtype=torch.float32),
                "exp_avg": m1.clone(),
                "exp_avg_sq": m2.clone(),
            }
        return member.model.state_dict(), member.optimizer.state_dict()


def group_steps(
    configs: Sequence[DictConfig | Mapping[str, Any]], job_dirs: Sequence[str | Path]
) -> Steps:
    """Train the jobs ``configs`` (one group) stacked, one step at a time: a generator that
    yields after every training step and evaluation, for the engine (``vitbn_sweep.engine``)
    to interleave groups, and returns per job its result record (also for a job found ended
    and skipped) or the exception that failed it (its result.json then says ``failed``).

    Invalid configs, or configs that cannot share a stack, raise ``ConfigError`` /
    ``ValueError`` before anything is written; an interrupt (Ctrl-C, a scheduler's signal;
    thrown in by ``generator.throw``) propagates, leaving every unfinished member to
    continue from its checkpoint."""
    plain = [store.plain_config(c) for c in configs]
    for config in plain:
        validate(config)
    if len({group_key(c) for c in plain}) > 1:
        raise ValueError("group_steps: these jobs differ in more than optim.lr and trainer.seed")
    trainer = plain[0]["trainer"]
    device = resolve_device(trainer["device"])
    if trainer["cuda_graph"] and device.type != "cuda":
        raise ConfigError(
            f"trainer.cuda_graph=true needs a CUDA device; this group runs on {device} "
            f"(trainer.device={trainer['device']}): use trainer.cuda_graph=false"
        )
    autocast = autocast_factory(trainer["precision"], device, cache=not trainer["cuda_graph"])
    opened = open_jobs(plain, [Path(d) for d in job_dirs], device, kind=Member)
    members = [job for job in opened if isinstance(job, Member)]
    if not members:
        return opened  # ended before (skipped), or other live runs train them
    log.info(
        "stacked group of %d on %s (%s), %d threads: %s",
        len(members),
        device,
        socket.gethostname(),
        torch.get_num_threads(),
        "; ".join(m.name for m in members),
    )
    for m in members:
        m.log(
            logging.INFO,
            "stacked with %d jobs on %s -> %s%s",
            len(members),
            device,
            m.job_dir,
            f" (resuming after epoch {m.checkpoint['epoch']})" if m.checkpoint else "",
        )
    with training(members):  # an interrupt cuts every unended member, and propagates
        yield from _train(_build_stack(members, device, autocast=autocast))
    for m in members:  # a failed member's exception is returned, not raised: its log says why
        if isinstance(m.outcome, Exception):
            error = m.record["error"]
            m.log(logging.ERROR, "failed (%s: %s)", error["type"], error["message"])
    # per job: its outcome, or the record of one ended before (skipped) or trained elsewhere
    return [job.outcome if isinstance(job, Member) else job for job in opened]


def _build_stack(members: list[Member], device: torch.device, *, autocast: Autocast) -> Stack:
    """Each member's model, Adam and pipeline as its job alone builds them (``train.build``);
    then stacked."""
    first = members[0].config
    data, model_cfg, trainer = first["data"], first["model"], first["trainer"]
    sizes = {k: data[k] for k in ("image_size", "channels")} | {"num_classes": data["num_classes"]}
    for m in members:
        m.model, m.optimizer, m.pipeline = build(m.config, device, checkpoint=m.checkpoint)
    model = build_stacked_model(model_cfg, members=len(members), **sizes).to(device)
    model.load_state_dict(stack_states([m.model.state_dict() for m in members]))
    names = [n for n, _ in model.named_parameters()]
    if any([n for n, _ in m.model.named_parameters()] != names for m in members):
        raise RuntimeError("the stacked model's parameters do not match the single model's")
    optim = first["optim"]
    optimizer = StackedAdam(
        list(model.parameters()),
        lr=[m.config["optim"]["lr"] for m in members],
        betas=tuple(optim["betas"]),
        eps=optim["eps"],
        weight_decay=optim["weight_decay"],
    )
    for k, m in enumerate(members):
        state = m.optimizer.state
        params = list(m.model.parameters())
        if params[0] in state:  # resumed: the checkpoint's moments and step
            optimizer.load_member(
                k,
                int(state[params[0]]["step"].item()),
                [state[p]["exp_avg"] for p in params],
                [state[p]["exp_avg_sq"] for p in params],
            )
    model = prepare_model(model, compile=trainer["compile"], device=device)
    return Stack(
        list(members), model, optimizer, autocast=autocast, cuda_graph=trainer["cuda_graph"]
    )


def _train(stack: Stack) -> Steps:
    """Epochs of every member until each has finished or diverged."""
    autocast = stack.autocast
    while stack.members:
        epoch_start = time.perf_counter()
        stats = yield from train_epoch(stack)
        if not stack.members:
            return
        chunk = stack.members[0].config["trainer"]["eval_chunk"]
        test_acc = evaluate(stack, augmented=True, autocast=autocast, chunk=chunk)
        yield
        test_acc_clean = evaluate(stack, augmented=False, autocast=autocast, chunk=chunk)
        yield
        epoch_seconds = time.perf_counter() - epoch_start
        done = []
        for k, m in enumerate(stack.members):
            row = {
                "epoch": m.epoch,
                "train_loss": stats[k]["train_loss"],
                "train_acc": stats[k]["train_acc"],
                "test_acc": test_acc[k],
                "test_acc_clean": test_acc_clean[k],
                "epoch_seconds": epoch_seconds,
                "samples_per_s": stats[k]["samples_per_s"],
            }
            m.end_epoch(row, state=lambda k=k: stack.checkpoint_state(k))  # type: ignore[misc]
            epochs = m.config["trainer"]["epochs"]
            if len(m.rows) >= epochs:
                m.finish(store.COMPLETED)
                done.append(k)
        if done:
            stack.keep([k for k in range(len(stack.members)) if k not in done])


def train_epoch(stack: Stack) -> Steps:
    """One epoch of every member of ``stack``, each at its own epoch, in lockstep; yields
    after every step.

    Returns per remaining member (in ``stack.members`` order) mean loss, accuracy and
    throughput. Members whose loss turned NaN or infinite are recorded as diverged and
    dropped from the stack.
    """
    model = stack.model
    check = stack.members[0].config["trainer"]["diverge_check"]
    model.train()
    start = time.perf_counter()
    streams = [iter(m.pipeline.train_batches(m.epoch)) for m in stack.members]  # type: ignore[union-attr]
    device = next(model.parameters()).device
    loss_sum = torch.zeros(len(streams), device=device)
    correct = torch.zeros(len(streams), dtype=torch.long, device=device)
    seen = steps = 0
    for step in itertools.count(1):
        batches = [next(s, None) for s in streams]
        if all(b is None for b in batches):
            break
        if any(b is None or len(b[1]) != len(batches[0][1]) for b in batches):
            raise RuntimeError("the members' training batches differ in number or size")
        images = torch.stack([b[0] for b in batches])  # (M, b, c, H, W)
        labels = torch.stack([b[1] for b in batches])  # (M, b)
        logits, losses = stack.step(images, labels)  # (M, b, classes), (M,)
        batch = labels.shape[1]
        loss_sum = loss_sum + losses.detach() * batch
        correct = correct + (logits.argmax(-1) == labels).sum(1)
        seen, steps = seen + batch, step
        yield
        if check and step % DIVERGENCE_CHECK_EVERY == 0:
            kept = _drop_diverged(stack, loss_sum, step)
            if kept is not None:
                if not stack.members:
                    return []
                streams = [streams[i] for i in kept]
                loss_sum, correct = loss_sum[kept], correct[kept]
    if seen == 0:
        raise RuntimeError("the training set yielded no batch")
    if check:
        kept = _drop_diverged(stack, loss_sum, steps)
        if kept is not None:
            loss_sum, correct = loss_sum[kept], correct[kept]
    seconds = time.perf_counter() - start
    return [
        {"train_loss": loss / seen, "train_acc": hits / seen, "samples_per_s": seen / seconds}
        for loss, hits in zip(loss_sum.tolist(), correct.tolist(), strict=True)
    ]


def _drop_diverged(stack: Stack, loss_sum: torch.Tensor, step: int) -> list[int] | None:
    """Record the members whose summed loss is not finite as diverged and drop them.

    Returns the indices kept, or None when every member is finite (nothing changed).
    """
    finite = loss_sum.isfinite().tolist()
    if all(finite):
        return None
    for ok, m in zip(finite, stack.members, strict=True):
        if not ok:
            m.diverged(m.epoch, step)
    kept = [k for k, ok in enumerate(finite) if ok]
    stack.keep(kept)
    return kept


@torch.no_grad()
def evaluate(
    stack: Stack,
    *,
    augmented: bool,
    autocast: Autocast = contextlib.nullcontext,
    chunk: int | None = None,
) -> list[float]:
    """Top-1 accuracy of every member on its own test set of its current epoch (eval mode).

    ``chunk``: images per forward pass, over all members together (each member's share
    is ``chunk // M``); it bounds memory without changing the result, as in train.evaluate.
    """
    model = stack.model
    model.eval()
    members = len(stack.members)
    streams = [
        m.pipeline.test_batches(m.epoch, augmented=augmented)  # type: ignore[union-attr]
        for m in stack.members
    ]
    device = next(model.parameters()).device
    correct = torch.zeros(members, dtype=torch.long, device=device)
    total = 0
    for batches in zip(*streams, strict=True):
        images = torch.stack([b[0] for b in batches])  # (M, n, c, H, W)
        labels = torch.stack([b[1] for b in batches])  # (M, n)
        n = labels.shape[1]
        part = max(1, chunk // members) if chunk else n
        for i in range(0, n, part):
            with autocast():
                logits = model(images[:, i : i + part])
            correct += (logits.argmax(-1) == labels[:, i : i + part]).sum(1)
        total += n
    return [hits / total for hits in correct.tolist()]
