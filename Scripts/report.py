#!/usr/bin/env python3
# dmabench — Scripts: a self-contained HTML report of one run
#
#   Scripts/report.py RESULT.json [--out PATH.html]
#
# Writes one HTML page (by default beside the result: run-1400.json -> run-1400.html) that
# opens offline: no external CSS, JS or fonts, every image inlined as a data: URI, and a
# Content-Security-Policy that lets the page load nothing else. It holds:
#   - a title naming the run (date, host, commit);
#   - the results table, one row per point (desc/s with the 95% interval, bytes/s, latency
#     p50/p99, terminateSync, the cyclic figures, errors), points flagged for interference
#     marked with their reasons;
#   - every plot of the run: the PNGs that Scripts/plot.py wrote beside the result
#     (<stem>-*.png); when there are none, plot.py is run into a temporary directory to draw
#     them, and the page says so when matplotlib is missing;
#   - the environment: CPU, cores, kernel, clock source, calibration, caches, machine
#     settings and thresholds;
#   - the counters per point and thread, and the events that could not be counted, once,
#     with their reasons;
#   - the requested and verified placement of every point;
#   - the skipped backends with their reasons, and a link to the result file.
#
# The page is written atomically (a temporary file, then a rename). Bad input (unreadable,
# malformed, truncated or wrong-version JSON) is a one-line error and exit status 2, as in the
# other scripts; an output that cannot be written is a one-line error and exit status 73
# (EX_CANTCREAT, as `dmabench` uses for an output it cannot create).
"""Write a self-contained HTML report of one dmabench result file (schemaVersion 1)."""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import math
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dmaresult as dr  # noqa: E402

#: Exit status when the report cannot be written (sysexits EX_CANTCREAT, as the dmabench CLI).
EXIT_CANNOT_CREATE = 73

PLOT_PY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plot.py")

#: The order plot.py draws its plots in; plots not named here follow, by name.
PLOT_ORDER = ("throughput", "speedup", "cache", "completion", "latency", "terminate", "numa", "counters",
              "period-latency", "overruns", "history")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: Thread roles in the order the counters are shown; others follow by name.
ROLE_ORDER = ("submitter", "engine", "engine-cpu", "executor")

#: Placement keys in the order they are shown; others follow by name.
PLACEMENT_ORDER = ("submitter", "engine", "executor", "src", "dst")

STYLE = """
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 2px 6px; vertical-align: top; text-align: left; }
th { background: #f3f3f3; }
td.params { min-width: 16em; }
td.cyclic { min-width: 20em; font-size: 0.92em; }
td.flagcell { min-width: 14em; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
tr.flagged td { background: #fff4e0; }
.flag { color: #b35c00; font-weight: bold; white-space: nowrap; }
.reasons { margin: 0; padding-left: 1.2em; font-size: 0.9em; color: #7a4a00; }
.bad { color: #b00020; font-weight: bold; }
.ok { color: #1a7f37; }
.dim { color: #777; }
.ci { color: #777; font-size: 0.85em; }
.note { background: #f6f6f6; border-left: 4px solid #999; padding: 0.4em 0.8em; }
.warn { background: #fff4e0; border-left: 4px solid #b35c00; padding: 0.4em 0.8em; }
.scroll { overflow-x: auto; max-width: 100%; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
details { margin: 0.3em 0; }
summary { cursor: pointer; }
code { font-size: 0.95em; }
"""

# The page's only script: a self-check hook for Scripts/tests/test_report.py. The page does not
# need it. Once the page has loaded it records on <body> how many images decoded
# (naturalWidth > 0) out of how many, and the script and resource errors it saw, so that a
# headless browser's --dump-dom shows them.
SELF_CHECK_SCRIPT = """
(function () {
  var scriptErrors = [], resourceErrors = [];
  window.addEventListener("error", function (e) {
    if (e instanceof ErrorEvent) { scriptErrors.push(String(e.message)); }
    else { resourceErrors.push(String(e.target && (e.target.alt || e.target.tagName))); }
  }, true);
  window.addEventListener("load", function () {
    var images = document.images, loaded = 0;
    for (var i = 0; i < images.length; i++) {
      if (images[i].complete && images[i].naturalWidth > 0) { loaded++; }
    }
    var d = document.body.dataset;
    d.imagesLoaded = String(loaded);
    d.imagesTotal = String(images.length);
    d.scriptErrors = String(scriptErrors.length);
    d.resourceErrors = String(resourceErrors.length);
    d.errorMessages = scriptErrors.concat(resourceErrors).join(" | ");
    d.selfcheck = "done";
  });
})();
"""


# ---------------------------------------------------------------------------------------------
# formatting


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def si(value, unit: str = "", digits: int = 4) -> str:
    """A number with a decimal SI prefix: `2.605 M desc/s`, `1.531 GB/s`."""
    if not _finite(value):
        return ""
    a = abs(value)
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= scale:
            return f"{value / scale:.{digits}g} {prefix}{unit}".strip()
    return f"{value:.{digits}g} {unit}".strip()


def ns(value) -> str:
    """A time in ns, in the unit that suits it: `542 ns`, `83.26 µs`, `1.772 ms`."""
    if not _finite(value):
        return ""
    a = abs(value)
    for scale, unit in ((1e9, "s"), (1e6, "ms"), (1e3, "µs")):
        if a >= scale:
            return f"{value / scale:.4g} {unit}"
    return f"{value:.4g} ns"


def percent(value) -> str:
    return f"{100 * value:.3g}%" if _finite(value) else ""


def plain(value) -> str:
    """A JSON scalar for a person: null as an em dash, booleans as yes/no, numbers as %g."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if _finite(value):
        return f"{value:g}" if value != int(value) or abs(value) >= 1e15 else str(int(value))
    if isinstance(value, list):
        return ", ".join(plain(v) for v in value)
    return str(value)


def stat_interval(stat) -> tuple[float | None, float | None, float | None]:
    """Median and 95% interval of a statistics object (computed from samples when absent)."""
    median = dr.stat_median(stat)
    if median is None or not isinstance(stat, dict):
        return median, None, None
    lo, hi = stat.get("ciLow"), stat.get("ciHigh")
    if not (_finite(lo) and _finite(hi)):
        samples = [s for s in stat.get("samples") or [] if _finite(s)]
        lo, hi = dr.median_ci(samples) if samples else (None, None)
    return median, lo, hi


def stat_cell(stat, fmt) -> str:
    """`2.605 M ±1.2%`, the exact interval in the tooltip."""
    median, lo, hi = stat_interval(stat)
    if not _finite(median):
        return ""
    text = esc(fmt(median))
    if _finite(lo) and _finite(hi):
        title = f"median {fmt(median)}, 95% CI [{fmt(lo)}, {fmt(hi)}]"
        if median:
            half = (hi - lo) / 2 / abs(median)
            text += f' <span class="ci">±{esc(percent(half))}</span>'
        return f'<span title="{esc(title)}">{text}</span>'
    return text


def params_text(point: dict) -> str:
    """The parameters that identify the point, as `describe_key` orders them (nulls and modes
    at their default left out): `size=4K batch=32 depth=256 channels=1 sge=4:1`."""
    p = dr.identity_parameters(point.get("parameters"))
    order = ["size", "batch", "depth", "channels", "rate", "inFlight", "offsets", "alignment", "completion", "cache",
             "sge", "periods", "pace", "periodWorkNs"]
    parts = []
    for name in order + sorted(k for k in p if k not in order):
        if name not in p:
            continue
        value = p[name]
        if name == "size":
            value = dr.format_size(value)
        elif name == "pace":
            value = dr.format_pace(value)
        else:
            value = plain(value)
        parts.append(f"{name}={value}")
    return " ".join(parts)


def point_text(point: dict) -> str:
    """`ring throughput size=64 batch=32 depth=256 channels=1`."""
    return f"{point['backend']} {point['workload']} {params_text(point)}".rstrip()


def ordered_keys(d: dict, order: tuple[str, ...]) -> list[str]:
    return [k for k in order if k in d] + sorted(k for k in d if k not in order)


# ---------------------------------------------------------------------------------------------
# plots


def plot_name(stem: str, filename: str) -> str:
    return filename[len(stem) + 1:-len(".png")]


def plot_sort_key(name: str) -> tuple[int, str]:
    return (PLOT_ORDER.index(name) if name in PLOT_ORDER else len(PLOT_ORDER), name)


def plots_beside(result_path: str) -> list[str]:
    """The PNGs plot.py wrote beside the result: `<stem>-*.png` in its directory, in plot.py's
    order. A PNG that belongs to another result whose stem starts with this one's (`run.json`
    beside `run-2.json` and its `run-2-throughput.png`) is left out."""
    directory = os.path.dirname(os.path.abspath(result_path))
    base = os.path.basename(result_path)
    stem = os.path.splitext(base)[0]
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    others = [os.path.splitext(n)[0] for n in names
              if n.endswith(".json") and n != base and n.startswith(stem + "-")]
    found = [n for n in names
             if n.startswith(stem + "-") and n.endswith(".png") and not any(n.startswith(o + "-") for o in others)]
    found.sort(key=lambda n: plot_sort_key(plot_name(stem, n)))
    return [os.path.join(directory, n) for n in found]


def matplotlib_missing() -> str | None:
    """None when matplotlib imports; else why not."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        return str(e) or "ImportError"
    return None


def draw_plots(result_path: str, out_dir: str) -> tuple[list[str], list[str]]:
    """Run plot.py on the result into `out_dir`; return the PNGs and notes for the page."""
    stem = os.path.splitext(os.path.basename(result_path))[0]
    why = matplotlib_missing()
    if why is not None:
        return [], [f"No plots: there is no {stem}-*.png beside the result, and matplotlib is not installed "
                    f"({why}), so Scripts/plot.py could not draw them. Install it with "
                    f"pip install -r Scripts/requirements.txt, then run this script again."]
    env = dict(os.environ)
    env["MPLBACKEND"] = "Agg"
    try:
        proc = subprocess.run([sys.executable, PLOT_PY, result_path, "--out", out_dir, "--prefix", stem],
                              capture_output=True, text=True, env=env, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        return [], [f"No plots: Scripts/plot.py could not be run: {dr.one_line(e)}"]
    notes = [f"There was no {stem}-*.png beside the result: Scripts/plot.py drew these plots for this page."]
    notes += [line for line in proc.stdout.splitlines() if line.startswith("skipped ")]
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        notes.append(f"Scripts/plot.py failed (exit status {proc.returncode}): {lines[-1] if lines else 'no message'}")
    pngs = sorted((n for n in os.listdir(out_dir) if n.startswith(stem + "-") and n.endswith(".png")),
                  key=lambda n: plot_sort_key(plot_name(stem, n)))
    if not pngs and proc.returncode == 0:
        notes.append("Scripts/plot.py drew no plot: the result holds no data for any.")
    return [os.path.join(out_dir, n) for n in pngs], notes


def inline_images(paths: list[str], stem: str) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(name, file name, data URI) per readable PNG; a note for each file left out."""
    images, notes = [], []
    for path in paths:
        name = plot_name(stem, os.path.basename(path))
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            notes.append(f"{os.path.basename(path)}: cannot read: {e.strerror}; left out")
            continue
        if not data.startswith(PNG_SIGNATURE):
            notes.append(f"{os.path.basename(path)}: not a PNG file; left out")
            continue
        images.append((name, os.path.basename(path), "data:image/png;base64," + base64.b64encode(data).decode("ascii")))
    return images, notes


# ---------------------------------------------------------------------------------------------
# sections


def title_of(doc: dict) -> str:
    ctx = doc["context"]
    commit = str(ctx.get("commit") or "?") + ("-dirty" if ctx.get("dirty") else "")
    title = f"dmabench run {ctx.get('date') or '?'} — {ctx.get('host') or '?'} @ {commit}"
    shard = ctx.get("shard")
    if isinstance(shard, dict) and _finite(shard.get("count")) and shard["count"] > 1:
        title += f" (shard {int(shard['index'])}/{int(shard['count'])})"
    return title


def table(headers: list[str], rows: list[str], cls: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>"


def cyclic_cell(cyc: dict | None) -> str:
    """The cyclic figures of a cyclic point, one per line (HTML)."""
    if not cyc:
        return ""
    parts: list[str] = []
    lat = cyc.get("periodLatencyNs")
    if isinstance(lat, dict):
        parts.append(esc(f"period latency p50 {ns(lat.get('p50'))}, p99 {ns(lat.get('p99'))}, max {ns(lat.get('max'))}"))
    overruns, periods = cyc.get("overruns"), cyc.get("periods")
    if _finite(overruns) and _finite(periods):
        text = f"overruns {plain(overruns)}/{plain(periods)} periods"
        rate = dr.overruns_per_1000_periods(cyc)
        if rate:
            text += f" ({rate:.3g} per 1000)"
        parts.append(esc(text))
    if _finite(cyc.get("callbacks")):
        text = f"callbacks {plain(cyc['callbacks'])}"
        if _finite(cyc.get("coalescing")):
            text += f", coalescing {cyc['coalescing']:.3g}"
        parts.append(esc(text))
    achieved = dr.stat_median(cyc.get("achievedBytesPerSecond"))
    if _finite(achieved):
        text = f"achieved {si(achieved, 'B/s')}"
        if _finite(cyc.get("paceRatio")):
            text += f" ({cyc['paceRatio']:.3g}× pace)"
        parts.append(esc(text))
    for key, label in (("stopFromCallbackNs", "stop from callback"), ("stopFromClientNs", "stop from client"),
                       ("pauseNs", "pause"), ("resumeToNextByteNs", "resume to next byte")):
        cell = stat_cell(cyc.get(key), ns)
        if cell:
            parts.append(f"{esc(label)} {cell}")
    if _finite(cyc.get("mismatchedBytes")) and cyc["mismatchedBytes"]:
        parts.append(f'<span class="bad">mismatched bytes {esc(plain(cyc["mismatchedBytes"]))}</span>')
    return "<br>".join(parts)


def errors_cell(metrics: dict) -> str:
    parts = []
    errors = metrics.get("errors")
    if _finite(errors):
        parts.append(f'<span class="bad">{esc(plain(errors))}</span>' if errors else esc(plain(errors)))
    ver = metrics.get("verification")
    if isinstance(ver, dict):
        bad = [(k, ver.get(k)) for k in dr.VERIFICATION_MISMATCHES if _finite(ver.get(k)) and ver.get(k)]
        for k, v in bad:
            parts.append(f'<span class="bad">{esc(k)} {esc(plain(v))}</span>')
    return "<br>".join(parts)


def flag_cell(point: dict) -> str:
    if not dr.is_flagged(point):
        return ""
    env = point.get("environment") or {}
    reasons = dr.flag_reasons(point)
    mark = "⚑ flagged"
    if _finite(env.get("flaggedRounds")) and _finite(env.get("rounds")):
        mark += f" ({plain(env['flaggedRounds'])} of {plain(env['rounds'])} rounds)"
    items = "".join(f"<li>{esc(r)}</li>" for r in reasons)
    title = "; ".join(reasons) or "flagged for interference"
    return (f'<span class="flag" title="{esc(title)}">{esc(mark)}</span>'
            + (f'<ul class="reasons">{items}</ul>' if items else ""))


def results_section(doc: dict) -> str:
    rows = []
    for i, point in enumerate(doc["points"]):
        m = point.get("metrics") or {}
        lat = m.get("latencyNs") if isinstance(m.get("latencyNs"), dict) else {}
        cells = [
            f'<td class="num">{i}</td>',
            f"<td>{esc(point['backend'])}</td>",
            f"<td>{esc(point['workload'])}</td>",
            f'<td class="params">{esc(params_text(point))}</td>',
            f'<td class="num">{stat_cell(m.get("descriptorsPerSecond"), si)}</td>',
            f'<td class="num">{stat_cell(m.get("bytesPerSecond"), lambda v: si(v, "B/s"))}</td>',
            f'<td class="num">{esc(ns(lat.get("p50")))}</td>',
            f'<td class="num">{esc(ns(lat.get("p99")))}</td>',
            f'<td class="num">{stat_cell(m.get("terminateSyncNs"), ns)}</td>',
            f'<td class="cyclic">{cyclic_cell(dr.cyclic_metrics(point))}</td>',
            f'<td class="num">{errors_cell(m)}</td>',
            f'<td class="flagcell">{flag_cell(point)}</td>',
        ]
        cls = ' class="flagged"' if dr.is_flagged(point) else ""
        rows.append(f'<tr id="p{i}"{cls}>' + "".join(cells) + "</tr>")
    flagged = dr.flagged_count(doc)
    intro = (f"<p>{len(doc['points'])} points; {flagged} flagged for interference "
             f"(<span class=\"flag\">⚑</span>, with the reasons; thresholds under "
             f"<a href=\"#environment\">environment</a>). Medians; ± is half the 95% confidence interval "
             f"of the median, as a fraction of it (hover for the interval).</p>")
    if not dr.has_environment(doc):
        intro = (f"<p>{len(doc['points'])} points. This file records no environment per point, so no point "
                 f"can be flagged for interference. Medians; ± is half the 95% confidence interval of the "
                 f"median, as a fraction of it (hover for the interval).</p>")
    headers = ["#", "backend", "workload", "parameters", "desc/s", "bytes/s", "latency p50", "latency p99",
               "terminateSync", "cyclic", "errors", "interference"]
    body = ('<div class="scroll">' + table(headers, rows, "results") + "</div>") if rows else '<p class="note">The result holds no points.</p>'
    return '<h2 id="results">Results</h2>\n' + intro + "\n" + body


def plots_section(images: list[tuple[str, str, str]], notes: list[str], beside: bool) -> str:
    """The plots, inline. `beside`: they are files next to the result (named in the captions)."""
    out = ['<h2 id="plots">Plots</h2>']
    for note in notes:
        out.append(f'<p class="note">{esc(note)}</p>')
    for name, filename, uri in images:
        caption = f"{name} ({filename})" if beside else name
        out.append(f'<figure id="plot-{esc(name)}"><img src="{uri}" alt="{esc(name)} plot">'
                   f"<figcaption>{esc(caption)}</figcaption></figure>")
    if not images and not notes:
        out.append('<p class="note">No plots.</p>')
    return "\n".join(out)


def kv_table(rows: list[tuple[str, str]]) -> str:
    """A table of (label, HTML value) rows, labels as row headers."""
    return ('<table class="kv"><tbody>\n' + "\n".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
            + "\n</tbody></table>")


def environment_section(doc: dict) -> str:
    ctx = doc["context"]
    out = ['<h2 id="environment">Environment</h2>']
    rows = [
        ("CPU", esc(plain(ctx.get("cpu")))),
        ("cores", esc(plain(ctx.get("cores")))),
        ("kernel", esc(plain(ctx.get("kernel")))),
        ("clock source", esc(plain(ctx.get("clock"))) if ctx.get("clock") is not None
         else '<span class="dim">not recorded (a file written before context.clock existed)</span>'),
        ("host", esc(plain(ctx.get("host")))),
        ("date", esc(plain(ctx.get("date")))),
        ("commit", esc(plain(ctx.get("commit"))) + (' <span class="bad">dirty</span>' if ctx.get("dirty") else "")),
        ("tool version", esc(plain(ctx.get("toolVersion")))),
        ("command line", "<code>" + esc(" ".join(str(a) for a in ctx.get("commandLine") or [])) + "</code>"),
        ("governor", esc(plain(ctx.get("governor")))),
        ("NUMA nodes", esc(plain(ctx.get("numaNodes")))),
    ]
    shard = ctx.get("shard")
    if isinstance(shard, dict):
        rows.append(("shard", esc(f"{plain(shard.get('index'))} of {plain(shard.get('count'))}")))
    # Engines loaded from C plugins (docs/plugin-abi.md): which file, which ABI, which build.
    for plugin in ctx.get("plugins") or []:
        if isinstance(plugin, dict):
            rows.append((f"plugin {esc(plain(plugin.get('backend')))}",
                         f"<code>{esc(plain(plugin.get('path')))}</code>, ABI {esc(plain(plugin.get('abiVersion')))}, "
                         f"SHA-256 <code>{esc(plain(plugin.get('sha256')))}</code>"))
    if ctx.get("complete") is not None:
        text = esc(plain(ctx.get("complete")))
        if ctx.get("complete") is False:
            text = f'<span class="bad">no</span>: {esc(plain(ctx.get("incompleteReason")))}'
        rows.append(("complete", text))
    out.append(kv_table(rows))

    out.append("<h3>Calibration</h3>")
    cal = ctx.get("calibration")
    if isinstance(cal, dict):
        bw = cal.get("memcpyBytesPerSecond")
        if isinstance(bw, dict) and bw:
            def size_key(k):
                try:
                    return (0, int(k))
                except ValueError:
                    return (1, 0)
            bw_rows = []
            for size in sorted(bw, key=lambda k: (size_key(k), k)):
                label = dr.format_size(int(size)) + "B" if size_key(size)[0] == 0 else size
                bw_rows.append(f'<tr><td class="num">{esc(label)}</td><td class="num">{esc(si(bw[size], "B/s"))}</td></tr>')
            out.append("<p>Single-core memcpy bandwidth per transfer size:</p>")
            out.append(table(["size", "memcpy"], bw_rows))
        rt = cal.get("roundTripNs")
        out.append(f"<p>Core-to-core cache-line round trip: {esc(ns(rt)) if _finite(rt) else '—'}</p>")
    else:
        out.append('<p class="dim">Not recorded.</p>')

    out.append("<h3>Caches</h3>")
    cache = ctx.get("cache")
    if isinstance(cache, dict):
        out.append(kv_table([
            ("cold-cache method", esc(plain(cache.get("method")))),
            ("flush instruction", esc(plain(cache.get("flushInstruction")))),
            ("line size", esc(f"{plain(cache.get('lineSize'))} B" if cache.get("lineSize") is not None else "—")),
        ]))
        levels = [lv for lv in cache.get("levels") or [] if isinstance(lv, dict)]
        if levels:
            out.append(table(["level", "type", "size", "shared with CPUs"], [
                f'<tr><td class="num">L{esc(plain(lv.get("level")))}</td><td>{esc(plain(lv.get("type")))}</td>'
                f'<td class="num">{esc(dr.format_size(lv.get("sizeBytes")) + "B" if _finite(lv.get("sizeBytes")) else "—")}</td>'
                f'<td>{esc(plain(lv.get("sharedWith")))}</td></tr>' for lv in levels]))
    else:
        out.append('<p class="dim">Not recorded (a file written before context.cache existed).</p>')

    out.append("<h3>Machine settings</h3>")
    machine = [s for s in ctx.get("machine") or [] if isinstance(s, dict)]
    if machine:
        rows = []
        for s in machine:
            ok = s.get("ok")
            ok_cell = ('<span class="ok">✓</span>' if ok is True else '<span class="bad">✗</span>' if ok is False
                       else '<span class="dim">—</span>')
            value = (esc(s["value"]) if s["value"] else '<span class="dim">(empty)</span>') if s.get("value") is not None else (
                f'<span class="dim">unavailable: {esc(s.get("unavailable"))}</span>' if s.get("unavailable") else "—")
            rows.append(f"<tr><td>{esc(s.get('name'))}</td><td>{value}</td><td>{ok_cell}</td>"
                        f"<td>{esc(plain(s.get('recommended')))}</td>"
                        f"<td>{'<code>' + esc(s['fix']) + '</code>' if ok is False and s.get('fix') else ''}</td></tr>")
        out.append(table(["setting", "value", "ok", "recommended", "fix"], rows))
    else:
        out.append('<p class="dim">Not recorded (a file written before context.machine existed).</p>')

    out.append("<h3>Thresholds</h3>")
    thresholds = ctx.get("thresholds")
    if isinstance(thresholds, dict) and thresholds:
        rows = []
        for name in sorted(thresholds):
            v = thresholds[name]
            text = f"{v:g}×" if name == "roundTripDrift" else percent(v)
            rows.append(f'<tr><td>{esc(name)}</td><td class="num">{esc(text)}</td></tr>')
        out.append("<p>A point is flagged for interference when a signal passes its limit:</p>")
        out.append(table(["signal", "limit"], rows))
    else:
        out.append('<p class="dim">Not recorded (a file written before context.thresholds existed).</p>')
    return "\n".join(out)


def unsupported_events(doc: dict) -> list[tuple[str, list[str], str]]:
    """(reason, events, where) for every event that could not be counted, each event once:
    first from `context.counters` (values other than "ok"), then events that only points report
    as unsupported."""
    by_reason: dict[tuple[str, str], list[str]] = {}
    seen: set[str] = set()
    for event, status in (doc["context"].get("counters") or {}).items():
        if status == "ok":
            continue
        reason = status[len("unsupported:"):].strip() if status.startswith("unsupported:") else status
        by_reason.setdefault((reason, "run"), []).append(event)
        seen.add(event)
    for point in doc["points"]:
        for events in (point.get("counters") or {}).values():
            for event, entry in (events or {}).items():
                if isinstance(entry, dict) and "unsupported" in entry and event not in seen:
                    by_reason.setdefault((entry["unsupported"], "points"), []).append(event)
                    seen.add(event)
    return [(reason, sorted(events), where) for (reason, where), events in by_reason.items()]


def counters_section(doc: dict) -> str:
    out = ['<h2 id="counters">Counters</h2>']
    unsupported = unsupported_events(doc)
    out.append("<h3>Events that could not be counted</h3>")
    if unsupported:
        rows = [f"<tr><td>{esc(', '.join(events))}</td><td>{esc(reason)}"
                + (' <span class="dim">(reported by points only)</span>' if where == "points" else "")
                + "</td></tr>" for reason, events, where in unsupported]
        out.append(table(["events", "reason"], rows))
        out.append('<p class="dim">These are left out of the tables below.</p>')
    else:
        out.append("<p>None: every requested event was counted.</p>")
    out.append("<h3>Per point and thread</h3>")
    any_counters = False
    for i, point in enumerate(doc["points"]):
        counters = point.get("counters")
        if not isinstance(counters, dict):
            continue
        rows = []
        for role in ordered_keys(counters, ROLE_ORDER):
            events = counters.get(role) or {}
            for event in sorted(events):
                entry = events[event]
                if not isinstance(entry, dict) or "unsupported" in entry:
                    continue
                scaling = entry.get("scaling")
                scaling_text = f"{scaling:.3g}" if _finite(scaling) else ""
                if _finite(scaling) and scaling > 1:
                    scaling_text = f'<span class="bad" title="multiplexed">{esc(scaling_text)}</span>'
                rows.append(f"<tr><td>{esc(role)}</td><td>{esc(event)}</td>"
                            f'<td class="num">{esc(si(entry.get("perDescriptor")))}</td>'
                            f'<td class="num">{esc(si(entry.get("value")))}</td>'
                            f'<td class="num">{scaling_text}</td></tr>')
        any_counters = True
        body = (table(["thread", "event", "per descriptor", "value", "scaling"], rows) if rows
                else '<p class="dim">Every event unsupported (listed above).</p>')
        out.append(f'<details id="counters-p{i}"><summary><a href="#p{i}">#{i}</a> '
                   f"{esc(point_text(point))}</summary>\n{body}\n</details>")
    if not any_counters:
        out.append('<p class="dim">No point recorded counters.</p>')
    return "\n".join(out)


def placement_text(pl, verified: bool) -> str:
    if not isinstance(pl, dict):
        return '<span class="dim">—</span>'
    parts = []
    for key in ordered_keys(pl, PLACEMENT_ORDER):
        value = pl[key]
        if value is None:
            if not verified:
                continue  # not placed
            value = "several nodes" if key in ("src", "dst") else "—"
        parts.append(f"{key}={plain(value)}")
    return esc(" ".join(parts)) if parts else '<span class="dim">not placed</span>'


def placement_section(doc: dict) -> str:
    out = ['<h2 id="placement">Placement</h2>',
           "<p>The placement asked for, and the one verified after first touch (threads by their CPU or node, "
           "buffers page by page with <code>move_pages(2)</code>; src and dst are NUMA nodes).</p>"]
    rows = []
    for i, point in enumerate(doc["points"]):
        pl = point.get("placement")
        if not isinstance(pl, dict):
            continue
        rows.append(f'<tr><td class="num"><a href="#p{i}">{i}</a></td><td>{esc(point_text(point))}</td>'
                    f"<td>{placement_text(pl.get('requested'), False)}</td>"
                    f"<td>{placement_text(pl.get('verified'), True)}</td></tr>")
    if rows:
        out.append(table(["#", "point", "requested", "verified"], rows))
    else:
        out.append('<p class="dim">No point records its placement.</p>')
    return "\n".join(out)


def skipped_section(doc: dict) -> str:
    out = ['<h2 id="skipped">Skipped backends</h2>']
    skipped = doc["context"].get("skipped") or []
    rows = []
    for entry in skipped:
        if isinstance(entry, dict):
            rows.append(f"<tr><td>{esc(plain(entry.get('backend')))}</td><td>{esc(plain(entry.get('reason')))}</td></tr>")
        else:
            rows.append(f"<tr><td colspan=\"2\">{esc(plain(entry))}</td></tr>")
    out.append(table(["backend", "reason"], rows) if rows else "<p>None.</p>")
    return "\n".join(out)


def csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def render(doc: dict, result_path: str, out_path: str, images: list[tuple[str, str, str]], notes: list[str],
           beside: bool = True) -> str:
    title = title_of(doc)
    rel = os.path.relpath(os.path.abspath(result_path), os.path.dirname(os.path.abspath(out_path)))
    href = urllib.parse.quote(rel.replace(os.sep, "/"))
    ctx = doc["context"]
    # The page may load nothing but its own inline style and script and data: images, so that it
    # never fetches anything (an accidental external reference fails in the browser, loudly).
    csp = (f"default-src 'none'; img-src data:; style-src {csp_hash(STYLE)}; script-src {csp_hash(SELF_CHECK_SCRIPT)}; "
           "base-uri 'none'; form-action 'none'")
    head = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="dmabench Scripts/report.py">',
        f"<title>{esc(title)}</title>",
        f"<style>{STYLE}</style>",
        f"<script>{SELF_CHECK_SCRIPT}</script>",
        "</head>",
        "<body>",
        f"<h1>{esc(title)}</h1>",
        f'<p>Result file: <a href="{esc(href)}">{esc(os.path.basename(result_path))}</a> '
        f"(schemaVersion {esc(doc['schemaVersion'])}); <code>{esc(' '.join(str(a) for a in ctx.get('commandLine') or []))}</code></p>",
    ]
    if ctx.get("complete") is False:
        head.append(f'<p class="warn">This run is incomplete: {esc(plain(ctx.get("incompleteReason")))}. '
                    "The points present are valid.</p>")
    if ctx.get("dirty"):
        head.append('<p class="warn">The tree had uncommitted changes (dirty): these results cannot be reproduced '
                    "from the commit alone.</p>")
    head.append('<nav><a href="#results">Results</a><a href="#plots">Plots</a><a href="#environment">Environment</a>'
                '<a href="#counters">Counters</a><a href="#placement">Placement</a><a href="#skipped">Skipped</a></nav>')
    body = [results_section(doc), plots_section(images, notes, beside), environment_section(doc), counters_section(doc),
            placement_section(doc), skipped_section(doc)]
    foot = [f'<p class="dim">Written by Scripts/report.py from {esc(os.path.basename(result_path))}.</p>',
            "</body>", "</html>", ""]
    return "\n".join(head + body + foot)


# ---------------------------------------------------------------------------------------------


def default_out(result_path: str) -> str:
    return os.path.splitext(result_path)[0] + ".html"


def build(result_path: str, out_path: str) -> str:
    """Load the result, gather its plots and write the page; return the page."""
    doc = dr.load_or_exit(result_path)
    stem = os.path.splitext(os.path.basename(result_path))[0]
    pngs = plots_beside(result_path)
    beside = bool(pngs)
    notes: list[str] = []
    tmp = None
    try:
        if not beside:
            try:
                tmp = tempfile.mkdtemp(prefix="dmabench-report-")
            except OSError as e:
                notes = [f"No plots: no temporary directory to draw them in: {e.strerror or e}"]
            else:
                pngs, notes = draw_plots(result_path, tmp)
        images, image_notes = inline_images(pngs, stem)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    page = render(doc, result_path, out_path, images, notes + image_notes, beside)
    try:
        dr.atomic_write_text(out_path, page)
    except OSError as e:
        print(f"error: {dr.one_line(f'{out_path}: cannot write: {e.strerror or e}')}", file=sys.stderr)
        sys.exit(EXIT_CANNOT_CREATE)
    return page


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write a self-contained HTML report of one dmabench result file.")
    ap.add_argument("result", metavar="RESULT.json", help="a result file written by `dmabench run --format json`")
    ap.add_argument("--out", metavar="PATH.html",
                    help="where to write the page (default: beside the result, run-1400.json -> run-1400.html)")
    args = ap.parse_args(argv)
    out = args.out or default_out(args.result)
    if os.path.abspath(out) == os.path.abspath(args.result):
        dr.fail(f"{out}: the report would overwrite the result file; give --out PATH.html")
    build(args.result, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
