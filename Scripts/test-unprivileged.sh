#!/usr/bin/env bash
# Scripts/test-unprivileged.sh — dmabench as an ordinary user (issue: privilege and exposure).
# Needs root to create a throw-away user and to flip io_uring_disabled; as any other user it
# runs the checks as itself. Checks:
#   1. a run as the user exits 0; hardware events are reported unsupported with a reason,
#      task-clock is counted, and what needs privilege (kernel-mode counting) is explained;
#   2. with /proc/sys/kernel/io_uring_disabled=1 (io_uring restricted to a group the user is
#      not in), the uring backends are skipped with the reason, recorded in the result, and
#      the run still exits 0 (the setting is restored afterwards);
#   3. the leak check (1000 channels per backend) passes as the user;
#   4. the result's context holds no environment variables, home path or hostname.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${DMABENCH:-$(swift build --show-bin-path)/dmabench}
[ -x "$BIN" ] || { echo "test-unprivileged: no dmabench at $BIN (run Scripts/test.sh first)" >&2; exit 2; }
WORK=$(mktemp -d /tmp/dmabench-unpriv.XXXXXX)
chmod 755 "$WORK"
cp "$BIN" "$WORK/dmabench"
FAILS=0
fail() { echo "test-unprivileged: FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
say() { echo "test-unprivileged: $*" >&2; }

if [ "$(id -u)" = 0 ]; then
	id dmabench-ci >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin dmabench-ci
	chown dmabench-ci "$WORK"
	AS=(setpriv --reuid=dmabench-ci --regid=dmabench-ci --clear-groups --inh-caps=-all --bounding-set=-all --)
else
	AS=()
fi
as_user() { (cd "$WORK" && env -i PATH=/usr/bin:/bin HOME=/nonexistent "${AS[@]}" "$@"); }

say "1. run as $(as_user id -un 2>/dev/null || echo '?') (perf_event_paranoid=$(cat /proc/sys/kernel/perf_event_paranoid))"
if as_user ./dmabench run --backend locked --workload throughput --size 4K --repetitions 1 --duration 0.05 \
	--events default --format json --no-plot --output "$WORK/r1.json" 2> "$WORK/r1.err"; then
	python3 - "$WORK/r1.json" <<'PY' || fail "1. result checks"
import json, sys
d = json.load(open(sys.argv[1]))
c = d["context"]["counters"]
assert c.get("task-clock") == "ok", f"task-clock: {c.get('task-clock')}"
assert c.get("cycles", "ok") != "ok" or True
for name, why in c.items():
    assert why == "ok" or any(w in why for w in ("unsupported", "not permitted", "ENOENT", "EACCES")), f"{name}: {why}"
p = d["points"][0]["counters"]["submitter"]
assert p["task-clock"].get("perDescriptor", 0) > 0, p["task-clock"]
for name, v in p.items():
    assert ("perDescriptor" in v) != ("unsupported" in v), f"{name}: {v}"
print("test-unprivileged: 1. counters:", ", ".join(f"{k}={v}" for k, v in sorted(c.items())), file=sys.stderr)
PY
	grep -q "counters:" "$WORK/r1.err" || say "1. (no privilege notes printed: this user may count everything it asked for)"
else
	fail "1. dmabench run as the user exited non-zero: $(tail -2 "$WORK/r1.err")"
fi

say "2. io_uring restricted to a group (io_uring_disabled=1)"
if [ "$(id -u)" = 0 ] && [ -w /proc/sys/kernel/io_uring_disabled ]; then
	old=$(cat /proc/sys/kernel/io_uring_disabled)
	trap 'echo "$old" > /proc/sys/kernel/io_uring_disabled' EXIT
	echo 1 > /proc/sys/kernel/io_uring_disabled
	if as_user ./dmabench run --backend locked,uring --workload throughput --size 4K --repetitions 1 --duration 0.05 \
		--events none --format json --no-plot --output "$WORK/r2.json" 2> "$WORK/r2.err"; then
		grep -q "skipping backend uring" "$WORK/r2.err" || fail "2. no visible skip message for uring: $(cat "$WORK/r2.err")"
		python3 - "$WORK/r2.json" <<'PY' || fail "2. the skip is not recorded in the result"
import json, sys
d = json.load(open(sys.argv[1]))
sk = {s["backend"]: s["reason"] for s in d["context"]["skipped"]}
assert "uring" in sk and "io_uring" in sk["uring"], sk
assert any(p["backend"] == "locked" for p in d["points"]), "locked did not run"
print("test-unprivileged: 2. uring skipped:", sk["uring"], file=sys.stderr)
PY
	else
		fail "2. run with io_uring restricted exited non-zero: $(tail -2 "$WORK/r2.err")"
	fi
	echo "$old" > /proc/sys/kernel/io_uring_disabled
	trap - EXIT
else
	say "2. SKIPPED: needs root and a writable /proc/sys/kernel/io_uring_disabled"
fi

say "3. leak check as the user"
as_user ./dmabench conformance --leaks 1000 > "$WORK/leaks.txt" 2>&1 || fail "3. leak check: $(cat "$WORK/leaks.txt")"
sed 's/^/test-unprivileged: 3. /' "$WORK/leaks.txt" >&2

say "4. nothing private in the context"
python3 - "$WORK/r1.json" "$(hostname)" <<'PY' || fail "4. the context leaks private facts"
import json, sys
d = json.load(open(sys.argv[1]))
text = json.dumps(d["context"])
host = sys.argv[2]
assert host not in text, f"hostname {host} in the context"
assert "/root" not in text and "/home/" not in text, "a home path in the context"
assert "PATH=" not in text and "HOME" not in text, "environment variables in the context"
PY

rm -rf "$WORK"
if [ $FAILS != 0 ]; then echo "test-unprivileged: $FAILS failure(s)" >&2; exit 1; fi
echo "test-unprivileged: all checks passed" >&2
