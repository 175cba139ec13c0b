#!/usr/bin/env python3
# dmabench — Scripts: plots from result files
#
#   Scripts/plot.py RESULT.json [more.json ...] [--out DIR] [--format png|svg] [--prefix P]
#   Scripts/plot.py --history Results/ [--metric descriptorsPerSecond] [--workload throughput]
#                   [--backend ring,locked] [--size 64] [--out DIR] [--format png|svg]
#
# Draws: throughput against size per backend (log-log; points flagged for interference are
# hollow; scatter-gather points are their own series, labelled sge=S:D), the speed-up over
# cpu, hot against cold caches and callback against polled completion (when a run measured
# both modes), latency percentile spectra (HdrHistogram style), terminate cost against
# in-flight count, a NUMA placement heatmap, counters per descriptor, for cyclic points the
# period-latency distribution per backend and pace and the overruns against pace, and (with
# --history) a metric across commits read from Results/ (other JSON files kept there, such
# as anchor-compare documents and gbench exports, are skipped with a note on stderr;
# dmaresult.foreign_kind says how they are recognised). A plot whose data is absent is
# skipped with a printed note (the speed-up, cache, completion and cyclic plots are simply
# not drawn). Files are named PREFIX-<plot>.<format>; the
# prefix defaults to the result file's stem when one file is given. Files are written atomically. Bad input
# (malformed, truncated or wrong-version JSON) is a one-line error and exit status 2.
"""Plot dmabench result files (schemaVersion 1) with matplotlib (Agg backend)."""

from __future__ import annotations

import argparse
import datetime
import math
import os
import sys
from collections import Counter, OrderedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dmaresult as dr  # noqa: E402

MAX_SERIES = 24

# matplotlib is imported only once the inputs have been read, so that bad input fails fast.
plt = None
FuncFormatter = None
NullFormatter = None


def setup_matplotlib() -> None:
    global plt, FuncFormatter, NullFormatter
    if plt is not None:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot
    from matplotlib import ticker

    plt = pyplot
    FuncFormatter = ticker.FuncFormatter
    NullFormatter = ticker.NullFormatter

# ---------------------------------------------------------------------------------------------
# helpers


class Source:
    """One loaded result file and the label prefix its series get when several are plotted."""

    def __init__(self, path: str, doc: dict):
        self.path = path
        self.doc = doc
        self.prefix = ""

    @property
    def points(self) -> list[dict]:
        return self.doc["points"]


def assign_prefixes(sources: list[Source]) -> None:
    if len(sources) < 2:
        return
    commits = [str(s.doc["context"].get("commit") or "") for s in sources]
    unique = len(set(commits)) == len(commits) and all(commits)
    for s, c in zip(sources, commits):
        s.prefix = (c[:10] if unique else os.path.splitext(os.path.basename(s.path))[0]) + ": "


def params(point: dict) -> dict:
    return point.get("parameters") or {}


def placement_of(point: dict, which: str = "verified") -> dict:
    pl = point.get("placement") or {}
    return pl.get(which) or pl.get("requested") or {}


def placement_label(pl: dict) -> str:
    return ",".join(f"{k}={pl[k]}" for k in sorted(pl) if pl[k] is not None)


def stat_triplet(stat) -> tuple[float, float | None, float | None] | None:
    m = dr.stat_median(stat)
    if m is None or not math.isfinite(m):
        return None
    if isinstance(stat, dict):
        lo, hi = stat.get("ciLow"), stat.get("ciHigh")
        return (m, lo if isinstance(lo, (int, float)) else None, hi if isinstance(hi, (int, float)) else None)
    return (m, None, None)


def errorbar(ax, xs, triplets, **kw):
    """Draw one series; return its colour (for markers drawn over it)."""
    ys = [t[0] for t in triplets]
    lows = [t[0] - t[1] if t[1] is not None and t[1] <= t[0] else 0.0 for t in triplets]
    highs = [t[2] - t[0] if t[2] is not None and t[2] >= t[0] else 0.0 for t in triplets]
    if any(lows) or any(highs):
        container = ax.errorbar(xs, ys, yerr=[lows, highs], capsize=3, marker="o", markersize=4, **kw)
        return container.lines[0].get_color()
    return ax.plot(xs, ys, marker="o", markersize=4, **kw)[0].get_color()


def hollow(ax, xs, ys, colour) -> None:
    """Flagged points (environment.interference): the series' marker, hollow, over it."""
    if xs:
        ax.plot(xs, ys, linestyle="none", marker="o", markersize=6, markerfacecolor="white",
                markeredgecolor=colour, markeredgewidth=1.2, zorder=5)


def size_axis(ax) -> None:
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: dr.format_size(int(round(v))) if v >= 1 else ""))
    ax.xaxis.set_minor_formatter(NullFormatter())


def finish(fig, docs: list[dict], title: str, extra_note: str = "") -> None:
    note = dr.environment_note(docs)
    if extra_note:
        note += "\n" + extra_note
    if len(note) > 400:
        note = note[:397] + "..."
    fig.suptitle(title)
    fig.text(0.01, 0.005, note, fontsize=7, ha="left", va="bottom", wrap=True, color="dimgray")
    fig.tight_layout(rect=(0, 0.06 + 0.03 * note.count("\n"), 1, 0.95))


def legend(ax, n: int) -> None:
    if n == 0:
        return
    if n > 5:
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    else:
        ax.legend(fontsize=7)


class Output:
    def __init__(self, out_dir: str, fmt: str, prefix: str = ""):
        setup_matplotlib()
        self.out_dir = out_dir
        self.fmt = fmt
        self.prefix = prefix
        self.written: list[str] = []
        self.skipped: list[str] = []

    def save(self, fig, name: str) -> None:
        stem = f"{self.prefix}-{name}" if self.prefix else name
        path = os.path.join(self.out_dir, f"{stem}.{self.fmt}")
        dr.atomic_savefig(fig, path, self.fmt)
        plt.close(fig)
        self.written.append(path)
        print(f"wrote {path}")

    def skip(self, name: str, reason: str) -> None:
        self.skipped.append(name)
        print(f"skipped {name} plot: {reason}")


def mode_of(point: dict, key: str) -> str:
    """A mode parameter (offsets, completion, cache), its default when null or absent."""
    value = params(point).get(key)
    return value if isinstance(value, str) else dr.PARAMETER_DEFAULTS[key]


def config_label(point: dict, show_placement: bool, omit: tuple[str, ...] = ()) -> str:
    """Short series label. Modes appear only when not at their default, so that files without
    them keep their labels, while hot and cold (or callback and polled) points of one
    configuration become separate series instead of one zig-zag line. `omit` leaves out the
    modes a plot shows by line style."""
    p = params(point)
    parts = [point["backend"]]
    if p.get("batch") is not None:
        parts.append(f"b{p['batch']}")
    if p.get("depth") is not None:
        parts.append(f"d{p['depth']}")
    if p.get("channels") not in (None, 1):
        parts.append(f"ch{p['channels']}")
    if p.get("rate") is not None:
        parts.append(f"{p['rate']:g}/s")
    if "offsets" not in omit and mode_of(point, "offsets") != dr.PARAMETER_DEFAULTS["offsets"]:
        parts.append(f"{mode_of(point, 'offsets')}-offsets")
    if "offsets" not in omit and p.get("alignment") is not None:
        parts.append(f"align{p['alignment']:g}")
    for key in ("completion", "cache"):
        if key not in omit and mode_of(point, key) != dr.PARAMETER_DEFAULTS[key]:
            parts.append(mode_of(point, key))
    # Scatter-gather points are separate series from the flat copies of the same configuration.
    if p.get("sge") is not None:
        parts.append(f"sge={p['sge']}")
    # Cyclic points: periods in the buffer, the pace, the callback's busy work when any.
    if p.get("periods") is not None:
        parts.append(f"{p['periods']} periods")
    if p.get("pace") is not None:
        parts.append(dr.format_pace(p["pace"]))
    if p.get("periodWorkNs"):
        parts.append(f"work {p['periodWorkNs']:g} ns")
    if show_placement:
        parts.append("@" + placement_label(placement_of(point, "requested")))
    return " ".join(parts)


def varies_placement(points: list[dict]) -> bool:
    return len({dr.canonical(placement_of(p, "requested")) for p in points}) > 1


def cap_series(series: "OrderedDict[str, list]") -> tuple["OrderedDict[str, list]", str]:
    if len(series) <= MAX_SERIES:
        return series, ""
    kept = OrderedDict(list(series.items())[:MAX_SERIES])
    return kept, f"showing {MAX_SERIES} of {len(series)} series; pass fewer files or filter the sweep"


# ---------------------------------------------------------------------------------------------
# throughput


def plot_throughput(sources: list[Source], out: Output) -> None:
    metrics = [("bytesPerSecond", "bytes/s", "Bytes per second"), ("descriptorsPerSecond", "descriptors/s", "Descriptors per second")]
    pts = [(s, p) for s in sources for p in s.points
           if p["workload"] == "throughput" and isinstance(params(p).get("size"), (int, float))
           and any(stat_triplet((p.get("metrics") or {}).get(m)) for m, _, _ in metrics)]
    if not pts:
        out.skip("throughput", "no throughput points with a size and descriptorsPerSecond/bytesPerSecond")
        return
    show_pl = varies_placement([p for _, p in pts])
    present = [m for m in metrics if any(stat_triplet(p["metrics"].get(m[0])) for _, p in pts)]
    fig, axes = plt.subplots(1, len(present), figsize=(6.5 * len(present), 5), squeeze=False)
    notes = []
    flagged = sum(1 for _, p in pts if dr.is_flagged(p))
    if flagged:
        notes.append(f"hollow markers: {flagged} point(s) flagged for interference (environment.interference)")
    for ax, (metric, unit, title) in zip(axes[0], present):
        series: OrderedDict[str, list] = OrderedDict()
        for s, p in pts:
            t = stat_triplet(p["metrics"].get(metric))
            if t is None:
                continue
            series.setdefault(s.prefix + config_label(p, show_pl), []).append((params(p)["size"], t, dr.is_flagged(p)))
        series, note = cap_series(series)
        if note and note not in notes:
            notes.append(note)
        for label, rows in series.items():
            rows.sort(key=lambda r: r[0])
            if label.split(" ")[0].split(":")[-1] == BASELINE:
                # The baseline every engine must beat: black and dashed, named as such.
                colour = errorbar(ax, [r[0] for r in rows], [r[1] for r in rows], label=f"{label} (baseline)",
                                  color="black", linestyle="--")
            else:
                colour = errorbar(ax, [r[0] for r in rows], [r[1] for r in rows], label=label)
            hollow(ax, [r[0] for r in rows if r[2]], [r[1][0] for r in rows if r[2]], colour)
        size_axis(ax)
        ax.set_yscale("log")
        ax.set_xlabel("transfer size (bytes)")
        ax.set_ylabel(f"{unit} (median, 95% CI)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        legend(ax, len(series))
    finish(fig, [s.doc for s in sources], "Throughput against transfer size (closed loop)", "; ".join(notes))
    out.save(fig, "throughput")


#: The backend the others are compared with (`metrics.speedupOverCPU`).
BASELINE = "cpu"


def plot_speedup(sources: list[Source], out: Output) -> None:
    """Each backend's speed-up over the cpu baseline against transfer size (throughput and
    latency), with the baseline at 1. Drawn only when a run measured the baseline."""
    pts = [(s, p) for s in sources for p in s.points
           if p["workload"] in ("throughput", "latency") and isinstance(params(p).get("size"), (int, float))
           and isinstance((p.get("metrics") or {}).get("speedupOverCPU"), (int, float))]
    if not pts:
        return
    show_pl = varies_placement([p for _, p in pts])
    workloads = [w for w in ("throughput", "latency") if any(p["workload"] == w for _, p in pts)]
    fig, axes = plt.subplots(1, len(workloads), figsize=(6.5 * len(workloads), 5), squeeze=False)
    for ax, workload in zip(axes[0], workloads):
        series: OrderedDict[str, list] = OrderedDict()
        for s, p in pts:
            if p["workload"] == workload:
                series.setdefault(s.prefix + config_label(p, show_pl), []).append((params(p)["size"], p["metrics"]["speedupOverCPU"]))
        for label, rows in series.items():
            rows.sort(key=lambda r: r[0])
            ax.plot([r[0] for r in rows], [r[1] for r in rows], marker="o", markersize=4, label=label)
        ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label=f"{BASELINE} (baseline)")
        size_axis(ax)
        ax.set_yscale("log")
        ax.set_xlabel("transfer size (bytes)")
        ax.set_ylabel("speed-up over cpu (×, above 1: faster)")
        ax.set_title("descriptors/s over cpu's" if workload == "throughput" else "cpu's p50 latency over this p50")
        ax.grid(True, which="both", alpha=0.3)
        legend(ax, len(series) + 1)
    finish(fig, [s.doc for s in sources], "Speed-up over the cpu baseline (same run, same point)")
    out.save(fig, "speedup")


#: Mode pairs drawn against each other: (parameter, default mode, other mode, ratio metric,
#: plot name, title, what the ratio is). The default is solid, the other dashed.
MODE_PLOTS = [
    ("cache", "hot", "cold", "coldVsHot", "cache", "Hot against cold caches (throughput)",
     "cold over hot (×, below 1: cold caches cost)"),
    ("completion", "callback", "polled", "polledVsCallback", "completion",
     "Completion by callback against polling (throughput)", "polled over callback (×, above 1: polling is faster)"),
]


def plot_modes(sources: list[Source], out: Output) -> None:
    for spec in MODE_PLOTS:
        plot_mode_pair(sources, out, *spec)


def plot_mode_pair(sources: list[Source], out: Output, key: str, default: str, other: str, ratio: str,
                   name: str, title: str, ratio_label: str) -> None:
    """Throughput against size with the two modes of `key` as solid (default) and dashed
    (other) lines of one colour per configuration, and the `ratio` metric when present. Drawn
    only when the throughput points have both modes, like the speed-up plot."""
    # The throughput plot's first panel: bytes/s, or descriptors/s where no point has bytes/s.
    metric, unit = "bytesPerSecond", "bytes/s"
    if not any(stat_triplet((p.get("metrics") or {}).get(metric)) for s in sources for p in s.points
               if p["workload"] == "throughput"):
        metric, unit = "descriptorsPerSecond", "descriptors/s"
    pts = [(s, p) for s in sources for p in s.points
           if p["workload"] == "throughput" and isinstance(params(p).get("size"), (int, float))
           and stat_triplet((p.get("metrics") or {}).get(metric))]
    modes = {mode_of(p, key) for _, p in pts}
    if default not in modes or other not in modes:
        return
    show_pl = varies_placement([p for _, p in pts])
    # One colour per configuration (label without this mode), one line style per mode.
    configs: OrderedDict[str, dict[str, list]] = OrderedDict()
    ratios: OrderedDict[str, list] = OrderedDict()
    for s, p in pts:
        cfg = s.prefix + config_label(p, show_pl, omit=(key,))
        configs.setdefault(cfg, {}).setdefault(mode_of(p, key), []).append((params(p)["size"], stat_triplet(p["metrics"][metric])))
        r = p["metrics"].get(ratio)
        if mode_of(p, key) == other and isinstance(r, (int, float)) and not isinstance(r, bool):
            ratios.setdefault(cfg, []).append((params(p)["size"], float(r)))
    configs, note = cap_series(configs)
    panels = 2 if ratios else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 5), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colour_of = {cfg: colours[i % len(colours)] for i, cfg in enumerate(configs)}
    ax = axes[0][0]
    n = 0
    for cfg, by_mode in configs.items():
        for mode, style in ((default, "-"), (other, "--")):
            rows = sorted(by_mode.get(mode, []), key=lambda r: r[0])
            if rows:
                errorbar(ax, [r[0] for r in rows], [r[1] for r in rows], label=f"{cfg} {mode}",
                         color=colour_of[cfg], linestyle=style)
                n += 1
    size_axis(ax)
    ax.set_yscale("log")
    ax.set_xlabel("transfer size (bytes)")
    ax.set_ylabel(f"{unit} (median, 95% CI)")
    ax.set_title(f"{default} solid, {other} dashed")
    ax.grid(True, which="both", alpha=0.3)
    legend(ax, n)
    if ratios:
        ax = axes[0][1]
        for cfg, rows in ratios.items():
            if cfg not in colour_of:
                continue
            rows.sort(key=lambda r: r[0])
            ax.plot([r[0] for r in rows], [r[1] for r in rows], marker="o", markersize=4, label=cfg,
                    color=colour_of[cfg], linestyle="--")
        ax.axhline(1.0, color="black", linestyle="-", linewidth=1, label=f"{default} (= 1)")
        size_axis(ax)
        ax.set_yscale("log")
        ax.set_xlabel("transfer size (bytes)")
        ax.set_ylabel(ratio_label)
        ax.set_title(f"{ratio} (descriptors/s, same run)")
        ax.grid(True, which="both", alpha=0.3)
        legend(ax, len(ratios) + 1)
    finish(fig, [s.doc for s in sources], title, note)
    out.save(fig, name)


# ---------------------------------------------------------------------------------------------
# latency spectra

PCT_TICKS = [(1, "0%"), (10, "90%"), (100, "99%"), (1e3, "99.9%"), (1e4, "99.99%"), (1e5, "99.999%"), (1e6, "99.9999%")]


def spectrum(lat: dict) -> list[tuple[float, float]]:
    """(1/(1-percentile), value ns) pairs from the .hgrm text, else from the percentile keys."""
    hist = lat.get("histogram")
    pairs: list[tuple[float, float]] = []
    if isinstance(hist, str):
        for value, pct, _ in dr.parse_hgrm(hist):
            if 0 <= pct < 1:
                pairs.append((1.0 / (1.0 - pct), value))
    if len(pairs) < 2:
        pairs = [(1.0 / (1.0 - frac), float(lat[key])) for key, frac in dr.LATENCY_PERCENTILES
                 if isinstance(lat.get(key), (int, float))]
    return pairs


def plot_latency(sources: list[Source], out: Output) -> None:
    pts = [(s, p) for s in sources for p in s.points if p["workload"] != "cyclic"
           and isinstance((p.get("metrics") or {}).get("latencyNs"), dict) and spectrum(p["metrics"]["latencyNs"])]
    if not pts:
        out.skip("latency", "no points with latencyNs percentiles or a histogram")
        return
    workloads = list(OrderedDict.fromkeys(p["workload"] for _, p in pts))
    fig, axes = plt.subplots(len(workloads), 1, figsize=(10, 4.8 * len(workloads)), squeeze=False)
    notes = []
    show_pl = varies_placement([p for _, p in pts])
    for ax, workload in zip(axes[:, 0], workloads):
        series: OrderedDict[str, list] = OrderedDict()
        for s, p in pts:
            if p["workload"] != workload:
                continue
            size = params(p).get("size")
            label = s.prefix + config_label(p, show_pl) + (f" {dr.format_size(size)}B" if size is not None else "")
            series[label] = spectrum(p["metrics"]["latencyNs"])
        series, note = cap_series(series)
        if note and note not in notes:
            notes.append(note)
        xmax = 10.0
        for label, pairs in series.items():
            ax.plot([x for x, _ in pairs], [y for _, y in pairs], label=label, linewidth=1.4)
            xmax = max(xmax, max(x for x, _ in pairs))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ticks = [t for t in PCT_TICKS if t[0] <= xmax * 10]
        ax.set_xticks([t[0] for t in ticks])
        ax.set_xticklabels([t[1] for t in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("percentile (axis: 1/(1-percentile), log scale)")
        ax.set_ylabel("latency, submit to callback start (ns)")
        mode = "closed and open loop" if workload == "latency" else f"{workload} workload"
        ax.set_title(f"Latency by percentile ({mode})")
        ax.grid(True, which="both", alpha=0.3)
        legend(ax, len(series))
    finish(fig, [s.doc for s in sources], "Latency percentile spectrum (HdrHistogram)", "; ".join(notes))
    out.save(fig, "latency")


# ---------------------------------------------------------------------------------------------
# terminate

TERMINATE_METRICS = [
    ("terminateSyncNs", "terminateSync"),
    ("terminateAsyncNs", "terminateAsync alone"),
    ("synchronizeNs", "synchronize after terminateAsync"),
    ("seedRaceNs", "terminate from a callback, then synchronize"),
]


def plot_terminate(sources: list[Source], out: Output) -> None:
    pts = [(s, p) for s in sources for p in s.points
           if p["workload"] == "terminate" and isinstance(params(p).get("inFlight"), (int, float))]
    present = [m for m in TERMINATE_METRICS if any(stat_triplet((p.get("metrics") or {}).get(m[0])) for _, p in pts)]
    if not present:
        out.skip("terminate", "no terminate points with parameters.inFlight and terminate metrics")
        return
    cols = 2 if len(present) > 1 else 1
    rows = math.ceil(len(present) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 4.5 * rows), squeeze=False)
    show_pl = varies_placement([p for _, p in pts])
    for i, (metric, title) in enumerate(present):
        ax = axes[i // cols][i % cols]
        series: OrderedDict[str, list] = OrderedDict()
        for s, p in pts:
            t = stat_triplet(p["metrics"].get(metric))
            if t is None:
                continue
            label = s.prefix + p["backend"] + (" @" + placement_label(placement_of(p, "requested")) if show_pl else "")
            series.setdefault(label, []).append((params(p)["inFlight"], t))
        for label, rs in series.items():
            rs.sort(key=lambda r: r[0])
            errorbar(ax, [r[0] for r in rs], [r[1] for r in rs], label=label)
        ax.set_xscale("symlog", linthresh=1)
        ax.set_yscale("log")
        ax.set_xlabel("descriptors in flight when terminating (count)")
        ax.set_ylabel("time (ns, median, 95% CI)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        legend(ax, len(series))
    for j in range(len(present), rows * cols):
        axes[j // cols][j % cols].set_visible(False)
    finish(fig, [s.doc for s in sources], "Terminate cost against descriptors in flight")
    out.save(fig, "terminate")


# ---------------------------------------------------------------------------------------------
# cyclic streams


def cyclic_points(sources: list[Source]) -> list[tuple[Source, dict, dict]]:
    """(source, point, metrics.cyclic) for every cyclic point with cyclic metrics."""
    return [(s, p, c) for s in sources for p in s.points
            if p["workload"] == "cyclic" and (c := dr.cyclic_metrics(p)) is not None]


def varying(points: list[dict], key: str) -> bool:
    return len({dr.canonical(params(p).get(key)) for p in points}) > 1


def cyclic_label(prefix: str, point: dict, pts: list[dict], with_pace: bool = True) -> str:
    """backend, pace (memory speed for 0), the callback's work when any, and the period size,
    periods and placement only where they vary between the plotted points."""
    p = params(point)
    parts = [prefix + point["backend"]]
    if with_pace:
        parts.append(dr.format_pace(p.get("pace")))
    if p.get("periodWorkNs") or varying(pts, "periodWorkNs"):
        parts.append(f"work {p.get('periodWorkNs') or 0:g} ns")
    if varying(pts, "size") or varying(pts, "periods"):
        parts.append(f"{dr.format_size(p.get('size'))}B x {p.get('periods')}")
    if varies_placement(pts):
        parts.append("@" + placement_label(placement_of(point, "requested")))
    return " ".join(parts)


def cyclic_shape(pts: list[dict]) -> str:
    """The period size and periods of the plotted points, for a title."""
    shapes = list(OrderedDict.fromkeys((params(p).get("size"), params(p).get("periods")) for p in pts))
    return ", ".join(f"period {dr.format_size(size)}B, {periods} periods" for size, periods in shapes[:4]) + (
        ", ..." if len(shapes) > 4 else "")


def plot_period_latency(sources: list[Source], out: Output) -> None:
    """The distribution of period latency (period end, stamped by the engine, to the start of
    the callback that reported it) as a tail CDF: latency on a log x axis against the
    percentile (axis 1/(1-percentile)), one line per backend and pace. Drawn only when the
    files have cyclic points."""
    cyc = cyclic_points(sources)
    if not cyc:
        return
    pts = [(s, p, c["periodLatencyNs"]) for s, p, c in cyc if isinstance(c.get("periodLatencyNs"), dict)]
    pts = [(s, p, lat) for s, p, lat in pts if [pair for pair in spectrum(lat) if pair[1] > 0]]
    if not pts:
        out.skip("period-latency", "no cyclic point has periodLatencyNs percentiles or a histogram")
        return
    all_points = [p for _, p, _ in pts]
    series: OrderedDict[str, list] = OrderedDict()
    for s, p, lat in pts:
        count = lat.get("count")
        label = cyclic_label(s.prefix, p, all_points) + (f" (n={int(count)})" if isinstance(count, (int, float)) else "")
        # A zero latency (the callback started within the clock's resolution) has no place on a log axis.
        series[label] = [(x, y) for x, y in spectrum(lat) if y > 0]
    series, note = cap_series(series)
    fig, ax = plt.subplots(figsize=(10, 5.5))
    ymax = 10.0
    for label, pairs in series.items():
        ax.plot([y for _, y in pairs], [x for x, _ in pairs], label=label, linewidth=1.4, marker=".", markersize=3)
        ymax = max(ymax, max(x for x, _ in pairs))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = [t for t in PCT_TICKS if t[0] <= ymax * 10]
    ax.set_yticks([t[0] for t in ticks])
    ax.set_yticklabels([t[1] for t in ticks])
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("period latency: period end (engine's stamp) to the start of its callback (ns, log scale)")
    ax.set_ylabel("percentile (axis: 1/(1-percentile), log scale)")
    ax.set_title(f"Period latency by percentile ({cyclic_shape(all_points)})")
    ax.grid(True, which="both", alpha=0.3)
    legend(ax, len(series))
    finish(fig, [s.doc for s in sources], "Cyclic streams: period latency spectrum (HdrHistogram)", note)
    out.save(fig, "period-latency")


def plot_overruns(sources: list[Source], out: Output) -> None:
    """Overruns (periods the engine started overwriting before their callback ran) per 1000
    elapsed periods against the pace, one line per backend; memory speed (pace 0) at the
    right edge, labelled `memory`. Drawn only when the files have cyclic points."""
    cyc = cyclic_points(sources)
    if not cyc:
        return
    pts = [(s, p, c, dr.overruns_per_1000_periods(c)) for s, p, c in cyc]
    pts = [(s, p, c, rate) for s, p, c, rate in pts if rate is not None and isinstance(params(p).get("pace"), (int, float))]
    if not pts:
        out.skip("overruns", "no cyclic point has overruns, periods and a pace")
        return
    all_points = [p for _, p, _, _ in pts]
    paces = sorted({params(p)["pace"] for p in all_points if params(p)["pace"] > 0})
    memory_x = paces[-1] * 10.0 if paces else 1.0
    series: OrderedDict[str, list] = OrderedDict()
    for s, p, c, rate in pts:
        pace = params(p)["pace"]
        series.setdefault(cyclic_label(s.prefix, p, all_points, with_pace=False), []).append(
            (pace if pace > 0 else memory_x, rate, int(c.get("overruns") or 0), int(c.get("periods") or 0)))
    series, note = cap_series(series)
    fig, ax = plt.subplots(figsize=(9, 5.5))
    markers = "os^Dvp<>h*"
    for i, (label, rows) in enumerate(series.items()):
        rows.sort(key=lambda r: r[0])
        paced = [r for r in rows if r[0] != memory_x or not paces]
        memory = [r for r in rows if r not in paced]
        # Distinct open markers: series that agree (0 overruns at a slow pace) stay visible.
        style = {"marker": markers[i % len(markers)], "markersize": 8 - 1.5 * (i % 3), "markerfacecolor": "none",
                 "markeredgewidth": 1.5, "label": label}
        line = ax.plot([r[0] for r in paced], [r[1] for r in paced], **style)[0] if paced else None
        colour = line.get_color() if line else None
        if memory:
            # Memory speed is joined by a dotted line: it is no point on the pace axis.
            joined = paced[-1:] + memory
            ax.plot([r[0] for r in joined], [r[1] for r in joined], linestyle=":", color=colour,
                    **{**style, "label": None if line else label})
            colour = colour or ax.lines[-1].get_color()
        for x, y, overruns, periods in rows:
            ax.annotate(f"{overruns}/{periods}", (x, y), textcoords="offset points", xytext=(6, 2 + 7 * (i % 4)),
                        fontsize=6, color=colour)
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=1.0)
    top = max(r[1] for rows in series.values() for r in rows)
    ax.set_ylim(bottom=0, top=max(10.0, top * 4.0))
    ticks = paces + [memory_x]
    ax.set_xticks(ticks)
    ax.set_xticklabels([dr.format_pace(p) for p in paces] + ["memory"], fontsize=7, rotation=30 if len(ticks) > 4 else 0)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(min(ticks) / 3.0, memory_x * 3.0)
    if paces:
        # Memory speed is no point on the pace axis: a dotted line sets it apart.
        ax.axvline(math.sqrt(paces[-1] * memory_x), color="gray", linestyle=":", linewidth=1)
    ax.set_xlabel("pace (bytes/s, log scale; memory: pace 0, as fast as the engine copies)")
    ax.set_ylabel("overruns per 1000 periods (symlog)")
    ax.set_title(f"Overruns against pace ({cyclic_shape(all_points)}); labels: overruns/periods")
    ax.grid(True, which="both", alpha=0.3)
    legend(ax, len(series))
    finish(fig, [s.doc for s in sources], "Cyclic streams: periods overwritten before their callback ran", note)
    out.save(fig, "overruns")


# ---------------------------------------------------------------------------------------------
# NUMA heatmap


def numa_value(point: dict) -> float | None:
    m = point.get("metrics") or {}
    if point["workload"] == "throughput":
        t = stat_triplet(m.get("bytesPerSecond")) or stat_triplet(m.get("descriptorsPerSecond"))
        return t[0] if t else None
    lat = m.get("latencyNs")
    if isinstance(lat, dict) and isinstance(lat.get("p50"), (int, float)):
        return float(lat["p50"])
    return None


def plot_numa(sources: list[Source], out: Output) -> None:
    cells = [(s, p) for s in sources for p in s.points
             if p["workload"] in ("throughput", "latency") and placement_of(p) and numa_value(p) is not None]
    if not cells:
        out.skip("numa", "no throughput or latency points with a placement")
        return
    workload = "throughput" if any(p["workload"] == "throughput" for _, p in cells) else "latency"
    panels: OrderedDict[tuple, list] = OrderedDict()
    for s, p in cells:
        if p["workload"] == workload:
            panels.setdefault((s.prefix, p["backend"]), []).append((s, p))
    if workload == "throughput":
        unit = "bytes/s (median)" if any(stat_triplet(p["metrics"].get("bytesPerSecond")) for _, p in cells) else "descriptors/s (median)"
    else:
        unit = "p50 latency (ns)"
    n = len(panels)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 4.6 * rows), squeeze=False)
    for i, ((prefix, backend), pts) in enumerate(panels.items()):
        ax = axes[i // cols][i % cols]
        # Representative parameters: the largest size, then the most common other parameters.
        params_without_size = Counter(dr.canonical({k: v for k, v in params(p).items() if k != "size"}) for _, p in pts)
        common = params_without_size.most_common(1)[0][0]
        pts = [(s, p) for s, p in pts if dr.canonical({k: v for k, v in params(p).items() if k != "size"}) == common]
        sizes = [params(p).get("size") or 0 for _, p in pts]
        pick = max(sizes) if workload == "throughput" else min(sizes)
        pts = [(s, p) for s, p in pts if (params(p).get("size") or 0) == pick]
        row_labels: list[str] = []
        col_labels: list[str] = []
        values: dict[tuple[str, str], float] = {}
        for _, p in pts:
            pl = placement_of(p)
            r = f"submitter {pl.get('submitter', '?')}\nengine {pl.get('engine', '?')}"
            c = f"src {pl.get('src', '?')}\n→ dst {pl.get('dst', '?')}"
            if r not in row_labels:
                row_labels.append(r)
            if c not in col_labels:
                col_labels.append(c)
            values[(r, c)] = numa_value(p)
        grid = [[values.get((r, c), math.nan) for c in col_labels] for r in row_labels]
        im = ax.imshow(grid, cmap="viridis" if workload == "throughput" else "viridis_r", aspect="auto")
        ax.set_xticks(range(len(col_labels)))
        ax.set_xticklabels(col_labels, fontsize=7)
        ax.set_yticks(range(len(row_labels)))
        ax.set_yticklabels(row_labels, fontsize=7)
        for ri, r in enumerate(row_labels):
            for ci, c in enumerate(col_labels):
                v = values.get((r, c))
                if v is not None:
                    ax.text(ci, ri, f"{v:.3g}", ha="center", va="center", color="white", fontsize=8,
                            bbox={"facecolor": "black", "alpha": 0.35, "pad": 1, "edgecolor": "none"})
        sample = pts[0][1]
        size = dr.format_size(params(sample).get("size"))
        ax.set_title(f"{prefix}{config_label(sample, False)} {size}B", fontsize=9)
        ax.set_xlabel("memory nodes (source → destination)")
        ax.set_ylabel("thread placement (verified)")
        cb = fig.colorbar(im, ax=ax)
        cb.set_label(unit)
        # A heatmap has no lines; a legend entry names what the colour encodes.
        ax.plot([], [], linestyle="none", marker="s", color="tab:green", label=f"colour: {unit}")
        ax.legend(fontsize=6, loc="lower right")
    for j in range(n, rows * cols):
        axes[j // cols][j % cols].set_visible(False)
    finish(fig, [s.doc for s in sources], f"NUMA placement matrix ({workload})")
    out.save(fig, "numa")


# ---------------------------------------------------------------------------------------------
# counters


def numeric_counters(point: dict) -> dict[tuple[str, str], float]:
    result = {}
    for role, events in (point.get("counters") or {}).items():
        for event, entry in (events or {}).items():
            if isinstance(entry, dict) and isinstance(entry.get("perDescriptor"), (int, float)):
                result[(role, event)] = float(entry["perDescriptor"])
    return result


def unsupported_note(sources: list[Source]) -> str:
    reasons: OrderedDict[str, str] = OrderedDict()
    for s in sources:
        for event, status in (s.doc["context"].get("counters") or {}).items():
            if isinstance(status, str) and status != "ok":
                reasons.setdefault(event, status)
        for p in s.points:
            for events in (p.get("counters") or {}).values():
                for event, entry in (events or {}).items():
                    if isinstance(entry, dict) and isinstance(entry.get("unsupported"), str):
                        reasons.setdefault(event, "unsupported: " + entry["unsupported"])
    if not reasons:
        return ""
    return "not measured: " + "; ".join(f"{e} ({r})" for e, r in reasons.items())


def plot_counters(sources: list[Source], out: Output) -> None:
    # Cyclic points count per period, not per descriptor: not drawn here.
    pts = [(s, p) for s in sources for p in s.points if p["workload"] != "cyclic" and numeric_counters(p)]
    if not pts:
        note = unsupported_note(sources)
        out.skip("counters", "no counter values per descriptor" + (f" ({note})" if note else ""))
        return
    events = list(OrderedDict.fromkeys(e for _, p in pts for (_, e) in numeric_counters(p)))[:6]
    tp = [(s, p) for s, p in pts if p["workload"] == "throughput" and isinstance(params(p).get("size"), (int, float))]
    cols = min(2, len(events))
    rows = math.ceil(len(events) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7 * cols, 4.6 * rows), squeeze=False)
    if tp:
        # One configuration per backend (the one with the most sizes), lines per thread role.
        chosen: dict[tuple[str, str], str] = {}
        by_cfg = Counter((s.prefix, p["backend"], dr.canonical({k: v for k, v in params(p).items() if k != "size"})
                          + dr.canonical(placement_of(p, "requested"))) for s, p in tp)
        for (prefix, backend, cfg), _ in by_cfg.most_common():
            chosen.setdefault((prefix, backend), cfg)
        for i, event in enumerate(events):
            ax = axes[i // cols][i % cols]
            series: OrderedDict[str, list] = OrderedDict()
            for s, p in tp:
                cfg = dr.canonical({k: v for k, v in params(p).items() if k != "size"}) + dr.canonical(placement_of(p, "requested"))
                if chosen.get((s.prefix, p["backend"])) != cfg:
                    continue
                for (role, ev), value in numeric_counters(p).items():
                    if ev == event:
                        label = f"{s.prefix}{config_label(p, False)} {role}"
                        series.setdefault(label, []).append((params(p)["size"], value))
            for label, rs in series.items():
                rs.sort()
                ax.plot([r[0] for r in rs], [r[1] for r in rs], marker="o", markersize=4, label=label)
            size_axis(ax)
            if all(v > 0 for rs in series.values() for _, v in rs) and series:
                ax.set_yscale("log")
            ax.set_xlabel("transfer size (bytes), throughput workload")
            ax.set_ylabel(f"{event} per descriptor" + (" (ns)" if event in ("task-clock", "cpu-clock") else " (count)"))
            ax.set_title(event)
            ax.grid(True, which="both", alpha=0.3)
            legend(ax, len(series))
        title = "Counters per descriptor against transfer size, per thread"
    else:
        labels = list(OrderedDict.fromkeys(s.prefix + dr.describe_key(dr.point_key(p)) for s, p in pts))[:30]
        # The tick labels stand at 60 degrees under each row: give every row room for the
        # longest (0.055 in per 6-point character, times sin 60°), or tight_layout gives up on the margins.
        fig.set_size_inches(7 * cols, (4.6 + 0.048 * max((len(lb) for lb in labels), default=0)) * rows)
        roles = list(OrderedDict.fromkeys(r for _, p in pts for (r, _) in numeric_counters(p)))
        for i, event in enumerate(events):
            ax = axes[i // cols][i % cols]
            width = 0.8 / max(1, len(roles))
            for j, role in enumerate(roles):
                ys = []
                for label in labels:
                    v = math.nan
                    for s, p in pts:
                        if s.prefix + dr.describe_key(dr.point_key(p)) == label:
                            v = numeric_counters(p).get((role, event), math.nan)
                    ys.append(v)
                ax.bar([k + j * width for k in range(len(labels))], ys, width=width, label=role)
            ax.set_xticks([k + 0.4 - width / 2 for k in range(len(labels))])
            ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=6)
            ax.set_ylabel(f"{event} per descriptor" + (" (ns)" if event in ("task-clock", "cpu-clock") else " (count)"))
            ax.set_title(event)
            legend(ax, len(roles))
        title = "Counters per descriptor, per thread"
    for j in range(len(events), rows * cols):
        axes[j // cols][j % cols].set_visible(False)
    finish(fig, [s.doc for s in sources], title, unsupported_note(sources))
    out.save(fig, "counters")


# ---------------------------------------------------------------------------------------------
# history


def metric_value(point: dict, metric: str):
    """A triplet for `metric`; `latencyNs.p99` style names read a latency percentile;
    `cyclic.<field>` reads `metrics.cyclic` (`cyclic.stopFromCallbackNs`,
    `cyclic.periodLatencyNs.p50`, `cyclic.overruns`, ...)."""
    m = point.get("metrics") or {}
    if metric.startswith("cyclic."):
        c = dr.cyclic_metrics(point) or {}
        parts = metric.split(".")
        if len(parts) == 3 and parts[1] == "periodLatencyNs":
            lat = c.get("periodLatencyNs")
            if isinstance(lat, dict) and isinstance(lat.get(parts[2]), (int, float)):
                return (float(lat[parts[2]]), None, None)
            return None
        return stat_triplet(c.get(parts[1])) if len(parts) == 2 else None
    if metric.startswith("latencyNs."):
        lat = m.get("latencyNs")
        key = metric.split(".", 1)[1]
        if isinstance(lat, dict) and isinstance(lat.get(key), (int, float)):
            return (float(lat[key]), None, None)
        return None
    return stat_triplet(m.get(metric))


def find_results(root: str) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "tmp")
        for name in sorted(filenames):
            if name.endswith(".json") and not name.startswith("."):
                found.append(os.path.join(dirpath, name))
    return found


def load_history(root: str) -> tuple[list[tuple[str, dict]], list[tuple[str, str]]]:
    """The dmabench result documents under `root`, and the other JSON files kept there
    (anchor-compare documents, gbench exports, ...) as (path, what it is). A file that is
    not valid JSON, or a dmabench result that breaks the schema, is a one-line error (exit 2)."""
    docs, skipped = [], []
    for path in find_results(root):
        try:
            doc, what = dr.load_or_skip(path)
        except dr.ResultError as e:
            dr.fail(str(e))
        if doc is None:
            skipped.append((path, what))
        else:
            docs.append((path, doc))
    return docs, skipped


def parse_date(text: str) -> float | None:
    """Seconds since the epoch of an ISO 8601 date (`2026-11-25T14:00:00Z`); None when absent
    or unreadable. A date without a zone is taken as UTC."""
    if not text:
        return None
    try:
        d = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=datetime.timezone.utc)
    return d.timestamp()


def run_label(path: str, ctx: dict) -> tuple[str, str]:
    """(commit, x label) of one run: the commit from `context.commit` (else the directory
    name, which may be abbreviated, like `90c25c9`, or end in `-dirty`), shortened to 8
    characters, `-dirty` when the tree was dirty, and the day of `context.date`."""
    commit = str(ctx.get("commit") or os.path.basename(os.path.dirname(os.path.abspath(path))))
    dirty = ctx.get("dirty") is True or commit.endswith("-dirty")
    base = commit[: -len("-dirty")] if commit.endswith("-dirty") else commit
    short = base[:8] + ("-dirty" if dirty else "")
    return commit, short + "\n" + (str(ctx.get("date") or "")[:10] or "no date")


def plot_history(root: str, metric: str, workload: str, backends: list[str] | None, size: int | None,
                 out: Output) -> None:
    if not os.path.isdir(root):
        dr.fail(f"{root}: not a directory; --history expects the Results/ directory (Results/<host>/<commit>/<name>.json)")
    docs, skipped = load_history(root)
    # Said only once every file has been read, so that bad input stays a one-line error.
    for path, what in skipped:
        print(f"note: skipped {path}: {what}, not a dmabench result", file=sys.stderr)
    runs = []  # (sort key, x label, doc, path)
    for path, doc in docs:
        ctx = doc["context"]
        commit, label = run_label(path, ctx)
        # Oldest first by context.date (parsed, so that zones and fractions order right);
        # runs without a readable date come first; ties by commit, then path.
        when = parse_date(str(ctx.get("date") or ""))
        runs.append(((when is not None, when or 0.0, commit, path), label, doc, path))
    runs.sort(key=lambda r: r[0])
    selected = []  # (x, host, point, triplet)
    for x, (_, _, doc, _) in enumerate(runs):
        host = str(doc["context"].get("host") or "?")
        for p in doc["points"]:
            if p["workload"] != workload or (backends and p["backend"] not in backends):
                continue
            if size is not None and params(p).get("size") != size:
                continue
            t = metric_value(p, metric)
            if t is not None:
                selected.append((x, host, p, t))
    show_pl = varies_placement([p for _, _, p, _ in selected])
    show_host = len({h for _, h, _, _ in selected}) > 1
    series: OrderedDict[str, list] = OrderedDict()
    for x, host, p, t in selected:
        label = config_label(p, show_pl)
        if params(p).get("size") is not None:
            label += f" {dr.format_size(params(p)['size'])}B"
        if params(p).get("inFlight") is not None:
            label += f" inFlight={params(p)['inFlight']}"
        # Identity is the full key; the label stays short.
        key = (host, dr.point_key(p))
        series.setdefault(key, (f"{host}: {label}" if show_host else label, []))[1].append((x, t))
    series = OrderedDict((label, rows) for label, rows in series.values())
    if not series:
        ignored = f" ({len(skipped)} other JSON file(s) skipped)" if skipped else ""
        out.skip("history", f"no {workload} points with {metric} in {len(docs)} result file(s) under {root}{ignored}")
        return
    series, note = cap_series(series)
    fig, ax = plt.subplots(figsize=(max(8, 0.6 * len(runs) + 4), 5.5))
    for label, rs in series.items():
        errorbar(ax, [r[0] for r in rs], [r[1] for r in rs], label=label)
    ax.set_xticks(range(len(runs)))
    ax.set_xticklabels([r[1] for r in runs], fontsize=7, rotation=0 if len(runs) < 8 else 45)
    ax.set_xlabel("commit and date (oldest first)")
    if metric.endswith("PerSecond"):
        unit = "bytes/s" if metric.startswith("bytes") else "descriptors/s"
    elif metric.endswith("Ns") or "Ns" in metric:
        unit = "ns"
    else:
        unit = "value"
    ax.set_ylabel(f"{metric} ({unit})")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(f"{metric}, {workload} workload")
    legend(ax, len(series))
    finish(fig, [d for _, d in docs], f"{metric} across commits", note)
    out.save(fig, "history")


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Plot dmabench result files (schemaVersion 1).")
    ap.add_argument("results", nargs="*", metavar="RESULT.json", help="result files written by `dmabench run --format json`")
    ap.add_argument("--out", default="plots", help="output directory (default: plots)")
    ap.add_argument("--format", choices=("png", "svg"), default="png", help="image format (default: png)")
    ap.add_argument("--prefix", default=None,
                    help="file name prefix: PREFIX-throughput.png, ... (default: the stem of the result file when "
                         "there is one, e.g. run-1400-throughput.png next to run-1400.json; none otherwise)")
    ap.add_argument("--history", metavar="DIR", help="plot a metric across commits from a Results/ directory")
    ap.add_argument("--metric", default="descriptorsPerSecond",
                    help="metric for --history: a statistics metric (descriptorsPerSecond, bytesPerSecond, "
                         "submitNsPerDescriptor, terminateSyncNs, ...), latencyNs.p50/p90/p99/p999/p9999/max, "
                         "or with --workload cyclic cyclic.stopFromCallbackNs, cyclic.periodLatencyNs.p50, "
                         "cyclic.overruns, ...")
    ap.add_argument("--workload", default="throughput", choices=dr.WORKLOADS, help="workload for --history")
    ap.add_argument("--backend", help="comma-separated backends for --history (default: all)")
    ap.add_argument("--size", type=int, help="transfer size in bytes for --history (default: all)")
    args = ap.parse_args(argv)
    if not args.results and not args.history:
        ap.error("give at least one RESULT.json, or --history DIR")
    sources = [Source(path, dr.load_or_exit(path)) for path in args.results]
    if args.history and not os.path.isdir(args.history):
        dr.fail(f"{args.history}: not a directory; --history expects the Results/ directory "
                "(Results/<host>/<commit>/<name>.json)")
    prefix = args.prefix
    if prefix is None:
        prefix = os.path.splitext(os.path.basename(args.results[0]))[0] if len(args.results) == 1 else ""
    out = Output(args.out, args.format, prefix)
    if sources:
        assign_prefixes(sources)
        plot_throughput(sources, out)
        plot_speedup(sources, out)
        plot_modes(sources, out)
        plot_latency(sources, out)
        plot_terminate(sources, out)
        plot_numa(sources, out)
        plot_counters(sources, out)
        plot_period_latency(sources, out)
        plot_overruns(sources, out)
    if args.history:
        backends = [b for b in args.backend.split(",") if b] if args.backend else None
        plot_history(args.history, args.metric, args.workload, backends, args.size, out)
    if not out.written:
        print("no plots written: the result files hold no data for any plot")
    return 0


if __name__ == "__main__":
    sys.exit(main())
