#!/usr/bin/env python3
"""Line plots (SVG, no dependencies) and a Markdown table from `moe train` runs' metrics.jsonl files.

usage: plot_training.py OUT_PREFIX LABEL=RUN_DIR [LABEL=RUN_DIR ...]
writes OUT_PREFIX-train.svg (train loss, EMA), OUT_PREFIX-val.svg (held-out bits/byte), OUT_PREFIX-load.svg
(expert load max/mean, mean over layers) and prints the table rows of docs/training.md.
"""
import json
import math
import sys

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"]


def read(run):
    rows = [json.loads(l) for l in open(f"{run}/metrics.jsonl") if l.strip()]
    cfg = next(r for r in rows if "config" in r)["config"]
    # A resumed run repeats steps; keep the last record of each (step, kind).
    train, val, final, text = {}, {}, None, None
    for r in rows:
        if r.get("final"):
            final = r
        elif "loss" in r and "step" in r and "lr" in r:
            train[r["step"]] = r
        elif "val_loss" in r:
            val[r["step"]] = r
        elif "eval_text" in r:
            text = r
    return cfg, [train[k] for k in sorted(train)], [val[k] for k in sorted(val)], final, text


def nice_ticks(lo, hi, n):
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    t = math.ceil(lo / step) * step
    out = []
    while t <= hi + 1e-9 * (hi - lo):
        out.append(t)
        t += step
    return out


def svg(title, xlabel, ylabel, series, path, w=720, h=420):
    pts = [p for _, s in series for p in s]
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    pad = 0.04 * (y1 - y0 or 1)
    y0, y1 = y0 - pad, y1 + pad
    L, R, T, B = 70, 20, 40, 55
    pw, ph = w - L - R, h - T - B
    px = lambda x: L + (x - x0) / ((x1 - x0) or 1) * pw
    py = lambda y: T + (1 - (y - y0) / ((y1 - y0) or 1)) * ph
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
         '<rect width="100%" height="100%" fill="white"/>',
         f'<text x="{w / 2}" y="22" text-anchor="middle" font-size="15">{title}</text>']
    for v in nice_ticks(x0, x1, 8):
        o.append(f'<line x1="{px(v):.1f}" y1="{T}" x2="{px(v):.1f}" y2="{T + ph}" stroke="#e5e5e5"/>')
        o.append(f'<text x="{px(v):.1f}" y="{T + ph + 16}" text-anchor="middle">{v:g}</text>')
    for v in nice_ticks(y0, y1, 6):
        o.append(f'<line x1="{L}" y1="{py(v):.1f}" x2="{L + pw}" y2="{py(v):.1f}" stroke="#e5e5e5"/>')
        o.append(f'<text x="{L - 6}" y="{py(v) + 4:.1f}" text-anchor="end">{v:.4g}</text>')
    o.append(f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
    o.append(f'<text x="{L + pw / 2}" y="{h - 12}" text-anchor="middle">{xlabel}</text>')
    o.append(f'<text transform="translate(16,{T + ph / 2}) rotate(-90)" text-anchor="middle">{ylabel}</text>')
    for i, (label, s) in enumerate(series):
        c = COLORS[i % len(COLORS)]
        o.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.6" points="' +
                 " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in s) + '"/>')
        ly = T + 14 + 16 * i
        o.append(f'<line x1="{L + pw - 170}" y1="{ly - 4}" x2="{L + pw - 148}" y2="{ly - 4}" stroke="{c}" stroke-width="2"/>')
        o.append(f'<text x="{L + pw - 142}" y="{ly}">{label}</text>')
    o.append("</svg>")
    open(path, "w").write("\n".join(o) + "\n")


def main():
    prefix, runs = sys.argv[1], [a.split("=", 1) for a in sys.argv[2:]]
    tr, va, lo = [], [], []
    print("| variant | experts/token | held-out loss | held-out bits/byte | WikiText-2 test bits/byte | load max/mean (mean over layers) | tokens/s | train time |")
    print("|---|---|---|---|---|---|---|---|")
    for label, run in runs:
        cfg, train, val, final, text = read(run)
        tokens_per_step = cfg["optim"]["batch"] * cfg["model"]["n_ctx"] * cfg["optim"]["accum"]
        ema, s = None, []
        for r in train:
            ema = r["loss"] if ema is None else 0.8 * ema + 0.2 * r["loss"]
            s.append((r["step"] * tokens_per_step / 1e6, ema))
        tr.append((label, s))
        va.append((label, [(r["step"] * tokens_per_step / 1e6, r["val_bpb"]) for r in val]))
        lo.append((label, [(r["step"] * tokens_per_step / 1e6, sum(r["load_max_mean"]) / len(r["load_max_mean"])) for r in train]))
        last = train[-len(train) // 5:]  # the last fifth of training
        lm = sum(sum(r["load_max_mean"]) / len(r["load_max_mean"]) for r in last) / len(last)
        ept = sum(r["experts_per_token"] for r in last) / len(last)
        tok_s = final["tokens"] / final["seconds"] if final else float("nan")
        wiki = f'{text["bpb"]:.4f}' if text else "-"
        print(f'| {label} | {ept:.2f} | {final["val_loss"]:.4f} | {final["val_bpb"]:.4f} | {wiki} | {lm:.2f} | '
              f'{tok_s:.0f} | {final["seconds"] / 60:.1f} min |')
    svg("Training loss (EMA)", "training tokens (millions)", "cross-entropy (nats/token)", tr, prefix + "-train.svg")
    svg("Held-out bits per byte", "training tokens (millions)", "bits per byte", va, prefix + "-val.svg")
    svg("Expert load max/mean (mean over layers)", "training tokens (millions)", "max/mean load", lo, prefix + "-load.svg")


if __name__ == "__main__":
    main()
