package tcproxy

import (
	"io"
	"net/http"
	"testing"
)

// BenchmarkProxyGetTask compares queue.task called directly with the same
// call through the proxy (signing, forwarding, streaming back), against
// the dev queue on loopback.
func BenchmarkProxyGetTask(b *testing.B) {
	f := newFixture(b, nil, "")
	get := func(b *testing.B, url string) {
		for b.Loop() {
			resp, err := http.Get(url)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("GET %s: %s", url, resp.Status)
			}
		}
	}
	b.Run("direct", func(b *testing.B) { get(b, f.stack.RootURL+"/api/queue/v1/task/"+f.taskID) })
	b.Run("proxy", func(b *testing.B) { get(b, f.proxy.URL()+"/api/queue/v1/task/"+f.taskID) })
}
