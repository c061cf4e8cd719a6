#!/bin/bash
# Turns the unsigned preview pkg into a release pkg. Runs ON A MAC ONLY
# (pkgbuild, productbuild, productsign, notarytool and stapler exist only
# there): it expands the preview, code-signs the runner with a "Developer
# ID Application" identity and the hardened runtime (notarisation refuses a
# pkg holding an unsigned executable), rebuilds the pkg with pkgbuild (which
# writes the Bom the Linux build cannot), wraps it in a product archive,
# signs it with a "Developer ID Installer" identity, notarises it and
# staples the ticket. docs/install-macos.md walks through it.
#
# Usage: sign-notarize.sh labrunner-<version>.pkg OUT.pkg
# Environment:
#   APP_SIGN_IDENTITY "Developer ID Application: Example Lab (TEAMID)" (in the keychain)
#   SIGN_IDENTITY     "Developer ID Installer: Example Lab (TEAMID)" (in the keychain)
#   NOTARY_PROFILE    a profile stored with `xcrun notarytool store-credentials`
set -euo pipefail
in=$1 out=$2
: "${APP_SIGN_IDENTITY:?set APP_SIGN_IDENTITY to your Developer ID Application identity}"
: "${SIGN_IDENTITY:?set SIGN_IDENTITY to your Developer ID Installer identity}"
: "${NOTARY_PROFILE:?set NOTARY_PROFILE to a notarytool keychain profile}"
if [ "$(uname -s)" != Darwin ]; then
  echo "sign-notarize.sh: this needs macOS (pkgbuild, productsign, notarytool, stapler)" >&2
  exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The preview's parts: the payload tree and the scripts; pkgbuild makes
# every file root:wheel (--ownership recommended).
pkgutil --expand "$in" "$work/expanded"
version=$(/usr/bin/xmllint --xpath 'string(/pkg-info/@version)' "$work/expanded/PackageInfo")
mkdir -p "$work/root" "$work/scripts"
(cd "$work/root" && gzip -dc "$work/expanded/Payload" | cpio -idm --quiet)
(cd "$work/scripts" && gzip -dc "$work/expanded/Scripts" | cpio -idm --quiet)

# Every Mach-O in the payload (the universal runner) is signed with the
# hardened runtime and a secure timestamp, as notarisation requires.
runner="$work/root/usr/local/labrunner/runner"
[ -f "$runner" ] || { echo "sign-notarize.sh: $in has no usr/local/labrunner/runner" >&2; exit 1; }
codesign --force --options runtime --timestamp --identifier org.labrunner.runner \
  --sign "$APP_SIGN_IDENTITY" "$runner"
codesign --verify --strict --verbose=2 "$runner"

pkgbuild --root "$work/root" --scripts "$work/scripts" --identifier org.labrunner.runner \
  --version "$version" --install-location / --ownership recommended "$work/component.pkg"
productbuild --package "$work/component.pkg" "$work/product.pkg"
productsign --sign "$SIGN_IDENTITY" "$work/product.pkg" "$out"
pkgutil --check-signature "$out"
xcrun notarytool submit "$out" --keychain-profile "$NOTARY_PROFILE" --wait
xcrun stapler staple "$out"
xcrun stapler validate "$out"
spctl --assess --type install -vv "$out"
echo "$out: signed, notarised and stapled"
