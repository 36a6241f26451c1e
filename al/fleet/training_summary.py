"""What the data a fleet collected is worth: mean ± std per (generation, surrogate, method) over seeds and
the paired differences fleet − random and fleet − pool (records of `al fleet`'s training.jsonl)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def training_summary(training: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Mean ± std over seeds per (generation, surrogate, method); paired differences fleet − random and
    fleet − pool (`al.paired`: mean, half-width of the 95 % t-interval, verdict beat / tie / lose)."""
    from al.paired import paired_diff, paired_differences

    groups: dict[tuple[str, str], dict[str, dict[int, float]]] = {}
    for r in training:
        groups.setdefault((r["generation"], r["surrogate"]), {}).setdefault(r["method"], {})[r["seed"]] = r["value"]
    out = []
    for (g, s), by in groups.items():
        rec: dict[str, Any] = {"generation": g, "surrogate": s}
        for m, vals in by.items():
            a = np.array(list(vals.values()))
            rec[m], rec[f"{m}_std"] = float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else None
        for other in ("random", "pool"):
            seeds, d = paired_differences(by.get("fleet", {}), by.get(other, {}))
            pd_ = paired_diff(d) if len(seeds) else None
            rec[f"fleet_minus_{other}"] = pd_.delta if pd_ else None
            rec[f"fleet_minus_{other}_ci95"] = pd_.half_width if pd_ else None
            rec[f"fleet_vs_{other}"] = pd_.verdict if pd_ else "n/a"
            rec[f"fleet_wins_vs_{other}"] = f"{int((d > 0).sum())}/{d.size}"
        rec["seeds"] = len(by.get("fleet", {}))
        rec["added"] = next((r["added"] for r in training if (r["generation"], r["surrogate"], r["method"])
                             == (g, s, "fleet")), None)
        out.append(rec)
    return out
