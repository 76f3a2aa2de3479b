#!/usr/bin/env bash
# modernc.org/sqlite must be used with exactly the modernc.org/libc version
# its own go.mod pins; a drifting libc breaks sqlite at run time.
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH
sqlite=$(go list -m -f '{{.Version}}' modernc.org/sqlite)
want=$(go mod download -json "modernc.org/sqlite@$sqlite" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p' | xargs grep -E '^\s*modernc.org/libc ' | awk '{print $2}')
have=$(go list -m -f '{{.Version}}' modernc.org/libc)
if [ "$want" != "$have" ]; then
  echo "modernc.org/libc is $have but modernc.org/sqlite $sqlite pins $want: run go get modernc.org/libc@$want" >&2
  exit 1
fi
echo "pins: modernc.org/sqlite $sqlite with modernc.org/libc $have"
