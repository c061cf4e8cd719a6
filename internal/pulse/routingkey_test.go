package pulse

import "testing"

var routingKeyCases = []struct {
	pattern, key string
	want         bool
}{
	// Literal words.
	{"a.b.c", "a.b.c", true},
	{"a.b.c", "a.b", false},
	{"a.b", "a.b.c", false},
	{"a.b.c", "a.x.c", false},
	{"abc", "ab", false},
	// `*` is exactly one word.
	{"*", "a", true},
	{"*", "a.b", false},
	{"*", "", false},
	{"a.*", "a.b", true},
	{"a.*", "a", false},
	{"a.*", "a.b.c", false},
	{"*.b.*", "a.b.c", true},
	{"*.*", "a", false},
	// `#` is zero or more words, wherever it stands.
	{"#", "", true},
	{"#", "a", true},
	{"#", "a.b.c", true},
	{"#.c", "c", true},
	{"#.c", "a.b.c", true},
	{"#.c", "a.b.d", false},
	{"a.#", "a", true},
	{"a.#", "a.b.c", true},
	{"a.#", "b.a", false},
	{"a.#.c", "a.c", true},
	{"a.#.c", "a.b.c", true},
	{"a.#.c", "a.b.b.c", true},
	{"a.#.c", "a.b.b.d", false},
	{"#.#", "", true},
	{"#.#", "a.b", true},
	{"#.*", "", false},
	{"#.*", "a", true},
	{"*.#", "a.b.c", true},
	{"#.b.#", "b", true},
	{"#.b.#", "a.b.c", true},
	{"#.b.#", "a.c", false},
	{"a.#.#.b", "a.b", true},
	{"a.#.*.#.b", "a.b", false},
	{"a.#.*.#.b", "a.x.b", true},
	// Wildcards only count as whole words.
	{"a*", "ab", false},
	{"a*", "a*", true},
	{"a#", "a.b", false},
	{"#a", "a", false},
	// Empty words are words.
	{"", "", true},
	{"", "a", false},
	{"a..c", "a..c", true},
	{"a.*.c", "a..c", true},
	{"a.#.c", "a..c", true},
	{"*", ".", false},
	{"*.*", ".", true},
	{"a.", "a.", true},
	{"a.", "a", false},
	{"a.*", "a.", true},
	{".a", ".a", true},
	{"*.a", ".a", true},
	{"#", "..", true},
	// Taskcluster's task-pending primary key and a route.* CC key.
	{"primary.*.*.*.*.prov.wt.#", "primary.T1.0._._.prov.wt._.G1._", true},
	{"primary.*.*.*.*.prov.wt.#", "primary.T1.0._._.prov.other._.G1._", false},
	{"route.index.#", "route.index.project.x", true},
}

func TestMatchRoutingKey(t *testing.T) {
	for _, c := range routingKeyCases {
		if got := MatchRoutingKey(c.pattern, c.key); got != c.want {
			t.Errorf("MatchRoutingKey(%q, %q) = %v, want %v", c.pattern, c.key, got, c.want)
		}
	}
}

func TestMatchRoutingKeyManyHashesStaysFast(t *testing.T) {
	// A naive backtracking matcher takes exponential time here; the test
	// fails by timing out rather than by a clock assertion.
	pattern := "#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.z"
	key := "a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a"
	if MatchRoutingKey(pattern, key) {
		t.Fatal("matched a key that lacks the final word")
	}
}
