"""Every bench (or those named) of a commit and of this tree, in turns, in one run of the
machine: the before-and-after figures a change must print.

    python bench/compare.py --against REV [--rounds 2] [--quick] [wallet points ...]

For each bench it prints every figure of each run of both sides (pgbench's among them,
which says how fast the machine was meanwhile), the mean of each side, the spread of each
side (its largest run over its smallest) and the ratio after / before. A change is within
the runs' own spread when the ratio lies inside the larger side's spread.
Ends with one JSON line.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ADMIN_URL, side_by_side

BENCHES = ["wallet", "points", "campaign", "member_lookup", "batch_top_up", "checkout"]


def figures_of(run: dict) -> dict[str, float]:
    """The numeric figures of a bench's JSON line; CPU per call summed over the processes
    that serve it (the load generator left out), as cpu_ms."""
    figures = {k: float(v) for k, v in run.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    cpu = run.get("cpu_ms")
    if isinstance(cpu, dict):
        figures["cpu_ms"] = sum(ms for name, ms in cpu.items() if name != "client")
    elif isinstance(cpu, int | float):
        figures["cpu_ms"] = float(cpu)
    return figures


def summary(runs: list[tuple[str, dict]]) -> dict[str, dict]:
    """figure -> {before: [...], after: [...], mean_before, mean_after, ratio, spread_before, spread_after}"""
    sides: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
    for label, run in runs:
        side = "before" if label.startswith("before") else "after"
        for name, value in figures_of(run).items():
            sides[side].setdefault(name, []).append(value)
    out = {}
    for name in sides["before"].keys() & sides["after"].keys():
        b, a = sides["before"][name], sides["after"][name]
        mean_b, mean_a = sum(b) / len(b), sum(a) / len(a)
        out[name] = {
            "before": b,
            "after": a,
            "mean_before": round(mean_b, 3),
            "mean_after": round(mean_a, 3),
            "ratio": round(mean_a / mean_b, 3) if mean_b else None,
            "spread_before": round(max(b) / min(b), 3) if min(b) > 0 else None,
            "spread_after": round(max(a) / min(a), 3) if min(a) > 0 else None,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("benches", nargs="*", default=BENCHES, help=f"default: all of {', '.join(BENCHES)}")
    parser.add_argument("--against", required=True, help="the commit to measure beside this tree")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pg", default=ADMIN_URL)
    args = parser.parse_args()
    results = {}
    for bench in args.benches:
        print(f"=== {bench}", flush=True)
        runs = side_by_side(bench, args.against, [*(["--quick"] if args.quick else []), "--pg", args.pg], args.rounds)
        results[bench] = summary(runs)
        for name, s in sorted(results[bench].items()):
            print(
                f"  {name}: before {s['mean_before']:,} (spread {s['spread_before']}), "
                f"after {s['mean_after']:,} (spread {s['spread_after']}), after/before {s['ratio']}"
            )
    print(
        json.dumps(
            {
                "bench": "compare",
                "against": args.against,
                "rounds": args.rounds,
                "quick": args.quick,
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
