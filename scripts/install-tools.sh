#!/usr/bin/env bash
# Installs the Go tools that `make lint` and `make bench` use, at pinned
# versions, into .cache/tools (ignored by git). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=$PWD/.cache/tools
mkdir -p "$tools"

install() { # name module version
  local name=$1 module=$2 version=$3 stamp="$tools/.$1-$3"
  if [ -x "$tools/$name" ] && [ -f "$stamp" ]; then return; fi
  echo "install-tools: $module@$version" >&2
  GOBIN=$tools GOFLAGS= go install "$module@$version"
  rm -f "$tools/.$name-"*
  touch "$stamp"
}

install staticcheck honnef.co/go/tools/cmd/staticcheck v0.8.2

# Taskcluster's own CLI (client-shell), at the version of client-go in
# go.mod, for people submitting tasks by hand (`make taskcluster-cli`, see
# docs/devstack.md). Built in a module of its own: its dependencies are not
# labrunner's.
if [ "${1:-}" = taskcluster ]; then
  tcver=$(go list -m -f '{{.Version}}' github.com/taskcluster/taskcluster/v44)
  stamp="$tools/.taskcluster-$tcver"
  if [ ! -x "$tools/taskcluster" ] || [ ! -f "$stamp" ]; then
    echo "install-tools: taskcluster CLI $tcver" >&2
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && go mod init tcshell >/dev/null 2>&1 &&
      GOFLAGS= go get "github.com/taskcluster/taskcluster/v44/clients/client-shell@$tcver" &&
      GOFLAGS= go build -o "$tools/taskcluster" github.com/taskcluster/taskcluster/v44/clients/client-shell)
    rm -f "$tools/.taskcluster-"*
    touch "$stamp"
  fi
  echo "$tools/taskcluster"
fi
