#!/usr/bin/env python3
"""Plots (SVG, no dependencies) and Markdown tables from docs/experts_experiments.sh's results.tsv.

usage: plot_experts.py RESULTS.tsv OUT_PREFIX
writes OUT_PREFIX-prune.svg (bits/byte vs fraction of experts kept, per domain and method; random pruning as the
mean of its seeds with a min-max bar) and OUT_PREFIX-adaptive.svg (bits/byte vs mean experts per token for the
adaptive rules), and prints the tables of docs/experts.md.
"""
import csv
import statistics
import sys
from collections import defaultdict

COLORS = {"freq": "#1f77b4", "tcess": "#d62728", "reap": "#2ca02c", "random": "#7f7f7f",
          "top-k": "#1f77b4", "min-weight": "#d62728", "top-p": "#2ca02c"}


def panel(x0, y0, w, h, title, xlabel, series, xr, yr):
    """series: list of (name, [(x, y, ylo, yhi)]). Returns SVG elements."""
    (xa, xb), (ya, yb) = xr, yr
    sx = lambda x: x0 + 50 + (x - xa) / (xb - xa or 1) * (w - 70)
    sy = lambda y: y0 + h - 40 - (y - ya) / (yb - ya or 1) * (h - 70)
    out = [f'<text x="{x0 + w / 2}" y="{y0 + 16}" text-anchor="middle" font-weight="bold">{title}</text>',
           f'<rect x="{x0 + 50}" y="{y0 + 30}" width="{w - 70}" height="{h - 70}" fill="none" stroke="#999"/>',
           f'<text x="{x0 + w / 2}" y="{y0 + h - 6}" text-anchor="middle">{xlabel}</text>']
    for i in range(5):
        yv = ya + (yb - ya) * i / 4
        out.append(f'<text x="{x0 + 46}" y="{sy(yv) + 4}" text-anchor="end" font-size="10">{yv:.3f}</text>')
        xv = xa + (xb - xa) * i / 4
        out.append(f'<text x="{sx(xv)}" y="{y0 + h - 26}" text-anchor="middle" font-size="10">{xv:.2f}</text>')
    for li, (name, pts) in enumerate(series):
        c = COLORS.get(name, "#000")
        pts = sorted(pts)
        out.append('<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>'
                   % (c, " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y, _, _ in pts)))
        for x, y, lo, hi in pts:
            out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{c}"/>')
            if hi > lo:
                out.append(f'<line x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{sy(lo):.1f}" y2="{sy(hi):.1f}" stroke="{c}"/>')
        out.append(f'<text x="{x0 + 60}" y="{y0 + 46 + 14 * li}" fill="{c}" font-size="11">{name}</text>')
    return out


def svg(path, panels, w, h):
    with open(path, "w") as f:
        f.write(f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" '
                f'font-size="12"><rect width="100%" height="100%" fill="white"/>\n')
        f.write("\n".join(e for p in panels for e in p) + "\n</svg>\n")


def bounds(series, pad=0.05):
    xs = [p[0] for _, pts in series for p in pts]
    ys = [v for _, pts in series for p in pts for v in (p[1], p[2], p[3])]
    dy = (max(ys) - min(ys)) or 1
    return (min(xs), max(xs)), (min(ys) - pad * dy, max(ys) + pad * dy)


def main():
    rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
    prefix = sys.argv[2]
    f = lambda r: float(r["bits_per_byte"])
    prune = [r for r in rows if r["experiment"] == "prune"]
    domains = list(dict.fromkeys(r["domain"] for r in prune))
    n_expert = max(int(r["keep"]) for r in prune)

    # Pruning.
    print("### Pruning: bits per byte on the domain's held-out text\n")
    keeps = sorted({int(r["keep"]) for r in prune}, reverse=True)
    print("| domain | experts kept | freq | tcess | reap | random (mean ± sd, min-max over seeds) |")
    print("|---|---|---:|---:|---:|---:|")
    panels = []
    for di, d in enumerate(domains):
        series = defaultdict(list)
        for k in keeps:
            sel = [r for r in prune if r["domain"] == d and int(r["keep"]) == k]
            if k == n_expert:
                v = f(sel[0])
                print(f"| {d} | {k}/{n_expert} (unpruned) | {v:.4f} | {v:.4f} | {v:.4f} | {v:.4f} |")
                for m in ("freq", "tcess", "reap", "random"):
                    series[m].append((k / n_expert, v, v, v))
                continue
            cells = []
            for m in ("freq", "tcess", "reap"):
                v = f(next(r for r in sel if r["method"] == m))
                series[m].append((k / n_expert, v, v, v))
                cells.append(f"{v:.4f}")
            rnd = [f(r) for r in sel if r["method"] == "random"]
            mean, sd = statistics.mean(rnd), statistics.pstdev(rnd)
            series["random"].append((k / n_expert, mean, min(rnd), max(rnd)))
            cells.append(f"{mean:.4f} ± {sd:.4f} ({min(rnd):.4f}-{max(rnd):.4f})")
            print(f"| {d} | {k}/{n_expert} | " + " | ".join(cells) + " |")
        ser = [(m, series[m]) for m in ("freq", "tcess", "reap", "random")]
        xr, yr = bounds(ser)
        panels.append(panel(di * 330, 0, 330, 300, d, "fraction of experts kept", ser, xr, yr))
    svg(f"{prefix}-prune.svg", panels, 330 * len(domains), 300)

    cross = [r for r in rows if r["experiment"] == "cross"]
    if cross:
        evals = list(dict.fromkeys(r["setting"].split("=")[1] for r in cross))
        print("\n### Half the experts kept for one domain (TCESS), evaluated on each domain (bits per byte)\n")
        print("| kept for \\ evaluated on | " + " | ".join(evals) + " |")
        print("|---|" + "---:|" * len(evals))
        for d in domains:
            vals = {r["setting"].split("=")[1]: f(r) for r in cross if r["domain"] == d}
            print(f"| {d} | " + " | ".join(f"{vals[e]:.4f}" for e in evals) + " |")

    # Adaptive expert count.
    ad = [r for r in rows if r["experiment"] == "adaptive"]
    panels = []
    print("\n### Adaptive expert count: bits per byte and mean experts per token\n")
    print("| domain | rule | setting | experts/token | bits/byte |")
    print("|---|---|---|---:|---:|")
    for di, d in enumerate(dict.fromkeys(r["domain"] for r in ad)):
        series = defaultdict(list)
        for r in (r for r in ad if r["domain"] == d):
            e = float(r["experts_per_token"])
            series[r["method"]].append((e, f(r), f(r), f(r)))
            print(f"| {d} | {r['method']} | {r['setting']} | {e:.3f} | {f(r):.4f} |")
        ser = list(series.items())
        xr, yr = bounds(ser)
        panels.append(panel(di * 360, 0, 360, 300, d, "mean experts per token", ser, xr, yr))
    svg(f"{prefix}-adaptive.svg", panels, 360 * len(panels), 300)

    # Steering.
    st = [r for r in rows if r["experiment"] == "steer"]
    if st:
        evals = list(dict.fromkeys(r["setting"].split("=")[1] for r in st))
        print("\n### Banning the experts steer-find ranks most bible-specific (vs WikiText): bits per byte\n")
        print("| experts banned | chosen by | " + " | ".join(evals) + " |")
        print("|---|---|" + "---:|" * len(evals))
        groups = defaultdict(lambda: defaultdict(list))
        for r in st:
            groups[(int(r["keep"]), r["method"])][r["setting"].split("=")[1]].append(f(r))
        for (n, m) in sorted(groups, key=lambda g: (g[0], g[1] != "steer-find")):
            cells = []
            for e in evals:
                v = groups[(n, m)][e]
                cells.append(f"{statistics.mean(v):.4f}" + (f" ± {statistics.pstdev(v):.4f}" if len(v) > 1 else ""))
            print(f"| {n} | {m} | " + " | ".join(cells) + " |")

    taer = [r for r in rows if r["experiment"] == "taer"]
    if taer:
        print("\n### Task-adaptive retrieval: the stored task a 400-byte held-out prompt picks\n")
        print("| prompts from | " + " | ".join(domains) + " | right |")
        print("|---|" + "---:|" * (len(domains) + 1))
        for d in domains:
            got = [r["setting"] for r in taer if r["domain"] == d]
            print(f"| {d} | " + " | ".join(str(got.count(e)) for e in domains) + f" | {got.count(d)}/{len(got)} |")


if __name__ == "__main__":
    main()
