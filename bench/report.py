"""report.py — what the benchmarks' report sections share (bench/*.sh run their
Python with the repository root as the working directory and import this).

Each results dict maps a key to the runs measured under it; a run is the JSON
line mq-loadgen (or another bench tool) printed, with "other_cores" added by
bench/lib.sh's `measured`.
"""


def errs(res, key):
    """Failed calls over the runs of `key`, with the count per gRPC status."""
    codes = {}
    for x in res[key]:
        for c, n in x.get("codes", {}).items():
            codes[c] = codes.get(c, 0) + n
    total = sum(x["errors"] for x in res[key])
    return str(total) + (" (" + ", ".join(f"{c} {n}" for c, n in sorted(codes.items())) + ")" if codes else "")


def quiet_warning(res, limit=0.15):
    """The warning lines for a run disturbed by other processes (none if quiet)."""
    worst = max(max(x.get("other_cores", 0.0) for x in v) for v in res.values())
    if worst <= limit:
        return []
    return [f"**Warning: other processes used up to {worst:.2f} cores during some measurements of this run; "
            "the figures below are disturbed by that load. Rerun on a quiet machine.**", ""]
