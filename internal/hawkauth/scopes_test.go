package hawkauth

import "testing"

func TestHasScopes(t *testing.T) {
	temp := &Identity{ClientID: "c", Issuer: "c", Scopes: []string{"queue:claim-work:proj/*", "queue:worker-id:lab/mac-01"}}
	restricted := &Identity{ClientID: "c", Scopes: temp.Scopes, AuthorizedScopes: []string{"queue:claim-work:proj/pool"}}
	nothing := &Identity{ClientID: "c", AuthorizedScopes: []string{}}
	cases := []struct {
		name     string
		id       *Identity
		required []string
		want     bool
	}{
		{"permanent holds everything", &Identity{ClientID: "c"}, []string{"secrets:get:x", "queue:create-task:a/b"}, true},
		{"star pattern", temp, []string{"queue:claim-work:proj/pool", "queue:worker-id:lab/mac-01"}, true},
		{"star matches the prefix only", temp, []string{"queue:claim-work:other/pool"}, false},
		{"exact scope is not a prefix", temp, []string{"queue:worker-id:lab/mac-012"}, false},
		{"authorizedScopes restrict", restricted, []string{"queue:worker-id:lab/mac-01"}, false},
		{"authorizedScopes grant", restricted, []string{"queue:claim-work:proj/pool"}, true},
		{"empty authorizedScopes leave only anonymous", nothing, []string{"queue:claim-work:proj/pool"}, false},
		{"everyone is anonymous", nothing, []string{"assume:anonymous"}, true},
		{"nil identity is anonymous", nil, []string{"assume:anonymous"}, true},
		{"nil identity holds nothing else", nil, []string{"queue:claim-work:proj/pool"}, false},
		{"nothing required", nil, nil, true},
	}
	for _, tc := range cases {
		if got := tc.id.HasScopes(tc.required...); got != tc.want {
			t.Errorf("%s: HasScopes(%q) = %v, want %v", tc.name, tc.required, got, tc.want)
		}
	}
}
