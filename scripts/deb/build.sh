#!/usr/bin/env bash
# Builds dist/hubd_<version>_<arch>.deb from binaries already built by `make build`, with nfpm run
# as a Go tool (pinned in go.mod). Called by `make deb`: scripts/deb/build.sh VERSION BIN DIST.
# The file dates are the commit's (SOURCE_DATE_EPOCH), so a build of a commit is reproducible.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=/usr/local/go/bin:$PATH
[ $# = 3 ] || { echo "usage: $0 VERSION BIN DIST" >&2; exit 2; }
export VERSION=$1
BIN=$2
dist=$3
[ -n "$VERSION" ] || { echo "deb: no version (scripts/version.sh failed above)" >&2; exit 1; }
for b in hubd hubtui; do
  [ -x "$BIN/$b" ] || { echo "deb: $BIN/$b is missing: run make build" >&2; exit 1; }
done
export ARCH=${ARCH:-$(dpkg --print-architecture)}
export MAINTAINER=${MAINTAINER:-hubd maintainers <hubd@users.noreply.github.com>}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
STAGE=$(mktemp -d)
export STAGE
trap 'rm -rf "$STAGE"' EXIT

go run ./scripts/deb/render -out "$STAGE" -version "$VERSION" -date "$SOURCE_DATE_EPOCH" -maintainer "$MAINTAINER"
# As dh_strip does: the C linker's .comment and .note sections have no use in the package (hubtui,
# linked by Go's own linker, has none).
mkdir "$STAGE/bin"
strip --remove-section=.comment --remove-section=.note -o "$STAGE/bin/hubd" "$BIN/hubd"
cp "$BIN/hubtui" "$STAGE/bin/hubtui"
mkdir -p "$dist"
out="$dist/hubd_${VERSION}_${ARCH}.deb"
go tool nfpm package --config scripts/deb/nfpm.yaml --packager deb --target "$out" >/dev/null
echo "$out"
