#!/usr/bin/env bash
# Builds labrunner's installers (`make installers` runs this):
#   $OUT/labrunner-<version>-x64.msi   Windows x64 MSI, wixl from installers/windows/labrunner.wxs;
#                                      runner.exe and the MSI Authenticode-signed when SIGN_* are
#                                      set (installers/windows/sign.sh)
#   $OUT/labrunner-<version>.pkg       macOS pkg, unsigned preview (installers/macos/build-pkg.sh);
#                                      release pkgs are signed and notarised on a Mac
#                                      (installers/macos/sign-notarize.sh, docs/install-macos.md)
# Usage: installers/build.sh [msi|pkg|all]
# Environment: VERSION (default from git describe), LDFLAGS (the Makefile's
# version stamp), OUT (default dist), SIGN_* (see windows/sign.sh),
# RUNNER_EXE (a runner.exe to package instead of building one).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
OUT=${OUT:-dist}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null | sed 's/^v//' || echo dev)}
LDFLAGS=${LDFLAGS:-}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# An MSI version is three numbers that grow from build to build: a tag's
# x.y.z, else 0.0.<commits on this branch> (so untagged builds upgrade each
# other in order).
msi_version() {
  if [[ $VERSION =~ ^([0-9]+)\.([0-9]+)\.([0-9]+) ]]; then
    echo "${BASH_REMATCH[1]}.${BASH_REMATCH[2]}.${BASH_REMATCH[3]}"
  else
    echo "0.0.$(git rev-list --count HEAD 2>/dev/null || echo 0)"
  fi
}

build_msi() {
  local msi=$OUT/labrunner-$VERSION-x64.msi v
  v=$(msi_version)
  if [ -n "${RUNNER_EXE:-}" ]; then # tests build it once for several MSIs
    cp "$RUNNER_EXE" "$work/runner.exe"
  else
    GOOS=windows GOARCH=amd64 CGO_ENABLED=0 go build -trimpath -ldflags "$LDFLAGS" -o "$work/runner.exe" ./cmd/runner
  fi
  installers/windows/sign.sh "$work/runner.exe" "labrunner runner"
  cp installers/windows/labrunner.wxs "$work/"
  # wixl resolves File/@Source relative to the working directory.
  (cd "$work" && wixl -a x64 -D Version="$v" -D DisplayVersion="$VERSION" -D RunnerExe=runner.exe -o labrunner.msi labrunner.wxs)
  # What wixl 0.101 cannot write: the enrolment's command line (it holds
  # the token) hidden from the log (msidbCustomActionTypeHideTarget,
  # 0x2000), and the command-line properties passed to the elevated
  # install when a non-administrator or an MDM starts it.
  msibuild "$work/labrunner.msi" -q "UPDATE \`CustomAction\` SET \`Type\` = 11282 WHERE \`Action\` = 'EnrollRunner'"
  msibuild "$work/labrunner.msi" -q "UPDATE \`Property\` SET \`Value\` = 'WIX_DOWNGRADE_DETECTED;WIX_UPGRADE_DETECTED;PROVISIONER_URL;ENROLLMENT_TOKEN;POOL_HINT;TAGS;TASK_USER;REMOVE_DATA' WHERE \`Property\` = 'SecureCustomProperties'"
  installers/windows/sign.sh "$work/labrunner.msi" "labrunner $VERSION"
  mv "$work/labrunner.msi" "$msi"
  echo "$msi (MSI version $v)"
}

build_pkg() {
  installers/macos/build-pkg.sh "$OUT/labrunner-$VERSION.pkg"
}

case $what in
  msi) build_msi ;;
  pkg) build_pkg ;;
  all) build_msi; build_pkg ;;
  *) echo "usage: $0 [msi|pkg|all]" >&2; exit 2 ;;
esac
