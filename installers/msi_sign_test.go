package installers

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMSISignedWhenACertificateIsGiven builds with a throwaway self-signed
// code-signing certificate: osslsigncode verifies runner.exe (inside the
// MSI) and the MSI against it, and refuses each after a one-byte change.
func TestMSISignedWhenACertificateIsGiven(t *testing.T) {
	dir := t.TempDir()
	cert, key := throwawayCodeSigningCert(t, dir)
	out := filepath.Join(dir, "dist")
	run(t, repoRoot(t), []string{"VERSION=1.2.4", "OUT=" + out, "RUNNER_EXE=" + runnerExe(t), "SIGN_CERT=" + cert, "SIGN_KEY=" + key, "SIGN_PKCS12="},
		"installers/build.sh", "msi")
	msi := filepath.Join(out, "labrunner-1.2.4-x64.msi")

	run(t, "", nil, "msiextract", "-C", filepath.Join(dir, "x"), msi)
	exe := filepath.Join(dir, "x", "labrunner", "runner.exe") // msiextract drops the ProgramFiles64Folder level
	for _, f := range []string{exe, msi} {
		if out, ok := verify(t, cert, f); !ok {
			t.Errorf("%s: osslsigncode verify failed:\n%s", filepath.Base(f), out)
		}
		bad := tamperedCopy(t, f)
		if out, ok := verify(t, cert, bad); ok {
			t.Errorf("%s with one byte changed still verifies:\n%s", filepath.Base(f), out)
		}
	}
	// The signature does not get in the way of reading the package.
	if rows := msiTable(t, msi, "File"); len(rows) != 1 {
		t.Errorf("signed MSI: File table %v", rows)
	}
}

// verify runs osslsigncode verify against cert alone as the trusted root.
func verify(t *testing.T, cert, file string) (string, bool) {
	t.Helper()
	out, err := exec.Command("osslsigncode", "verify", "-CAfile", cert, "-in", file).CombinedOutput()
	return string(out), err == nil && strings.Contains(string(out), "Succeeded")
}

// tamperedCopy copies f with the byte in its middle inverted (inside the
// code of the exe, inside the cabinet of the MSI).
func tamperedCopy(t *testing.T, f string) string {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	p := f + ".tampered"
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// throwawayCodeSigningCert writes a self-signed code-signing certificate
// and its key (PEM) into dir.
func throwawayCodeSigningCert(t *testing.T, dir string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "labrunner test code signing", Organization: []string{"labrunner tests"}},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		IsCA:        true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "sign.crt"), filepath.Join(dir, "sign.key")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}
