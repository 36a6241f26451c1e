"""`hwbench profiles`: device profiles and their figures (TOPS, GB/s, GB), with sources; `--check FILE` lists
every problem of a profile file at once."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="DEVICE",
                        help="profiles to show: names or profile files FILE.toml (default: every profile on the "
                             "search path: HWBENCH_PROFILES, then the shipped ones; plus `host` if already "
                             "measured); `host` measures this machine on first use")
    parser.add_argument("--check", nargs="+", metavar="FILE", default=None,
                        help="check profile files (see profiles/TEMPLATE.toml) and list every problem; exit 2 if any")
    parser.add_argument("--refresh", action="store_true", help="re-measure the `host` profile")
    parser.add_argument("--sources", action="store_true", help="list every figure with its source")
    parser.add_argument("--json", action="store_true", help="print only a JSON list of records")


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from hwbench.console import emit
    from hwbench.profiles import HOST, describe, host_cache_path, list_profiles, load_profile, profile_origin

    if args.check:
        return _check(args.check, as_json=args.json)
    names = list(args.names)
    if args.refresh and HOST not in names:
        names.append(HOST)
    if not names:
        names = [n for n in list_profiles() if n != HOST or host_cache_path().is_file()]
    profiles = [load_profile(n, refresh=args.refresh and n == HOST) for n in names]
    origins = [profile_origin(n) if not n.endswith(".toml") else f"file: {n}" for n in names]
    if args.json:
        emit([{**asdict(p), "origin": o} for p, o in zip(profiles, origins, strict=True)], as_json=True)
        return 0
    if args.sources:
        for p in profiles:
            rows = [{"figure": k, "value": str(getattr(p, k)), "source": p.sources.get(k, "-")}
                    for k in ("generation", "year", "power_mode", "mem_bw_gbps", "memory_gb", "paper_tops",
                              "dla_count") if getattr(p, k) not in (None, "")]
            rows += [{"figure": f"peak {e.precision}/{e.engine}" + ("/sparse" if e.sparse else "") + " (TOPS)",
                      "value": e.tops, "source": e.source} for e in p.peak]
            emit(rows, as_json=False, title=f"{p.name}: {p.display_name}")
        return 0
    rows = []
    for p, origin in zip(profiles, origins, strict=True):
        d = describe(p)
        rows.append({"name": p.name, "device": p.display_name, "gen": p.generation or "-",
                     "year": "-" if p.year is None else str(p.year), "power": p.power_mode or "-",
                     "fp32 GPU TOPS": d.get("tops_fp32_gpu"), "fp16 GPU TOPS": d.get("tops_fp16_gpu"),
                     "int8 GPU TOPS": d.get("tops_int8_gpu"), "int8 GPU+DLA TOPS": d.get("tops_int8_gpu+dla"),
                     "paper TOPS": p.paper_tops, "mem BW (GB/s)": p.mem_bw_gbps, "memory (GB)": p.memory_gb,
                     "fp32 CPU TOPS": d.get("tops_fp32_cpu"), "from": origin})
    if not any(r["fp32 CPU TOPS"] for r in rows):
        for r in rows:
            r.pop("fp32 CPU TOPS")
    emit(rows, as_json=False, title="device profiles (dense peaks; TOPS = 1e12 ops/s, 2 ops per MAC; "
                                    "`--sources` for where each figure comes from)")
    return 0


def _check(files: list[str], *, as_json: bool) -> int:
    """Every problem of every file, one line each; exit 0 when all are valid, 2 otherwise."""

    from hwbench.console import emit
    from hwbench.errors import UserError
    from hwbench.profiles import check_profile

    records, bad = [], 0
    for f in files:
        try:
            problems, prof = check_profile(f)
        except UserError as e:  # not a file, not TOML: one problem
            problems, prof = [str(e)], None
        bad += bool(problems)
        records.append({"file": f, "ok": not problems, "problems": problems,
                        "name": prof.name if prof is not None else None})
    if as_json:
        emit(records, as_json=True)
    else:
        for r in records:
            if r["ok"]:
                print(f"{r['file']}: ok (profile {r['name']!r})")
            else:
                print(f"{r['file']}: {len(r['problems'])} problem(s)")
                for p in r["problems"]:
                    print(f"  - {p}")
    return 2 if bad else 0
