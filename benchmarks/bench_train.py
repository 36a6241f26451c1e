"""Benchmark: the CPU training hot paths of `al surrogate` cells (one torch thread, CPU time).

1. Rebuilding a cycle's model from its checkpoint (`al.loop` `load_modules`, twice per AL cycle: for
   the evaluation and for the next selection): today's path (fresh model, then the strict checkpoint
   load) vs the old one, which also read the starting-weights file from disk and loaded it before the
   checkpoint overwrote every tensor. DeepLabv3+ Res-18 (the demo's deployment model, 45 MB of
   starting weights). Same tensors (checked); goal: ratio (old / ours) >= 1.
2. Options that change the numbers (not defaults: each changes a cell's last bits, which tiny-batch
   training amplifies into other selections, so every documented result would move; the Fashion-MNIST
   preset opts into the first two), measured for the record (goal "report", ratio = baseline / option,
   > 1 is faster): torch's fused SGD step (`[train] fused_sgd`) vs the per-parameter one (Res-18,
   11.2 M parameters); a Res-18 (small stem) training step with `tiny_conv_gemm` (layer4's 2x2 maps as
   GEMMs, hwbench.models.gemm_conv) vs without, batch 32 at 28x28; and
   channels-last vs contiguous (NCHW) activations for one training step (forward, backward) and one
   no-grad forward, per model at the shapes of the Fashion-MNIST preset (batch 32, 28x28) and of the
   demo (batch 8, 32x64).
3. bf16 autocast vs fp32 for one training step (`[train] bf16`, al.precision), per model at the Fashion-MNIST
   preset's shapes and layouts (goal "report"; on a CPU without native bf16 it is emulated and far slower).
4. What the float64-statistics BatchNorm of `al.syncbn` (used on CPU in one process too, for segmentation)
   costs a demo training step against torch's BatchNorm (goal "report", ratio < 1 is its overhead).
CPU time per call, pairs interleaved, median of `REPS`.
Run: `python -m benchmarks bench_train`.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPS = 5
CLASSIFIERS = (("resnet18", {"stem": "small"}), ("resnet20", {}), ("mobilenetv3_small", {}))
SEGMENTERS = ("deeplabv3plus_resnet18", "deeplabv3plus_resnet20", "deeplabv3plus_mobilenetv3_small")


def _paired(a: Callable[[], object], b: Callable[[], object], reps: int = REPS) -> tuple[float, float]:
    """Median CPU seconds of `a` and of `b`, called alternately after one warm-up call each."""
    a(), b()
    ta, tb = [], []
    for _ in range(reps):
        for f, out in ((a, ta), (b, tb)):
            t = time.process_time()
            f()
            out.append(time.process_time() - t)
    return statistics.median(ta), statistics.median(tb)


def _rebuild_row(tmp: Path) -> dict:
    import torch

    from hwbench import load_weights
    from hwbench.models import create_model

    name = "deeplabv3plus_resnet18"
    torch.manual_seed(0)
    start = create_model(name, num_classes=8)
    start_path = tmp / "start.pth"
    torch.save(start.backbone.state_dict(), start_path)  # a backbone checkpoint, as `al pretrain` writes
    trained = {k: v + 0.5 if v.is_floating_point() else v for k, v in start.state_dict().items()}

    def old() -> torch.nn.Module:
        torch.manual_seed(1)
        m = create_model(name, num_classes=8)
        load_weights(m, start_path)       # read from disk and loaded ...
        m.load_state_dict(trained)        # ... then overwritten
        return m

    def ours() -> torch.nn.Module:
        torch.manual_seed(1)
        m = create_model(name, num_classes=8)
        m.load_state_dict(trained)
        return m

    same = all(torch.equal(x, y) for x, y in zip(old().state_dict().values(), ours().state_dict().values(),
                                                  strict=True))
    t_old, t_ours = _paired(old, ours)
    return {"name": f"rebuild {name} from its checkpoint (al.loop load_modules) vs + starting-weights reload"
                    f" ({'same' if same else 'DIFFERENT'} tensors)",
            "ours_s": t_ours, "baseline_s": t_old, "ratio": t_old / t_ours, "goal": ">= 1",
            "ok": same and t_ours <= t_old}


def _sgd_row() -> dict:
    import copy

    import torch

    from al.optim import param_groups
    from al.runtime import EagerSGD
    from hwbench.models import create_model

    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=10, stem="small")
    torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 28, 28)), torch.tensor([0, 1, 2, 3])).backward()
    fused_model = copy.deepcopy(model)
    for p, q in zip(model.parameters(), fused_model.parameters(), strict=True):
        q.grad = p.grad.clone()
    plain = EagerSGD(param_groups([model], 4e-4), lr=0.05, momentum=0.9)
    fused = EagerSGD(param_groups([fused_model], 4e-4), lr=0.05, momentum=0.9, fused=True)
    t_plain, t_fused = _paired(plain.step, fused.step, reps=2 * REPS)
    return {"name": "report: fused SGD step vs the per-parameter one (Res-18, 11.2 M params; not bit-identical)",
            "ours_s": t_fused, "baseline_s": t_plain, "ratio": t_plain / t_fused, "goal": "report", "ok": None}


def _tiny_gemm_row() -> dict:
    import torch

    from hwbench.models import create_model

    torch.manual_seed(0)
    plain = create_model("resnet18", num_classes=10, stem="small")
    gemm = create_model("resnet18", num_classes=10, stem="small", tiny_conv_gemm=True)
    gemm.load_state_dict(plain.state_dict())
    x, y = torch.randn(32, 3, 28, 28), torch.arange(32) % 10

    def step(m: torch.nn.Module) -> Callable[[], None]:
        def run() -> None:
            m.train().zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(m(x), y).backward()
        return run

    t_plain, t_gemm = _paired(step(plain), step(gemm))
    return {"name": "report: tiny_conv_gemm vs plain convs, resnet18 (small stem) training step, input (32, 3, 28, 28)",
            "ours_s": t_gemm, "baseline_s": t_plain, "ratio": t_plain / t_gemm, "goal": "report", "ok": None}


def _layout_rows() -> list[dict]:
    import torch

    from hwbench.models import create_model

    cases = [(n, kw, 10, (32, 3, 28, 28)) for n, kw in CLASSIFIERS] + [(n, {}, 8, (8, 3, 32, 64)) for n in SEGMENTERS]
    rows = []
    for name, kw, classes, shape in cases:
        torch.manual_seed(0)
        nchw = create_model(name, num_classes=classes, **kw)
        cl = create_model(name, num_classes=classes, **kw).to(memory_format=torch.channels_last)
        cl.load_state_dict(nchw.state_dict())
        x = torch.randn(shape)
        x_cl = x.contiguous(memory_format=torch.channels_last)

        def step(m: torch.nn.Module, inp: torch.Tensor) -> Callable[[], None]:
            def run() -> None:
                m.train()
                out = m(inp)
                m.zero_grad(set_to_none=True)
                out.float().square().mean().backward()
            return run

        def forward(m: torch.nn.Module, inp: torch.Tensor) -> Callable[[], None]:
            @torch.no_grad()
            def run() -> None:
                m.eval()
                m(inp)
            return run

        for what, make in (("training step", step), ("no-grad forward", forward)):
            t_n, t_c = _paired(make(nchw, x), make(cl, x_cl))
            rows.append({"name": f"report: channels-last vs NCHW, {name} {what}, input {tuple(shape)}",
                         "ours_s": t_c, "baseline_s": t_n, "ratio": t_n / t_c, "goal": "report", "ok": None})
    return rows


def _bf16_rows() -> list[dict]:
    import torch

    from al.precision import native_bf16, training_step
    from hwbench.models import create_model

    rows, x = [], torch.randn(32, 3, 28, 28)
    for name, kw in (("resnet18", {"stem": "small", "tiny_conv_gemm": True}), ("resnet20", {"channels_last": True}),
                     ("mobilenetv3_small", {"channels_last": True})):
        torch.manual_seed(0)
        model = create_model(name, num_classes=10, **kw).train()
        inp = x.contiguous(memory_format=torch.channels_last) if kw.get("channels_last") else x
        t_fp32, t_bf16 = _paired(training_step(model, inp, bf16=False), training_step(model, inp, bf16=True))
        rows.append({"name": f"report: bf16 autocast vs fp32 training step, {name} {kw or ''}, input (32, 3, 28, 28)"
                             f" (native bf16: {'yes' if native_bf16() else 'no'})",
                     "ours_s": t_bf16, "baseline_s": t_fp32, "ratio": t_fp32 / t_bf16, "goal": "report", "ok": None})
    return rows


def _syncbn_rows() -> list[dict]:
    import torch

    from al.syncbn import sync_batchnorm
    from hwbench.models import create_model

    rows = []
    for name in SEGMENTERS:
        torch.manual_seed(0)
        model = create_model(name, num_classes=8)
        x = torch.randn(8, 3, 32, 64)

        def step(model: torch.nn.Module = model, x: torch.Tensor = x) -> None:
            model.train()
            model.zero_grad(set_to_none=True)
            model(x).square().mean().backward()

        def synced(model: torch.nn.Module = model) -> None:
            with sync_batchnorm([model], torch.device("cpu")):
                step()

        t_torch, t_sync = _paired(step, synced)
        rows.append({"name": f"report: training step with al.syncbn's float64 BatchNorm (CPU, one process) vs "
                             f"torch's, {name}, input (8, 3, 32, 64)",
                     "ours_s": t_sync, "baseline_s": t_torch, "ratio": t_torch / t_sync, "goal": "report", "ok": None})
    return rows


def main() -> list[dict]:
    from al.runtime import torch_threads

    with torch_threads(1), tempfile.TemporaryDirectory() as tmp:
        return [_rebuild_row(Path(tmp)), _sgd_row(), _tiny_gemm_row(), *_layout_rows(), *_bf16_rows(), *_syncbn_rows()]


if __name__ == "__main__":  # pragma: no cover
    from hwbench.console import emit

    emit(main(), as_json=False, title="bench_train")
