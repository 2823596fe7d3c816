#!/usr/bin/env python3
"""Draw a tcsim `--trace` file (Chrome/Perfetto JSON) as an SVG timeline, without any
plotting library: one row per (rank track, stream), one box per op, coloured by category.

    tcsim run ... --trace t.json && experiments/plot_timeline.py t.json -o timeline.svg
"""
import argparse
import json
import sys

COLOURS = {"compute": "#4e79a7", "ep_all_to_all": "#e15759", "pp_p2p": "#f28e2b", "dp_reduce_scatter": "#59a14f",
           "dp_all_gather": "#8cd17d", "dp_all_reduce": "#59a14f", "tp_all_reduce": "#b07aa1", "tp_all_gather": "#b07aa1",
           "tp_reduce_scatter": "#d4a6c8", "cp_exchange": "#9c755f"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trace")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--width", type=int, default=1200)
    a = ap.parse_args()
    try:
        data = json.load(open(a.trace))
    except (OSError, ValueError) as e:
        print(f"error: {a.trace}: {e}; expected the JSON written by `tcsim run --trace`", file=sys.stderr)
        return 2
    events = data["traceEvents"] if isinstance(data, dict) else data
    names = {}
    for e in events:
        if e.get("ph") == "M" and e.get("name") in ("process_name", "thread_name"):
            names[(e["name"], e["pid"], e.get("tid"))] = e["args"]["name"]
    boxes = [e for e in events if e.get("ph") == "X"]
    if not boxes:
        print(f"error: {a.trace}: no ops in the trace", file=sys.stderr)
        return 2
    rows = sorted({(e["pid"], e["tid"]) for e in boxes})
    end = max(e["ts"] + e["dur"] for e in boxes)
    left, row_h, top = 170, 18, 30
    scale = (a.width - left - 10) / end
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{a.width}" height="{top + row_h * len(rows) + 40}" '
           f'font-family="sans-serif" font-size="11">',
           f'<text x="{left}" y="18">0 ms</text><text x="{a.width - 70}" y="18">{end / 1e3:.1f} ms</text>']
    for i, (pid, tid) in enumerate(rows):
        y = top + i * row_h
        label = f'{names.get(("process_name", pid, None), f"rank {pid}")} / {names.get(("thread_name", pid, tid), tid)}'
        out.append(f'<text x="4" y="{y + 13}">{label[:26]}</text>')
        for e in boxes:
            if (e["pid"], e["tid"]) != (pid, tid):
                continue
            w = max(e["dur"] * scale, 0.5)
            colour = COLOURS.get(e.get("cat", ""), "#bab0ac")
            out.append(f'<rect x="{left + e["ts"] * scale:.2f}" y="{y + 2}" width="{w:.2f}" height="{row_h - 4}" '
                       f'fill="{colour}"><title>{e["name"]} ({e["dur"]:.1f} us)</title></rect>')
    y = top + row_h * len(rows) + 20
    x = left
    for cat in sorted({e.get("cat", "") for e in boxes}):
        out.append(f'<rect x="{x}" y="{y - 10}" width="10" height="10" fill="{COLOURS.get(cat, "#bab0ac")}"/>'
                   f'<text x="{x + 14}" y="{y}">{cat}</text>')
        x += 20 + 7 * len(cat)
    out.append("</svg>")
    open(a.out, "w").write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
