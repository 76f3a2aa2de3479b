#!/usr/bin/env bash
# Prints the version of this checkout, the one `make build` embeds and `make deb` packages:
#   X.Y.Z                          exactly at a vX.Y.Z tag (clean tree)
#   <Base>~dev.<n>+g<commit>        anywhere else: <n> commits after the last vX.Y.Z tag (after the root
#                                   when there is none, e.g. a CI clone without tags), Base from
#                                   internal/version; '~' sorts before the release in dpkg and apt
#   ...+...dirty                    uncommitted changes (".dirty" appended to the build part)
# Both are valid Debian versions that sort in commit order on a branch. With `commit` as argument it
# prints the abbreviated commit instead ("unknown" outside git).
set -euo pipefail
cd "$(dirname "$0")/.."
base=$(sed -n 's/^const Base = "\([0-9][0-9.]*\)"$/\1/p' internal/version/version.go)
[ -n "$base" ] || { echo "version.sh: no 'const Base = \"X.Y.Z\"' in internal/version/version.go" >&2; exit 1; }

if ! git rev-parse --git-dir >/dev/null 2>&1; then
  [ "${1:-}" = commit ] && { echo unknown; exit 0; }
  echo "$base~dev"; exit 0
fi
commit=$(git rev-parse --short=12 HEAD)
[ "${1:-}" = commit ] && { echo "$commit"; exit 0; }
dirty=
git diff --quiet HEAD -- 2>/dev/null || dirty=.dirty

if tag=$(git describe --tags --exact-match --match 'v[0-9]*.[0-9]*.[0-9]*' HEAD 2>/dev/null) && [ -z "$dirty" ]; then
  echo "${tag#v}"; exit 0
fi
if last=$(git describe --tags --abbrev=0 --match 'v[0-9]*.[0-9]*.[0-9]*' HEAD 2>/dev/null); then
  if dpkg --compare-versions "${last#v}" ge "$base"; then
    echo "version.sh: $last is tagged but internal/version.Base is still $base: raise Base to the next release" >&2
    exit 1
  fi
  n=$(git rev-list --count "$last..HEAD")
else
  n=$(git rev-list --count HEAD)
fi
echo "$base~dev.$n+g$commit$dirty"
