"""Run the corruption suite and print its table: file kind x damage -> refused / repaired (issue 19).

    python tests/corruption_table.py [--out FILE.md]

Runs tests/al/test_corruption_runs.py and tests/al/test_corruption_files.py in one process (`-n 0`) with
AL_CORRUPTION_TABLE set, so every judged case is recorded (see tests/al/corruption.py), then renders the
markdown table. Exit status: pytest's (non-zero when any case was used silently).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = ["tests/al/test_corruption_runs.py", "tests/al/test_corruption_files.py"]
DAMAGES = {"flip": "one bit flipped", "truncate": "truncated to half", "float": "a number set to 3.4e38",
           "other": "another run's copy"}


def render(rows: list[dict]) -> str:
    """The markdown table of the judged cases (a damage that does not apply to a file: n/a)."""
    cases: dict[tuple[str, str], dict[str, str]] = {}
    for r in rows:
        cases.setdefault((r["area"], r["file"]), {})[r["damage"]] = r["outcome"]
    lines = ["| where | file | " + " | ".join(DAMAGES.values()) + " |",
             "|---|---|" + "---|" * len(DAMAGES)]
    for (area, name), got in cases.items():
        lines.append(f"| {area} | `{name}` | " + " | ".join(got.get(d, "n/a") for d in DAMAGES) + " |")
    counts = {k: sum(r["outcome"] == k for r in rows) for k in ("refused", "repaired", "USED")}
    lines.append("")
    lines.append(f"{len(rows)} cases over {len(cases)} file kinds: {counts['refused']} refused in one line naming "
                 f"the file, {counts['repaired']} repaired to the undamaged result, {counts['USED']} used silently.")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="also write the table to this markdown file")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "cases.jsonl"
        env = {**os.environ, "AL_CORRUPTION_TABLE": str(table), "PYTHONPATH": str(ROOT),
               "HWBENCH_CACHE_DIR": os.environ.get("HWBENCH_CACHE_DIR", str(Path(tmp) / "cache"))}
        rc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", *SUITE],
                            cwd=ROOT, env=env).returncode
        rows = [json.loads(x) for x in table.read_text().splitlines()] if table.is_file() else []
    text = render(rows)
    sys.stdout.write(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    return rc


if __name__ == "__main__":
    sys.exit(main())
