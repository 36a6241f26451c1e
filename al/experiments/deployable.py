"""Surrogates = models deployable on the old fleet: the verdicts of `hwbench.deploy` that pick them."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from al.experiments.config import DeploySource, SurrogateSpec
from hwbench.errors import UserError


@dataclass(frozen=True)
class Resolved:
    """Surrogates after the deploy rule, with the verdicts that justify them."""

    surrogates: tuple[str, ...]
    source: dict[str, Any]
    verdicts: list[dict]


def resolve_surrogates(spec: SurrogateSpec, task: str) -> Resolved:
    """Explicit list, or the models `hwbench.deploy` finds deployable (filtered to `task`)."""
    from hwbench.models import list_models, model_info

    if spec.from_deploy is None:
        for m in spec.models:
            model_info(m)  # UserError listing the known models
        return Resolved(tuple(spec.models), {}, [])
    d = spec.from_deploy
    for m in d.candidates:
        model_info(m)
    candidates = list(d.candidates) or list_models(task)
    h, w = d.input_hw()
    verdicts = deploy_verdicts(candidates, d.device, fps=d.fps, budget_ms=d.budget_ms, share=d.share,
                               mode=d.mode, input_hw=(h, w), num_classes=d.num_classes, precision=d.precision)
    chosen = tuple(v["model"] for v in verdicts if v["deployable"] and model_info(v["model"]).task == task)
    if not chosen:
        raise UserError(f"no {task} model is deployable on {d.device} under the rule {_rule(d)}; "
                        "raise share/budget_ms or lower fps, or list surrogates.models")
    src = {k: v for k, v in dataclasses.asdict(d).items() if v not in (None, (), [])}
    return Resolved(chosen, src, verdicts)


def _rule(d: DeploySource) -> str:
    b = f"fps={d.fps:g}" if d.fps is not None else f"budget_ms={d.budget_ms:g}"
    return f"{b}, share={d.share:g}, mode={d.mode}, input={d.input}"


def deploy_verdicts(models: Sequence[str], device: str, *, fps: float | None, budget_ms: float | None,
                    share: float, mode: str, input_hw: tuple[int, int], num_classes: int = 19,
                    precision: str = "fp16") -> list[dict]:
    """One verdict per model: `hwbench.deploy`'s record (latency_ms, effective_latency_ms = latency / share,
    budget_ms, memory, ...) plus `deployable` as decided by `hwbench.deploy.deployable_models`, and a reason."""
    from hwbench.deploy import deploy, deployable_models

    kw: dict[str, Any] = {"fps": fps, "budget_ms": budget_ms, "share": share, "mode": mode, "precision": precision,
                          "input_shape": (1, 3, *input_hw), "num_classes": num_classes}
    ok = set(deployable_models(device, models=list(models), **kw))
    rows = []
    for v in deploy(list(models), [device], **kw):
        r = v.record()
        r["deployable"] = r["model"] in ok
        why = [f"{r['latency_ms']:.1f} ms / share {share:g} = {r['effective_latency_ms']:.1f} ms "
               f"{'<=' if r['meets_budget'] else '>'} {r['budget_ms']:.1f} ms budget"]
        if not r["fits_memory"]:
            why.append(f"needs {r['memory_used_gb']:.2f} GB > {r['memory_budget_gb']:.2f} GB")
        r["reason"] = "; ".join(why)
        rows.append(r)
    return rows
