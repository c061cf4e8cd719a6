#!/usr/bin/env bash
# Builds the macOS pkg, unsigned, on Linux or macOS: a flat package (xar
# archive) holding PackageInfo, Payload (gzip'd cpio, odc format, files
# owned by root:wheel) and Scripts (preinstall, postinstall). It has no Bom:
# nothing on Linux writes one (no bomutils in Debian, no Go writer), so it
# is a preview that `pkgutil --expand` and our tests read; release pkgs are
# rebuilt with pkgbuild (which writes the Bom), signed and notarised on a
# Mac by sign-notarize.sh (docs/install-macos.md).
# Usage: build-pkg.sh OUT.pkg   (VERSION and LDFLAGS from the environment)
set -euo pipefail
out=$1
cd "$(dirname "$0")/../.."
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null | sed 's/^v//' || echo dev)}
LDFLAGS=${LDFLAGS:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for arch in amd64 arm64; do
  GOOS=darwin GOARCH=$arch CGO_ENABLED=0 go build -trimpath -ldflags "$LDFLAGS" -o "$work/runner-$arch" ./cmd/runner
done
GOOS='' GOARCH='' go run ./installers/macos/pkgroot -out "$work/root" -amd64 "$work/runner-amd64" -arm64 "$work/runner-arm64"
mkdir -p "$work/scripts" "$work/flat"
install -m 755 installers/macos/scripts/preinstall installers/macos/scripts/postinstall "$work/scripts/"

# cpio_of DIR: the odc cpio of DIR's tree, entries sorted, owned by 0:0.
cpio_of() { (cd "$1" && find . | LC_ALL=C sort | cpio -o --format odc --owner 0:0 --quiet | gzip -9n); }
cpio_of "$work/root" >"$work/flat/Payload"
cpio_of "$work/scripts" >"$work/flat/Scripts"

files=$(cd "$work/root" && find . | wc -l)
kbytes=$(du -sk "$work/root" | cut -f1)
cat >"$work/flat/PackageInfo" <<XML
<?xml version="1.0" encoding="utf-8"?>
<pkg-info format-version="2" identifier="org.labrunner.runner" version="$VERSION" install-location="/" auth="root" overwrite-permissions="true" relocatable="false" postinstall-action="none" generator-version="labrunner-build-pkg">
    <payload numberOfFiles="$files" installKBytes="$kbytes"/>
    <scripts>
        <preinstall file="./preinstall"/>
        <postinstall file="./postinstall"/>
    </scripts>
</pkg-info>
XML
# SHA-1 checksums: with SHA-256 bsdtar writes a header it cannot read back.
(cd "$work/flat" && bsdtar --format xar --options xar:compression=none,xar:checksum=sha1,xar:toc-checksum=sha1 \
  -cf "$work/out.pkg" PackageInfo Payload Scripts)
mv "$work/out.pkg" "$out"
echo "$out (unsigned preview, $(du -h "$out" | cut -f1))"
