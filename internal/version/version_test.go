package version

import "testing"

func TestResolve(t *testing.T) {
	vcs := func() (map[string]string, bool) {
		return map[string]string{"vcs.revision": "0123456789abcdef0123", "vcs.time": "2026-12-01T10:00:00Z", "vcs.modified": "true"}, true
	}
	none := func() (map[string]string, bool) { return nil, false }
	cases := []struct {
		name             string
		v, c, d          string
		bi               func() (map[string]string, bool)
		wantV, wantC, wD string
		str              string
	}{
		{"stamped", "1.4.0", "fedcba9876543210fedc", "2026-12-07T00:00:00Z", vcs, "1.4.0", "fedcba9876543210fedc", "2026-12-07T00:00:00Z", "1.4.0 (fedcba987654, 2026-12-07T00:00:00Z)"},
		{"go install: commit from the toolchain", "", "", "", vcs, "dev", "0123456789abcdef0123-dirty", "2026-12-01T10:00:00Z", "dev (0123456789ab-dirty, 2026-12-01T10:00:00Z)"},
		{"nothing known", "", "", "", none, "dev", "", "", "dev"},
		{"version only stamped", "1.5.0-3-gabc", "", "", vcs, "1.5.0-3-gabc", "0123456789abcdef0123-dirty", "2026-12-01T10:00:00Z", "1.5.0-3-gabc (0123456789ab-dirty, 2026-12-01T10:00:00Z)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			i := resolve(tc.v, tc.c, tc.d, tc.bi)
			if i.Version != tc.wantV || i.Commit != tc.wantC || i.Date != tc.wD {
				t.Fatalf("resolve = %+v; want version %q commit %q date %q", i, tc.wantV, tc.wantC, tc.wD)
			}
			if got := i.String(); got != tc.str {
				t.Fatalf("String() = %q; want %q", got, tc.str)
			}
			if i.Go == "" || i.Platform == "" {
				t.Fatalf("Go/Platform empty: %+v", i)
			}
		})
	}
}
