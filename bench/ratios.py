#!/usr/bin/env python3
"""ratios.py RESULTS.tsv [PEER] -- medians per scenario x load x contestant from a run-peer-bench.sh (or
delta-scenario.sh) results.tsv, and otlake's ratios to PEER (default rotel) from the same run, as markdown."""
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


def main():
    rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
    peer = sys.argv[2] if len(sys.argv) > 2 else "rotel"
    groups = {}
    for r in rows:
        groups.setdefault((r["scenario"], r["load"]), {}).setdefault(r["contestant"], []).append(r)
    print("| scenario | load | contestant | runs | spans or logs/s | CPU-s per M | CPU util | VmHWM MB | mean latency | otlake/%s CPU per M | otlake/%s items/s | otlake/%s RSS |" % (peer, peer, peer))
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (sc, load), by in sorted(groups.items()):
        o = by.get("otlake")
        p = by.get(peer)
        for c, rs in sorted(by.items()):
            ratio = ("", "", "")
            if c == "otlake" and o and p:
                def r(k):
                    a, b = med(o, k), med(p, k)
                    return "%.2f" % (a / b) if a is not None and b else "-"
                ratio = (r("cpu_s_per_M"), r("items_per_s"), r("vmhwm_mb"))
            lat = sorted(x["lat_mean"] for x in rs)[len(rs) // 2]
            f = lambda v, nd=0: "-" if v is None else ("{:,.%df}" % nd).format(v)
            print("| %s | %s | %s | %d | %s | %s | %s%% | %s | %s | %s | %s | %s |" % (
                sc, load, c, len(rs), f(med(rs, "items_per_s")), f(med(rs, "cpu_s_per_M"), 2),
                f(med(rs, "cpu_util")), f(med(rs, "vmhwm_mb"), 1), lat, *ratio))


if __name__ == "__main__":
    main()
