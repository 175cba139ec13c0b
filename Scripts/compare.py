#!/usr/bin/env python3
# dmabench — Scripts: compare two result files
#
#   Scripts/compare.py BASE.json HEAD.json [--threshold 0.25] [--alpha 0.01]
#                      [--report out.md] [--plot out.png] [--exclude-flagged]
#
# Points are matched by backend, workload, parameters and requested placement. For every
# metric with samples on both sides: a one-sided Mann–Whitney U test (scipy) in the "worse"
# direction (higher is better for */s metrics, lower is better for *Ns metrics), the ratio of
# medians head/base with a 95% bootstrap confidence interval (seeded, so reports are
# reproducible). Deterministic metrics (errors, the verification mismatch counts, mallocs*,
# syscalls*) regress on any increase.
#
# Cyclic points (workload "cyclic") compare by `metrics.cyclic`: the headline is
# cyclic.stopFromCallbackNs (STOP from a period callback, then synchronize; one sample per
# repetition), which gates like any timing, with cyclic.periodLatencyNs.p50 (gated when merged
# rounds give it samples, like latencyNs); cyclic.mismatchedBytes regresses on any increase;
# the other cyclic timings and percentiles are reported without gating. Overruns are compared
# per 1000 elapsed periods and an increase is flagged ("more overruns"), not gated: they depend
# on the machine's scheduling as much as on the code. Scatter-gather points (parameters.sge)
# are throughput or latency points and compare like them.
#
# Points whose environment was flagged (`environment.interference`: background load, steal,
# spread or a drifting round trip during the point; in a merged file, any flagged round) are
# listed per side with their reasons. With --exclude-flagged they are left out of the
# comparison, as if missing on the side where they were flagged, so that no flagged point
# can give a regression.
#
# Exit status: 0 no significant regression; 1 at least one regression (worse than the
# threshold AND p < alpha, or a deterministic metric increased); 2 bad input, or nothing
# left to compare (--exclude-flagged included).
"""Compare a base and a head dmabench result file and report regressions."""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dmaresult as dr  # noqa: E402

EXIT_OK = 0
EXIT_REGRESSION = 1

BOOTSTRAP_RESAMPLES = 4000
BOOTSTRAP_SEED = 20261125

#: How many flagged points the report lists per side, and how many reasons per point.
FLAGGED_LISTED = 20
FLAGGED_REASONS_LISTED = 3

#: latencyNs percentiles that gate (when per-round samples exist); the others are reported only.
LATENCY_GATED = ("p50", "p90", "p99")
LATENCY_INFO = ("p999", "p9999", "max")


def direction(metric: str) -> str | None:
    """'higher' or 'lower' is better, or None when the name does not say."""
    leaf = metric.split(".")[-1]
    if metric.endswith("PerSecond"):
        return "higher"
    if "Ns" in metric or metric.startswith("latencyNs"):
        return "lower"
    if leaf.startswith("vsMemcpy") or leaf in dr.RATIO_METRICS:
        return "higher"
    return None


#: verification.* metrics that compare.py reads: bytes found wrong, by kind.
VERIFICATION_GATED = tuple(f"verification.{k}" for k in dr.VERIFICATION_MISMATCHES)

#: Cyclic points: the statistics of `metrics.cyclic` that gate (the headline: STOP from a
#: period callback + synchronize), and those only reported.
CYCLIC_GATED_STATS = ("stopFromCallbackNs",)
CYCLIC_INFO_STATS = ("stopFromClientNs", "pauseNs", "resumeToNextByteNs", "achievedBytesPerSecond")
#: periodLatencyNs percentiles that gate (when merged rounds give samples); the others are reported.
CYCLIC_LATENCY_GATED = ("p50",)
#: Destination bytes wrong after a cyclic stream: a correctness failure, like verification.
CYCLIC_MISMATCHES = "cyclic.mismatchedBytes"
#: Overruns per 1000 elapsed periods: an increase is flagged, never gated.
CYCLIC_OVERRUNS = "cyclic.overrunsPer1000Periods"


def is_deterministic(metric: str) -> bool:
    # A mismatched or overwritten byte is a correctness failure, not noise: like errors, any
    # increase (from 0 in particular) regresses, whatever the sample count.
    return (metric == "errors" or metric in VERIFICATION_GATED or metric == CYCLIC_MISMATCHES
            or metric.startswith("mallocs") or metric.startswith("syscalls"))


@dataclass
class Row:
    key: tuple
    metric: str
    kind: str  # "test" | "deterministic" | "single" | "count" (overruns: flagged, not gated)
    better: str | None
    base_n: int = 0
    head_n: int = 0
    base_median: float = math.nan
    head_median: float = math.nan
    ratio: float = math.nan
    ci: tuple[float, float] | None = None
    p_worse: float | None = None
    p_better: float | None = None
    status: str = "no change"
    note: str = ""
    gated: bool = True
    flagged: str = ""  # "base", "head" or "base and head" when the point's environment was flagged

    @property
    def label(self) -> str:
        flag = f" [flagged: {self.flagged}]" if self.flagged else ""
        return f"{dr.describe_key(self.key)} · {self.metric}{flag}"


@dataclass
class Comparison:
    rows: list[Row] = field(default_factory=list)
    only_base: list[tuple] = field(default_factory=list)
    only_head: list[tuple] = field(default_factory=list)
    # Flagged points of each side (key, point), in file order, whether excluded or not.
    flagged_base: list[tuple[tuple, dict]] = field(default_factory=list)
    flagged_head: list[tuple[tuple, dict]] = field(default_factory=list)
    # Points both sides have that --exclude-flagged left out: key -> "base", "head" or "base and head".
    excluded: dict[tuple, str] = field(default_factory=dict)
    exclude_flagged: bool = False

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.status == "regression"]

    @property
    def improvements(self) -> list[Row]:
        return [r for r in self.rows if r.status == "improvement"]

    @property
    def more_overruns(self) -> list[Row]:
        return [r for r in self.rows if r.metric == CYCLIC_OVERRUNS and r.status == MORE_OVERRUNS]


MORE_OVERRUNS = "more overruns (not gated)"


def samples_of(value) -> list[float]:
    if isinstance(value, dict):
        samples = [float(s) for s in value.get("samples") or []
                   if isinstance(s, (int, float)) and math.isfinite(s)]
        if samples:
            return samples
        m = dr.stat_median(value)
        return [m] if m is not None else []
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [float(value)]
    return []


def latency_samples(value: dict, prefix: str, gated: tuple[str, ...]) -> dict[str, tuple[list[float], bool]]:
    """Percentile samples of a latency summary: the merged rounds' values when present, else
    the single value."""
    out: dict[str, tuple[list[float], bool]] = {}
    rounds = value.get("rounds") if isinstance(value.get("rounds"), dict) else {}
    for key in LATENCY_GATED + LATENCY_INFO:
        if isinstance(rounds.get(key), list) and rounds[key]:
            out[f"{prefix}.{key}"] = ([float(v) for v in rounds[key]], key in gated)
        elif isinstance(value.get(key), (int, float)) and not isinstance(value.get(key), bool):
            out[f"{prefix}.{key}"] = ([float(value[key])], key in gated)
    return out


def cyclic_samples(value: dict) -> dict[str, tuple[list[float], bool]]:
    """The comparable metrics of `metrics.cyclic`, named `cyclic.<field>`."""
    out: dict[str, tuple[list[float], bool]] = {}
    lat = value.get("periodLatencyNs")
    if isinstance(lat, dict):
        out.update(latency_samples(lat, "cyclic.periodLatencyNs", CYCLIC_LATENCY_GATED))
    for key in CYCLIC_GATED_STATS + CYCLIC_INFO_STATS:
        s = samples_of(value.get(key))
        if s:
            out[f"cyclic.{key}"] = (s, key in CYCLIC_GATED_STATS)
    mismatched = value.get("mismatchedBytes")
    if isinstance(mismatched, (int, float)) and not isinstance(mismatched, bool):
        out[CYCLIC_MISMATCHES] = ([float(mismatched)], True)
    rate = dr.overruns_per_1000_periods(value)
    if rate is not None:
        out[CYCLIC_OVERRUNS] = ([rate], False)
    return out


def metric_samples(point: dict) -> dict[str, tuple[list[float], bool]]:
    """metric name -> (samples, gated) for every comparable metric of a point."""
    out: dict[str, tuple[list[float], bool]] = {}
    for name, value in (point.get("metrics") or {}).items():
        if value is None or name in ("efficiency", "completed", "aborted"):
            continue
        if name == "latencyNs":
            if isinstance(value, dict):
                out.update(latency_samples(value, "latencyNs", LATENCY_GATED))
            continue
        if name == "cyclic":
            if isinstance(value, dict):
                out.update(cyclic_samples(value))
            continue
        if name == "verification":
            # Only the mismatch counts compare: sampleEvery and checked say how much was
            # verified, and `first` is text for a person.
            if isinstance(value, dict):
                for key in dr.VERIFICATION_MISMATCHES:
                    if isinstance(value.get(key), (int, float)) and not isinstance(value.get(key), bool):
                        out[f"verification.{key}"] = ([float(value[key])], True)
            continue
        s = samples_of(value)
        if s:
            out[name] = (s, True)
    return out


def ratio_of(head: float, base: float) -> float:
    if base == 0:
        return 1.0 if head == 0 else math.inf
    return head / base


def bootstrap_ratio_ci(base: list[float], head: list[float], confidence: float = 0.95) -> tuple[float, float]:
    import numpy as np

    rng = np.random.default_rng(BOOTSTRAP_SEED)
    b = np.asarray(base, dtype=float)
    h = np.asarray(head, dtype=float)
    mb = np.median(b[rng.integers(0, len(b), (BOOTSTRAP_RESAMPLES, len(b)))], axis=1)
    mh = np.median(h[rng.integers(0, len(h), (BOOTSTRAP_RESAMPLES, len(h)))], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(mb == 0, np.where(mh == 0, 1.0, np.inf), mh / np.where(mb == 0, 1.0, mb))
    tail = (1.0 - confidence) / 2.0 * 100.0
    lo, hi = np.percentile(ratios, [tail, 100.0 - tail])
    return (float(lo), float(hi))


def performance_ratio(ratio: float, better: str) -> float:
    """head/base as "how much faster" (> 1 better): ratio for higher-is-better, 1/ratio otherwise."""
    if better == "higher":
        return ratio
    if ratio == 0:
        return math.inf
    return 1.0 / ratio


def compare_metric(key: tuple, metric: str, base: list[float], head: list[float], gated: bool,
                   threshold: float, alpha: float) -> Row:
    better = direction(metric)
    det = is_deterministic(metric)
    row = Row(key=key, metric=metric, kind="deterministic" if det else "test", better="lower" if det else better,
              base_n=len(base), head_n=len(head), gated=gated)
    row.base_median = dr.median(base)
    row.head_median = dr.median(head)
    row.ratio = ratio_of(row.head_median, row.base_median)
    if metric == CYCLIC_OVERRUNS:
        # Flagged when it grows, never gated: overruns follow the machine's scheduling.
        row.kind, row.better, row.gated = "count", "lower", False
        if row.head_median > row.base_median:
            row.status = MORE_OVERRUNS
        elif row.head_median < row.base_median:
            row.status = "fewer overruns"
        return row
    if det:
        if row.head_median > row.base_median:
            row.status = "regression"
            row.note = "deterministic metric increased"
        elif row.head_median < row.base_median:
            row.status = "improvement"
        return row
    if better is None:
        row.status = "info"
        row.note = "direction unknown; not gated"
        return row
    if len(base) < 2 or len(head) < 2:
        row.kind = "single"
        row.status = "info"
        row.note = "fewer than 2 samples on a side; no test"
        return row
    from scipy.stats import mannwhitneyu

    # One-sided tests: "worse" means head is stochastically smaller (higher is better) or
    # larger (lower is better) than base.
    worse_alt, better_alt = ("less", "greater") if better == "higher" else ("greater", "less")
    if len(set(base) | set(head)) == 1:
        row.p_worse = row.p_better = 1.0
    else:
        row.p_worse = float(mannwhitneyu(head, base, alternative=worse_alt).pvalue)
        row.p_better = float(mannwhitneyu(head, base, alternative=better_alt).pvalue)
    row.ci = bootstrap_ratio_ci(base, head)
    row.status = "no significant change"
    # Performance ratio (> 1 is better): throughput ratio as is, time ratio inverted, so a
    # 25% threshold means the same for descriptors/s and for ns per descriptor.
    perf = performance_ratio(row.ratio, better)
    if 1.0 - perf > threshold and row.p_worse < alpha:
        row.status = "regression" if gated else "worse (not gated)"
    elif 1.0 - 1.0 / perf > threshold and row.p_better < alpha:
        row.status = "improvement"
    elif row.p_worse < alpha:
        row.status = "worse, within threshold"
    elif row.p_better < alpha:
        row.status = "better, within threshold"
    return row


def flagged_sides(key: tuple, b: dict, h: dict) -> str:
    sides = [name for name, index in (("base", b), ("head", h)) if key in index and dr.is_flagged(index[key])]
    return " and ".join(sides)


def compare_docs(base: dict, head: dict, threshold: float, alpha: float,
                 base_path: str = "BASE", head_path: str = "HEAD", exclude_flagged: bool = False) -> Comparison:
    def index(doc: dict, path: str) -> dict:
        result: dict = {}
        for p in doc["points"]:
            k = dr.point_key(p)
            if k in result:
                dr.fail(f"{path}: the point {dr.describe_key(k)} appears twice; merge rounds with merge.py --rounds first")
            result[k] = p
        return result

    b = index(base, base_path)
    h = index(head, head_path)
    comp = Comparison(exclude_flagged=exclude_flagged)
    comp.only_base = [k for k in b if k not in h]
    comp.only_head = [k for k in h if k not in b]
    comp.flagged_base = [(k, p) for k, p in b.items() if dr.is_flagged(p)]
    comp.flagged_head = [(k, p) for k, p in h.items() if dr.is_flagged(p)]
    for k in b:
        if k not in h:
            continue
        sides = flagged_sides(k, b, h)
        if sides and exclude_flagged:
            # As if missing on the flagged side: the point gives no row, so no verdict.
            comp.excluded[k] = sides
            continue
        bm = metric_samples(b[k])
        hm = metric_samples(h[k])
        for metric in bm:
            if metric not in hm:
                continue
            row = compare_metric(k, metric, bm[metric][0], hm[metric][0], bm[metric][1], threshold, alpha)
            row.flagged = sides
            comp.rows.append(row)
    return comp


# --- report ---------------------------------------------------------------------------------


def fmt(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float) and math.isinf(v):
        return "∞"
    return f"{v:.4g}"


def change_text(row: Row) -> str:
    if math.isnan(row.ratio) or math.isinf(row.ratio):
        return "–"
    pct = (row.ratio - 1.0) * 100.0
    if row.better is None or abs(pct) < 0.05:
        return f"{pct:+.1f}%"
    worse = (pct < 0) if row.better == "higher" else (pct > 0)
    return f"{pct:+.1f}% ({'worse' if worse else 'better'})"


def context_line(doc: dict, path: str) -> str:
    ctx = doc["context"]
    commit = str(ctx.get("commit") or "?") + (" (dirty)" if ctx.get("dirty") else "")
    return (f"`{commit}` from `{path}`: {ctx.get('date', '?')}, host {ctx.get('host', '?')}, "
            f"{ctx.get('cpu', '?')} ({ctx.get('cores', '?')} cores), kernel {ctx.get('kernel', '?')}")


def table(rows: list[Row]) -> list[str]:
    out = ["| point | metric | base median | head median | head/base (95% CI) | change | p (worse) | n base/head | status |",
           "|---|---|---:|---:|---|---|---:|---|---|"]
    for r in rows:
        ci = f" [{fmt(r.ci[0])}, {fmt(r.ci[1])}]" if r.ci else ""
        p = fmt(r.p_worse) if r.p_worse is not None else "–"
        status = r.status + (f" ({r.note})" if r.note else "")
        if r.status == "regression":
            status = f"**{status}**"
        # A verdict on a point measured while the machine was busy deserves a second look.
        point = dr.describe_key(r.key) + (f" [flagged: {r.flagged}]" if r.flagged else "")
        out.append(f"| {point} | {r.metric} | {fmt(r.base_median)} | {fmt(r.head_median)} | "
                   f"{fmt(r.ratio)}{ci} | {change_text(r)} | {p} | {r.base_n}/{r.head_n} | {status} |")
    return out


def compact_reasons(point: dict) -> str:
    reasons = dr.flag_reasons(point)
    env = point.get("environment") or {}
    rounds = env.get("rounds")
    text = "; ".join(reasons[:FLAGGED_REASONS_LISTED]) or "no reason recorded"
    if len(reasons) > FLAGGED_REASONS_LISTED:
        text += f"; +{len(reasons) - FLAGGED_REASONS_LISTED} more"
    if isinstance(rounds, (int, float)) and rounds > 1:
        text += f" ({fmt_count(env.get('flaggedRounds'))} of {fmt_count(rounds)} rounds flagged)"
    return text


def fmt_count(v) -> str:
    return str(int(v)) if isinstance(v, (int, float)) and not isinstance(v, bool) else "?"


def flagged_summary(comp: Comparison, base: dict, head: dict) -> str:
    """One line with the flagged counts per side (compare-commits.sh prints it after a run)."""
    return (f"Flagged points: base {len(comp.flagged_base)} of {len(base['points'])}, "
            f"head {len(comp.flagged_head)} of {len(head['points'])}")


def machine_warnings(doc: dict) -> str:
    """The machine settings that dmabench found not as recommended (`ok` false), compactly."""
    out = []
    for s in doc["context"].get("machine") or []:
        if s.get("ok") is False:
            value = s.get("value")
            text = f"{s['name']} {'unknown' if value is None else (value or 'empty')}"
            if s.get("recommended") is not None:
                text += f" (recommended: {s['recommended']})"
            out.append(text)
    return "; ".join(out)


def thresholds_text(doc: dict) -> str:
    thresholds = doc["context"].get("thresholds")
    if not isinstance(thresholds, dict):
        return ""
    return ", ".join(f"{k} {fmt(v)}" for k, v in thresholds.items())


def dropped_round_rows(base: dict, head: dict) -> list[tuple[str, tuple, int, int]]:
    """(side, point key, rounds left out, rounds kept) for each point that `merge.py
    --drop-flagged-rounds` merged from its clean rounds only."""
    out = []
    for side, doc in (("base", base), ("head", head)):
        for point in doc.get("points") or []:
            n, kept = dr.dropped_rounds(point), (point.get("environment") or {}).get("rounds")
            if n > 0:
                out.append((side, dr.point_key(point), n, int(kept) if dr._is_number(kept) else 0))
    return out


def flagged_section(comp: Comparison, base: dict, head: dict) -> list[str]:
    """The points whose environment was flagged, per side, with their reasons; then the
    thresholds and the machine settings that were not as recommended (once when both agree)."""
    lines = ["## Flagged points", ""]
    if not (dr.has_environment(base) or dr.has_environment(head)):
        return lines + ["Neither file records how quiet the machine was (`points[].environment`; files written "
                        "before it existed); no point could be flagged.", ""]
    for side, doc, flagged in (("base", base, comp.flagged_base), ("head", head, comp.flagged_head)):
        if not dr.has_environment(doc):
            lines.append(f"- {side}: no `environment` recorded (an older file); no point could be flagged.")
        elif not flagged:
            lines.append(f"- {side}: none flagged.")
        for key, point in flagged[:FLAGGED_LISTED]:
            lines.append(f"- {side}: {dr.describe_key(key)}: {compact_reasons(point)}")
        if len(flagged) > FLAGGED_LISTED:
            lines.append(f"- {side}: ... and {len(flagged) - FLAGGED_LISTED} more flagged point(s)")
    lines.append("")
    dropped = dropped_round_rows(base, head)
    if dropped:
        total = sum(n for _, _, n, _ in dropped)
        lines.append(f"{total} flagged round(s) were left out before the rounds were merged "
                     "(`merge.py --drop-flagged-rounds`; `compare-commits.sh --exclude-flagged`); "
                     "these points are compared on their clean rounds:")
        lines += [f"- {side}: {dr.describe_key(key)}: {n} of {n + kept} rounds left out"
                  for side, key, n, kept in dropped[:FLAGGED_LISTED]]
        if len(dropped) > FLAGGED_LISTED:
            lines.append(f"- ... and {len(dropped) - FLAGGED_LISTED} more")
        lines.append("")
    if comp.exclude_flagged:
        if comp.excluded:
            lines.append(f"--exclude-flagged: {len(comp.excluded)} point(s) that both files have were left out of the "
                         "comparison because they were flagged:")
            lines += [f"- {dr.describe_key(k)} (flagged in {sides})" for k, sides in comp.excluded.items()]
        else:
            lines.append("--exclude-flagged: no point that both files have was flagged; nothing was left out.")
        lines.append("")
    elif comp.flagged_base or comp.flagged_head:
        lines += ["Flagged points are compared like the others (marked `[flagged: ...]` in the tables); "
                  "`--exclude-flagged` leaves them out.", ""]
    for title, text in (("Thresholds", thresholds_text), ("Machine settings not as recommended", machine_warnings)):
        b, h = text(base), text(head)
        if b and b == h:
            lines.append(f"- {title} (base and head): {b}")
        else:
            lines += [f"- {title} ({side}): {t}" for side, t in (("base", b), ("head", h)) if t]
    if lines[-1] != "":
        lines.append("")
    return lines


def render_report(comp: Comparison, base: dict, head: dict, base_path: str, head_path: str,
                  threshold: float, alpha: float) -> str:
    lines = ["# dmabench comparison", ""]
    lines.append(f"- Base: {context_line(base, base_path)}")
    lines.append(f"- Head: {context_line(head, head_path)}")
    lines.append(f"- Gate: a metric regresses when its median performance is more than {threshold:.0%} worse "
                 f"(throughput below {1 - threshold:.3g}x base, or time above {1 / (1 - threshold):.3g}x base) AND a one-sided "
                 f"Mann–Whitney U test gives p < {alpha:g}; errors, verification mismatch counts, mallocs* and syscalls* "
                 "regress on any increase. "
                 "Higher is better for */s metrics, lower for *Ns metrics. The CI of the ratio is a seeded "
                 f"{BOOTSTRAP_RESAMPLES}-resample bootstrap of the medians.")
    if any(r.metric.startswith("cyclic.") for r in comp.rows):
        lines.append("- Cyclic points: `cyclic.stopFromCallbackNs` (STOP from a period callback, then synchronize) "
                     "gates, and `cyclic.periodLatencyNs.p50` once merged rounds give it samples; "
                     "`cyclic.mismatchedBytes` regresses on any increase; the other cyclic timings are reported, "
                     f"not gated; a `{CYCLIC_OVERRUNS}` that grows is flagged as more overruns, not gated.")
    bc, hc = base["context"], head["context"]
    for key in ("host", "cpu", "kernel"):
        if bc.get(key) != hc.get(key):
            lines.append(f"- Warning: base and head differ in {key} ({bc.get(key)!r} against {hc.get(key)!r}); "
                         "the comparison mixes machines.")
    if bc.get("callbackContext") != hc.get("callbackContext"):
        name = lambda v: v if v is not None else "each backend's default"
        lines.append(f"- Warning: base and head asked for callbacks on different threads "
                     f"(--callbacks: {name(bc.get('callbackContext'))} against {name(hc.get('callbackContext'))}); "
                     "the comparison mixes configurations.")
    tested = [r for r in comp.rows if r.kind != "single" and r.status != "info"]
    lines.append("")
    if comp.regressions:
        lines.append(f"**Result: REGRESSION** in {len(comp.regressions)} of {len(comp.rows)} metrics "
                     f"({len(tested)} tested).")
    else:
        lines.append(f"**Result: no significant regression** ({len(comp.rows)} metrics, {len(tested)} tested, "
                     f"{len(comp.improvements)} improved).")
    if comp.more_overruns:
        lines.append("")
        lines.append(f"{len(comp.more_overruns)} cyclic point(s) overran more often in head (not gated; see More overruns).")
    if dr.has_environment(base) or dr.has_environment(head):
        # Next to the verdict, so that a reader sees at once how far to trust it.
        summary = flagged_summary(comp, base, head)
        if comp.exclude_flagged:
            summary += f"; {len(comp.excluded)} left out by --exclude-flagged"
        dropped = dr.dropped_round_count(base) + dr.dropped_round_count(head)
        if dropped:
            summary += f"; {dropped} flagged round(s) left out before merging"
        lines.append("")
        lines.append(summary + " (see Flagged points).")
    lines.append("")
    if comp.regressions:
        lines += ["## Regressions", ""] + table(comp.regressions) + [""]
    if comp.improvements:
        lines += ["## Improvements", ""] + table(comp.improvements) + [""]
    if comp.more_overruns:
        lines += ["## More overruns", "",
                  "Cyclic points whose callbacks fell behind the engine more often (periods overwritten before "
                  "their callback ran, per 1000 periods). Not gated; worth a look.", ""]
        lines += table(comp.more_overruns) + [""]
    lines += ["## All metrics", ""] + table(comp.rows) + [""]
    singles = [r for r in comp.rows if r.kind == "single"]
    if singles:
        lines.append(f"{len(singles)} metric(s) had fewer than 2 samples on a side and were reported without a "
                     "test; run with more repetitions, or merge rounds with `merge.py --rounds`.")
        lines.append("")
    lines += flagged_section(comp, base, head)
    if comp.only_base or comp.only_head:
        lines += ["## Unmatched points", ""]
        lines += [f"- only in base: {dr.describe_key(k)}" for k in comp.only_base]
        lines += [f"- only in head: {dr.describe_key(k)}" for k in comp.only_head]
        lines.append("")
    return "\n".join(lines)


def render_plot(comp: Comparison, path: str, threshold: float, base: dict, head: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in comp.rows if r.kind == "test" and math.isfinite(r.ratio) and r.ratio > 0]
    if not rows:
        rows = [r for r in comp.rows if math.isfinite(r.ratio) and r.ratio > 0]
    limit = 80
    note = ""
    if len(rows) > limit:
        def badness(r: Row) -> float:
            return -math.log(r.ratio) if r.better == "higher" else math.log(r.ratio)
        rows = sorted(rows, key=badness, reverse=True)[:limit]
        note = f"showing the {limit} worst of {len(comp.rows)} metrics"
    colours = {"regression": "tab:red", "improvement": "tab:green"}
    height = max(3.0, 0.22 * len(rows) + 1.8)
    fig, ax = plt.subplots(figsize=(14, height))
    seen = set()
    for i, r in enumerate(rows):
        colour = colours.get(r.status, "tab:blue" if r.status != "info" else "tab:gray")
        label = r.status if r.status in colours else ("no significant change" if r.status != "info" else "not tested")
        lo, hi = r.ci if r.ci else (r.ratio, r.ratio)
        ax.errorbar([r.ratio], [i], xerr=[[max(0.0, r.ratio - lo)], [max(0.0, hi - r.ratio)]], fmt="o", color=colour,
                    capsize=3, markersize=4, label=None if label in seen else label)
        seen.add(label)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.axvline(1.0 - threshold, color="tab:red", linestyle="--", linewidth=0.8,
               label=f"{threshold:.0%} worse: {1 - threshold:.3g}x for */s, {1 / (1 - threshold):.3g}x for *Ns")
    ax.axvline(1.0 / (1.0 - threshold), color="tab:red", linestyle="--", linewidth=0.8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r.label for r in rows], fontsize=6)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("head / base ratio of medians (95% bootstrap CI); */s: >1 better, *Ns: <1 better")
    ax.set_title("dmabench: head against base")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    if rows:
        ax.legend(fontsize=7, loc="lower right")
    env = "base: " + dr.environment_note([base]) + "\nhead: " + dr.environment_note([head]) + (f"\n{note}" if note else "")
    fig.text(0.01, 0.0, env, fontsize=6, color="dimgray", ha="left", va="bottom")
    fig.tight_layout(rect=(0, min(0.3, 0.45 / height), 1, 1))
    fmt_ = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    if fmt_ not in ("png", "svg", "pdf"):
        dr.fail(f"--plot {path}: unknown image format '.{fmt_}'; use .png, .svg or .pdf")
    dr.atomic_savefig(fig, path, fmt_)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Compare two dmabench result files; exit 0 no regression, 1 regression, 2 bad input.")
    ap.add_argument("base", metavar="BASE.json")
    ap.add_argument("head", metavar="HEAD.json")
    ap.add_argument("--threshold", type=float, default=0.25,
                    help="fraction of performance lost that gates, e.g. 0.25: throughput below 0.75x base "
                         "or time above 1.33x base (default 0.25)")
    ap.add_argument("--alpha", type=float, default=0.01, help="significance level of the one-sided test (default 0.01)")
    ap.add_argument("--report", metavar="OUT.md", help="also write the markdown report to this file")
    ap.add_argument("--plot", metavar="OUT.png", help="write a ratio plot (.png, .svg or .pdf)")
    ap.add_argument("--exclude-flagged", action="store_true",
                    help="leave out points whose environment was flagged (environment.interference; in merged "
                         "files, any flagged round) on either side, so that they cannot regress")
    args = ap.parse_args(argv)
    if not (0 < args.threshold < 1):
        dr.fail(f"--threshold {args.threshold}: must be a fraction between 0 and 1, e.g. 0.25 for 25% worse")
    if not (0 < args.alpha < 1):
        dr.fail(f"--alpha {args.alpha}: must be between 0 and 1, e.g. 0.01")
    base = dr.load_or_exit(args.base)
    head = dr.load_or_exit(args.head)
    comp = compare_docs(base, head, args.threshold, args.alpha, args.base, args.head, args.exclude_flagged)
    if not comp.rows and comp.excluded:
        dr.fail(f"{args.base} and {args.head}: every point they have in common is flagged "
                f"({len(comp.excluded)} excluded by --exclude-flagged); nothing left to compare; rerun on a quieter "
                "machine or compare without --exclude-flagged")
    if not comp.rows:
        dr.fail(f"{args.base} and {args.head} have no point and metric in common; nothing to compare "
                "(points match on backend, workload, parameters and requested placement)")
    report = render_report(comp, base, head, args.base, args.head, args.threshold, args.alpha)
    print(report)
    if args.report:
        dr.atomic_write_text(args.report, report)
    if args.plot:
        render_plot(comp, args.plot, args.threshold, base, head)
    return EXIT_REGRESSION if comp.regressions else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
