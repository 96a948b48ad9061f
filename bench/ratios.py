#!/usr/bin/env python3
"""ratios.py RESULTS.tsv [PEER] [--reference SCENARIO] -- medians per scenario x load x contestant from a
run-peer-bench.sh (or delta-scenario.sh) results.tsv, as markdown, with ratios to PEER (default rotel) from the
same run: otlake against PEER in the same scenario, or, with --reference, every contestant's row of every
scenario against PEER's row of SCENARIO with the same load (delta-scenario.sh --table: each Delta scenario
against rotel's OTLP -> drop)."""
import csv
import statistics
import sys


def num(x):
    try:
        return float(str(x).rstrip("%"))
    except ValueError:
        return None


def med(rows, key):
    vals = [num(r[key]) for r in rows if num(r[key]) is not None]
    return statistics.median(vals) if vals else None


def f(v, nd=0):
    return "-" if v is None else ("{:,.%df}" % nd).format(v)


def ratio(a, b):
    return "%.2f" % (a / b) if a is not None and b else "-"


def same_scenario(groups, peer):
    print("| scenario | load | contestant | runs | spans or logs/s | CPU-s per M | CPU util | VmHWM MB | mean latency | otlake/%s CPU per M | otlake/%s items/s | otlake/%s RSS |" % (peer, peer, peer))
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (sc, load), by in sorted(groups.items()):
        o = by.get("otlake")
        p = by.get(peer)
        for c, rs in sorted(by.items()):
            ratios = ("", "", "")
            if c == "otlake" and o and p:
                ratios = tuple(ratio(med(o, k), med(p, k)) for k in ("cpu_s_per_M", "items_per_s", "vmhwm_mb"))
            lat = sorted(x["lat_mean"] for x in rs)[len(rs) // 2]
            print("| %s | %s | %s | %d | %s | %s | %s%% | %s | %s | %s | %s | %s |" % (
                sc, load, c, len(rs), f(med(rs, "items_per_s")), f(med(rs, "cpu_s_per_M"), 2),
                f(med(rs, "cpu_util")), f(med(rs, "vmhwm_mb"), 1), lat, *ratios))


def against_reference(groups, peer, reference):
    print("| scenario | load | contestant | runs | items/s | CPU-s per M items | CPU util | VmHWM MB | other CPU | "
          "CPU per item ÷ %s %s | items/s ÷ %s %s | VmHWM ÷ %s |" % (peer, reference, peer, reference, peer))
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (sc, load), by in sorted(groups.items(), key=lambda g: (g[0][0] != reference, g[0])):
        ref = groups.get((reference, load), {}).get(peer)
        for c, rs in sorted(by.items()):
            ratios = ("", "", "")
            if ref and not (sc == reference and c == peer):
                ratios = tuple(ratio(med(rs, k), med(ref, k)) for k in ("cpu_s_per_M", "items_per_s", "vmhwm_mb"))
            print("| %s | %s | %s | %d | %s | %s | %s%% | %s | %s%% | %s | %s | %s |" % (
                sc, load, c, len(rs), f(med(rs, "items_per_s")), f(med(rs, "cpu_s_per_M"), 2),
                f(med(rs, "cpu_util"), 1), f(med(rs, "vmhwm_mb"), 1), f(med(rs, "other_util")), *ratios))


def main():
    args = sys.argv[1:]
    reference = None
    if "--reference" in args:
        at = args.index("--reference")
        reference = args[at + 1]
        del args[at:at + 2]
    rows = list(csv.DictReader(open(args[0]), delimiter="\t"))
    peer = args[1] if len(args) > 1 else "rotel"
    groups = {}
    for r in rows:
        groups.setdefault((r["scenario"], r["load"]), {}).setdefault(r["contestant"], []).append(r)
    if reference:
        against_reference(groups, peer, reference)
    else:
        same_scenario(groups, peer)


if __name__ == "__main__":
    main()
