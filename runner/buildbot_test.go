package runner

import (
	"strings"
	"testing"
	"time"
)

func TestSourceProblems(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		want []string // substrings, one per expected problem
	}{
		{"default is taskcluster", Config{}, nil},
		{"taskcluster needs no bridge", Config{Source: "taskcluster"}, nil},
		{"both complete", Config{Source: "both", Buildbot: BuildbotConfig{BridgeURL: "https://bridge", Builders: []string{"b"}}}, nil},
		{"unknown source", Config{Source: "jenkins"}, []string{"runner.source"}},
		{"buildbot without bridge or builders", Config{Source: "buildbot"}, []string{"runner.buildbot.bridgeURL", "runner.buildbot.builders"}},
		{"empty builder name", Config{Source: "both", Buildbot: BuildbotConfig{BridgeURL: "http://b", Builders: []string{""}}}, []string{"empty builder name"}},
		{"kill grace set", Config{Source: "buildbot", Buildbot: BuildbotConfig{BridgeURL: "http://b", Builders: []string{"b"}, KillGrace: Duration{Duration: time.Second}}}, nil},
		{"kill grace not a duration", Config{Buildbot: BuildbotConfig{KillGrace: Duration{bad: "soon"}}}, []string{"runner.buildbot.killGrace"}},
		{"kill grace negative", Config{Source: "both", Buildbot: BuildbotConfig{BridgeURL: "http://b", Builders: []string{"b"}, KillGrace: Duration{Duration: -time.Second}}}, []string{"runner.buildbot.killGrace"}},
		{"provisioner supplies builders", Config{Source: "buildbot", Provisioner: ProvisionerConfig{URL: "https://prov"}, Buildbot: BuildbotConfig{BridgeURL: "http://b"}}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := c.cfg.sourceProblems()
			if len(got) != len(c.want) {
				t.Fatalf("problems = %q, want %d naming %q", got, len(c.want), c.want)
			}
			for i, w := range c.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d = %q, want it to name %q", i, got[i], w)
				}
			}
		})
	}
}
