#!/usr/bin/env bash
# Tags a release of the three modules at HEAD with Go's tags for modules in
# subdirectories: vX.Y.Z (github.com/servekit/servekit), beam/vX.Y.Z
# (…/beam) and deploy/vX.Y.Z (…/deploy). beam/go.mod must require the root
# at the version released with it, so a commit "release vX.Y.Z" first sets
# that requirement, and go.work's replace that keeps the workspace on this
# checkout's root. Nothing is pushed: the git push it prints sends the
# commit and the three tags together.
#
# Usage: scripts/release.sh vX.Y.Z
set -euo pipefail
v=${1:?usage: $0 vX.Y.Z}
if [[ ! $v =~ ^v[01]\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
  echo "release: $v: want v0.Y.Z or v1.Y.Z (a v2 needs /v2 module paths first)" >&2
  exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mod=github.com/servekit/servekit

if [ -n "$(git status --porcelain)" ]; then
  echo "release: the working tree has changes: commit or stash them first" >&2
  exit 1
fi
for t in "$v" "beam/$v" "deploy/$v"; do
  if git rev-parse -q --verify "refs/tags/$t" >/dev/null; then
    echo "release: tag $t exists" >&2
    exit 1
  fi
done

old=$(sed -n "s|^[[:space:]]*$mod \(v[^[:space:]]*\).*|\1|p" beam/go.mod)
[ -n "$old" ] || { echo "release: beam/go.mod does not require $mod" >&2; exit 1; }
if [ "$old" != "$v" ]; then
  (cd beam && go mod edit -require "$mod@$v")
  GOWORK=$root/go.work go work edit -dropreplace "$mod@$old" -replace "$mod@$v=./" # make exports GOWORK=off
  GOWORK=$root/go.work go list ./beam/... >/dev/null # the workspace still resolves
  git commit -q -m "release $v: beam requires $mod $v" beam/go.mod go.work
fi
git tag "$v"
git tag "beam/$v"
git tag "deploy/$v"
echo "Tagged $v, beam/$v and deploy/$v at $(git rev-parse --short HEAD). Publish with:"
echo "  git push origin HEAD $v beam/$v deploy/$v"
