package devqueue

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"github.com/taskcluster/taskcluster/v44/clients/client-go/tcqueue"
)

// running creates and claims a task and returns its id and a client with
// the run's credentials.
func (h *harness) running() (string, *tcqueue.Queue) {
	h.t.Helper()
	tq := newQueueID()
	id := h.create(h.def(tq))
	c := h.claim(tq, "w1")
	return id, h.runQueue(c.Credentials)
}

func (h *harness) s3(rq *tcqueue.Queue, id, name, contentType string) tcqueue.S3ArtifactResponse {
	h.t.Helper()
	res, err := rq.CreateArtifact(id, "0", name, postArtifact(h.t, tcqueue.S3ArtifactRequest{
		StorageType: "s3",
		ContentType: contentType,
		Expires:     tcclient.Time(h.clock.Now().Add(24 * time.Hour)),
	}))
	if err != nil {
		h.t.Fatalf("createArtifact s3 %s: %v", name, err)
	}
	var s3 tcqueue.S3ArtifactResponse
	if err := json.Unmarshal(*res, &s3); err != nil {
		h.t.Fatal(err)
	}
	return s3
}

func put(t *testing.T, url, contentType, encoding string, body []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PUT %s: %s", url, resp.Status)
	}
}

func TestS3ArtifactRoundTrip(t *testing.T) {
	h := start(t, nil)
	id, rq := h.running()

	s3 := h.s3(rq, id, "public/build/target.txt", "text/plain")
	if !strings.HasPrefix(s3.PutURL, h.url+blobPrefix) || s3.ContentType != "text/plain" {
		t.Fatalf("s3 response = %+v", s3)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte("hello from the task\n"))
	_ = zw.Close()
	put(t, s3.PutURL, "text/plain", "gzip", gz.Bytes())

	// Anonymous download of a public artifact, through the redirect URL.
	buf, ct, n, err := h.anon.DownloadArtifactToBuf(id, 0, "public/build/target.txt")
	if err != nil {
		t.Fatalf("DownloadArtifactToBuf: %v", err)
	}
	if string(buf) != "hello from the task\n" || ct != "text/plain" || n != int64(len(buf)) {
		t.Errorf("downloaded %q (%s, %d bytes)", buf, ct, n)
	}
	// Latest run too.
	if buf, _, _, err = h.anon.DownloadArtifactToBuf(id, -1, "public/build/target.txt"); err != nil || string(buf) != "hello from the task\n" {
		t.Errorf("latest download = %q, %v", buf, err)
	}
	// getArtifact redirects (303) to the same content with the stored headers.
	ga, err := h.anon.GetArtifact(id, "0", "public/build/target.txt")
	if err != nil {
		t.Fatalf("getArtifact: %v", err)
	}
	resp, err := http.Get(ga.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/plain" || !resp.Uncompressed {
		t.Errorf("blob served with Content-Type %q, transparently gunzipped=%v", resp.Header.Get("Content-Type"), resp.Uncompressed)
	}

	// Private artifacts need credentials.
	s3 = h.s3(rq, id, "private/secret.bin", "application/octet-stream")
	put(t, s3.PutURL, "application/octet-stream", "", []byte{1, 2, 3})
	_, _, _, err = h.anon.DownloadArtifactToBuf(id, 0, "private/secret.bin")
	expectFailure(t, err, 401, "AuthenticationFailed")
	buf, _, _, err = h.q.DownloadArtifactToBuf(id, 0, "private/secret.bin")
	if err != nil || !bytes.Equal(buf, []byte{1, 2, 3}) {
		t.Errorf("authenticated private download = %v, %v", buf, err)
	}
	// The upload URL does not download, and a made-up token finds nothing.
	if resp, err := http.Get(s3.PutURL); err != nil || resp.StatusCode == 200 {
		t.Errorf("GET on putUrl = %v, %v", resp.Status, err)
	}
	if resp, err := http.Get(h.url + blobPrefix + "0000"); err != nil || resp.StatusCode != 404 {
		t.Errorf("GET on unknown blob = %v, %v", resp.Status, err)
	}
}

func TestReferenceLinkAndErrorArtifacts(t *testing.T) {
	h := start(t, nil)
	id, rq := h.running()
	exp := tcclient.Time(h.clock.Now().Add(24 * time.Hour))

	if _, err := rq.CreateArtifact(id, "0", "public/logs/live.log", refArtifact(h, "https://example.com/live")); err != nil {
		t.Fatal(err)
	}
	ga, err := h.anon.GetArtifact(id, "0", "public/logs/live.log")
	if err != nil || ga.StorageType != "reference" || ga.URL != "https://example.com/live" {
		t.Fatalf("getArtifact reference = %+v, %v", ga, err)
	}
	// A link may replace a reference (generic-worker does this for live.log).
	s3 := h.s3(rq, id, "public/logs/live_backing.log", "text/plain")
	put(t, s3.PutURL, "text/plain", "", []byte("log line\n"))
	if _, err := rq.CreateArtifact(id, "0", "public/logs/live.log", postArtifact(t, tcqueue.LinkArtifactRequest{
		StorageType: "link", Artifact: "public/logs/live_backing.log", ContentType: "text/plain", Expires: exp,
	})); err != nil {
		t.Fatalf("link replacing reference: %v", err)
	}
	buf, _, _, err := h.anon.DownloadArtifactToBuf(id, 0, "public/logs/live.log")
	if err != nil || string(buf) != "log line\n" {
		t.Errorf("download through link = %q, %v", buf, err)
	}
	// Changing an s3 artifact into something else conflicts.
	_, err = rq.CreateArtifact(id, "0", "public/logs/live_backing.log", refArtifact(h, "https://example.com/other"))
	expectFailure(t, err, 409, "RequestConflict")

	// Link cycles are refused on fetch.
	for _, p := range [][2]string{{"public/a", "public/b"}, {"public/b", "public/a"}} {
		if _, err := rq.CreateArtifact(id, "0", p[0], postArtifact(t, tcqueue.LinkArtifactRequest{StorageType: "link", Artifact: p[1], Expires: exp})); err != nil {
			t.Fatal(err)
		}
	}
	_, err = h.anon.GetArtifact(id, "0", "public/a")
	expectFailure(t, err, 400, "InputError")

	// Error artifacts answer 424 with the reason.
	if _, err := rq.CreateArtifact(id, "0", "public/missing.zip", postArtifact(t, tcqueue.ErrorArtifactRequest{
		StorageType: "error", Reason: "file-missing-on-worker", Message: "no such file", Expires: exp,
	})); err != nil {
		t.Fatal(err)
	}
	_, err = h.anon.GetArtifact(id, "0", "public/missing.zip")
	var ae *tcclient.APICallException
	if err == nil || !errorAs(err, &ae) || ae.CallSummary.HTTPResponse.StatusCode != 424 || !strings.Contains(ae.CallSummary.HTTPResponseBody, "file-missing-on-worker") {
		t.Errorf("getArtifact on error artifact = %v", err)
	}
	_, _, _, err = h.anon.DownloadArtifactToBuf(id, 0, "public/missing.zip")
	if err == nil || !strings.Contains(err.Error(), "no such file: file-missing-on-worker") {
		t.Errorf("download of error artifact = %v", err)
	}

	// artifactInfo.
	info, err := h.anon.ArtifactInfo(id, "0", "public/missing.zip")
	if err != nil || info.StorageType != "error" || info.Name != "public/missing.zip" {
		t.Errorf("artifactInfo = %+v, %v", info, err)
	}
}

func TestCreateArtifactRules(t *testing.T) {
	h := start(t, nil)
	id, rq := h.running()
	now := h.clock.Now()

	// Expiry after the task's expires.
	_, err := rq.CreateArtifact(id, "0", "public/x", postArtifact(t, tcqueue.S3ArtifactRequest{StorageType: "s3", ContentType: "text/plain", Expires: tcclient.Time(now.Add(72 * time.Hour))}))
	f := expectFailure(t, err, 400, "InputError")
	if !strings.Contains(f.Message, "task expiration") {
		t.Errorf("message: %s", f.Message)
	}
	// Expiry in the past.
	_, err = rq.CreateArtifact(id, "0", "public/x", postArtifact(t, tcqueue.S3ArtifactRequest{StorageType: "s3", ContentType: "text/plain", Expires: tcclient.Time(now.Add(-time.Hour))}))
	expectFailure(t, err, 400, "InputError")
	// Unknown storage type fails the schema.
	_, err = rq.CreateArtifact(id, "0", "public/x", postArtifact(t, map[string]string{"storageType": "ftp", "expires": tcclient.Time(now.Add(time.Hour)).String()}))
	expectFailure(t, err, 400, "InputValidationError")
	// Without credentials.
	_, err = h.anon.CreateArtifact(id, "0", "public/x", refArtifact(h, "https://example.com"))
	expectFailure(t, err, 401, "AuthenticationFailed")

	// After completion: 409.
	if _, err := rq.ReportCompleted(id, "0"); err != nil {
		t.Fatal(err)
	}
	_, err = rq.CreateArtifact(id, "0", "public/late", refArtifact(h, "https://example.com"))
	expectFailure(t, err, 409, "RequestConflict")

	// Exception runs accept artifacts for 25 minutes.
	id2, rq2 := h.running()
	if _, err := rq2.ReportException(id2, "0", &tcqueue.TaskExceptionRequest{Reason: "internal-error"}); err != nil {
		t.Fatal(err)
	}
	// Moving the clock 25 minutes would make client-go's Hawk timestamps
	// stale, so the resolution time moves back instead.
	resolvedAgo := func(d time.Duration) {
		h.srv.mu.Lock()
		h.srv.tasks[id2].Runs[0].Resolved = h.clock.Now().Add(-d)
		h.srv.mu.Unlock()
	}
	resolvedAgo(24 * time.Minute)
	if _, err := h.q.CreateArtifact(id2, "0", "public/a", refArtifact(h, "https://example.com")); err != nil {
		t.Errorf("artifact 24 min after exception: %v", err)
	}
	resolvedAgo(26 * time.Minute)
	_, err = h.q.CreateArtifact(id2, "0", "public/b", refArtifact(h, "https://example.com"))
	expectFailure(t, err, 409, "RequestConflict")
}

func TestListArtifactsPaging(t *testing.T) {
	h := start(t, nil)
	id, rq := h.running()
	for i := 0; i < 5; i++ {
		if _, err := rq.CreateArtifact(id, "0", "public/f"+strconv.Itoa(i), refArtifact(h, "https://example.com")); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	token := ""
	for pages := 0; ; pages++ {
		res, err := h.anon.ListArtifacts(id, "0", token, "2")
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Artifacts) > 2 {
			t.Fatalf("page of %d with limit 2", len(res.Artifacts))
		}
		for _, a := range res.Artifacts {
			names = append(names, a.Name)
		}
		if token = res.ContinuationToken; token == "" {
			break
		}
		if pages > 5 {
			t.Fatal("paging does not end")
		}
	}
	if strings.Join(names, ",") != "public/f0,public/f1,public/f2,public/f3,public/f4" {
		t.Errorf("listed %v", names)
	}
	latest, err := h.anon.ListLatestArtifacts(id, "", "")
	if err != nil || len(latest.Artifacts) != 5 {
		t.Errorf("listLatestArtifacts = %+v, %v", latest, err)
	}
	_, err = h.anon.ListArtifacts(id, "3", "", "")
	expectFailure(t, err, 404, "ResourceNotFound")
}

func TestPrivateArtifactsNeedCredentialsEvenThroughLinks(t *testing.T) {
	h := start(t, nil)
	id, rq := h.running()
	s3 := h.s3(rq, id, "private/data.bin", "application/octet-stream")
	put(t, s3.PutURL, "application/octet-stream", "", []byte("secret"))
	exp := tcclient.Time(h.clock.Now().Add(24 * time.Hour))
	if _, err := rq.CreateArtifact(id, "0", "public/alias", postArtifact(t, tcqueue.LinkArtifactRequest{StorageType: "link", Artifact: "private/data.bin", Expires: exp})); err != nil {
		t.Fatal(err)
	}
	// A public link does not make its private target public.
	_, err := h.anon.GetArtifact(id, "0", "public/alias")
	expectFailure(t, err, 401, "AuthenticationFailed")
	if ga, err := h.q.GetArtifact(id, "0", "public/alias"); err != nil || ga.StorageType != "s3" {
		t.Errorf("authenticated getArtifact through link = %+v, %v", ga, err)
	}
	// A signed URL (bewit) works without an Authorization header.
	u, err := h.q.GetArtifact_SignedURL(id, "0", "private/data.bin", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u.String()) // follows the 303 to the blob
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := new(bytes.Buffer)
	_, _ = body.ReadFrom(resp.Body)
	if resp.StatusCode != 200 || body.String() != "secret" {
		t.Errorf("signed URL download = %s %q", resp.Status, body)
	}
}

func TestPrivateArtifactReadNeedsGetArtifactScope(t *testing.T) {
	h := start(t, nil)
	tq := newQueueID()
	d := h.def(tq)
	d.Scopes = []string{"queue:get-artifact:private/allowed/*"}
	id := h.create(d)
	c := h.claim(tq, "w1")
	rq := h.runQueue(c.Credentials)
	for _, name := range []string{"private/allowed/a.txt", "private/other.txt"} {
		s3 := h.s3(rq, id, name, "text/plain")
		put(t, s3.PutURL, "text/plain", "", []byte(name))
	}
	exp := tcclient.Time(h.clock.Now().Add(24 * time.Hour))
	if _, err := rq.CreateArtifact(id, "0", "private/allowed/link", postArtifact(t, tcqueue.LinkArtifactRequest{StorageType: "link", Artifact: "private/other.txt", Expires: exp})); err != nil {
		t.Fatal(err)
	}

	// The run's credentials hold the task's scopes.
	if _, err := rq.GetArtifact(id, "0", "private/allowed/a.txt"); err != nil {
		t.Errorf("getArtifact with queue:get-artifact:private/allowed/*: %v", err)
	}
	_, err := rq.GetArtifact(id, "0", "private/other.txt")
	f := expectFailure(t, err, 403, "InsufficientScopes")
	if !strings.Contains(f.Message, "queue:get-artifact:private/other.txt") {
		t.Errorf("403 message does not name the missing scope: %q", f.Message)
	}
	// A link's target needs its own scope.
	_, err = rq.GetArtifact(id, "0", "private/allowed/link")
	expectFailure(t, err, 403, "InsufficientScopes")

	// authorizedScopes narrow the credentials further.
	creds := tcclient.Credentials{ClientID: c.Credentials.ClientID, AccessToken: c.Credentials.AccessToken, Certificate: c.Credentials.Certificate,
		AuthorizedScopes: []string{"queue:create-artifact:" + id + "/0"}}
	_, err = quick(tcqueue.New(&creds, h.url)).GetArtifact(id, "0", "private/allowed/a.txt")
	expectFailure(t, err, 403, "InsufficientScopes")
	// Permanent credentials hold every scope.
	if _, err := h.q.GetArtifact(id, "0", "private/other.txt"); err != nil {
		t.Errorf("getArtifact with the root client: %v", err)
	}
}
