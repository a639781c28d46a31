"""The Markdown table ``make bench`` prints: both pipelines side by side, the targets each
speed-up must meet, the grid in epochs per hour, bf16, mid-training speed and the distance
to the device's matrix-multiply peak (``benchmarks.bench`` measures; this module words).
"""

from __future__ import annotations

from typing import Any

TARGETS = {"augment": 10.0, "train_d1": 2.0, "train_d4": 1.5, "train_d7": 1.5, "grid": 2.5,
           "grid_stacked": 2.5}  # fmt: skip
MAX_DATA_SHARE_D1, MAX_RSS_MB = 0.10, 2048


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Device: {report['device']}; torch {report['torch']}; {report['threads']} torch threads "
        f"of {report['cores']} cores; packed: {report['packed']['jobs']} jobs x "
        f"{report['packed']['threads_per_job']} threads; medians of {report['repeats']} "
        f"repeats of {report['seconds']} s.",
        "",
        "fast = fast pipeline + lean model; study = torchvision pipeline + the plain model "
        "(benchmarks.reference_models); tv+lean = torchvision pipeline + lean model.",
        "",
        "| case | unit | fast | study | ratio | tv+lean | ratio same model "
        "| model-only lean / plain | data share fast / tv |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in report["cases"]:
        same = (
            f"{c['torchvision_lean_model']:.0f} | {c['ratio_same_model']:.2f}x"
            if "ratio_same_model" in c
            else " | "
        )
        model_only = (
            f"{c['model_only']:.0f} / {c['model_only_plain']:.0f}" if "model_only" in c else ""
        )
        share = (
            f"{c['data_share_fast']:.0%} / {c['data_share_torchvision']:.0%}"
            if "data_share_fast" in c
            else ""
        )
        lines.append(
            f"| {c['case']} | {c['unit']} | {c['fast']:.0f} | {c['torchvision']:.0f} "
            f"| {c['ratio']:.2f}x | {same} | {model_only} | {share} |"
        )
    lines += ["", "| ratio | measured | target | met |", "| --- | ---: | ---: | --- |"]
    for key, value in report["ratios"].items():
        ok = value >= TARGETS[key]
        lines.append(f"| {key} | {value:.2f}x | >= {TARGETS[key]}x | {'yes' if ok else 'NO'} |")
    share = report["data_share_d1_fast"]
    lines.append(
        f"| data share d1 (fast) | {share:.1%} | <= {MAX_DATA_SHARE_D1:.0%} | "
        f"{'yes' if share <= MAX_DATA_SHARE_D1 else 'NO'} |"
    )
    rss = report["peak_rss_mb_depth7"]
    lines.append(
        f"| peak RSS depth 7 | {rss:.0f} MB | <= {MAX_RSS_MB} MB | "
        f"{'yes' if rss <= MAX_RSS_MB else 'NO'} |"
    )
    g = report["grid"]
    lines += [
        "",
        f"Grid (280 epochs): study set-up one job at a time {g['torchvision_sequential']:.0f} "
        f"epochs/h ({280 / g['torchvision_sequential']:.2f} h); fast one at a time "
        f"{g['fast_sequential']:.0f} epochs/h; fast packed {g['fast_packed']:.0f} epochs/h "
        f"({280 / g['fast_packed']:.2f} h); packing gain {g['packing_gain']:.2f}x."
        + (
            f" Fast stacked ({report['stacked']['members']} jobs per model): "
            f"{g['fast_stacked']:.0f} epochs/h ({280 / g['fast_stacked']:.2f} h)."
            if "fast_stacked" in g
            else ""
        )
        + (
            f" Stacked with CUDA graphs: {g['fast_stacked_graphed']:.0f} epochs/h "
            f"({g['fast_stacked_graphed'] / g['fast_stacked']:.2f}x stacked eager)."
            if "fast_stacked_graphed" in g
            else ""
        ),
    ]
    bf16 = report.get("bf16")
    if bf16:
        speedups = ", ".join(f"{k} {v:.2f}x" for k, v in bf16["speedup"].items())
        lines += [
            "",
            f"bf16 (autocast, fast pipeline, one job at a time; CPU flags "
            f"{bf16['cpu_flags']}): train speed-up over fp32 {speedups}; grid "
            f"{bf16['grid_vs_fp32']:.2f}x fp32 one at a time, {bf16['grid_vs_study']:.2f}x the "
            "study set-up (reported apart: fp32 stays the default).",
        ]
    mid = report.get("midtrain")
    if mid:
        flush = (
            f"subnormals flushed {mid['flush_on']:.0f}/s, kept {mid['flush_off']:.0f}/s "
            f"({mid['flush_gain']:.2f}x)"
            if "flush_off" in mid
            else f"{mid.get('flush_on', mid.get('flush_off')):.0f}/s"
        )
        lines += [
            "",
            f"Mid-training ({mid['name']} depth {mid['depth']} after {mid['steps']} steps at lr "
            f"{mid['lr']}, loss {mid['loss']:.2f}): {flush}; the fresh model "
            f"{mid['fresh']:.0f}/s.",
        ]
    peak = report["peak_gflops"]
    lines += [
        "",
        "Distance to the limit: training GFLOP/s (matrix products, forward + backward) and "
        "share of the measured matrix-multiply peak ("
        + ", ".join(f"{d} {p:.0f} GFLOP/s" for d, p in peak.items())
        + ").",
        "",
        "| case | GFLOP/sample | one job | share fp32 | stacked | share fp32 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, c in report["limit"].items():
        lines.append(
            f"| {key} | {c['train_flops_per_sample'] / 1e9:.3f} | {c['gflops_single']:.1f} "
            f"| {c['share_single_fp32']:.0%} | {c['gflops_stacked']:.1f} "
            f"| {c['share_stacked_fp32']:.0%} |"
        )
    if not all("step_ms_stacked" in c for c in report["limit"].values()):
        return "\n".join(lines)  # a report from before the step-time table
    stacked = report["stacked"]["per_model"]
    lines += [
        "",
        f"Step time of a stacked group ({report['stacked']['members']} members) against the "
        "arithmetic time of the same step at the fp32 peak; on CUDA, kernels per eager step and "
        "the engine's samples/s (4 groups stepped in turn, each on its own stream, graphed):",
        "",
        "| case | step ms | arithmetic ms | ratio | kernels/step | engine samples/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, c in report["limit"].items():
        kernels, engine = stacked[key].get("kernels_per_step"), stacked[key].get("engine")
        lines.append(
            f"| {key} | {c['step_ms_stacked']:.2f} | {c['arithmetic_ms_fp32']:.3f} "
            f"| {c['step_ms_stacked'] / c['arithmetic_ms_fp32']:.0f}x "
            f"| {kernels if kernels is not None else '-'} "
            f"| {f'{engine:.0f}' if engine is not None else '-'} |"
        )
    return "\n".join(lines)
