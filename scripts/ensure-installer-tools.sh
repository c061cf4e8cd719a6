#!/usr/bin/env bash
# Installs what `make installers` needs, with apt-get, when it is missing
# or not at the pinned upstream version: wixl and msiinfo (msitools) for the
# MSI, osslsigncode for Authenticode, bsdtar (libarchive-tools) and cpio for
# the macOS pkg, shellcheck for its scripts. Idempotent.
#
# Each pin is "package upstream-version": the Debian revision may move
# (security updates), the upstream version may not without a change here.
set -euo pipefail

pins=(
  "wixl 0.101"
  "msitools 0.101"
  "osslsigncode 2.9 2.5"
  "libarchive-tools 3.6.2"
  "cpio 2.13"
  "shellcheck 0.9.0"
)

# upstream PACKAGE-VERSION: "0.101+repack-1" -> "0.101", "2.9-1~bpo12+1" -> "2.9"
upstream() { local v=${1#*:}; v=${v%%-*}; echo "${v%%+*}"; }

need=()
for pin in "${pins[@]}"; do
  read -r pkg versions <<<"$pin"
  have=$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$pkg" 2>/dev/null || true)
  ok=
  if [[ $have == installed\ * ]]; then
    for want in $versions; do [[ $(upstream "${have#installed }") == "$want" ]] && ok=1; done
  fi
  [ -n "$ok" ] && continue
  # The newest candidate whose upstream version is pinned.
  cand=
  while read -r v; do
    for want in $versions; do [[ $(upstream "$v") == "$want" ]] && { cand=$v; break 2; }; done
  done < <(apt-cache madison "$pkg" 2>/dev/null | awk -F'|' '{gsub(/ /,"",$2); print $2}')
  if [ -z "$cand" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq
    while read -r v; do
      for want in $versions; do [[ $(upstream "$v") == "$want" ]] && { cand=$v; break 2; }; done
    done < <(apt-cache madison "$pkg" 2>/dev/null | awk -F'|' '{gsub(/ /,"",$2); print $2}')
  fi
  if [ -z "$cand" ]; then
    echo "ensure-installer-tools: no $pkg at version $versions in the apt sources; add it or change the pin in $0" >&2
    exit 1
  fi
  need+=("$pkg=$cand")
done

if [ ${#need[@]} -gt 0 ]; then
  echo "ensure-installer-tools: apt-get install ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
