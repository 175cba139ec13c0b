# dmabench — Scripts: shared reader for dmabench result files
#
# Every script in Scripts/ reads result files through this module, so that the documented
# schema (Results/README.md) is checked in one place. A file that is not valid JSON, is
# truncated, has the wrong schemaVersion or breaks the documented shape raises ResultError
# with a one-line message; the scripts print it and exit with status 2.
"""Load, validate and write dmabench result documents (schemaVersion 1)."""

from __future__ import annotations

import json
import math
import os
import re
import sys
import tempfile
from typing import Any, Iterable, NoReturn

SCHEMA_VERSION = 1

#: Exit status of every script for bad input (unreadable, malformed, wrong version).
EXIT_BAD_INPUT = 2

WORKLOADS = ("throughput", "latency", "terminate", "cyclic")

#: Metrics that carry {median, ciLow, ciHigh, samples}.
STAT_METRICS = (
    "descriptorsPerSecond",
    "bytesPerSecond",
    "submitNsPerDescriptor",
    "terminateSyncNs",
    "terminateAsyncNs",
    "synchronizeNs",
    "seedRaceNs",
)

#: Plain-number metrics (counts).
COUNT_METRICS = ("completed", "aborted", "errors")

#: Plain-number metrics that are a ratio to another point of the same run (above 1: this point
#: is faster). Merged as the median over rounds; compared as higher-is-better.
RATIO_METRICS = ("speedupOverCPU", "polledVsCallback", "coldVsHot")

#: Number fields of `metrics.verification` (dmatest-style checks). The mismatch counts are bytes
#: found wrong, by kind; any increase is a regression.
VERIFICATION_COUNTS = ("checked", "srcMismatch", "dstMismatch", "guardOverwritten")
VERIFICATION_MISMATCHES = ("srcMismatch", "dstMismatch", "guardOverwritten")

#: How many mismatch descriptions `verification.first` keeps (after a merge too).
VERIFICATION_FIRST_MAX = 8

#: String parameters and the values each may take, the default first. A parameter at its
#: default identifies the same point as one without it: files written before the key existed
#: measured the default mode.
MODE_PARAMETERS = {
    "offsets": ("fixed", "random"),
    "completion": ("callback", "polled"),
    "cache": ("hot", "cold"),
}
PARAMETER_DEFAULTS = {key: values[0] for key, values in MODE_PARAMETERS.items()}

#: Scatter-gather points: `parameters.sge` is "S:D", source and destination segments per
#: descriptor (both 1 or more). Null or absent: a flat copy, as in files written before it.
SGE_PATTERN = re.compile(r"^([1-9][0-9]*):([1-9][0-9]*)$")

#: Cyclic points: integer parameters with their smallest value (`periods` in the buffer, `pace`
#: in bytes/s with 0 for memory speed, `periodWorkNs` of busy work per period callback). Null
#: on every other point; point_key drops them then, so flat points of older files still match.
CYCLIC_PARAMETERS = {"periods": 1, "pace": 0, "periodWorkNs": 0}

#: Fields of `metrics.cyclic`, by shape. Counts are sums over the repetitions (merge.py adds
#: them up); statistics objects have one sample per repetition; settings are the same in
#: every repetition (merge.py keeps the first).
CYCLIC_COUNTS = ("periods", "callbacks", "overruns", "unstamped", "mismatchedBytes")
CYCLIC_STATS = ("achievedBytesPerSecond", "pauseNs", "resumeToNextByteNs", "stopFromCallbackNs", "stopFromClientNs")
CYCLIC_SETTINGS = ("paceBytesPerSecond", "burstBytes", "windowSeconds")
#: Numbers computed from the others: `coalescing` = callbacks / periods, `paceRatio` =
#: achieved median / pace (null at memory speed).
CYCLIC_DERIVED = ("coalescing", "paceRatio")
CYCLIC_STRINGS = ("callbackContext",)

#: latencyNs keys that are numbers, in spectrum order, with their percentile as a fraction.
LATENCY_PERCENTILES = (
    ("p50", 0.5),
    ("p90", 0.9),
    ("p99", 0.99),
    ("p999", 0.999),
    ("p9999", 0.9999),
)

#: Thread roles that counters may be reported for.
COUNTER_ROLES = ("submitter", "engine", "executor")

#: Number fields of `points[i].environment` (how quiet the machine was while the point ran),
#: with how `merge.py` combines them over rounds: the watched time and the switches add up;
#: a fraction of the window, the round-trip drift and the spread are as bad as the worst round.
ENVIRONMENT_SUMMED = ("windowSeconds", "involuntarySwitches")
ENVIRONMENT_WORST = ("backgroundCPU", "steal", "roundTripDrift", "cv")
#: Written by `merge.py --rounds` only: how many rounds the environment covers, how many of
#: them were flagged (a merged point is flagged when any round was), and how many flagged
#: rounds `--drop-flagged-rounds` left out of the merge (not counted in `rounds`).
ENVIRONMENT_ROUND_COUNTS = ("rounds", "flaggedRounds", "droppedRounds")
ENVIRONMENT_NUMBERS = ENVIRONMENT_SUMMED + ENVIRONMENT_WORST + ENVIRONMENT_ROUND_COUNTS

#: How many `environment.reasons` a merged point keeps.
ENVIRONMENT_REASONS_MAX = 8

#: String fields of each `context.machine` entry (all may be null).
MACHINE_STRINGS = ("value", "unavailable", "recommended", "fix")


class ResultError(Exception):
    """A result file is unreadable or breaks the documented schema. The message is one line."""


def fail(message: str) -> NoReturn:
    """Print a one-line error to stderr and exit with status 2."""
    print(f"error: {one_line(message)}", file=sys.stderr)
    sys.exit(EXIT_BAD_INPUT)


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_count(value: Any) -> bool:
    """A whole number, 0 or more."""
    return _is_number(value) and math.isfinite(value) and value >= 0 and value == int(value)


def _is_power_of_two(value: Any) -> bool:
    if not _is_number(value) or not math.isfinite(value) or value < 1 or value != int(value):
        return False
    n = int(value)
    return n & (n - 1) == 0


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if _is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


class _Checker:
    def __init__(self, path: str):
        self.path = path

    def error(self, where: str, message: str) -> ResultError:
        return ResultError(f"{self.path}: {where}: {message}")

    def obj(self, value: Any, where: str) -> dict:
        if not isinstance(value, dict):
            raise self.error(where, f"expected an object, found {_type_name(value)}")
        return value

    def opt_obj(self, parent: dict, key: str, where: str) -> dict | None:
        value = parent.get(key)
        if value is None:
            return None
        return self.obj(value, f"{where}.{key}")

    def string(self, parent: dict, key: str, where: str, required: bool = True) -> str | None:
        value = parent.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str):
            found = "missing" if key not in parent else f"a {_type_name(value)}"
            raise self.error(f"{where}.{key}", f"expected a string, found {found}")
        return value

    def number(self, parent: dict, key: str, where: str, required: bool = False) -> float | None:
        value = parent.get(key)
        if value is None:
            if required:
                raise self.error(f"{where}.{key}", "expected a number, found missing")
            return None
        if not _is_number(value):
            raise self.error(f"{where}.{key}", f"expected a number, found a {_type_name(value)}")
        return value

    def boolean(self, parent: dict, key: str, where: str) -> bool | None:
        value = parent.get(key)
        if value is not None and not isinstance(value, bool):
            raise self.error(f"{where}.{key}", f"expected a boolean or null, found a {_type_name(value)}")
        return value

    def array(self, parent: dict, key: str, where: str, item: str) -> list | None:
        """An optional array whose items are all `item` ("number" or "string")."""
        value = parent.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self.error(f"{where}.{key}", f"expected an array of {item}s, found a {_type_name(value)}")
        for j, entry in enumerate(value):
            if _type_name(entry) != item:
                raise self.error(f"{where}.{key}[{j}]", f"expected a {item}, found a {_type_name(entry)}")
        return value

    def latency(self, value: Any, where: str) -> None:
        """A latency summary: `metrics.latencyNs`, or `metrics.cyclic.periodLatencyNs`."""
        lat = self.obj(value, where)
        for key, _ in LATENCY_PERCENTILES:
            self.number(lat, key, where)
        self.number(lat, "max", where)
        self.number(lat, "count", where)
        hist = lat.get("histogram")
        if hist is not None and not isinstance(hist, str):
            raise self.error(f"{where}.histogram", f"expected a string, found a {_type_name(hist)}")
        rounds = lat.get("rounds")
        if rounds is not None:
            for key, values in self.obj(rounds, f"{where}.rounds").items():
                if not isinstance(values, list) or not all(_is_number(v) for v in values):
                    raise self.error(f"{where}.rounds.{key}", "expected an array of numbers")

    def cyclic(self, value: Any, where: str) -> None:
        """`metrics.cyclic`: the known fields by shape; unknown ones as numbers, strings or
        statistics objects, so that a newer field does not make the file unreadable."""
        cyc = self.obj(value, where)
        for name, field in cyc.items():
            fwhere = f"{where}.{name}"
            if field is None:
                continue
            if name == "periodLatencyNs":
                self.latency(field, fwhere)
            elif name in CYCLIC_STATS:
                self.stat(field, fwhere)
            elif name in CYCLIC_COUNTS or name in CYCLIC_SETTINGS or name in CYCLIC_DERIVED:
                n = self.number(cyc, name, where)
                if name in CYCLIC_COUNTS and not _is_count(n):
                    raise self.error(fwhere, f"expected a count (a whole number, 0 or more), found {n:g}")
            elif name in CYCLIC_STRINGS:
                self.string(cyc, name, where)
            elif isinstance(field, dict):
                self.stat(field, fwhere)
            elif not _is_number(field) and not isinstance(field, str):
                raise self.error(fwhere, f"expected a number, a string or a statistics object, found a {_type_name(field)}")

    def stat(self, value: Any, where: str) -> None:
        stat = self.obj(value, where)
        for key in ("median", "ciLow", "ciHigh"):
            self.number(stat, key, where)
        samples = stat.get("samples")
        if samples is not None:
            if not isinstance(samples, list):
                raise self.error(f"{where}.samples", f"expected an array of numbers, found a {_type_name(samples)}")
            for i, s in enumerate(samples):
                if not _is_number(s):
                    raise self.error(f"{where}.samples[{i}]", f"expected a number, found a {_type_name(s)}")
        if stat.get("median") is None and not stat.get("samples"):
            raise self.error(where, "has neither a median nor samples")


def validate(doc: Any, path: str = "<document>") -> dict:
    """Check `doc` against the documented schema; return it, or raise ResultError."""
    c = _Checker(path)
    if not isinstance(doc, dict):
        raise ResultError(f"{path}: the top level must be a JSON object, found {_type_name(doc)}")
    if "kind" in doc:
        raise ResultError(f"{path}: {foreign_kind(doc)}; this is not a dmabench result file")
    if "schemaVersion" not in doc:
        what = foreign_kind(doc)
        raise ResultError(f"{path}: missing schemaVersion; this is not a dmabench result file"
                          + (f" ({what})" if what else ""))
    version = doc["schemaVersion"]
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise ResultError(
            f"{path}: schemaVersion {json.dumps(version)} is not supported; these scripts read schemaVersion {SCHEMA_VERSION}"
        )
    ctx = c.obj(doc.get("context"), "context")
    for key in ("host", "cpu", "kernel", "commit"):
        c.string(ctx, key, "context", required=False)
    c.string(ctx, "date", "context", required=False)
    if "dirty" in ctx and ctx["dirty"] is not None and not isinstance(ctx["dirty"], bool):
        raise c.error("context.dirty", f"expected a boolean, found a {_type_name(ctx['dirty'])}")
    c.number(ctx, "cores", "context")
    counters = c.opt_obj(ctx, "counters", "context")
    if counters is not None:
        for name, status in counters.items():
            if not isinstance(status, str):
                raise c.error(f"context.counters.{name}", f"expected a string, found a {_type_name(status)}")
    shard = c.opt_obj(ctx, "shard", "context")
    if shard is not None:
        index = c.number(shard, "index", "context.shard", required=True)
        count = c.number(shard, "count", "context.shard", required=True)
        if int(count) < 1 or not (0 <= int(index) < int(count)):
            raise c.error("context.shard", f"index {index} is not in 0..{int(count) - 1}")
    cache = c.opt_obj(ctx, "cache", "context")
    if cache is not None:
        c.string(cache, "method", "context.cache", required=False)
        c.string(cache, "flushInstruction", "context.cache", required=False)
        c.number(cache, "lineSize", "context.cache")
        levels = cache.get("levels")
        if levels is not None:
            if not isinstance(levels, list):
                raise c.error("context.cache.levels", f"expected an array of objects, found a {_type_name(levels)}")
            for j, level in enumerate(levels):
                lwhere = f"context.cache.levels[{j}]"
                c.obj(level, lwhere)
                c.number(level, "level", lwhere)
                c.string(level, "type", lwhere, required=False)
                c.number(level, "sizeBytes", lwhere)
                c.string(level, "sharedWith", lwhere, required=False)
    skipped = ctx.get("skipped")
    if skipped is not None and not isinstance(skipped, list):
        raise c.error("context.skipped", f"expected an array, found a {_type_name(skipped)}")
    thresholds = c.opt_obj(ctx, "thresholds", "context")
    if thresholds is not None:
        for name in thresholds:
            c.number(thresholds, name, "context.thresholds")
    machine = ctx.get("machine")
    if machine is not None:
        if not isinstance(machine, list):
            raise c.error("context.machine", f"expected an array of objects, found a {_type_name(machine)}")
        for j, setting in enumerate(machine):
            swhere = f"context.machine[{j}]"
            c.obj(setting, swhere)
            c.string(setting, "name", swhere)
            for key in MACHINE_STRINGS:
                c.string(setting, key, swhere, required=False)
            c.boolean(setting, "ok", swhere)
    flagged = c.number(ctx, "flaggedPoints", "context")
    if flagged is not None and (flagged < 0 or flagged != int(flagged)):
        raise c.error("context.flaggedPoints", f"expected a count (a whole number, 0 or more), found {flagged:g}")

    points = doc.get("points")
    if not isinstance(points, list):
        found = "missing" if "points" not in doc else f"a {_type_name(points)}"
        raise ResultError(f"{path}: points: expected an array, found {found}")
    for i, point in enumerate(points):
        where = f"points[{i}]"
        c.obj(point, where)
        c.string(point, "backend", where)
        c.string(point, "workload", where)
        params = c.obj(point.get("parameters", {}), f"{where}.parameters")
        for key, value in params.items():
            pwhere = f"{where}.parameters.{key}"
            if value is None:
                continue
            if key in MODE_PARAMETERS:
                allowed = " or ".join(json.dumps(v) for v in MODE_PARAMETERS[key])
                if not isinstance(value, str):
                    raise c.error(pwhere, f"expected {allowed} or null, found a {_type_name(value)}")
                if value not in MODE_PARAMETERS[key]:
                    raise c.error(pwhere, f"unknown value {json.dumps(value)}; expected {allowed} or null")
            elif key == "sge":
                if not isinstance(value, str):
                    raise c.error(pwhere, f'expected a string "S:D" (segments per descriptor) or null, found a {_type_name(value)}')
                if not SGE_PATTERN.match(value):
                    raise c.error(pwhere, f'expected "S:D" with S and D 1 or more (e.g. "4:1") or null, found {json.dumps(value)}')
            elif key in CYCLIC_PARAMETERS:
                if not _is_number(value):
                    raise c.error(pwhere, f"expected a whole number or null, found a {_type_name(value)}")
                if not _is_count(value) or value < CYCLIC_PARAMETERS[key]:
                    raise c.error(pwhere, f"expected a whole number, {CYCLIC_PARAMETERS[key]} or more, or null, found {value:g}")
            elif not _is_number(value):
                raise c.error(pwhere, f"expected a number or null, found a {_type_name(value)}")
            elif key == "alignment" and not _is_power_of_two(value):
                raise c.error(pwhere, f"expected a power of two (bytes) or null, found {value:g}")
        placement = c.opt_obj(point, "placement", where)
        if placement is not None:
            c.opt_obj(placement, "requested", f"{where}.placement")
            c.opt_obj(placement, "verified", f"{where}.placement")
        metrics = c.obj(point.get("metrics", {}), f"{where}.metrics")
        for name, value in metrics.items():
            mwhere = f"{where}.metrics.{name}"
            if value is None:
                continue
            if name == "latencyNs":
                c.latency(value, mwhere)
            elif name == "cyclic":
                c.cyclic(value, mwhere)
            elif name == "efficiency":
                eff = c.obj(value, mwhere)
                for key in eff:
                    c.number(eff, key, mwhere)
            elif name == "verification":
                ver = c.obj(value, mwhere)
                for key in ("sampleEvery",) + VERIFICATION_COUNTS:
                    c.number(ver, key, mwhere)
                first = ver.get("first")
                if first is not None:
                    if not isinstance(first, list):
                        raise c.error(f"{mwhere}.first", f"expected an array of strings, found a {_type_name(first)}")
                    for j, text in enumerate(first):
                        if not isinstance(text, str):
                            raise c.error(f"{mwhere}.first[{j}]", f"expected a string, found a {_type_name(text)}")
            elif isinstance(value, dict):
                c.stat(value, mwhere)
            elif not _is_number(value):
                raise c.error(mwhere, f"expected a number or a statistics object, found a {_type_name(value)}")
        env = c.opt_obj(point, "environment", where)
        if env is not None:
            ewhere = f"{where}.environment"
            c.array(env, "cpus", ewhere, "number")
            for key in ENVIRONMENT_NUMBERS:
                c.number(env, key, ewhere)
            c.array(env, "roundTripNs", ewhere, "number")
            c.boolean(env, "interference", ewhere)
            c.array(env, "reasons", ewhere, "string")
        counters = c.opt_obj(point, "counters", where)
        if counters is not None:
            for role, events in counters.items():
                rwhere = f"{where}.counters.{role}"
                if events is None:
                    continue
                for event, entry in c.obj(events, rwhere).items():
                    ewhere = f"{rwhere}.{event}"
                    entry = c.obj(entry, ewhere)
                    if "unsupported" in entry:
                        if not isinstance(entry["unsupported"], str):
                            raise c.error(f"{ewhere}.unsupported", "expected a string (the reason)")
                        continue
                    c.number(entry, "perDescriptor", ewhere)
                    c.number(entry, "scaling", ewhere)
                    c.number(entry, "value", ewhere)
    return doc


#: The `kind` marker of the documents `Scripts/anchor-compare.py` writes, and the version of
#: their own format (`schemaVersion` next to `kind`; unrelated to the result format's).
ANCHOR_COMPARE_KIND = "anchor-compare"
ANCHOR_COMPARE_SCHEMA_VERSION = 1

#: Top-level keys that the anchor-compare documents written before the marker existed all have.
ANCHOR_COMPARE_KEYS = ("rounds", "samples")


def foreign_kind(doc: Any) -> str | None:
    """What a parsed JSON document is, in words, when it is not a dmabench result document;
    None when it is one or means to be one (then `validate` decides whether it is a good one).

    A dmabench result has `schemaVersion` or `points` at the top level and no `kind`. A
    document with a top-level `kind` (the anchor-compare documents) is another format, and
    so are the older anchor-compare documents without it (recognised by their `rounds` and
    `samples`), Google Benchmark exports (`benchmarks`), and any other JSON that has neither
    `schemaVersion` nor `points`."""
    if not isinstance(doc, dict):
        return f"a JSON {_type_name(doc)}, not an object"
    if "kind" in doc:
        kind = doc["kind"]
        if kind == ANCHOR_COMPARE_KIND:
            return "an anchor-compare document (Scripts/anchor-compare.py)"
        return f"a document of kind {json.dumps(kind)}"
    if "schemaVersion" in doc or "points" in doc:
        return None
    if all(key in doc for key in ANCHOR_COMPARE_KEYS):
        return "an anchor-compare document (Scripts/anchor-compare.py) from before its \"kind\" marker"
    if "benchmarks" in doc:
        return "a Google Benchmark export (dmabench run --format gbench)"
    keys = ", ".join(sorted(doc)[:4]) + (", ..." if len(doc) > 4 else "")
    return f"a JSON object without schemaVersion or points (keys: {keys or 'none'})"


def read_json(path: str) -> Any:
    """Read and parse one JSON file; raise ResultError with a one-line message."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ResultError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ResultError(f"{path}: is a directory, expected a result .json file") from None
    except OSError as e:
        raise ResultError(f"{path}: cannot read: {e.strerror}") from None
    if not raw.strip():
        raise ResultError(f"{path}: file is empty; expected a dmabench result document")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ResultError(f"{path}: not UTF-8 text (byte {e.start}); expected a dmabench result document") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        tail = text.rstrip()
        truncated = e.pos >= len(tail) or not tail.endswith(("}", "]"))
        hint = " (the file looks truncated)" if truncated else ""
        raise ResultError(f"{path}: not valid JSON at line {e.lineno} column {e.colno}: {e.msg}{hint}") from None
    return doc


def load(path: str) -> dict:
    """Read and validate one result file; raise ResultError with a one-line message."""
    return validate(read_json(path), path)


def load_or_skip(path: str) -> tuple[dict | None, str | None]:
    """For a directory of mixed files (`plot.py --history`): (the validated result, None)
    for a dmabench result document, (None, what it is) for another JSON document (see
    `foreign_kind`). A file that is not valid JSON, or a dmabench result that breaks the
    schema (wrong `schemaVersion`, missing `context`, ...), raises ResultError."""
    doc = read_json(path)
    what = foreign_kind(doc)
    if what is not None:
        return None, what
    return validate(doc, path), None


def load_or_exit(path: str) -> dict:
    try:
        return load(path)
    except ResultError as e:
        fail(str(e))


# --- points -------------------------------------------------------------------------------


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _drop_nulls(d: dict | None) -> dict:
    return {k: v for k, v in (d or {}).items() if v is not None}


def identity_parameters(params: dict | None) -> dict:
    """The parameters that identify a point: without nulls and without modes at their default.

    `sge`, `periods`, `pace` and `periodWorkNs` are null on the points they do not apply to
    (every point writes them), so they drop out there: a flat throughput point of a newer file
    has the same identity as the same point of a file written before the keys existed.
    """
    return {k: v for k, v in _drop_nulls(params).items() if PARAMETER_DEFAULTS.get(k) != v}


def point_key(point: dict) -> tuple[str, str, str, str]:
    """Identity of a point: backend, workload, parameters and requested placement.

    Null parameters count as absent, so `"rate": null` and no `rate` are the same point
    (`"sge": null`, `"periods": null`, `"pace": null` and `"periodWorkNs": null` too). So
    does a mode at its default (`"offsets": "fixed"`, `"completion": "callback"`,
    `"cache": "hot"`): files written before those keys existed measured the defaults, and
    their points match the same points of newer files.
    """
    placement = (point.get("placement") or {}).get("requested")
    return (
        point["backend"],
        point["workload"],
        canonical(identity_parameters(point.get("parameters"))),
        canonical(_drop_nulls(placement)),
    )


def describe_key(key: tuple[str, str, str, str]) -> str:
    backend, workload, params, placement = key
    p = json.loads(params)
    parts = [backend, workload]
    # Modes appear only when not at their default (point_key drops defaults), e.g.
    # `offsets=random alignment=8 completion=polled cache=cold`; scatter-gather and cyclic
    # parameters only where they apply, e.g. `sge=4:1` or `periods=4 pace=384000 periodWorkNs=0`.
    order = ["size", "batch", "depth", "channels", "rate", "inFlight", "offsets", "alignment", "completion", "cache",
             "sge", "periods", "pace", "periodWorkNs"]
    for name in order + sorted(k for k in p if k not in order):
        if name in p:
            value = p[name]
            if name == "size":
                value = format_size(value)
            parts.append(f"{name}={value}")
    pl = json.loads(placement)
    if pl:
        names = ["submitter", "engine", "src", "dst"]
        names += sorted(k for k in pl if k not in names)
        parts.append("@" + ",".join(f"{k}={pl[k]}" for k in names if k in pl))
    return " ".join(parts)


def format_pace(pace: Any) -> str:
    """A cyclic point's pace for a person: `memory speed` for 0, else decimal bytes/s
    (`384 kB/s`, `100 MB/s`), as `--pace` takes them."""
    if not _is_number(pace):
        return str(pace)
    if pace == 0:
        return "memory speed"
    for unit, scale in (("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3)):
        if pace >= scale:
            return f"{pace / scale:.4g} {unit}"
    return f"{pace:g} B/s"


def cyclic_metrics(point: dict) -> dict | None:
    """`metrics.cyclic` of a cyclic point, or None."""
    value = (point.get("metrics") or {}).get("cyclic")
    return value if isinstance(value, dict) else None


def overruns_per_1000_periods(cyclic: dict) -> float | None:
    """Overruns per 1000 elapsed periods (the counts are sums over all repetitions, so the
    rate is comparable between runs of different lengths and after merging rounds); None when
    no period elapsed or a count is missing."""
    overruns, periods = cyclic.get("overruns"), cyclic.get("periods")
    if not _is_number(overruns) or not _is_number(periods) or periods <= 0:
        return None
    return 1000.0 * overruns / periods


def format_size(value: Any) -> str:
    if not _is_number(value):
        return str(value)
    v = int(value)
    for unit, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if v >= scale and v % scale == 0:
            return f"{v // scale}{unit}"
    return str(v)


def stat_median(stat: Any) -> float | None:
    """The median of a statistics object, computing it from samples when needed."""
    if _is_number(stat):
        return float(stat)
    if not isinstance(stat, dict):
        return None
    if _is_number(stat.get("median")):
        return float(stat["median"])
    samples = [s for s in stat.get("samples") or [] if _is_number(s)]
    if samples:
        return median(samples)
    return None


def median(values: Iterable[float]) -> float:
    v = sorted(values)
    n = len(v)
    if n == 0:
        return math.nan
    mid = n // 2
    return float(v[mid]) if n % 2 else (v[mid - 1] + v[mid]) / 2.0


def median_ci(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval for the median from order statistics.

    Uses the binomial(n, 1/2) distribution to pick the ranks; with fewer than 6 values the
    interval is the sample range.
    """
    v = sorted(values)
    n = len(v)
    if n == 0:
        return (math.nan, math.nan)
    if n < 6:
        return (float(v[0]), float(v[-1]))
    alpha = 1.0 - confidence
    # Largest k with P(X < k) <= alpha/2, X ~ Binomial(n, 1/2); interval is [v[k-1], v[n-k]].
    cdf = 0.0
    k = 0
    for j in range(n + 1):
        p = math.comb(n, j) / 2.0**n
        if cdf + p > alpha / 2:
            break
        cdf += p
        k = j + 1
    k = max(k, 1)
    return (float(v[k - 1]), float(v[n - k]))


# --- environment (trust signals) -----------------------------------------------------------


def is_flagged(point: dict) -> bool:
    """True when the point's environment says the machine interfered with it: `interference`,
    or, in a file merged by `merge.py --rounds`, any flagged round (merge sets `interference`
    too; `flaggedRounds` alone is enough, so that a hand-edited or partly merged file cannot
    hide a flagged round)."""
    env = point.get("environment")
    if not isinstance(env, dict):
        return False
    rounds = env.get("flaggedRounds")
    return env.get("interference") is True or (_is_number(rounds) and rounds > 0)


def flag_reasons(point: dict) -> list[str]:
    env = point.get("environment")
    if not isinstance(env, dict):
        return []
    return [r for r in env.get("reasons") or [] if isinstance(r, str)]


def has_environment(doc: dict) -> bool:
    """True when any point records its environment (files written before it existed do not)."""
    return any(isinstance(p.get("environment"), dict) for p in doc.get("points") or [])


def flagged_count(doc: dict) -> int:
    return sum(1 for p in doc.get("points") or [] if is_flagged(p))


def dropped_rounds(point: dict) -> int:
    """How many flagged rounds `merge.py --drop-flagged-rounds` left out of this point."""
    env = point.get("environment")
    n = env.get("droppedRounds") if isinstance(env, dict) else None
    return int(n) if _is_number(n) else 0


def dropped_round_count(doc: dict) -> int:
    return sum(dropped_rounds(p) for p in doc.get("points") or [])


# --- histograms -----------------------------------------------------------------------------


def parse_hgrm(text: str) -> list[tuple[float, float, int]]:
    """Parse HdrHistogram percentile-distribution text (plain or CSV) into rows.

    Returns (value, percentile as a fraction 0..1, total count) per data row. Header, blank
    and `#[...]` footer lines are skipped.
    """
    rows: list[tuple[float, float, int]] = []
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#") or "Value" in s or "Percentile" in s:
            continue
        tokens = s.replace(",", " ").split()
        if len(tokens) < 3:
            continue
        try:
            value = float(tokens[0])
            pct = float(tokens[1])
            count = int(float(tokens[2]))
        except ValueError:
            continue
        rows.append((value, pct, count))
    return rows


# --- output ---------------------------------------------------------------------------------


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same directory and a rename."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_text(path: str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str, doc: Any) -> None:
    atomic_write_text(path, json.dumps(doc, indent=2, sort_keys=False) + "\n")


def atomic_savefig(fig: Any, path: str, fmt: str) -> None:
    """Save a matplotlib figure atomically (temp file in the same directory, then rename)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format=fmt, bbox_inches="tight")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def last_level_cache_bytes(doc: dict) -> int | None:
    """Size of the highest cache level in `context.cache.levels` (the largest entry at that
    level, instruction caches aside), or None when the file does not describe its caches."""
    cache = doc.get("context", {}).get("cache")
    if not isinstance(cache, dict) or not isinstance(cache.get("levels"), list):
        return None
    levels = [lv for lv in cache["levels"] if isinstance(lv, dict) and _is_number(lv.get("level"))
              and _is_number(lv.get("sizeBytes")) and str(lv.get("type", "")).lower() != "instruction"]
    if not levels:
        return None
    top = max(lv["level"] for lv in levels)
    return int(max(lv["sizeBytes"] for lv in levels if lv["level"] == top))


def environment_note(docs: list[dict]) -> str:
    """One line naming CPU, cores, last-level cache size (when context.cache gives it), kernel,
    host and commit(s) of the given documents."""
    def distinct(key: str) -> list[str]:
        seen: list[str] = []
        for d in docs:
            v = d.get("context", {}).get(key)
            if v is None:
                continue
            v = str(v)
            if v not in seen:
                seen.append(v)
        return seen

    llc: list[str] = []
    for d in docs:
        size = last_level_cache_bytes(d)
        if size is not None and f"{format_size(size)}B" not in llc:
            llc.append(f"{format_size(size)}B")

    commits = []
    for d in docs:
        ctx = d.get("context", {})
        c = str(ctx.get("commit") or "?")
        if ctx.get("dirty"):
            c += "+dirty"
        if c not in commits:
            commits.append(c)
    parts = [
        "CPU: " + (" | ".join(distinct("cpu")) or "?"),
        "cores: " + (" | ".join(distinct("cores")) or "?"),
    ]
    # Only files that describe their caches (context.cache) get the entry; older notes are unchanged.
    if llc:
        parts.append("LLC: " + " | ".join(llc))
    parts += [
        "kernel: " + (" | ".join(distinct("kernel")) or "?"),
        "host: " + (" | ".join(distinct("host")) or "?"),
        "commit: " + ", ".join(commits),
    ]
    return "; ".join(parts)
