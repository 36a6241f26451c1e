"""Process start-up costs `al` avoids, checked against the public torch / scikit-learn paths they replace."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from al.runtime import EagerSGD, _set_deterministic, deterministic, eager_optimizers


def _groups(seed: int) -> tuple[list[torch.nn.Parameter], list[dict]]:
    g = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn(5, 3, generator=g)), torch.nn.Parameter(torch.randn(3, generator=g))]
    return params, [{"params": [params[0]], "weight_decay": 4e-4}, {"params": [params[1]], "weight_decay": 0.0}]


@pytest.mark.parametrize("nesterov", [False, True])
def test_eager_sgd_is_torch_sgd_bit_for_bit(nesterov) -> None:
    eager_optimizers()
    ours_p, ours_g = _groups(0)
    ref_p, ref_g = _groups(0)
    ours = EagerSGD(ours_g, lr=0.05, momentum=0.9, nesterov=nesterov)
    ref = torch.optim.SGD(ref_g, lr=0.05, momentum=0.9, nesterov=nesterov)
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        grads = [torch.randn(p.shape, generator=g) for p in ours_p]
        for params, opt in ((ours_p, ours), (ref_p, ref)):
            opt.zero_grad()
            for p, gr in zip(params, grads, strict=True):
                p.grad = gr.clone()
            opt.step()
        assert all(torch.equal(a, b) for a, b in zip(ours_p, ref_p, strict=True))
    assert torch.equal(ours.state_dict()["state"][0]["momentum_buffer"], ref.state_dict()["state"][0]["momentum_buffer"])
    assert torch.is_grad_enabled()  # restored after the step


def test_eager_sgd_closure() -> None:
    p, _ = _groups(2)
    opt = EagerSGD(p, lr=0.1)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = sum((q ** 2).sum() for q in p)
        loss.backward()
        return loss

    before = [q.detach().clone() for q in p]
    loss = opt.step(closure)
    assert float(loss.detach()) == pytest.approx(sum(float((q ** 2).sum()) for q in before))
    assert all(torch.allclose(q, b * 0.8) for q, b in zip(p, before, strict=True))  # q - 0.1 * 2q


def test_deterministic_flag_matches_the_public_call() -> None:
    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    with deterministic("cpu"):
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    assert (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()) == before
    _set_deterministic(True, warn_only=False)
    try:
        assert torch.are_deterministic_algorithms_enabled() and not torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(*before[:1], warn_only=before[1])


def test_digit_scans_are_scikit_learns() -> None:
    from sklearn.datasets import load_digits

    from al.data.digits import load_scans

    images, targets = load_scans()
    ref = load_digits()
    assert images.shape == (1797, 8, 8) and np.array_equal(images, ref.images)
    assert targets.dtype == np.int64 and np.array_equal(targets, ref.target)


def test_an_al_run_imports_neither_dynamo_nor_sklearn(tmp_path) -> None:
    """torch._dynamo (~1.6-3 CPU-s) and scikit-learn with SciPy (~3 CPU-s) cost every `al` process more
    than the small runs themselves; a training run on digits needs neither."""
    code = ("import sys; from al.cli import main; "
            f"rc = main(['run', 'smoke_digits', '--strategy', 'llal', '--out', {str(tmp_path / 'r')!r}, '--json']); "
            "print(rc, sorted(k for k in ('torch._dynamo', 'torch._inductor.config', 'sklearn', 'scipy') "
            "if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip().splitlines()[-1] == "0 []", out.stdout[-2000:] + out.stderr[-2000:]
