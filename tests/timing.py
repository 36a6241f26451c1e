"""Time per test directory from the records conftest.py writes when HWBENCH_TEST_TIMES is set.

    HWBENCH_TEST_TIMES=/tmp/tt make test && python tests/timing.py /tmp/tt

CPU is user+sys of the worker and the subprocesses it waited for (torch runs one thread per worker).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path


def directory(nodeid: str) -> str:
    """tests/hwbench/latency/test_x.py::t -> tests/hwbench/latency; top-level files -> tests (top)."""
    parts = nodeid.split("::")[0].split("/")
    return "/".join(parts[:-1]) + (" (top)" if len(parts) == 2 else "")


def main(argv: list[str]) -> int:
    rows: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for f in sorted(Path(argv[1]).glob("*.jsonl")):
        for line in f.read_text().splitlines():
            r = json.loads(line)
            row = rows[directory(r["nodeid"])]
            row[0] += 1
            row[1] += r["wall_s"]
            row[2] += r["cpu_s"]
    total = [sum(r[i] for r in rows.values()) for i in range(3)]
    print("| directory | tests | wall s (sum) | CPU s |")
    print("|---|---:|---:|---:|")
    for name, (n, wall, cpu) in sorted(rows.items()):
        print(f"| {name} | {n} | {wall:.1f} | {cpu:.1f} |")
    print(f"| **total** | {total[0]} | {total[1]:.1f} | {total[2]:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
