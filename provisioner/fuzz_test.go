package provisioner

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzDecoders feeds arbitrary bodies to every request decoder. A decoder
// must never panic, must name a field or say what is wrong when it
// rejects, and what it accepts must survive a JSON round trip through the
// same decoder.
func FuzzDecoders(f *testing.F) {
	seeds := []string{
		`{"facts":{"hostname":"h","os":"darwin"},"enrollmentToken":"t"}`,
		`{"facts":{"hostname":"h","os":"windows","tags":{"gpu":"1"}},"ec2":{"document":"{}","signature":"c2ln"}}`,
		`{"state":"busy","currentTask":{"taskId":"T","runId":2},"health":[{"name":"disk","ok":true}],"counters":{"n":1}}`,
		`{"source":"taskcluster","taskQueueId":"p/w","maxCapacity":3,"constraints":{"osVersion":"14\\..*"}}`,
		`{"source":"buildbot","builders":["b"],"maxCapacity":1,"workerConfig":{"a":1}}`,
		`{"reason":"r","until":"2099-01-01T00:00:00Z"}`,
		`{"poolId":"p","reason":"r"}`,
		`{"kind":"enroll","uses":2,"expiresIn":"1h"}`,
		`{"state":`, `[]`, `null`, `{"a":1} x`, "\x00", `{"facts":{"cpus":1e400}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(name string, v any, aerr *apiError, again func([]byte) *apiError) {
			if aerr != nil {
				if aerr.status != 400 || aerr.msg == "" {
					t.Fatalf("%s: rejection %+v is not a 400 with a message", name, aerr)
				}
				return
			}
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%s: accepted value does not encode: %v", name, err)
			}
			if aerr := again(b); aerr != nil {
				t.Fatalf("%s: accepted %q but rejects its own encoding %s: %v", name, data, b, aerr)
			}
		}
		r, aerr := decodeRegister(data)
		check("register", r, aerr, func(b []byte) *apiError { _, e := decodeRegister(b); return e })
		h, aerr := decodeHeartbeat(data)
		check("heartbeat", h, aerr, func(b []byte) *apiError { _, e := decodeHeartbeat(b); return e })
		p, aerr := decodePoolSpec(data)
		check("pool", p, aerr, func(b []byte) *apiError { _, e := decodePoolSpec(b); return e })
		a, aerr := decodeAssign(data)
		check("assign", a, aerr, func(b []byte) *apiError { _, e := decodeAssign(b); return e })
		tr, _, aerr := decodeTokenRequest(data)
		check("token", tr, aerr, func(b []byte) *apiError { _, _, e := decodeTokenRequest(b); return e })
		if q, aerr := decodeQuarantine(data, now); aerr == nil {
			b, _ := json.Marshal(quarantineBody{Reason: q.Reason, Until: q.Until.Format(time.RFC3339Nano)})
			if _, aerr := decodeQuarantine(b, now); aerr != nil {
				t.Fatalf("quarantine: accepted %q but rejects %s: %v", data, b, aerr)
			}
		} else if aerr.status != 400 {
			t.Fatalf("quarantine: rejection %+v is not a 400", aerr)
		}
		_, _ = decodeAction(data)
	})
}
