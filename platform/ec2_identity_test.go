package platform

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeIMDS serves IMDSv2 on 127.0.0.1 as EC2 does: a PUT grants a token,
// and every GET without that token is refused.
type fakeIMDS struct {
	doc, sig string
	tags     map[string]string // nil: tags not exposed (404)
	failOnce map[string]int    // path → 503s before the real answer

	mu   sync.Mutex
	seen []string
}

const fakeIMDSToken = "AQAEAFake-imds-token=="

func (f *fakeIMDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.seen = append(f.seen, r.Method+" "+r.URL.EscapedPath())
	fail := f.failOnce[r.URL.Path] > 0
	if fail {
		f.failOnce[r.URL.Path]--
	}
	f.mu.Unlock()
	if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
		if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
			http.Error(w, "missing ttl", http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte(fakeIMDSToken))
		return
	}
	if r.Method != http.MethodGet || r.Header.Get("X-aws-ec2-metadata-token") != fakeIMDSToken {
		http.Error(w, "", http.StatusUnauthorized)
		return
	}
	if fail {
		http.Error(w, "", http.StatusServiceUnavailable)
		return
	}
	switch p := r.URL.Path; {
	case p == "/latest/dynamic/instance-identity/document":
		_, _ = w.Write([]byte(f.doc))
	case p == "/latest/dynamic/instance-identity/signature":
		_, _ = w.Write([]byte(f.sig))
	case p == "/latest/meta-data/tags/instance" && f.tags != nil:
		var keys []string
		for k := range f.tags {
			keys = append(keys, k)
		}
		_, _ = w.Write([]byte(strings.Join(keys, "\n")))
	case strings.HasPrefix(p, "/latest/meta-data/tags/instance/") && f.tags != nil:
		v, ok := f.tags[strings.TrimPrefix(p, "/latest/meta-data/tags/instance/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(v))
	default:
		http.NotFound(w, r)
	}
}

// The document keeps AWS's pretty-printing: the signature covers it byte
// for byte.
const testIdentityDoc = `{
  "accountId" : "123456789012",
  "architecture" : "x86_64",
  "availabilityZone" : "us-east-1b",
  "imageId" : "ami-0abcdef1234567890",
  "instanceId" : "i-0123456789abcdef0",
  "instanceType" : "m5.xlarge",
  "region" : "us-east-1"
}`

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestEC2IdentityReadsDocumentSignatureAndTags(t *testing.T) {
	f := &fakeIMDS{
		doc: testIdentityDoc, sig: "c2lnbmF0dXJl\n",
		tags:     map[string]string{"Name": "win-builder-7", "pool/role": "ci"},
		failOnce: map[string]int{"/latest/dynamic/instance-identity/document": 2},
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	inst, err := EC2Identity(testCtx(t), srv.URL)
	if err != nil {
		t.Fatalf("EC2Identity: %v", err)
	}
	if inst.Document != testIdentityDoc {
		t.Fatalf("document changed on the way:\n%s", inst.Document)
	}
	if inst.Signature != "c2lnbmF0dXJl" {
		t.Fatalf("signature %q, want it without the trailing newline", inst.Signature)
	}
	if inst.InstanceID != "i-0123456789abcdef0" || inst.Region != "us-east-1" || inst.InstanceType != "m5.xlarge" ||
		inst.ImageID != "ami-0abcdef1234567890" || inst.AvailabilityZone != "us-east-1b" || inst.AccountID != "123456789012" {
		t.Fatalf("document fields not read: %+v", inst)
	}
	if len(inst.Tags) != 2 || inst.Tags["Name"] != "win-builder-7" || inst.Tags["pool/role"] != "ci" {
		t.Fatalf("tags = %v", inst.Tags)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seen[0] != "PUT /latest/api/token" {
		t.Fatalf("first request %q, want the IMDSv2 token PUT", f.seen[0])
	}
	if f.failOnce["/latest/dynamic/instance-identity/document"] != 0 {
		t.Fatal("the 503s were not retried")
	}
	found := false
	for _, s := range f.seen {
		found = found || s == "GET /latest/meta-data/tags/instance/pool%2Frole"
	}
	if !found {
		t.Fatalf("tag key with a slash not escaped in its path: %v", f.seen)
	}
}

func TestEC2IdentityWithoutTagsInMetadata(t *testing.T) {
	srv := httptest.NewServer(&fakeIMDS{doc: testIdentityDoc, sig: "c2ln"})
	defer srv.Close()
	inst, err := EC2Identity(testCtx(t), srv.URL)
	if err != nil {
		t.Fatalf("EC2Identity: %v", err)
	}
	if inst.Tags != nil {
		t.Fatalf("tags %v, want none when tags are not in metadata", inst.Tags)
	}
}

func TestEC2IdentityNotOnEC2(t *testing.T) {
	// Nothing listens: the usual lab machine.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	// Something accepts but never answers: the token request times out.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()

	// An HTTP service that grants no IMDSv2 token.
	v1 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "", http.StatusForbidden)
	}))
	defer v1.Close()

	for name, ep := range map[string]string{"closed": closed, "silent": "http://" + silent.Addr().String(), "no token": v1.URL} {
		inst, err := EC2Identity(testCtx(t), ep)
		if !errors.Is(err, ErrNotEC2) || inst != nil {
			t.Errorf("%s: EC2Identity = %+v, %v; want ErrNotEC2", name, inst, err)
		}
	}
}

func TestEC2IdentityBadDocumentIsAnError(t *testing.T) {
	srv := httptest.NewServer(&fakeIMDS{doc: `{"region":"us-east-1"}`, sig: "c2ln"})
	defer srv.Close()
	_, err := EC2Identity(testCtx(t), srv.URL)
	if err == nil || errors.Is(err, ErrNotEC2) || !strings.Contains(err.Error(), "instanceId") {
		t.Fatalf("err = %v, want a document error naming instanceId", err)
	}
}
