"""Benches of a commit and of this tree (and of this tree with a setting changed), in
turns, in one run of the machine: the before-and-after figures a change must print.

    python bench/compare.py [BENCH ...] [--against REV] [--variant NAME=VALUE ...]
                            [--rounds N] [--quick]

BENCH: any of wallet, points, campaign, member_lookup, batch_top_up, checkout (default:
all). --against REV runs REV's own bench and code from a git worktree; --variant runs
this tree with an environment variable set (a switch under test). Each side runs its
own seed and services; the sides take turns, so the machine's speed, which varies by
half within an hour here, falls on every side alike.

For each bench it prints every numeric figure of every side: the mean, the spread (the
largest run over the smallest) and the ratio to the first side; and, for the benches
that measure CPU per call, a table of it per side with its spread (CPU per call
depends far less on what else the machine runs than a rate does). pgbench's rate on the
same server after each run says how fast the machine was. A change is within the
runs' own spread when its ratio lies inside the sides' spreads. Ends with one JSON line.
"""

import argparse
import contextlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ADMIN_URL, ROOT, in_turns, spread_table, tree_of

BENCHES = ["wallet", "points", "campaign", "member_lookup", "batch_top_up", "checkout"]


def figures_of(run: dict) -> dict[str, float]:
    """The numeric figures of a bench's JSON line; CPU per call summed over the processes
    that serve it (PostgreSQL included, the load generator left out), as cpu_ms."""
    figures = {k: float(v) for k, v in run.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    cpu = run.get("cpu_ms")
    if isinstance(cpu, dict):
        figures["cpu_ms"] = sum(ms for name, ms in cpu.items() if name != "client")
    return figures


def summary(runs: list[tuple[str, dict]]) -> dict[str, dict[str, dict]]:
    """figure -> side -> {runs, mean, spread, ratio (to the first side's mean)}"""
    values: dict[str, dict[str, list[float]]] = {}
    for label, run in runs:
        for name, value in figures_of(run).items():
            values.setdefault(name, {}).setdefault(label, []).append(value)
    out: dict[str, dict[str, dict]] = {}
    for name, sides in values.items():
        first = None
        for label, vs in sides.items():
            mean = sum(vs) / len(vs)
            first = mean if first is None else first
            out.setdefault(name, {})[label] = {
                "runs": vs,
                "mean": round(mean, 3),
                "spread": round(max(vs) / min(vs), 3) if min(vs) > 0 else None,
                "ratio": round(mean / first, 3) if first else None,
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benches", nargs="*", default=BENCHES, help=f"default: all of {', '.join(BENCHES)}")
    parser.add_argument("--against", help="a commit to measure beside this tree")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pg", default=ADMIN_URL)
    args = parser.parse_args()
    if not args.against and not args.variant:
        parser.error("nothing to compare: give --against REV or --variant NAME=VALUE")
    options = [*(["--quick"] if args.quick else []), "--pg", args.pg]
    results = {}
    with contextlib.ExitStack() as stack:
        sides = [("this tree", ROOT, {})]
        if args.against:  # its own bench/ as well as its code: a bench's seed follows its code
            sides.insert(0, (f"commit {args.against}", stack.enter_context(tree_of(args.against)), {}))
        for variant in args.variant:
            name, _, value = variant.partition("=")
            sides.append((variant, ROOT, {name: value}))
        for bench in args.benches:
            print(f"=== {bench}", flush=True)
            runs = in_turns(bench, sides, options, args.rounds)
            results[bench] = summary(runs)
            for name, by_side in sorted(results[bench].items()):
                print(
                    f"  {name}: "
                    + "; ".join(
                        f"{label} {s['mean']:,} (spread {s['spread']}, ratio {s['ratio']})"
                        for label, s in by_side.items()
                    )
                )
            if all(isinstance(run.get("cpu_ms"), dict) and "client" in run["cpu_ms"] for _, run in runs):
                print(spread_table(runs))
    print(
        json.dumps(
            {
                "bench": "compare",
                "against": args.against,
                "variants": args.variant,
                "rounds": args.rounds,
                "quick": args.quick,
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
