"""Run every `benchmarks/bench_*.py` module's `main() -> list[dict]` and print one table.

Usage: python -m benchmarks [NAME ...]   (NAME filters modules, e.g. `count`, `al`)
Exit status 1 if any row misses its goal (row["ok"] is False).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path

from hwbench.console import emit, stderr
from hwbench.io import atomic_write_json


def main(argv: list[str]) -> int:
    names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name.startswith("bench_"))
    if argv:
        names = [n for n in names if any(a in n for a in argv)]
    rows: list[dict] = []
    for name in names:
        stderr.print(f"[bold]benchmark[/] {name} ...")
        t0 = time.perf_counter()
        module_rows = importlib.import_module(f"benchmarks.{name}").main()
        stderr.print(f"  {name}: {time.perf_counter() - t0:.1f} s")
        rows.extend({"bench": name, **r} for r in module_rows)
    emit(rows, as_json=False, title="make bench (ratio: ours vs a baseline measured in the same run; times in s)",
         columns=["bench", "name", "ours_s", "baseline_s", "ratio", "goal", "ok"],
         formats={"ours_s": ".4g", "baseline_s": ".4g", "ratio": ".3g"})
    atomic_write_json(Path("reports") / "bench.json", rows)
    stderr.print("wrote reports/bench.json")
    missed = [r["name"] for r in rows if r.get("ok") is False]
    for name in missed:
        stderr.print(f"[red]goal missed:[/] {name}")
    return 0 if not missed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
