package provisioner

// A pool's black-hole settings: their defaults and their validation. Why
// each default is what it is: docs/provisioner.md, "Black holes".

import (
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// Defaults of a pool's blackHole settings.
const (
	defaultBHWindow         = 24 * time.Hour
	defaultBHRecentRuns     = 20
	defaultBHMinRuns        = 5
	defaultBHMinFailureRate = 0.5
	defaultBHSignificance   = 1e-6
	defaultBHFastFraction   = 0.1
	defaultBHMinEvidence    = 3
	defaultBHPoolCeiling    = 0.5
	defaultBHMaxShare       = 0.1
	defaultBHQuarantineFor  = 24 * time.Hour
	maxBHRecentRuns         = 1000
	maxBHWindow             = 31 * 24 * time.Hour
)

// blackHolePolicy is a pool's black-hole settings with defaults applied.
type blackHolePolicy struct {
	window, quarantineFor           time.Duration
	recentRuns, minRuns, minEvident int
	minFailureRate, significance    float64
	fastFraction, poolCeiling       float64
	maxShare                        float64
}

// effectiveBlackHole applies the defaults to a pool's settings; ok is
// false when detection is off for the pool. The spec was validated when
// stored, so parse errors cannot happen here and fall back to defaults.
func effectiveBlackHole(p *client.BlackHolePolicy) (pol blackHolePolicy, ok bool) {
	pol = blackHolePolicy{
		window: defaultBHWindow, quarantineFor: defaultBHQuarantineFor,
		recentRuns: defaultBHRecentRuns, minRuns: defaultBHMinRuns, minEvident: defaultBHMinEvidence,
		minFailureRate: defaultBHMinFailureRate, significance: defaultBHSignificance,
		fastFraction: defaultBHFastFraction, poolCeiling: defaultBHPoolCeiling, maxShare: defaultBHMaxShare,
	}
	if p == nil {
		return pol, true
	}
	if d, err := time.ParseDuration(p.Window); err == nil && d > 0 {
		pol.window = d
	}
	if d, err := time.ParseDuration(p.QuarantineFor); err == nil && d > 0 {
		pol.quarantineFor = d
	}
	setInt := func(dst *int, v int) {
		if v > 0 {
			*dst = v
		}
	}
	setInt(&pol.recentRuns, p.RecentRuns)
	setInt(&pol.minRuns, p.MinRuns)
	setInt(&pol.minEvident, p.MinEvidence)
	setFloat := func(dst *float64, v float64) {
		if v > 0 {
			*dst = v
		}
	}
	setFloat(&pol.minFailureRate, p.MinFailureRate)
	setFloat(&pol.significance, p.Significance)
	setFloat(&pol.fastFraction, p.FastFraction)
	setFloat(&pol.poolCeiling, p.PoolFailureCeiling)
	setFloat(&pol.maxShare, p.MaxQuarantinedShare)
	return pol, !p.Disabled
}

// validateBlackHole checks a pool's blackHole settings; sent says which
// fields the body carried, so that a 0 sent is refused rather than read
// as the default.
func validateBlackHole(p *client.BlackHolePolicy, sent present) *apiError {
	if p == nil {
		return nil
	}
	for _, d := range []struct {
		name, value string
		max         time.Duration
	}{{"window", p.Window, maxBHWindow}, {"quarantineFor", p.QuarantineFor, maxQuarantineFor}} {
		if d.value == "" && !sent["blackHole."+d.name] {
			continue
		}
		if v, err := time.ParseDuration(d.value); err != nil || v <= 0 || v > d.max {
			return badField("blackHole."+d.name, "%q is not a positive duration up to %s such as 24h: leave it out for the default", d.value, d.max)
		}
	}
	for _, c := range []struct {
		name      string
		v, lo, hi int
	}{{"recentRuns", p.RecentRuns, 1, maxBHRecentRuns}, {"minRuns", p.MinRuns, 1, maxBHRecentRuns}, {"minEvidence", p.MinEvidence, 1, maxBHRecentRuns}} {
		if (c.v != 0 || sent["blackHole."+c.name]) && (c.v < c.lo || c.v > c.hi) {
			return badField("blackHole."+c.name, "must be from %d to %d, not %d: leave it out for the default", c.lo, c.hi, c.v)
		}
	}
	pol, _ := effectiveBlackHole(p)
	if pol.minRuns > pol.recentRuns {
		return badField("blackHole.minRuns", "%d is more than recentRuns %d: a machine would never be judged", pol.minRuns, pol.recentRuns)
	}
	for _, c := range []struct {
		name string
		v    float64
		hi   float64
	}{{"minFailureRate", p.MinFailureRate, 1}, {"significance", p.Significance, 0.5}, {"fastFraction", p.FastFraction, 1},
		{"poolFailureCeiling", p.PoolFailureCeiling, 1}, {"maxQuarantinedShare", p.MaxQuarantinedShare, 1}} {
		if (c.v != 0 || sent["blackHole."+c.name]) && (c.v <= 0 || c.v > c.hi) {
			return badField("blackHole."+c.name, "must be more than 0 and at most %g, not %g: leave it out for the default", c.hi, c.v)
		}
	}
	if len(p.Canary) > 0 || sent["blackHole.canary"] {
		if _, aerr := canaryRunTime(p.Canary); aerr != nil {
			return aerr
		}
	}
	return nil
}
