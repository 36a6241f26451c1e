"""`hwbench profiles`: device profiles and their figures (TOPS, GB/s, GB), with sources."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="DEVICE",
                        help="profiles to show (default: all files, plus `host` if already measured); "
                             "`host` measures this machine on first use")
    parser.add_argument("--refresh", action="store_true", help="re-measure the `host` profile")
    parser.add_argument("--sources", action="store_true", help="list every figure with its source")
    parser.add_argument("--json", action="store_true", help="print only a JSON list of records")


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from hwbench.console import emit
    from hwbench.profiles import HOST, describe, host_cache_path, list_profiles, load_profile

    names = list(args.names)
    if args.refresh and HOST not in names:
        names.append(HOST)
    if not names:
        names = [n for n in list_profiles() if n != HOST or host_cache_path().is_file()]
    profiles = [load_profile(n, refresh=args.refresh and n == HOST) for n in names]
    if args.json:
        emit([asdict(p) for p in profiles], as_json=True)
        return 0
    if args.sources:
        for p in profiles:
            rows = [{"figure": k, "value": str(p.year) if k == "year" else getattr(p, k),
                     "source": p.sources.get(k, "-")}
                    for k in ("generation", "year", "power_mode", "mem_bw_gbps", "memory_gb", "paper_tops",
                              "dla_count") if getattr(p, k) is not None]
            rows += [{"figure": f"peak {e.precision}/{e.engine}" + ("/sparse" if e.sparse else "") + " (TOPS)",
                      "value": e.tops, "source": e.source} for e in p.peak]
            emit(rows, as_json=False, title=f"{p.name}: {p.display_name}")
        return 0
    rows = []
    for p in profiles:
        d = describe(p)
        rows.append({"name": p.name, "device": p.display_name, "gen": p.generation, "year": str(p.year),
                     "power": p.power_mode, "fp32 GPU TOPS": d.get("tops_fp32_gpu"),
                     "fp16 GPU TOPS": d.get("tops_fp16_gpu"), "int8 GPU TOPS": d.get("tops_int8_gpu"),
                     "int8 GPU+DLA TOPS": d.get("tops_int8_gpu+dla"), "paper TOPS": p.paper_tops,
                     "mem BW (GB/s)": p.mem_bw_gbps, "memory (GB)": p.memory_gb,
                     "fp32 CPU TOPS": d.get("tops_fp32_cpu")})
    if not any(r["fp32 CPU TOPS"] for r in rows):
        for r in rows:
            r.pop("fp32 CPU TOPS")
    emit(rows, as_json=False, title="device profiles (dense peaks; TOPS = 1e12 ops/s, 2 ops per MAC; "
                                    "`--sources` for where each figure comes from)")
    return 0
