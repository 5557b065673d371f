#!/usr/bin/env bash
# Checks that users can require every module of this repository, as the
# README's install section says: in a scratch copy of the working tree it
# tags a release with scripts/release.sh, then a module outside the
# repository, as a user would, runs go get on the root, beam and deploy at
# that version, builds against them (go list -deps resolves every package
# it imports), and go install -n each command (which refuses a module with
# replace directives). The go command fetches the copy over git, as it
# would fetch github.com/servekit/servekit: GOPRIVATE sends it there
# directly and a git insteadOf points it at the copy; every other module
# comes from the local module cache, so nothing is downloaded, and nothing
# is written outside a temporary folder (its own module cache included).
#
# `make test` runs it. Usage: scripts/check-modules.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mod=github.com/servekit/servekit
v=v0.99.0 # the release that the copy gets; never leaves it

tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
cache=$(go env GOMODCACHE)

# The working tree as a repository of its own (tracked and new files, not
# ignored ones), so uncommitted changes are checked too.
mkdir "$tmp/repo"
(cd "$root" && git ls-files -z -co --exclude-standard | tar --null -T - -cf -) | tar -x -C "$tmp/repo"
export GIT_AUTHOR_NAME=check GIT_AUTHOR_EMAIL=check@localhost GIT_COMMITTER_NAME=check GIT_COMMITTER_EMAIL=check@localhost
git -C "$tmp/repo" init -q
git -C "$tmp/repo" add -A
git -C "$tmp/repo" commit -q -m snapshot
"$tmp/repo/scripts/release.sh" "$v" >/dev/null

# The commands of the root and beam modules, listed in the copy's workspace.
mains() { GOFLAGS= GOWORK=$tmp/repo/go.work go list -f '{{if eq .Name "main"}}{{.ImportPath}}{{end}}' "$@"; }
cmds=$(
  cd "$tmp/repo"
  for d in cmd examples beam/cmd; do [ ! -d $d ] || mains ./$d/...; done
)

printf '[url "file://%s"]\n\tinsteadOf = https://%s\n' "$tmp/repo" "$mod" >"$tmp/gitconfig"
export GIT_CONFIG_GLOBAL=$tmp/gitconfig GIT_CONFIG_NOSYSTEM=1 GIT_ALLOW_PROTOCOL=file
export GOWORK=off GOFLAGS= GOPRIVATE=$mod GOSUMDB=off GOTOOLCHAIN=local
export GOPROXY=file://$cache/cache/download GOMODCACHE=$tmp/modcache

mkdir "$tmp/user"
cd "$tmp/user"
go mod init example.com/user >/dev/null 2>&1
cat >main.go <<'EOF'
package main

import (
	_ "github.com/servekit/servekit/backend/onnx"
	_ "github.com/servekit/servekit/beam/scoring"
	_ "github.com/servekit/servekit/serving/httpapi"
)

func main() {}
EOF
quiet() { "$@" >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; echo "check-modules: $* fails" >&2; exit 1; }; }
quiet go get "$mod@$v" "$mod/beam@$v" "$mod/deploy@$v"
for m in "$mod" "$mod/beam" "$mod/deploy"; do
  got=$(go list -m -f '{{.Version}}' "$m")
  [ "$got" = "$v" ] || { echo "check-modules: $m resolved to $got, want $v" >&2; exit 1; }
done
quiet go mod tidy # what a user runs next; it drops deploy, which nothing imports
quiet go list -deps ./...

# Every command installs with go install @version.
for c in $cmds; do
  quiet go install -n "$c@$v"
done
echo "check-modules: go get $mod, $mod/beam, $mod/deploy @$v and go install $(echo "$cmds" | wc -w) commands @$v work outside the repository"
