#!/usr/bin/env bash
# Makes sure Chromium is installed for the dashboard's browser tests
# (e2e/dashboard): installs Debian's `chromium` package with apt-get when no
# chromium binary is on the PATH. The version is pinned so that a test run
# is reproducible. Debian's security archive keeps only the newest build, so
# a pinned build disappears at the next Chromium security update: the script
# then installs the newest build of the same major version (the same
# Chromium milestone, so the same DevTools protocol), says so, and fails only
# when no build of that major version is offered; bump the pin then.
# Idempotent; an already installed chromium of another version is kept and
# reported.
set -euo pipefail

# Debian 12 (bookworm-security) build.
CHROMIUM_VERSION=${CHROMIUM_VERSION:-156.0.8078.129-1~deb12u1}

log() { echo "ensure-chromium: $*" >&2; }

installed() { dpkg-query -W -f='${Status} ${Version}\n' chromium 2>/dev/null | awk '$3 == "installed" {print $4}'; }

if command -v chromium >/dev/null 2>&1; then
  have=$(installed || true)
  if [ -n "$have" ] && [ "$have" != "$CHROMIUM_VERSION" ]; then
    log "chromium $have is installed (the pinned version is $CHROMIUM_VERSION); keeping it"
  fi
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  log "no chromium on the PATH and no apt-get to install it: install Chromium by hand"
  exit 1
fi

log "apt-get update"
DEBIAN_FRONTEND=noninteractive apt-get update -qq
candidates=$(apt-cache madison chromium 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}')
version=$CHROMIUM_VERSION
if ! grep -qxF "$version" <<<"$candidates"; then
  major=${CHROMIUM_VERSION%%.*}
  # madison lists the newest first.
  version=$(grep -m1 "^$major\." <<<"$candidates" || true)
  if [ -z "$version" ]; then
    log "chromium $CHROMIUM_VERSION is no longer offered by apt, nor any $major.x build; offered: $(tr "\n" " " <<<"$candidates")"
    log "set CHROMIUM_VERSION in scripts/ensure-chromium.sh to one of them"
    exit 1
  fi
  log "chromium $CHROMIUM_VERSION is no longer offered by apt (replaced by a security update); installing $version, the newest $major.x build: bump CHROMIUM_VERSION to it"
fi
log "installing chromium $version"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  "chromium=$version" "chromium-common=$version" fonts-liberation >/dev/null
log "chromium $(installed) installed"
