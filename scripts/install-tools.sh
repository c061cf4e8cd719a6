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
