// Package installers holds the sources of labrunner's installers and the
// tests of what they build: the Windows MSI (installers/windows, built
// with wixl) and the macOS pkg (installers/macos). installers/build.sh
// builds both into dist/ (`make installers`, which also runs these
// tests); docs/install-windows.md and docs/install-macos.md describe them.
// It has no Go code of its own.
package installers
