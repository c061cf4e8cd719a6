#!/usr/bin/env bash
# Authenticode-signs a Windows file (runner.exe, the MSI) in place with
# osslsigncode, when a code-signing certificate is given; otherwise does
# nothing. The key never appears on a command line.
#
#   SIGN_PKCS12=cert.pfx [SIGN_PASSWORD=…]        a PKCS#12 file, or
#   SIGN_CERT=cert.pem SIGN_KEY=key.pem [SIGN_PASSWORD=…]   PEM files
#   SIGN_TIMESTAMP_URL=http://timestamp.example.com   RFC 3161 timestamp server
#                                                 (release builds: without it the
#                                                 signature dies with the certificate)
# Usage: sign.sh FILE DESCRIPTION
set -euo pipefail
file=$1 desc=$2
if [ -z "${SIGN_PKCS12:-}" ] && [ -z "${SIGN_CERT:-}" ]; then
  exit 0
fi
args=(sign -h sha256 -n "$desc" -i "https://github.com/labrunner/labrunner")
if [ -n "${SIGN_PKCS12:-}" ]; then
  args+=(-pkcs12 "$SIGN_PKCS12")
else
  if [ -z "${SIGN_KEY:-}" ]; then
    echo "sign.sh: SIGN_CERT is set but SIGN_KEY is not: give the certificate's private key (PEM)" >&2
    exit 2
  fi
  args+=(-certs "$SIGN_CERT" -key "$SIGN_KEY")
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -n "${SIGN_PASSWORD:-}" ]; then
  (umask 077 && printf '%s' "$SIGN_PASSWORD" >"$tmp/pass")
  args+=(-readpass "$tmp/pass")
fi
if [ -n "${SIGN_TIMESTAMP_URL:-}" ]; then
  args+=(-ts "$SIGN_TIMESTAMP_URL")
fi
osslsigncode "${args[@]}" -in "$file" -out "$tmp/signed" >"$tmp/log" 2>&1 || {
  cat "$tmp/log" >&2
  echo "sign.sh: osslsigncode could not sign $file" >&2
  exit 1
}
mv "$tmp/signed" "$file"
echo "signed $file" >&2
