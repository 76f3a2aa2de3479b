#!/usr/bin/env bash
# Runs hubd's Go benchmarks, then hubd against its anchor (JupyterHub 3.0.0
# + configurable-http-proxy 5.3.0, same machine, alternating, loopback) with
# bench/cmd/hubbench, and writes bench/results/<date>.md with the machine,
# the versions and the medians of the runs. Needs root (test accounts and a
# PAM service for the login benchmark, removed afterwards) and what
# `scripts/deps.sh bench` installs.
#   BENCH_QUICK=1   one short run of each (a smoke test, not a measurement)
#   BENCH_COUNT=N   runs per benchmark (default 3; the report shows medians)
#   BENCH_ONLY=x    only the Go benchmarks (go) or one comparison (proxy,
#                   spawn, api, login)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
count=${BENCH_COUNT:-3}
benchtime=1s
if [ -n "${BENCH_QUICK:-}" ]; then count=1; benchtime=100ms; fi
# ./test/e2e: spawn time, sudo against Slurm (the lab cluster), one and twenty at once.
pkgs=(./backups ./core/proxy ./core/spawner ./core/auth ./core/admin ./core/sharedenv ./core/web ./test/e2e)
out=bench/results/$(date -u +%F).md
# A smoke run is not a measurement: keep it away from the recorded reports.
if [ -n "${BENCH_QUICK:-}" ]; then out=bench/results/$(date -u +%F)-quick.md; fi
raw=$(mktemp)
cmp=bench/tmp/compare.md
trap 'rm -f "$raw"' EXIT
chp=/opt/hubd-bench/chp/bin/configurable-http-proxy
only=${BENCH_ONLY:-}

if [ -z "$only" ] || [ "$only" = go ]; then
  echo "bench: running ${pkgs[*]} (count $count, benchtime $benchtime)…"
  go test -run '^$' -bench . -benchmem -count "$count" -benchtime "$benchtime" -timeout 60m "${pkgs[@]}" | tee "$raw"
fi
rm -f "$cmp"
if [ "$only" != go ]; then
  mkdir -p bench/tmp
  go build -o bench/tmp/hubbench ./bench/cmd/hubbench
  go build -o bench/tmp/mocksu ./bench/cmd/mocksu
  flags=(-runs "$count" -chp "$chp" -out "$cmp")
  if [ -n "${BENCH_QUICK:-}" ]; then flags+=(-quick); fi
  if [ -n "$only" ]; then flags+=(-only "$only"); fi
  echo "bench: hubd vs JupyterHub 3.0 + CHP ${flags[*]}…"
  # Bounded: the full comparison takes ~35 min on 2 cores.
  timeout --kill-after=30s 90m bench/tmp/hubbench "${flags[@]}"
fi

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
  echo "| anchor | JupyterHub $(/usr/bin/python3 -c 'import jupyterhub; print(jupyterhub.__version__)' 2>/dev/null) (Debian $(dpkg-query -W -f='${Version}' jupyterhub 2>/dev/null)), configurable-http-proxy $("$chp" --version 2>/dev/null), node $(node --version 2>/dev/null) |"
  echo "| load | $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2) (Debian), Go clients in bench/cmd/hubbench |"
  echo "| runs | $count per benchmark, median shown |"
  echo
  echo "Reproduce: \`make bench\` as root (or \`BENCH_QUICK=1 make bench\` for a smoke run; \`BENCH_ONLY=proxy|spawn|api|login|go\` for one part)."
  echo
  if [ -s "$cmp" ]; then cat "$cmp"; echo; fi
  echo "## Go micro-benchmarks"
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
