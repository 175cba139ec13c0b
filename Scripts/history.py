#!/usr/bin/env python3
# dmabench — Scripts: the project's history as one self-contained HTML page (like asv)
#
#   Scripts/history.py Results/ --out history.html [--last 10] [--threshold 0.25] [--alpha 0.01]
#
# Reads every dmabench result under the directory (other JSON files, such as anchor-compare
# documents, are skipped with a note, as `plot.py --history` does) and orders the runs by
# `git log` of the repository that holds the directory (oldest left). One chart per headline
# metric and backend: descriptors/s of the throughput points (64 B and 4 KiB, batch 32,
# depth 256), latency p50 of the latency points (64 B, depth 1) and terminateSyncNs of the
# terminate points (inFlight 256), each point with its 95% CI. A step between consecutive
# commits of a series is significant when compare.py's own test (compare.compare_metric:
# one-sided Mann–Whitney U and the threshold) says regression or improvement; such steps are
# circled red on the chart and listed. Several result files of one commit pool their samples
# per point. A run whose commit is not in git log goes at the end, labelled so.
#
# Exit status: 0 page written; 2 bad input (a malformed result file, not a directory).
"""Write an asv-style history page of dmabench results across commits."""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import math
import os
import subprocess
import sys
from collections import OrderedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import compare  # noqa: E402
import dmaresult as dr  # noqa: E402
import plot  # noqa: E402

#: (chart metric as compare.metric_samples names it, workload, unit, series selectors).
#: A selector is (label, required parameters); a point matches when its identity parameters
#: hold these values and no parameter outside ALLOWED_PARAMETERS.
HEADLINES = (
    ("descriptorsPerSecond", "throughput", "descriptors/s",
     (("64 B", {"size": 64, "batch": 32, "depth": 256}), ("4 KiB", {"size": 4096, "batch": 32, "depth": 256}))),
    ("latencyNs.p50", "latency", "ns", (("64 B p50", {"size": 64, "depth": 1}),)),
    ("terminateSyncNs", "terminate", "ns", (("inFlight 256", {"inFlight": 256}),)),
)
ALLOWED_PARAMETERS = {"size", "batch", "depth", "channels", "inFlight"}

#: compare.compare_metric statuses that mark a step.
SIGNIFICANT = ("regression", "improvement", "worse (not gated)")

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def git_log(root: str) -> tuple[str | None, list[tuple[str, str, str]]]:
    """(repository root, [(hash, date, subject)] oldest first); (None, []) outside git."""
    try:
        top = subprocess.run(["git", "-C", root, "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, check=True).stdout.strip()
        out = subprocess.run(["git", "-C", top, "log", "--format=%H %cI %s"], capture_output=True,
                             text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None, []
    rows = []
    for line in out.splitlines():
        parts = line.split(" ", 2)
        if len(parts) >= 2:
            rows.append((parts[0], parts[1], parts[2] if len(parts) > 2 else ""))
    rows.reverse()
    return top, rows


def commit_of(path: str, ctx: dict) -> tuple[str, bool]:
    """(commit without -dirty, dirty) of a run: context.commit, else the directory name."""
    commit = str(ctx.get("commit") or os.path.basename(os.path.dirname(os.path.abspath(path)))).strip()
    dirty = ctx.get("dirty") is True or commit.endswith("-dirty")
    if commit.endswith("-dirty"):
        commit = commit[: -len("-dirty")]
    return commit.lower(), dirty


def selector_label(point: dict, selectors) -> str | None:
    params = dr.identity_parameters(point.get("parameters"))
    if set(params) - ALLOWED_PARAMETERS:
        return None
    for label, required in selectors:
        if all(params.get(k) == v for k, v in required.items()):
            return label
    return None


class Group:
    """One x position: a commit (clean or dirty), or a run whose commit git log lacks."""

    def __init__(self, commit: str, dirty: bool, known: bool, date: str = "", subject: str = ""):
        self.commit, self.dirty, self.known = commit, dirty, known
        self.date, self.subject = date, subject
        self.files: list[str] = []
        self.points = 0
        # (metric, backend, series label, host, placement) -> pooled samples and stat triplets
        self.samples: dict[tuple, list[float]] = {}
        self.triplets: dict[tuple, list] = {}
        self.steps: list[dict] = []

    @property
    def label(self) -> str:
        return self.commit[:8] + ("-dirty" if self.dirty else "") + ("" if self.known else " (not in git log)")


def value_of(group: Group, key: tuple) -> tuple[float, float | None, float | None]:
    samples = group.samples[key]
    trips = group.triplets[key]
    if len(trips) == 1 and trips[0] is not None:
        return trips[0]
    m = dr.median(samples)
    if len(samples) >= 2:
        lo, hi = dr.median_ci(samples)
        return (m, lo, hi)
    return (m, None, None)


def build(root: str, threshold: float, alpha: float):
    if not os.path.isdir(root):
        dr.fail(f"{root}: not a directory; expected the Results/ directory (Results/<host>/<commit>/<name>.json)")
    docs, skipped = plot.load_history(root)
    top, log = git_log(root)
    index = {h: i for i, (h, _, _) in enumerate(log)}
    groups: dict[tuple, Group] = {}
    notes = [f"skipped {p}: {what}, not a dmabench result" for p, what in skipped]
    if top is None:
        notes.append(f"{root} is not inside a git repository: every run is placed by its date")
    for path, doc in docs:
        ctx = doc["context"]
        commit, dirty = commit_of(path, ctx)
        matches = [h for h in index if commit and h.startswith(commit)] if len(commit) >= 4 else []
        if len(matches) == 1:
            full = matches[0]
            _, date, subject = log[index[full]]
            g = groups.setdefault((full, dirty), Group(full, dirty, True, date, subject))
        else:
            why = "ambiguous in" if matches else "not in"
            notes.append(f"{path}: commit {commit or '?'} is {why} git log; placed at the end")
            g = groups.setdefault((commit, dirty, "?"), Group(commit, dirty, False, str(ctx.get("date") or "")))
        g.files.append(path)
        host = str(ctx.get("host") or "?")
        for p in doc["points"]:
            g.points += 1
            for metric, workload, _, selectors in HEADLINES:
                if p["workload"] != workload:
                    continue
                label = selector_label(p, selectors)
                if label is None:
                    continue
                ms = compare.metric_samples(p)
                if metric not in ms:
                    continue
                key = (metric, p["backend"], label, host, dr.point_key(p)[3])
                g.samples.setdefault(key, []).extend(ms[metric][0])
                stat = (p.get("metrics") or {}).get(metric)
                g.triplets.setdefault(key, []).append(plot.stat_triplet(stat) if isinstance(stat, dict) else None)
    known = sorted((g for g in groups.values() if g.known), key=lambda g: (index[g.commit], g.dirty))
    unknown = sorted((g for g in groups.values() if not g.known),
                     key=lambda g: (plot.parse_date(g.date) or 0.0, g.commit, g.dirty))
    ordered = known + unknown
    # Significant steps: each series against its previous commit that has it, by compare.py's test.
    steps = []
    last: dict[tuple, int] = {}
    for x, g in enumerate(ordered):
        for key in g.samples:
            if key in last:
                base = ordered[last[key]]
                row = compare.compare_metric(key[4], key[0], base.samples[key], g.samples[key],
                                             True, threshold, alpha)
                if row.status in SIGNIFICANT:
                    step = {"key": key, "base": last[key], "head": x, "row": row}
                    steps.append(step)
                    g.steps.append(step)
            last[key] = x
    return ordered, steps, notes, top


def chart_png(title: str, unit: str, ordered: list[Group], series: dict, steps: list[dict]) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(7.0, 0.45 * len(ordered) + 3), 4.0))
    for name, key in series.items():
        xs = [x for x, g in enumerate(ordered) if key in g.samples]
        vals = [value_of(ordered[x], key) for x in xs]
        ys = [v[0] for v in vals]
        lo = [v[0] - v[1] if v[1] is not None and v[1] <= v[0] else 0.0 for v in vals]
        hi = [v[2] - v[0] if v[2] is not None and v[2] >= v[0] else 0.0 for v in vals]
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", ms=4, capsize=3, label=name)
        for s in steps:
            if s["key"] == key:
                y = value_of(ordered[s["head"]], key)[0]
                ax.plot([s["head"]], [y], "o", ms=13, mfc="none", mec="red", mew=2)
                ax.annotate(s["row"].status, (s["head"], y), color="red", fontsize=7,
                            xytext=(6, 8), textcoords="offset points")
    ax.set_xticks(range(len(ordered)))
    ax.set_xticklabels([g.label.replace(" (not in git log)", "?") for g in ordered], fontsize=7,
                       rotation=45 if len(ordered) > 6 else 0, ha="right" if len(ordered) > 6 else "center")
    ax.set_xlim(-0.5, len(ordered) - 0.5)
    ax.set_ylabel(unit)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def fmt(v: float | None) -> str:
    return compare.fmt(v)


def step_text(s: dict, ordered: list[Group]) -> str:
    metric, backend, label, host, _ = s["key"]
    r = s["row"]
    ci = f" [{fmt(r.ci[0])}, {fmt(r.ci[1])}]" if r.ci else ""
    return (f"{backend} {metric} ({label}, {host}): {r.status}, {fmt(r.base_median)} → {fmt(r.head_median)}, "
            f"×{fmt(r.ratio)}{ci}, p={fmt(min(r.p_worse or 1.0, r.p_better or 1.0))}")


def render(root: str, ordered: list[Group], steps: list[dict], notes: list[str], last_n: int,
           threshold: float, alpha: float) -> str:
    esc = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">',
           f"<title>dmabench history: {esc(root)}</title>",
           "<style>body{font-family:sans-serif;margin:1.5em;max-width:80em}table{border-collapse:collapse}"
           "td,th{border:1px solid #ccc;padding:3px 6px;font-size:90%;vertical-align:top}"
           ".sig{color:#b00}img{max-width:100%}</style></head><body>",
           f"<h1>dmabench history</h1><p>{len(ordered)} commit(s) with results under <code>{esc(root)}</code>, "
           f"in <code>git log</code> order (oldest left). Points: median with its 95% CI. A red circle marks a step "
           f"that <code>compare.py</code>'s test finds significant (threshold {threshold:g}, alpha {alpha:g}).</p>"]
    out.append(f"<h2>Last {last_n} commits with results</h2>")
    out.append('<table id="last"><tr><th>commit</th><th>date</th><th>subject</th><th>files</th><th>points</th>'
               "<th>significant changes</th></tr>")
    for g in reversed(ordered[-last_n:] if last_n > 0 else []):
        changes = "<br>".join(esc(step_text(s, ordered)) for s in g.steps) or "–"
        out.append(f'<tr class="commit" data-commit="{esc(g.commit)}"><td><code>{esc(g.label)}</code></td>'
                   f"<td>{esc(g.date)}</td><td>{esc(g.subject)}</td><td>{len(g.files)}</td><td>{g.points}</td>"
                   f'<td class="{"sig" if g.steps else ""}">{changes}</td></tr>')
    out.append("</table>")
    out.append("<h2>Charts</h2>")
    charts = 0
    for metric, workload, unit, _ in HEADLINES:
        backends = sorted({k[1] for g in ordered for k in g.samples if k[0] == metric})
        for backend in backends:
            keys = sorted({k for g in ordered for k in g.samples if k[0] == metric and k[1] == backend})
            hosts = {k[3] for k in keys}
            places = {k[4] for k in keys}
            series = OrderedDict()
            for k in keys:
                name = k[2] + (f" {k[3]}" if len(hosts) > 1 else "") + (f" {k[4]}" if len(places) > 1 else "")
                series[name] = k
            title = f"{backend}: {metric} ({workload})"
            png = chart_png(title, unit, ordered, series, steps)
            charts += 1
            out.append(f'<h3>{esc(title)}</h3><img alt="{esc(title)}" src="data:image/png;base64,{png}">')
    if not charts:
        out.append("<p>No headline points (throughput 64 B/4 KiB batch 32 depth 256, latency 64 B depth 1, "
                   "terminate inFlight 256) in these results.</p>")
    out.append(f"<h2>Significant steps ({len(steps)})</h2><table id=\"steps\"><tr><th>from</th><th>to</th>"
               "<th>change</th></tr>")
    for s in steps:
        b, h = ordered[s["base"]], ordered[s["head"]]
        out.append(f'<tr class="step" data-base="{esc(b.commit)}" data-head="{esc(h.commit)}">'
                   f"<td><code>{esc(b.label)}</code></td><td><code>{esc(h.label)}</code></td>"
                   f"<td>{esc(step_text(s, ordered))}</td></tr>")
    out.append("</table>")
    out.append("<h2>Commits, oldest first</h2><ol id=\"order\">")
    for g in ordered:
        out.append(f'<li data-commit="{esc(g.commit)}"><code>{esc(g.label)}</code> {esc(g.subject)} '
                   f"({len(g.files)} file(s))</li>")
    out.append("</ol>")
    if notes:
        out.append("<h2>Notes</h2><ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write an asv-style HTML history page of dmabench results across commits.")
    ap.add_argument("results", metavar="RESULTS_DIR", help="the Results/ directory (inside the git repository)")
    ap.add_argument("--out", default="history.html", help="the HTML file to write (default: history.html)")
    ap.add_argument("--last", type=int, default=10, help="commits in the table of recent commits (default 10)")
    ap.add_argument("--threshold", type=float, default=0.25, help="as compare.py --threshold (default 0.25)")
    ap.add_argument("--alpha", type=float, default=0.01, help="as compare.py --alpha (default 0.01)")
    args = ap.parse_args(argv)
    if args.last < 0:
        dr.fail(f"--last {args.last}: must be 0 or more")
    if not (0 < args.threshold < 1) or not (0 < args.alpha < 1):
        dr.fail("--threshold and --alpha must be between 0 and 1")
    ordered, steps, notes, _ = build(args.results, args.threshold, args.alpha)
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    page = render(args.results, ordered, steps, notes, args.last, args.threshold, args.alpha)
    dr.atomic_write_text(args.out, page)
    print(f"wrote {args.out}: {len(ordered)} commit(s), {len(steps)} significant step(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
