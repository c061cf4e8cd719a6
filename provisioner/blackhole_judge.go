package provisioner

// The black-hole judgement of one pool, from its reported runs alone (no
// store, no clock), those that count (blackhole_evidence.go): each
// machine's latest runs (every tail of them from
// minRuns to recentRuns) against the rest of the pool over the same
// period, on three signals (docs/provisioner.md, "Black holes"):
//
//	failure rate     k of n failed, k/n ≥ minFailureRate, and P(X ≥ k) ≤ α
//	                 for X ~ Binomial(n, the pool's failure rate without it)
//	fast failures    f failed in under fastFraction of the pool's median
//	                 duration for their kind, P(X ≥ f) ≤ α/10 against the
//	                 pool's rate of fast failures
//	passed elsewhere r of its failures completed on another machine,
//	                 P(X ≥ r) ≤ α/10 against the pool's rate of the same
//
// and nobody when the rest of the pool fails at least poolCeiling of its
// runs (a bad push) or when more than half of the machines with runs in
// the window would be flagged.

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// floorRate is the lowest pool rate a machine is compared with: a pool
// that had no fast failure today would otherwise make the first one
// significant.
const floorRate = 0.01

// minMedianRuns is the fewest completed runs of a kind that give a median
// duration for the fast-failure signal.
const minMedianRuns = 5

// verdict is the judgement of a machine flagged as a black hole.
type verdict struct {
	machineID                        string
	runs, failures, fast, passedElse int
	poolRuns, poolFailures           int
	poolRate, p                      float64
	median                           time.Duration
	lastID                           int64
	signals                          []string
}

// reason says why in numbers, for the quarantine record.
func (v verdict) reason(pol blackHolePolicy) string {
	parts := []string{fmt.Sprintf("%d of its last %d runs failed; pool %s", v.failures, v.runs, percent(v.poolRate))}
	if v.passedElse > 0 {
		parts = append(parts, fmt.Sprintf("%d of them passed on another machine", v.passedElse))
	}
	if v.fast > 0 && v.median > 0 {
		parts = append(parts, fmt.Sprintf("%d failed in under %s of the pool's median (%s)", v.fast, percent(pol.fastFraction), v.median.Round(time.Second)))
	}
	return "black hole: " + strings.Join(parts, "; ") + fmt.Sprintf(" (%s, p=%.1g)", strings.Join(v.signals, ", "), v.p)
}

func percent(f float64) string {
	if f > 0 && f < 0.095 {
		return fmt.Sprintf("%.1f %%", 100*f)
	}
	return fmt.Sprintf("%.0f %%", 100*f)
}

// judgement is a pool's outcome: the flagged machines, strongest first,
// or why nobody is (note).
type judgement struct {
	flagged []verdict
	note    string
}

// tally counts runs and their signals.
type tally struct{ n, failed, fast, passed int }

func (t *tally) add(f runFacts) {
	if !f.counted {
		return
	}
	t.n++
	if f.failed {
		t.failed++
	}
	if f.fast {
		t.fast++
	}
	if f.passedElse {
		t.passed++
	}
}

func (t tally) minus(o tally) tally {
	return tally{t.n - o.n, t.failed - o.failed, t.fast - o.fast, t.passed - o.passed}
}

// judgePool judges the machines of candidates (machine → the last report
// id already judged) on runs, the pool's reports ordered by finish; the
// runs of machines in excluded (quarantined ones) are left out of the
// pool's rates, so that a known black hole does not make the others look
// good, or a pool-wide failure out of one broken machine. Each
// machine is judged on every tail of its latest recentRuns runs from
// minRuns on (its last 5, its last 6, ...), so that a machine that turned
// bad a few runs ago is not hidden by its healthy past; the strongest
// tail decides.
func judgePool(pol blackHolePolicy, runs []RunRecord, candidates map[string]int64, excluded map[string]bool) judgement {
	facts, medians := runSignals(pol, runs, excluded)
	// suffix[i] counts runs[i:]: the pool over a period starting at run i
	// is a subtraction.
	suffix := make([]tally, len(runs)+1)
	for i := len(runs) - 1; i >= 0; i-- {
		suffix[i] = suffix[i+1]
		if !excluded[runs[i].MachineID] {
			suffix[i].add(facts[i])
		}
	}
	byMachine := map[string][]int{} // the machine's counted runs
	for i := range runs {
		if facts[i].counted {
			byMachine[runs[i].MachineID] = append(byMachine[runs[i].MachineID], i)
		}
	}
	var out judgement
	judged, active := 0, 0
	ids := make([]string, 0, len(candidates))
	for id := range candidates {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		all := byMachine[id]
		if len(all) > 0 {
			active++
		}
		// own[j] counts the machine's runs all[j:], judged or not, to
		// take them out of the pool's tally.
		own := make([]tally, len(all)+1)
		for j := len(all) - 1; j >= 0; j-- {
			own[j] = own[j+1]
			own[j].add(facts[all[j]])
		}
		first := len(all) // first judged position in all
		for first > 0 && runs[all[first-1]].ID > candidates[id] && len(all)-first < pol.recentRuns {
			first--
		}
		if len(all)-first < pol.minRuns {
			continue
		}
		judged++
		var best *verdict
		for j := len(all) - pol.minRuns; j >= first; j-- {
			mine := own[j]
			rest := suffix[all[j]].minus(own[j])
			if rest.n < pol.minRuns {
				continue // nothing to compare with
			}
			poolRate := float64(rest.failed) / float64(rest.n)
			if poolRate >= pol.poolCeiling {
				out.note = fmt.Sprintf("the rest of the pool fails %s of its runs: a pool-wide failure, nobody quarantined", percent(poolRate))
				continue
			}
			v := verdict{machineID: id, runs: mine.n, failures: mine.failed, fast: mine.fast, passedElse: mine.passed,
				poolRuns: rest.n, poolFailures: rest.failed, poolRate: poolRate, p: 1, lastID: runs[all[len(all)-1]].ID}
			signal := func(name string, k, least int, rate, alpha float64) {
				if k < least {
					return
				}
				if p := binomialTail(k, mine.n, max(rate, floorRate)); p <= alpha {
					v.signals = append(v.signals, name)
					v.p = min(v.p, p)
				}
			}
			if float64(mine.failed)/float64(mine.n) >= pol.minFailureRate {
				signal("failure rate", mine.failed, 1, poolRate, pol.significance)
			}
			// Without the failure-share gate, a signal must be ten times
			// stronger.
			signal("fast failures", mine.fast, pol.minEvident, float64(rest.fast)/float64(rest.n), pol.significance/10)
			signal("passed elsewhere", mine.passed, pol.minEvident, float64(rest.passed)/float64(rest.n), pol.significance/10)
			if len(v.signals) > 0 && (best == nil || v.p < best.p) {
				for _, i := range all[j:] {
					if facts[i].fast {
						v.median = medians[runs[i].Kind]
						break
					}
				}
				best = &v
			}
		}
		if best != nil {
			out.flagged = append(out.flagged, *best)
		}
	}
	if len(out.flagged) > 0 && 2*len(out.flagged) > active {
		out.note = fmt.Sprintf("%d of the %d machines with runs would be black holes (%d judged): a pool-wide failure, nobody quarantined", len(out.flagged), active, judged)
		out.flagged = nil
	}
	sort.SliceStable(out.flagged, func(i, j int) bool { return out.flagged[i].p < out.flagged[j].p })
	return out
}

// binomialTail is P(X ≥ k) for X ~ Binomial(n, p), summed in log space so
// that small probabilities keep their precision.
func binomialTail(k, n int, p float64) float64 {
	if k <= 0 {
		return 1
	}
	if k > n {
		return 0
	}
	if p >= 1 {
		return 1
	}
	lp, lq := math.Log(p), math.Log1p(-p)
	lgn, _ := math.Lgamma(float64(n + 1))
	sum := 0.0
	for i := k; i <= n; i++ {
		lgi, _ := math.Lgamma(float64(i + 1))
		lgni, _ := math.Lgamma(float64(n - i + 1))
		sum += math.Exp(lgn - lgi - lgni + float64(i)*lp + float64(n-i)*lq)
	}
	return min(sum, 1)
}
