"""`al surrogate CONFIG --plan`: the experiment's cost as a table and a few plain lines."""

from __future__ import annotations

import json
import sys
from typing import Any


def show_plan(cfg: Any, *, device: str, precision: str | None, utilisation: float, as_json: bool) -> int:
    from al.experiments.plan import hours_text, plan_for_config
    from al.report.format import model_label
    from hwbench.console import emit, line

    plan = plan_for_config(cfg, device=device, precision=precision, utilisation=utilisation)
    if as_json:
        from hwbench.provenance import with_provenance

        sys.stdout.write(json.dumps(with_provenance(plan.to_dict()), allow_nan=False) + "\n")
        return 0
    s = plan.schedule
    line(f"plan of {cfg.name}: {cfg.data.name}, pool {plan.pool_size} images, validation {plan.val_size}; "
         f"{s.n_initial} random + {s.cycles} cycles x {s.n_cycle} = {s.final} labelled "
         f"({s.final / plan.pool_size:.0%}); {plan.seeds} seeds")
    hours = f"{plan.hardware}-h"
    rows = [{"role": r.role, "model": model_label(r.model), "trainings": r.trainings,
             "images trained": r.images_trained, "images scored": r.images_scored,
             "images evaluated": r.images_evaluated, "GMACs/train img": r.gmacs_train_image,
             "GMACs/eval img": r.gmacs_eval_image, hours: r.gpu_hours} for r in plan.rows]
    emit(rows, as_json=False, title=f"cost per model (summed over {plan.seeds} seeds)",
         formats={"GMACs/train img": ".3g", "GMACs/eval img": ".3g", hours: ".3g"})
    if getattr(cfg, "budgets", ()):
        from al.experiments.context import sweep_budgets

        line(f"budget sweep: every deployment model trains at {', '.join(map(str, sweep_budgets(cfg, s.n_initial, s.n_cycle)))} "
             "labels on each surrogate's selection so far and on nested random sets")
    line(f"total: {plan.trainings} trainings, {plan.images_trained:,} training images seen, "
         f"about {hours_text(plan.gpu_hours, plan.hardware)} on one {plan.device} "
         f"({hours_text(plan.gpu_hours * plan.utilisation, plan.hardware)} at 100 % of peak, a hard lower bound)")
    for a in plan.assumptions:
        line(f"assumption: {a}")
    return 0
