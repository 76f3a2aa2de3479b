#!/usr/bin/env bash
# Runs hubd's Go benchmarks and writes bench/results/<date>.md with the
# machine, the versions and the medians of the runs.
#   BENCH_QUICK=1   one short run of each (a smoke test, not a measurement)
#   BENCH_COUNT=N   runs per benchmark (default 3; the report shows medians)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
count=${BENCH_COUNT:-3}
benchtime=1s
if [ -n "${BENCH_QUICK:-}" ]; then count=1; benchtime=100ms; fi
pkgs=(./backups ./core/proxy ./core/spawner ./core/auth ./core/admin ./core/sharedenv)
out=bench/results/$(date -u +%F).md
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT

echo "bench: running ${pkgs[*]} (count $count, benchtime $benchtime)…"
go test -run '^$' -bench . -benchmem -count "$count" -benchtime "$benchtime" -timeout 60m "${pkgs[@]}" | tee "$raw"

{
  echo "# hubd benchmarks, $(date -u +'%F %H:%M UTC')"
  echo
  echo "| what | value |"
  echo "|---|---|"
  echo "| machine | $(nproc) CPUs, $(free -h | awk '/Mem:/{print $2}') RAM, $(uname -r) |"
  echo "| cpu | $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) |"
  echo "| go | $(go version | awk '{print $3}') |"
  echo "| hubd | $(git describe --tags --always --dirty 2>/dev/null) |"
  echo "| sqlite | modernc.org/sqlite $(go list -m -f '{{.Version}}' modernc.org/sqlite) |"
  echo "| runs | $count per benchmark, median shown |"
  echo
  echo "Reproduce: \`make bench\` (or \`BENCH_QUICK=1 make bench\` for a smoke run)."
  echo
  echo "| benchmark | median ns/op | median B/op | median allocs/op | other metrics (median) |"
  echo "|---|---|---|---|---|"
  awk '
    /^pkg:/ { pkg = $2; sub(".*/hubd/hubd/", "", pkg) }
    /^Benchmark/ {
      name = pkg "." $1; sub(/-[0-9]+$/, "", name)
      for (i = 3; i < NF; i += 2) { v[name, $(i+1), ++n[name, $(i+1)]] = $i; units[name, $(i+1)] = 1 }
      if (!(name in seen)) { seen[name] = 1; order[++k] = name }
    }
    function median(name, unit,   c, i, j, t, a) {
      c = n[name, unit]; if (c == 0) return "";
      for (i = 1; i <= c; i++) a[i] = v[name, unit, i] + 0
      for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      return a[int((c + 1) / 2)]
    }
    END {
      for (x = 1; x <= k; x++) {
        nm = order[x]; other = ""
        for (key in units) { split(key, p, SUBSEP); if (p[1] == nm && p[2] !~ /^(ns\/op|B\/op|allocs\/op)$/) other = other p[2] "=" median(nm, p[2]) " " }
        printf "| %s | %s | %s | %s | %s |\n", nm, median(nm, "ns/op"), median(nm, "B/op"), median(nm, "allocs/op"), other
      }
    }' "$raw"
  echo
  echo "<details><summary>raw go test output</summary>"
  echo
  echo '```'
  cat "$raw"
  echo '```'
  echo "</details>"
} > "$out"
echo "bench: wrote $out"
