# dmabench — Scripts tests: the shared result reader
"""Schema validation, error messages, histogram parsing, statistics and atomic writes."""

from __future__ import annotations

import json
import os

import pytest

import dmaresult as dr
from conftest import fixture_path, write_doc


def test_good_fixture_loads(good):
    doc = dr.load(fixture_path("good.json"))
    assert doc["schemaVersion"] == 1
    workloads = {p["workload"] for p in doc["points"]}
    assert workloads == {"throughput", "latency", "terminate"}


def test_truncated_file_is_a_one_line_error():
    with pytest.raises(dr.ResultError) as e:
        dr.load(fixture_path("truncated.json"))
    message = str(e.value)
    assert "\n" not in message
    assert "not valid JSON" in message and "truncated" in message


def test_wrong_version_names_the_supported_one():
    with pytest.raises(dr.ResultError, match=r"schemaVersion 2 is not supported.*schemaVersion 1"):
        dr.load(fixture_path("wrong-version.json"))


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d.pop("schemaVersion"), "missing schemaVersion"),
        (lambda d: d.__setitem__("schemaVersion", "1"), "schemaVersion \"1\" is not supported"),
        (lambda d: d.__setitem__("points", {}), "points: expected an array"),
        (lambda d: d.pop("context"), "context: expected an object"),
        (lambda d: d["points"][0].pop("backend"), "points[0].backend: expected a string"),
        (lambda d: d["points"][0]["metrics"].__setitem__("descriptorsPerSecond", "fast"), "points[0].metrics.descriptorsPerSecond"),
        (lambda d: d["points"][0]["metrics"]["bytesPerSecond"].__setitem__("samples", [1, "x"]), "samples[1]: expected a number"),
        (lambda d: d["points"][0]["metrics"]["latencyNs"].__setitem__("p99", "slow"), "latencyNs.p99: expected a number"),
        (lambda d: d["points"][0]["parameters"].__setitem__("size", [64]), "parameters.size"),
        (lambda d: d["context"].__setitem__("shard", {"index": 3, "count": 2}), "context.shard: index 3"),
        (lambda d: d["points"][0]["counters"]["submitter"]["task-clock"].__setitem__("perDescriptor", "x"), "task-clock.perDescriptor"),
        # Strings are parameters only for the modes, and only their documented values.
        (lambda d: d["points"][0]["parameters"].__setitem__("size", "64"), "parameters.size: expected a number or null, found a string"),
        (lambda d: d["points"][0]["parameters"].__setitem__("completion", "maybe"),
         'parameters.completion: unknown value "maybe"; expected "callback" or "polled" or null'),
        (lambda d: d["points"][0]["parameters"].__setitem__("offsets", "Random"), 'parameters.offsets: unknown value "Random"'),
        (lambda d: d["points"][0]["parameters"].__setitem__("cache", 1), 'parameters.cache: expected "hot" or "cold" or null, found a number'),
        (lambda d: d["points"][0]["parameters"].__setitem__("alignment", 6), "parameters.alignment: expected a power of two"),
        (lambda d: d["points"][0]["metrics"].__setitem__("verification", {"guardOverwritten": "3"}), "verification.guardOverwritten: expected a number"),
        (lambda d: d["points"][0]["metrics"].__setitem__("verification", {"first": ["ok", 3]}), "verification.first[1]: expected a string"),
        (lambda d: d["points"][0]["metrics"].__setitem__("coldVsHot", "0.7"), "metrics.coldVsHot"),
        (lambda d: d["context"].__setitem__("cache", "cold"), "context.cache: expected an object"),
        (lambda d: d["context"].__setitem__("cache", {"levels": [{"level": 3, "sizeBytes": "32M"}]}), "context.cache.levels[0].sizeBytes"),
        # The trust signals: environment per point, thresholds, machine settings, the count.
        (lambda d: d["points"][0].__setitem__("environment", []), "points[0].environment: expected an object"),
        (lambda d: d["points"][0].__setitem__("environment", {"backgroundCPU": "4%"}), "environment.backgroundCPU: expected a number"),
        (lambda d: d["points"][0].__setitem__("environment", {"interference": "yes"}), "environment.interference: expected a boolean"),
        (lambda d: d["points"][0].__setitem__("environment", {"reasons": "busy"}), "environment.reasons: expected an array of strings"),
        (lambda d: d["points"][0].__setitem__("environment", {"reasons": ["busy", 3]}), "environment.reasons[1]: expected a string"),
        (lambda d: d["points"][0].__setitem__("environment", {"roundTripNs": [92.0, None]}), "environment.roundTripNs[1]: expected a number"),
        (lambda d: d["points"][0].__setitem__("environment", {"cpus": ["cpu0"]}), "environment.cpus[0]: expected a number"),
        (lambda d: d["points"][0].__setitem__("environment", {"involuntarySwitches": True}), "environment.involuntarySwitches"),
        (lambda d: d["context"].__setitem__("thresholds", {"cv": "10%"}), "context.thresholds.cv: expected a number"),
        (lambda d: d["context"].__setitem__("thresholds", [0.05]), "context.thresholds: expected an object"),
        (lambda d: d["context"].__setitem__("machine", {"SMT": "off"}), "context.machine: expected an array"),
        (lambda d: d["context"].__setitem__("machine", [{"value": "off"}]), "context.machine[0].name: expected a string"),
        (lambda d: d["context"].__setitem__("machine", [{"name": "SMT", "ok": "yes"}]), "context.machine[0].ok: expected a boolean"),
        (lambda d: d["context"].__setitem__("machine", [{"name": "SMT", "fix": 1}]), "context.machine[0].fix: expected a string"),
        (lambda d: d["context"].__setitem__("flaggedPoints", "2"), "context.flaggedPoints: expected a number"),
        (lambda d: d["context"].__setitem__("flaggedPoints", 1.5), "context.flaggedPoints: expected a count"),
        # Scatter-gather: "S:D" with both counts 1 or more; nothing else is a string parameter.
        (lambda d: d["points"][0]["parameters"].__setitem__("sge", 4), 'parameters.sge: expected a string "S:D"'),
        (lambda d: d["points"][0]["parameters"].__setitem__("sge", "4x1"), 'parameters.sge: expected "S:D" with S and D 1 or more'),
        (lambda d: d["points"][0]["parameters"].__setitem__("sge", "0:1"), 'found "0:1"'),
        (lambda d: d["points"][0]["parameters"].__setitem__("sge", "4:"), 'found "4:"'),
        # Cyclic parameters: whole numbers, periods 1 or more, pace and work 0 or more.
        (lambda d: d["points"][0]["parameters"].__setitem__("periods", 0), "parameters.periods: expected a whole number, 1 or more"),
        (lambda d: d["points"][0]["parameters"].__setitem__("periods", 2.5), "parameters.periods: expected a whole number"),
        (lambda d: d["points"][0]["parameters"].__setitem__("pace", -1), "parameters.pace: expected a whole number, 0 or more"),
        (lambda d: d["points"][0]["parameters"].__setitem__("periodWorkNs", "0"), "parameters.periodWorkNs: expected a whole number or null"),
        # metrics.cyclic: every field by its documented shape.
        (lambda d: d["points"][0]["metrics"].__setitem__("cyclic", []), "metrics.cyclic: expected an object"),
        (lambda d: d["points"][0]["metrics"].__setitem__("cyclic", {"stopFromCallbackNs": "fast"}), "metrics.cyclic.stopFromCallbackNs: expected an object"),
        (lambda d: d["points"][0]["metrics"].__setitem__("cyclic", {"pauseNs": {"samples": []}}), "metrics.cyclic.pauseNs: has neither a median nor samples"),
        (lambda d: d["points"][0]["metrics"].__setitem__("cyclic", {"overruns": -1}), "metrics.cyclic.overruns: expected a count"),
        (lambda d: d["points"][0]["metrics"].__setitem__("cyclic", {"periods": "many"}), "metrics.cyclic.periods: expected a number"),
        (lambda d: d["points"][0]["metrics"].__setitem__("cyclic", {"coalescing": True}), "metrics.cyclic.coalescing: expected a number"),
        (lambda d: d["points"][0]["metrics"].__setitem__("cyclic", {"callbackContext": 3}), "metrics.cyclic.callbackContext: expected a string"),
        (lambda d: d["points"][0]["metrics"].__setitem__("cyclic", {"periodLatencyNs": {"p50": "slow"}}), "metrics.cyclic.periodLatencyNs.p50: expected a number"),
        (lambda d: d["points"][0]["metrics"].__setitem__("cyclic", {"periodLatencyNs": {"histogram": 1}}), "metrics.cyclic.periodLatencyNs.histogram: expected a string"),
        (lambda d: d["points"][0]["metrics"].__setitem__("cyclic", {"newField": [1]}), "metrics.cyclic.newField: expected a number, a string or a statistics object"),
    ],
)
def test_malformed_documents_are_rejected(tmp_path, good, mutate, expected):
    mutate(good)
    path = write_doc(tmp_path / "bad.json", good)
    with pytest.raises(dr.ResultError) as e:
        dr.load(path)
    assert expected in str(e.value)
    assert "\n" not in str(e.value)


def test_trust_signals_load_and_count(tmp_path):
    doc = dr.load(fixture_path("trust.json"))
    assert doc["context"]["thresholds"]["backgroundCPU"] == 0.05
    assert any(s["ok"] is False for s in doc["context"]["machine"])
    assert dr.has_environment(doc)
    assert dr.flagged_count(doc) == doc["context"]["flaggedPoints"] == 2
    flagged = [p for p in doc["points"] if dr.is_flagged(p)]
    assert dr.flag_reasons(flagged[0]) == ["background CPU 41% of the window (threshold 5%)"]
    # Nulls are allowed wherever the value can be unknown.
    doc["points"][0]["environment"].update(roundTripDrift=None, cv=None, interference=None, roundTripNs=[])
    doc["context"]["machine"][0].update(value=None, ok=None, recommended=None)
    dr.load(write_doc(tmp_path / "nulls.json", doc))


def test_older_files_have_no_environment(good):
    assert not dr.has_environment(good) and dr.flagged_count(good) == 0


def test_a_flagged_round_flags_a_merged_point():
    assert dr.is_flagged({"environment": {"interference": True}})
    assert dr.is_flagged({"environment": {"interference": False, "flaggedRounds": 1, "rounds": 9}})
    assert not dr.is_flagged({"environment": {"interference": False, "flaggedRounds": 0, "rounds": 9}})
    assert not dr.is_flagged({"environment": None}) and not dr.is_flagged({})


def test_absent_metrics_are_fine(tmp_path, good):
    for p in good["points"]:
        p["metrics"] = {}
        p.pop("counters", None)
        p.pop("placement", None)
    dr.load(write_doc(tmp_path / "sparse.json", good))


@pytest.mark.parametrize("content, expected", [(b"", "empty"), (b"\xff\xfe", "not UTF-8"), (b"[1, 2]", "top level must be a JSON object")])
def test_unreadable_content(tmp_path, content, expected):
    path = tmp_path / "x.json"
    path.write_bytes(content)
    with pytest.raises(dr.ResultError, match=expected):
        dr.load(str(path))


def test_missing_file():
    with pytest.raises(dr.ResultError, match="no such file"):
        dr.load("/nonexistent/result.json")


def test_parse_hgrm_plain_and_csv(good):
    lat = next(p for p in good["points"] if p["workload"] == "latency")["metrics"]["latencyNs"]
    rows = dr.parse_hgrm(lat["histogram"])
    assert len(rows) > 20
    assert rows[0][1] == 0.0 and rows[-1][1] == 1.0
    assert rows[-1][2] == lat["count"]
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(rows, rows[1:]))
    csv = '"Value","Percentile","TotalCount","1/(1-Percentile)"\n10.000,0.000000000000,1,1.00\n20.000,0.500000000000,5,2.00\n30.000,1.000000000000,10,Infinity\n'
    assert dr.parse_hgrm(csv) == [(10.0, 0.0, 1), (20.0, 0.5, 5), (30.0, 1.0, 10)]


def test_median_and_ci():
    assert dr.median([3, 1, 2]) == 2
    assert dr.median([4, 1, 2, 3]) == 2.5
    lo, hi = dr.median_ci(list(range(1, 10)))
    assert lo <= 5 <= hi and lo >= 1 and hi <= 9 and (lo, hi) != (1, 9)
    assert dr.median_ci([5.0, 7.0]) == (5.0, 7.0)


def test_point_key_ignores_nulls_and_order(good):
    p = good["points"][0]
    q = json.loads(json.dumps(p))
    q["parameters"] = dict(reversed(list(q["parameters"].items())))
    q["parameters"].pop("rate")
    assert dr.point_key(p) == dr.point_key(q)
    q["parameters"]["size"] = 128
    assert dr.point_key(p) != dr.point_key(q)


def test_modes_fixture_loads_with_the_newer_keys():
    doc = dr.load(fixture_path("modes.json"))
    params = [p["parameters"] for p in doc["points"]]
    assert {p["cache"] for p in params} == {"hot", "cold", None}
    assert {p["completion"] for p in params} == {"callback", "polled", None}
    assert any(p["offsets"] == "random" and p["alignment"] == 8 for p in params)
    assert any("verification" in p["metrics"] for p in doc["points"])


def test_point_key_treats_default_modes_as_absent(good):
    # A file written before the modes existed measured the defaults: its points match.
    old = good["points"][0]
    new = json.loads(json.dumps(old))
    new["parameters"].update({"offsets": "fixed", "alignment": None, "completion": "callback", "cache": "hot"})
    assert dr.point_key(old) == dr.point_key(new)
    assert dr.describe_key(dr.point_key(new)) == dr.describe_key(dr.point_key(old))
    polled = json.loads(json.dumps(new))
    polled["parameters"]["completion"] = "polled"
    cold = json.loads(json.dumps(new))
    cold["parameters"]["cache"] = "cold"
    keys = {dr.point_key(new), dr.point_key(polled), dr.point_key(cold)}
    assert len(keys) == 3
    random = json.loads(json.dumps(new))
    random["parameters"].update({"offsets": "random", "alignment": 8, "completion": "polled", "cache": "cold"})
    assert dr.describe_key(dr.point_key(random)).endswith(
        "offsets=random alignment=8 completion=polled cache=cold @submitter=cpu0,engine=cpu1,src=0,dst=0")


def test_sg_and_cyclic_fixtures_load():
    """Trimmed real output of `dmabench run --sge` and `--workload cyclic` (Scripts/tests/fixtures)."""
    sg = dr.load(fixture_path("sg.json"))
    assert {p["parameters"]["sge"] for p in sg["points"]} == {"4:1", "1:4"}
    assert all(p["parameters"]["periods"] is None and p["parameters"]["pace"] is None for p in sg["points"])
    cyc = dr.load(fixture_path("cyclic.json"))
    assert "cyclic" in dr.WORKLOADS
    assert {p["workload"] for p in cyc["points"]} == {"cyclic"}
    assert {p["parameters"]["pace"] for p in cyc["points"]} == {384000, 0, 100000000}
    for p in cyc["points"]:
        c = dr.cyclic_metrics(p)
        assert set(dr.CYCLIC_COUNTS + dr.CYCLIC_STATS + dr.CYCLIC_STRINGS) <= set(c)
        assert "descriptorsPerSecond" not in p["metrics"] and "latencyNs" not in p["metrics"]
        rows = dr.parse_hgrm(c["periodLatencyNs"]["histogram"])
        # Trimmed, but still a distribution from percentile 0 to 1 that ends at the count.
        assert len(rows) >= 5 and rows[0][1] == 0.0 and rows[-1][1] == 1.0
        assert rows[-1][2] == c["periodLatencyNs"]["count"]
    memory = next(p for p in cyc["points"] if p["parameters"]["pace"] == 0)
    assert dr.cyclic_metrics(memory).get("paceRatio") is None


def test_cyclic_fields_may_be_null(tmp_path):
    doc = dr.load(fixture_path("cyclic.json"))
    c = doc["points"][0]["metrics"]["cyclic"]
    c.update(periodLatencyNs=None, paceRatio=None)
    dr.load(write_doc(tmp_path / "nulls.json", doc))


def test_point_key_treats_null_sg_and_cyclic_parameters_as_absent(good):
    # A file written before sge, periods, pace and periodWorkNs existed, and a newer one that
    # writes them as null on the same flat point: the same point.
    old = good["points"][0]
    new = json.loads(json.dumps(old))
    new["parameters"].update({"sge": None, "periods": None, "pace": None, "periodWorkNs": None,
                              "offsets": "fixed", "alignment": None, "completion": "callback", "cache": "hot"})
    assert dr.point_key(old) == dr.point_key(new)
    assert dr.describe_key(dr.point_key(new)) == dr.describe_key(dr.point_key(old))
    assert "sge" not in dr.describe_key(dr.point_key(new)) and "pace" not in dr.describe_key(dr.point_key(new))
    # A scatter-gather point is another point, and says so.
    sg = json.loads(json.dumps(new))
    sg["parameters"]["sge"] = "4:1"
    assert dr.point_key(sg) != dr.point_key(new)
    assert "channels=1 sge=4:1 @" in dr.describe_key(dr.point_key(sg))
    other = json.loads(json.dumps(sg))
    other["parameters"]["sge"] = "1:4"
    assert dr.point_key(other) != dr.point_key(sg)


def test_cyclic_points_are_told_apart_by_pace_and_work():
    doc = dr.load(fixture_path("cyclic.json"))
    keys = [dr.point_key(p) for p in doc["points"]]
    assert len(set(keys)) == len(keys) == 5
    texts = [dr.describe_key(k) for k in keys]
    assert texts[0] == ("locked cyclic size=4K batch=1 depth=4 channels=1 periods=4 pace=384000 periodWorkNs=0 "
                        "@submitter=cpu0,engine=cpu1")
    assert any("periods=4 pace=0 periodWorkNs=0" in t for t in texts)
    assert any("pace=100000000 periodWorkNs=200000" in t for t in texts)
    # Null modes (cyclic points write offsets, completion and cache as null) are not shown.
    assert not any("offsets" in t or "cache" in t or "sge" in t for t in texts)


def test_pace_and_overrun_helpers():
    assert dr.format_pace(0) == "memory speed"
    assert dr.format_pace(384000) == "384 kB/s"
    assert dr.format_pace(100000000) == "100 MB/s"
    assert dr.format_pace(1500) == "1.5 kB/s" and dr.format_pace(512) == "512 B/s"
    assert dr.overruns_per_1000_periods({"overruns": 5, "periods": 1000}) == 5.0
    assert dr.overruns_per_1000_periods({"overruns": 5, "periods": 0}) is None
    assert dr.overruns_per_1000_periods({"periods": 10}) is None
    assert dr.cyclic_metrics({"metrics": {"cyclic": None}}) is None


def test_environment_note_names_the_last_level_cache(good):
    assert "LLC" not in dr.environment_note([good])
    modes = dr.load(fixture_path("modes.json"))
    assert "LLC: 32MB" in dr.environment_note([modes])


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "out.json"
    dr.atomic_write_text(str(path), "old")
    dr.atomic_write_text(str(path), "new")
    assert path.read_text() == "new"
    assert os.listdir(tmp_path) == ["out.json"]


def test_atomic_write_failure_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "out.json"
    path.write_text("old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        dr.atomic_write_text(str(path), "new")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.json"]


def test_the_example_in_results_readme_is_valid():
    import re

    from conftest import SCRIPTS

    readme = os.path.join(os.path.dirname(SCRIPTS), "Results", "README.md")
    with open(readme) as f:
        text = f.read()
    blocks = re.findall(r"```json\n(.*?)```", text, re.S)
    assert blocks, "Results/README.md has no json example"
    for block in blocks:
        dr.validate(json.loads(block), "Results/README.md")
