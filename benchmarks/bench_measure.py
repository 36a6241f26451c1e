"""Measured latency: harness overhead, repeatability, predictor accuracy (this machine, CPU).

1. Harness overhead: the torch runner's timed `run_once` against a bare timed forward of the same
   small model (1 thread). ratio = runner median / bare median; goal <= 1.05.
2. Repeatability: two back-to-back `hwbench measure`-style measurements (onnxruntime, 1 thread,
   process CPU time, 50 timed runs each, about 2 s) of DeepLabv3+ ResNet-18 at 128x256.
   ratio = |median2 - median1| / median1; goal <= 0.05. With 10 runs (0.35 s) a measurement
   could fall inside one burst of another job's memory traffic on this shared machine (7.5 % once;
   2-4 % typically); 2 s of runs span such bursts (0-4 %, median 0.5 % in four trials).
3. Predictor: leave-one-out over the five DeepLabv3+ models x three resolutions with
   onnxruntime (1 thread, CPU time). ratio = fraction of pairs within +-10 %; goal >= 0.9.
   The grid is measured in three passes and each pair's latency is the median of its passes
   (`run_measurements(passes=3)`). With one pass the row read 73-80 % on some runs of this shared
   machine: a whole measurement can run 10-15 % slow while another job hammers memory (its
   iterations agree within 1-2 %, so more iterations do not help), and the held-out point or
   the fit inherits that error; one pass in three being off no longer moves the median.
"""

from __future__ import annotations

import statistics
import time


def _overhead() -> dict:
    import torch

    from hwbench.latency.backends import RunSpec, get_runner_class
    from hwbench.latency.measure import time_runner

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(32, 32, 3, padding=1)).eval()
    x = torch.randn(1, 3, 64, 64)
    cls = get_runner_class("torch")
    with cls(RunSpec("bench", (1, 3, 64, 64), threads=1).with_module(net)) as r:
        r.prepare()
        ours, _ = time_runner(r, warmup_ms=200, iters=200)
        prev = torch.get_num_threads()
        torch.set_num_threads(1)
        bare = []
        with torch.inference_mode():
            for _ in range(200):
                t0 = time.perf_counter_ns()
                net(x)
                bare.append((time.perf_counter_ns() - t0) / 1e6)
        torch.set_num_threads(prev)
    ratio = statistics.median(ours) / statistics.median(bare)
    return {"name": "runner overhead (torch, 64x64 conv net)", "ours_s": statistics.median(ours) / 1e3,
            "baseline_s": statistics.median(bare) / 1e3, "ratio": ratio, "goal": "<= 1.05", "ok": ratio <= 1.05}


def _repeatability() -> dict:
    from hwbench.latency.measure import MeasureConfig, measure

    cfg = MeasureConfig(backend="onnxruntime", threads=1, clock="cpu", iters=50, warmup_ms=200)
    a = measure("deeplabv3plus_resnet18", (128, 256), cfg)
    b = measure("deeplabv3plus_resnet18", (128, 256), cfg)
    ratio = abs(b.median_ms - a.median_ms) / a.median_ms
    return {"name": "repeatability (ORT, Res-18, 128x256, CPU time)", "ours_s": b.median_ms / 1e3,
            "baseline_s": a.median_ms / 1e3, "ratio": ratio, "goal": "<= 0.05", "ok": ratio <= 0.05}


def _predictor() -> dict:
    from hwbench.latency.measured_report import run_measurements
    from hwbench.latency.predict import leave_one_out, loo_summary

    records, _ = run_measurements(resolutions=((96, 192), (128, 256), (160, 320)), backends=("onnxruntime",),
                                  iters=3, warmup_ms=0, repeat_at=(0, 0), passes=3)
    s = loo_summary(leave_one_out(records))
    return {"name": f"predictor LOO, ORT, {s['pairs']} pairs (median of 3 passes)", "ours_s": None, "baseline_s": None,
            "ratio": s["fraction_within"], "goal": ">= 0.9 within +-10 %", "ok": s["fraction_within"] >= 0.9,
            "mean_abs_rel_err": s["mean_abs_rel_err"]}


def main() -> list[dict]:
    return [_overhead(), _repeatability(), _predictor()]


if __name__ == "__main__":
    for row in main():
        print(row)
