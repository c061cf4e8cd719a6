package runner

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/provisioner"
	"github.com/labrunner/labrunner/provisioner/client"
)

func TestLinkRegistersWithEC2Identity(t *testing.T) {
	key, certPEM := linkEC2KeyPair(t)
	e := newLinkEnv(t, func(c *provisioner.Config) {
		c.EC2Certificates = map[string]string{"eu-west-1": certPEM}
		c.EC2Accounts = []string{"123456789012"}
	})
	e.pool("hello", linkTaskQueue)
	doc := `{
  "accountId" : "123456789012",
  "availabilityZone" : "eu-west-1a",
  "imageId" : "ami-0fedcba9876543210",
  "instanceId" : "i-0aaaabbbbccccdddd",
  "instanceType" : "c5.2xlarge",
  "region" : "eu-west-1"
}`
	sum := sha256.Sum256([]byte(doc))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	imds := httptest.NewServer(linkIMDS(doc, base64.StdEncoding.EncodeToString(sig)+"\n", map[string]string{"Name": "win-ci-3", "team": "releng"}))
	defer imds.Close()

	facts, ec2, err := MachineRegistration(e.ctx(), imds.URL)
	if err != nil || ec2 == nil {
		t.Fatalf("MachineRegistration = %v, %v", ec2, err)
	}
	host, _ := os.Hostname()
	if facts.Hostname != host || facts.InstanceType != "c5.2xlarge" || facts.Tags["team"] != "releng" {
		t.Fatalf("facts %+v", facts)
	}
	statePath := filepath.Join(e.dir, "link.json")
	l, _ := e.newLink(statePath, func(c *LinkConfig) { c.Facts, c.EC2 = facts, ec2 })
	run := e.start(l)
	if st := l.Status(); st.Identity != "ec2" {
		t.Fatalf("identity %q", st.Identity)
	}
	m := e.machine(l.MachineID())
	f := m.Facts
	if f.InstanceID != "i-0aaaabbbbccccdddd" || f.Region != "eu-west-1" || f.AMI != "ami-0fedcba9876543210" || f.InstanceType != "c5.2xlarge" ||
		f.AvailabilityZ != "eu-west-1a" || f.Tags["Name"] != "win-ci-3" || f.Tags["team"] != "releng" || m.PoolID != "hello" {
		t.Fatalf("registered facts %+v (pool %q)", f, m.PoolID)
	}

	// After a stop and start, the instance registers again: same machine,
	// fresh token.
	run.stop()
	<-run.done
	_, oldToken, _ := l.session()
	l2, _ := e.newLink(statePath, func(c *LinkConfig) { c.Facts, c.EC2 = facts, ec2 })
	e.start(l2)
	linkEventually(t, "the restarted instance to register again", func() bool {
		_, tok, _ := l2.session()
		return tok != oldToken
	})
	if l2.MachineID() != l.MachineID() {
		t.Fatalf("restarted instance became %q, want %q", l2.MachineID(), l.MachineID())
	}

	// Off EC2, nothing answers: plain facts, no identity.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nowhere := "http://" + ln.Addr().String()
	ln.Close()
	facts, ec2, err = MachineRegistration(e.ctx(), nowhere)
	if err != nil || ec2 != nil || facts.InstanceID != "" || facts.Hostname != host {
		t.Fatalf("off EC2: %+v, %v, %v", facts, ec2, err)
	}
	if _, err := NewProvisionerLink(LinkConfig{URL: e.url, StatePath: filepath.Join(e.dir, "x.json"), Facts: facts, Snapshot: func() client.HeartbeatRequest { return client.HeartbeatRequest{} }, Handle: func(context.Context, client.Directive) error { return nil }}); err == nil || !strings.Contains(err.Error(), "enrollmentToken") {
		t.Fatalf("no token and no EC2 identity: %v, want an error naming enrollmentToken", err)
	}
}

// linkEC2KeyPair is a key and self-signed certificate standing in for
// AWS's regional signing certificate.
func linkEC2KeyPair(t *testing.T) (*rsa.PrivateKey, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test AWS"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// linkIMDS serves IMDSv2: a PUT grants the token every GET must carry.
func linkIMDS(doc, sig string, tags map[string]string) http.Handler {
	const token = "link-imds-token"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" && r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") != "" {
			_, _ = io.WriteString(w, token)
			return
		}
		if r.Method != http.MethodGet || r.Header.Get("X-aws-ec2-metadata-token") != token {
			http.Error(w, "", http.StatusUnauthorized)
			return
		}
		switch p := r.URL.Path; {
		case p == "/latest/dynamic/instance-identity/document":
			_, _ = io.WriteString(w, doc)
		case p == "/latest/dynamic/instance-identity/signature":
			_, _ = io.WriteString(w, sig)
		case p == "/latest/meta-data/tags/instance":
			var keys []string
			for k := range tags {
				keys = append(keys, k)
			}
			_, _ = io.WriteString(w, strings.Join(keys, "\n"))
		case strings.HasPrefix(p, "/latest/meta-data/tags/instance/"):
			if v, ok := tags[strings.TrimPrefix(p, "/latest/meta-data/tags/instance/")]; ok {
				_, _ = io.WriteString(w, v)
				return
			}
			http.NotFound(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}

// TestProvisionerConfigSection: the `runner.provisioner` keys parse, bad
// values are named, and LinkConfig fills the link's settings.
