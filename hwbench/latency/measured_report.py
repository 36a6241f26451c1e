"""The measured-latency section of the hardware report (this machine, CPU).

`measured_section(out_dir)` measures the five DeepLabv3+ models with torch and onnxruntime on this
machine's CPU at five resolutions, checks repeatability (two back-to-back measurements of every
model at the middle resolution), calibrates the roofline predictor (`hwbench.latency.predict`)
and evaluates it leave-one-out, then writes
    measurements.jsonl            every record (hwbench.latency.measure.Measurement keys)
    measured_latency.csv          one row per record, plus roofline and leave-one-out prediction
    measured_latency.png          roofline vs measured vs predicted, per model, largest resolution
and returns the section of the report (`hwbench.report.doc.Section`) with the list of files written.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from hwbench.count import unique_labels
from hwbench.csvfile import records_csv
from hwbench.latency.measure import MeasureConfig, Measurement, measure
from hwbench.report.doc import Figure, Section, Table, Text

log = logging.getLogger(__name__)

MODELS = ("deeplabv3plus_resnet20", "deeplabv3plus_mobilenetv3_small", "deeplabv3plus_resnet18",
          "deeplabv3plus_resnet50", "deeplabv3plus_xception65")
# Three resolutions, 1.8x apart in pixels (the predictor's goal needs at least three per model), small
# enough that the whole section takes well under a minute on two cores (issue 7: the demo's budget).
RESOLUTIONS = ((96, 192), (128, 256), (160, 320))
ITERS, WARMUP_MS, PASSES = 5, 100.0, 1
# One thread, process CPU time: equals the wall-clock latency on an idle machine and is not inflated
# when other processes share the cores (wall-clock medians stay in the CSV). Two threads on two
# shared cores made torch's medians swing by 2-10x here; CPU time repeats within a few percent.
THREADS, CLOCK = 1, "cpu"
BACKENDS = ("torch", "onnxruntime")
# glibc malloc while measuring. By default glibc serves large blocks with mmap and trims the heap top, with
# thresholds that move with the process's allocation history; eager torch allocates every feature map
# afresh, so a run then page-faults its new pages (here: 0 to 18,700 minor faults and 0 to 26 ms of
# kernel time per Res-18 run at 256x512, counted in the CPU time) and the same model at the same size
# measured 8.4 or 12.7 ms, 21.5 or 31 ms depending on what ran before it. "steady" turns mmap and heap
# trimming off for the measurement (the steady state of a caching allocator such as the jemalloc /
# tcmalloc the PyTorch CPU tuning guide recommends): no page faults after the warm-up, timings that
# depend on the model and the input only. "default": glibc as configured.
MALLOC_MODES = ("steady", "default")
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4  # glibc <malloc.h>
_GLIBC_DEFAULTS = {_M_MMAP_MAX: 65536, _M_TRIM_THRESHOLD: 128 * 1024, _M_MMAP_THRESHOLD: 128 * 1024}


@contextlib.contextmanager
def steady_malloc(mode: str = "steady") -> Iterator[str]:
    """Within the block, glibc malloc neither mmaps nor trims (mode "steady"); yields what was applied.

    On exit the glibc start-up values are set back (mmap threshold 128 KiB, trim 128 KiB, 65536 maps;
    glibc's dynamic threshold adjustment stays off). Without glibc (or mode "default") nothing changes.
    """
    from hwbench.errors import unknown

    if mode not in MALLOC_MODES:
        raise unknown("malloc mode", mode, MALLOC_MODES)
    libc = None
    if mode == "steady":
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30) == 1
        except (OSError, AttributeError):
            ok = False
        if not ok:
            log.warning("malloc mode 'steady' needs glibc's mallopt; measuring with the default allocator")
            libc = None
    try:
        yield "glibc, mmap and trim off" if libc is not None else "default"
    finally:
        if libc is not None:
            for param, value in _GLIBC_DEFAULTS.items():
                libc.mallopt(param, value)


def run_measurements(*, models: Sequence[str] = MODELS, resolutions: Sequence[tuple[int, int]] = RESOLUTIONS,
                     backends: Sequence[str] = BACKENDS, iters: int = ITERS, warmup_ms: float = WARMUP_MS,
                     threads: int = THREADS, clock: str = CLOCK, repeat_at: tuple[int, int] | None = None,
                     malloc: str = "steady", passes: int = PASSES, on_step: Callable[[str], None] | None = None,
                     work_dir: str | os.PathLike | None = None) -> tuple[list[Measurement], list[dict[str, Any]]]:
    """Measure every (backend, model, resolution) `passes` times; returns (records, repeatability rows).

    `malloc`: see `MALLOC_MODES` / `steady_malloc`; what was applied is stored in each record's env["malloc"].

    Exported ONNX files go to a temporary directory inside `work_dir` (default: the system's), removed
    on return, error or interrupt; inside a report being built it goes with the report's own leftovers.

    Passes: the whole grid is measured `passes` times in turn (minutes apart), and every record is
    kept; the predictor merges the records of a pair by their median. On a shared machine one
    measurement can run 10-15 % slow for its whole duration (another job's memory traffic), which no
    number of iterations inside it removes; the median of passes taken at different times does.
    Repeatability: `repeat_at` (default: the middle resolution) is measured twice back to back in the
    first pass; both records are kept. onnxruntime runs one dynamic-shape ONNX export per model
    (traced at the smallest resolution, which keeps the export short) at every resolution.
    """
    import torch

    from hwbench.export import export_onnx
    from hwbench.models import create_model

    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    records: list[Measurement] = []
    repeats: list[dict[str, Any]] = []
    by_size = sorted(resolutions, key=lambda hw: hw[0] * hw[1])
    repeat_at = repeat_at or by_size[len(by_size) // 2]
    onnx_files: dict[str, str] = {}
    labels = dict(zip(models, unique_labels(list(models)), strict=True))
    with tempfile.TemporaryDirectory(prefix=".onnx-", dir=work_dir) as tmp, steady_malloc(malloc) as applied:
        for p in range(passes):
            for model in models:
                torch.manual_seed(0)
                module = create_model(model).eval()
                for backend in backends:
                    if backend == "onnxruntime" and model not in onnx_files:
                        onnx_files[model] = str(export_onnx(module, (1, 3, *by_size[0]), Path(tmp) / f"{model}.onnx",
                                                           dynamic=True))
                    cfg = MeasureConfig(backend=backend, iters=iters, warmup_ms=warmup_ms, threads=threads,
                                        onnx_path=onnx_files.get(model) if backend == "onnxruntime" else None,
                                        clock=clock)
                    for hw in resolutions:
                        if on_step:
                            on_step(f"{labels[model]} {backend} {hw[0]}x{hw[1]}"
                                    + (f" (pass {p + 1}/{passes})" if passes > 1 else ""))
                        rec = measure(module, hw, cfg, model_name=model)
                        rec.env["malloc"] = applied
                        records.append(rec)
                        if p == 0 and tuple(hw) == tuple(repeat_at):
                            again = measure(module, hw, cfg, model_name=model)
                            again.env["malloc"] = applied
                            records.append(again)
                            repeats.append({"model": model, "backend": backend, "input": rec.input,
                                            "median_1_ms": rec.median_ms, "median_2_ms": again.median_ms,
                                            "rel_diff": abs(again.median_ms - rec.median_ms) / rec.median_ms})
    return records, repeats


def _plot(rows: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Per model: roofline, measured and predicted (leave-one-pair-out) latency as markers on a log axis
    (markers, not bars: a log axis has no zero for a bar to start at), each series shifted a little."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import FuncFormatter, LogLocator

    from hwbench.report.figstyle import MAX_WIDTH_IN, save_png, style

    models = list(dict.fromkeys(r["model"] for r in rows))
    backends = list(dict.fromkeys(r["backend"] for r in rows))
    series = [("roofline", None, "roofline_ms", "#777777", "x", True)]
    colours = ("#1f77b4", "#ff7f0e", "#2ca02c")
    for i, b in enumerate(backends):
        series.append((f"{b} measured", b, "measured_ms", colours[i % 3], "o", True))
        series.append((f"{b} predicted (leave-one-pair-out)", b, "predicted_ms", colours[i % 3], "s", False))
    offsets = np.linspace(-0.3, 0.3, len(series))
    with style():
        fig, ax = plt.subplots(figsize=(MAX_WIDTH_IN, 5.6), layout="constrained")
        x = np.arange(len(models))
        for off, (name, backend, key, colour, marker, filled) in zip(offsets, series, strict=True):
            vals = []
            for m in models:
                match = [r for r in rows if r["model"] == m and (backend is None or r["backend"] == backend)]
                vals.append(float(match[0][key]) if match else math.nan)
            ax.plot(x + off, vals, linestyle="none", marker=marker, markersize=8, color=colour, label=name,
                    markerfacecolor=colour if filled else "none", markeredgewidth=1.5)
        ax.set_xticks(x, unique_labels(models))
        ax.set_xlabel("model (DeepLabv3+ backbone)")
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 3.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        ax.set_ylabel("latency per frame (ms, log scale)")
        ax.set_title(title, wrap=True)
        fig.legend(ncols=2, loc="outside lower center", frameon=False)
        ax.grid(axis="y", which="both", alpha=0.3)
        return save_png(fig, path)


def _fmt_ms(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:,.1f}"


def measured_section(out_dir: str | os.PathLike, *, resolutions: Sequence[tuple[int, int]] = RESOLUTIONS,
                     iters: int = ITERS, models: Sequence[str] = MODELS, backends: Sequence[str] = BACKENDS,
                     warmup_ms: float = WARMUP_MS, threads: int = THREADS, clock: str = CLOCK, malloc: str = "steady",
                     passes: int = PASSES,
                     on_step: Callable[[str], None] | None = None) -> tuple[Section, list[Path]]:
    """Measure this machine, write measurements/CSV/plot into `out_dir`, return (the report section, files)."""

    from hwbench.io import atomic_write_text, write_jsonl
    from hwbench.latency.predict import calibrate, leave_one_out, loo_summary

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    records, repeats = run_measurements(models=models, resolutions=resolutions, backends=backends, iters=iters,
                                        warmup_ms=warmup_ms, threads=threads, clock=clock, malloc=malloc,
                                        passes=passes, on_step=on_step, work_dir=out)
    measure_s = time.perf_counter() - t0
    labels = dict(zip(models, unique_labels(list(models)), strict=True))
    files = [write_jsonl(out / "measurements.jsonl", [r.to_dict() for r in records])]

    t_fit = time.perf_counter()
    loo = leave_one_out(records, "pair")
    loo_model = leave_one_out(records, "model")
    summaries = {prot: (loo_summary(rows), {b: loo_summary([r for r in rows if r["backend"] == b]) for b in backends})
                 for prot, rows in (("pair", loo), ("model", loo_model))}
    cals = calibrate(records)
    fit_s = time.perf_counter() - t_fit
    by_model_loo = {(r["backend"], r["model"], tuple(r["input"])): r for r in loo_model}
    by_pair = {(r["backend"], r["model"], tuple(r["input"])): r for r in loo}
    csv_rows = []
    for r in records:
        p = by_pair.get((r.backend, r.model, tuple(r.input)), {})
        csv_rows.append({"model": r.model, "label": labels[r.model], "backend": r.backend, "device": r.device,
                         "precision": r.precision, "input": "x".join(map(str, r.input)), "iters": r.iters,
                         "clock": r.env.get("clock"), "min_ms": r.min_ms, "median_ms": r.median_ms,
                         "mean_ms": r.mean_ms, "p90_ms": r.p90_ms, "p99_ms": r.p99_ms, "std_ms": r.std_ms,
                         "cv": r.cv, "wall_median_ms": r.components.get("wall", {}).get("median_ms", r.median_ms),
                         "roofline_ms": p.get("roofline_ms"),
                         "predicted_loo_ms": p.get("predicted_ms"), "pair_median_ms": p.get("measured_ms"),
                         "rel_err_loo": p.get("rel_err"),
                         "predicted_lomo_ms": by_model_loo.get((r.backend, r.model, tuple(r.input)), {}).get("predicted_ms"),
                         "rel_err_lomo": by_model_loo.get((r.backend, r.model, tuple(r.input)), {}).get("rel_err")})
    csv_path = out / "measured_latency.csv"
    atomic_write_text(csv_path, records_csv(csv_rows))
    files.append(csv_path)

    largest = max(resolutions, key=lambda hw: hw[0] * hw[1])
    big = [r for r in loo if r["input"][2:] == list(largest)]
    env = records[0].env if records else {}
    png = _plot(big, out / "measured_latency.png",
                f"Latency on {env.get('device_name', 'this machine')} at {largest[0]}x{largest[1]}, fp32, "
                f"{threads} thread(s), {'CPU time' if clock == 'cpu' else 'wall clock'}: measured, "
                "roofline and predicted")
    files.append(png)

    worst_rep = max((r["rel_diff"] for r in repeats), default=math.nan)
    rep_hw = repeats[0]["input"][2:] if repeats else ["-", "-"]
    timing = ("process CPU time of a single-threaded run (equal to the wall-clock latency on an idle "
              "machine, and not inflated when other processes share the cores; wall-clock medians are in "
              "the CSV)" if clock == "cpu" else "host clock around synchronous CPU work")
    sec = Section("Measured latency on this machine", id="measured")
    sec.add(Text(
        f"Device: **{env.get('device_name', '?')}** ({env.get('cpu_count')} logical CPUs, load average "
        f"{load:.1f} at the start), torch {env.get('torch')}, onnxruntime "
        f"{next((r.env.get('onnxruntime') for r in records if r.backend == 'onnxruntime'), '-')}, "
        f"{threads} thread(s), fp32, batch 1. Each figure: warm-up of {warmup_ms:g} ms (at least one run), then "
        f"{iters} timed single inferences; {timing}; median (p90) in ms. Measuring took {measure_s:.0f} s."))
    firsts: dict[tuple[str, str, tuple[int, ...]], Measurement] = {}
    for r in records:
        firsts.setdefault((r.model, r.backend, tuple(r.input)), r)
    rows = []
    for m in models:
        for b in backends:
            cells = []
            for h, w in resolutions:
                r = firsts.get((m, b, (1, 3, h, w)))
                cells.append(f"{_fmt_ms(r.median_ms)} ({_fmt_ms(r.p90_ms)})" if r else "-")
            rows.append([labels[m], b, *cells])
    sec.add(Table(["model", "backend", *(f"{h}x{w} median (p90) ms" for h, w in resolutions)], rows,
                  align=["l", "l", *("r" for _ in resolutions)]))
    sec.add(Text(
        f"**Repeatability.** Every model was measured twice back to back at {rep_hw[0]}x{rep_hw[1]}: the medians "
        f"differ by at most **{worst_rep:.1%}** (goal 5 %)"
        + (f"; mean {sum(r['rel_diff'] for r in repeats) / len(repeats):.1%}." if repeats else ".")))
    sec.add(Text(
        "**Predicted latency.** The per-layer roofline terms of the `host` profile (measured peak and "
        "bandwidth), calibrated per backend (`hwbench.latency.predict`): latency = overhead + per-layer cost "
        "x layers + inverse efficiencies x compute time and x activation-traffic time (one pair for all "
        "layers, or one per op class: dense conv, dilated conv charged for its kernel taps inside the input "
        "only, 1x1 conv, depthwise, linear, memory-bound) + weight traffic + a cache-spill term, times a "
        "per-model correction (the model's mean measured/fitted ratio on its *training* points, weighted "
        "by s). Non-negative least squares on relative error; the feature set, the spill threshold T and "
        "s are chosen by inner cross-validation on the training points only. "
        f"Measured with glibc malloc in mode `{malloc}` (see `MALLOC_MODES`: with glibc's default "
        "thresholds eager torch page-faults a history-dependent amount of fresh memory every run). "
        f"Two leave-one-out protocols (fitting and evaluation took {fit_s:.0f} s):"))
    n_models = len(models)
    sec.add(Table(["protocol", "what is held out", "pairs", "torch", "onnxruntime", "all", "mean abs error", "worst"],
                  [[name, what, str(s_["pairs"]),
                    *(f"{pb.get(b, {}).get('fraction_within', math.nan):.0%}" for b in ("torch", "onnxruntime")),
                    f"**{s_['fraction_within']:.0%}**", f"{s_['mean_abs_rel_err']:.1%}", f"{s_['max_abs_rel_err']:.1%}"]
                   for name, what, (s_, pb) in (
                       ("leave-one-pair-out", "one (model, resolution); its other resolutions are training data",
                        summaries["pair"]),
                       ("leave-one-model-out", f"every resolution of one model (an unseen model; {n_models - 1} "
                        "training models)", summaries["model"]))],
                  align=["l", "l", "r", "r", "r", "r", "r", "r"]))
    per_backend = {b: len({(r["model"], tuple(r["input"])) for r in loo if r["backend"] == b}) for b in backends}
    span = lambda f: "-".join(dict.fromkeys(str(f(n)) for n in (min(per_backend.values(), default=0),  # noqa: E731
                                                                 max(per_backend.values(), default=0))))
    n_pairs, n_fit, n_lomo = span(int), span(lambda n: max(0, n - 1)), span(lambda n: max(0, n - len(resolutions)))
    sec.add(Text(
        "Figures: fraction of pairs predicted within +-10 % of the measurement (the goal: at least 90 % over "
        "at least 3 resolutions). nn-Meter reports 99 % within +-10 % on a mobile CPU with per-kernel "
        "predictors trained on thousands of samples; this is a model with at most 15 coefficients per backend, "
        f"fitted on {n_fit} points per backend when one pair is held out ({n_pairs} (model, resolution) pairs per "
        f"backend, {n_lomo} when a whole model is held out). Leave-one-model-out is the figure for a model that "
        f"was never measured: with {n_models} structurally different models it stays far below the goal. The "
        "plain roofline (no calibration) is off by the factor in the table; predictions below are "
        "leave-one-pair-out."))
    sec.add(Table(["model", "backend", "input", "measured ms", "roofline ms", "measured / roofline",
                   "predicted (LOO) ms", "error"],
                  [[labels[r["model"]], r["backend"], f"{r['input'][2]}x{r['input'][3]}", _fmt_ms(r["measured_ms"]),
                    _fmt_ms(r["roofline_ms"]), f"{r['measured_ms'] / r['roofline_ms']:.2f}",
                    _fmt_ms(r["predicted_ms"]), f"{r['rel_err']:+.1%}"] for r in loo],
                  align=["l", "l", "l", "r", "r", "r", "r", "r"]))
    ratios = sorted(r["measured_ms"] / r["roofline_ms"] for r in loo if r["roofline_ms"] > 0)
    if ratios and ratios[len(ratios) // 2] < 1.0:
        sec.add(Text(
            f"Note: most measurements are *below* the roofline (median ratio {ratios[len(ratios) // 2]:.2f}). "
            "The roofline charges every counted MAC at the measured matmul peak, but the runtimes execute "
            "fewer multiply-adds than the MAC count: on these small inputs the ASPP's dilated 3x3 convs "
            "(rates 6/12/18 on a 6x12 to 16x32 map) have most kernel taps in the zero padding, which "
            "oneDNN and MLAS skip, and 3x3 convs may run as Winograd-style transforms. A `host` profile "
            "measured while the machine was busy also underestimates the peak (`hwbench profiles host "
            "--refresh` on a quiet machine). The calibrated predictions do not depend on the roofline's scale."))
    sec.add(Text("Fitted coefficients on all data (compute / traffic columns: inverse efficiency against the "
                 "`host` roofline; zero = not needed by the fit; hyper-parameters by inner leave-one-pair-out):"))
    coef_rows = []
    for (_dev, backend, _prec), c in cals.items():
        t = f"{c.spill_bytes / 2**20:.0f} MiB" if c.spill_bytes else "-"
        coefs = ", ".join(f"{k} {v:.3g}" for k, v in c.coef.items() if v > 0)
        coef_rows.append([backend, c.feature_set, t, f"{c.shrink:g}", coefs, f"{c.fit_rms_rel_err:.1%}"])
    sec.add(Table(["backend", "feature set", "spill T", "s", "coefficients", "fit rms"], coef_rows,
                  align=["l", "l", "r", "r", "l", "r"]),
            Figure("roofline vs measured vs predicted", path=png),
            Text(f"Files: `{files[0].name}` (records), `{csv_path.name}` (table with roofline and predictions), "
                 f"`{png.name}`."))
    return sec, files
