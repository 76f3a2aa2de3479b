#!/usr/bin/env bash
# Builds Ory Hydra (the version this module's go.mod pins) once per Go version into
# /var/cache/hubd-test/hydra-<version>-<go version>/ and prints that directory on stdout.
# The first build downloads ~200 modules and compiles for ~4 minutes on 2 cores; afterwards
# the script only compares a stamp of go.mod + go.sum (~0.1 s). scripts/deps.sh runs it before
# the tests, so no test timeout includes the build; internal/testlab/oidclab runs it again to
# find the binary. Concurrent runs wait for each other (flock on the cache directory).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export PATH=/usr/local/go/bin:$PATH
command -v go >/dev/null || { echo "oidc build: Go is required at /usr/local/go" >&2; exit 1; }

version=$(awk '$1 == "github.com/ory/hydra/v2" { print $2 }' "$here/go.mod")
dir=/var/cache/hubd-test/hydra-$version-$(go env GOVERSION)
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9

stamp=$(cat "$here/go.mod" "$here/go.sum" | sha256sum | cut -c1-16)
if [ ! -x "$dir/hydra" ] || [ "$(cat "$dir/hydra.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "oidc build: building Ory Hydra $version into $dir (first time: minutes)" >&2
  start=$(date +%s)
  # cgo + the sqlite tags, as Ory builds it: without them Hydra refuses the in-memory DSN.
  (cd "$here" && CGO_ENABLED=1 go build -trimpath -buildvcs=false \
    -tags sqlite,sqlite_omit_load_extension -o "$dir/hydra.new" github.com/ory/hydra/v2)
  mv "$dir/hydra.new" "$dir/hydra"
  echo "$stamp" >"$dir/hydra.stamp"
  echo "oidc build: Hydra built in $(($(date +%s) - start)) s" >&2
fi
echo "$dir"
