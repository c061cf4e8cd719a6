package pulse

import "strings"

// MatchRoutingKey reports whether key matches the topic binding pattern with
// RabbitMQ's rules: both are split on "." into words (the empty string has
// no words, and "a..b" has an empty middle word), `*` matches exactly one
// word, `#` matches zero or more words, and `*` or `#` are wildcards only
// when they are a whole word.
func MatchRoutingKey(pattern, key string) bool {
	p, k := topicWords(pattern), topicWords(key)
	// can[j] reports whether p[i:] matches k[j:], computed from the last
	// pattern word backwards; dynamic programming keeps patterns with many
	// `#` words linear in len(p)*len(k) instead of exponential.
	can := make([]bool, len(k)+1)
	next := make([]bool, len(k)+1)
	can[len(k)] = true
	for i := len(p) - 1; i >= 0; i-- {
		next, can = can, next
		switch p[i] {
		case "#":
			can[len(k)] = next[len(k)]
			for j := len(k) - 1; j >= 0; j-- {
				can[j] = next[j] || can[j+1]
			}
		default:
			can[len(k)] = false
			for j := len(k) - 1; j >= 0; j-- {
				can[j] = (p[i] == "*" || p[i] == k[j]) && next[j+1]
			}
		}
	}
	return can[0]
}

// topicWords splits a routing key as RabbitMQ does: "" is zero words, not
// one empty word.
func topicWords(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ".")
}
