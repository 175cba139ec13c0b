#!/usr/bin/env bash
# Scripts/setup.sh — installs what dmabench needs on a fresh Debian 12 machine. Idempotent:
# it installs only what is missing, so running it twice is cheap.
#   apt: libpfm4-dev libnuma-dev liburing-dev numactl linux-perf (perf stat, for the counter
#        validation test), chromium (headless, for the HTML report's browser test,
#        Scripts/tests/test_report.py), python3-pip
#   pip: Scripts/requirements.txt (matplotlib, scipy, pytest; pinned)
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(libpfm4-dev libnuma-dev liburing-dev numactl linux-perf)
# Optional: without a browser the report's browser test skips, saying why.
optional_packages=(chromium)
missing=()
for p in "${apt_packages[@]}" "${optional_packages[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}" >&2
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO="sudo"
	$SUDO apt-get update -qq
	if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null; then
		# Retry without the optional packages, so that a missing browser never stops the setup.
		required=()
		for p in "${missing[@]}"; do
			[[ " ${optional_packages[*]} " == *" $p "* ]] || required+=("$p")
		done
		echo "setup: installing ${missing[*]} failed; retrying without ${optional_packages[*]} (the browser test will skip)" >&2
		[ ${#required[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${required[@]}" >/dev/null
	fi
fi

if [ -f Scripts/requirements.txt ]; then
	if ! python3 - <<'PY' 2>/dev/null
import sys, importlib.metadata as md
want = {}
for line in open("Scripts/requirements.txt"):
    line = line.split("#")[0].strip()
    if "==" in line:
        n, v = line.split("==", 1)
        want[n.strip().lower()] = v.strip()
for n, v in want.items():
    if md.version(n) != v:
        sys.exit(1)
PY
	then
		echo "setup: installing Python packages from Scripts/requirements.txt" >&2
		python3 -m pip install --quiet --disable-pip-version-check -r Scripts/requirements.txt
	fi
fi
command -v swift >/dev/null || { echo "setup: swift is not on PATH (expected /opt/swift/usr/bin)" >&2; exit 1; }
echo "setup: ok" >&2
