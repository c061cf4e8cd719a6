#!/usr/bin/env bash
# Makes Windows test binaries runnable on this Linux machine under Wine:
# installs wine64 and mingw (apt-get) when missing, creates the Wine prefix,
# reports Windows 10, and installs the bcryptprimitives.dll shim that Go
# needs under Wine 8.0. Idempotent; `make wintest` calls it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export WINEPREFIX=${WINEPREFIX:-$HOME/.wine-labrunner} WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
wine=/usr/lib/wine/wine64

# The pinned upstream version: the shim below and the tests' notes on what
# Wine can and cannot run are for Wine 8.0 (Debian 12's). The Debian
# revision may move (security updates); another upstream version needs a
# change here.
WINE_VERSION=${WINE_VERSION:-8.0}
apt() { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@"; }
# wine_candidate prints the newest wine64 version apt offers at WINE_VERSION.
wine_candidate() { apt-cache madison wine64 2>/dev/null | awk -F'|' '{gsub(/ /,"",$2); print $2}' | grep -m1 "^${WINE_VERSION}[~+.-]" || true; }

have=$(dpkg-query -W -f='${db:Status-Status} ${Version}' wine64 2>/dev/null || true)
if [[ $have != "installed $WINE_VERSION"[~+.-]* ]] || ! command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1; then
  cand=$(wine_candidate)
  if [ -z "$cand" ]; then
    apt update -qq
    cand=$(wine_candidate)
  fi
  if [ -z "$cand" ]; then
    echo "ensure-wine: no wine64 $WINE_VERSION in the apt sources; add it or change WINE_VERSION in $0" >&2
    exit 1
  fi
  echo "ensure-wine: installing wine64 $cand and mingw" >&2
  apt install -y -qq --no-install-recommends "wine64=$cand" gcc-mingw-w64-x86-64-win32 >/dev/null
fi

sys32=$WINEPREFIX/drive_c/windows/system32
if [ ! -f "$WINEPREFIX/.labrunner-ready" ]; then
  echo "ensure-wine: creating Wine prefix $WINEPREFIX" >&2
  "$wine" wineboot --init >/dev/null 2>&1
  "$wine" winecfg /v win10 >/dev/null 2>&1
  /usr/lib/wine/wineserver -w >/dev/null 2>&1 || true
fi
if [ ! -f "$sys32/bcryptprimitives.dll" ] || [ "$here/wine/bcryptprimitives.c" -nt "$sys32/bcryptprimitives.dll" ]; then
  tmp=$(mktemp -d)
  x86_64-w64-mingw32-gcc -O2 -shared -s -o "$tmp/bcryptprimitives.dll" "$here/wine/bcryptprimitives.c" -lbcrypt
  cp "$tmp/bcryptprimitives.dll" "$sys32/"
  rm -rf "$tmp"
fi
touch "$WINEPREFIX/.labrunner-ready"

# A wineserver and Wine's own processes (services.exe, winedevice, …) that
# the first test binary starts inherit its standard output: `go test` then
# waits a minute for a pipe that stays open after the tests passed ("Test
# I/O incomplete"), and fails the package. Start them here, detached, and
# keep the server for 15 minutes after its last client.
/usr/lib/wine/wineserver -p900 </dev/null >/dev/null 2>&1 || true # already running: fine
"$wine" wineboot </dev/null >/dev/null 2>&1 || true
