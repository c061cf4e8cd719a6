package main

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labrunner/labrunner/provisioner"
)

// TestServeConfigHistoryAndBridges reads the history settings, the
// replica's name and the bridges from the file, and a bad bridge is
// refused by name when the provisioner starts.
func TestServeConfigHistoryAndBridges(t *testing.T) {
	path := writeFile(t, "c.yaml", "db: x.db\nhistoryInterval: 30s\nhistoryRetention: 72h\nreplicaId: prov-1\n"+
		"bridges:\n  - {name: bbb-1, url: 'http://bridge-1:8090'}\n  - {name: bbb-2, url: 'bridge-2:8090'}\n")
	fc, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := fc.toConfig(slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HistoryInterval != 30*time.Second || cfg.HistoryRetention != 72*time.Hour || cfg.ReplicaID != "prov-1" ||
		len(cfg.Bridges) != 2 || cfg.Bridges[0] != (provisioner.BridgeEndpoint{Name: "bbb-1", URL: "http://bridge-1:8090"}) {
		t.Fatalf("toConfig = %+v", cfg)
	}
	cfg.DB = filepath.Join(t.TempDir(), "prov.db")
	if _, err := provisioner.New(cfg); err == nil || !strings.Contains(err.Error(), "bridges[1].url") {
		t.Fatalf("a bridge URL without a scheme: %v, want an error naming bridges[1].url", err)
	}
	cfg.Bridges = cfg.Bridges[:1]
	cfg.HistoryRetention = time.Second
	if _, err := provisioner.New(cfg); err == nil || !strings.Contains(err.Error(), "historyRetention") {
		t.Fatalf("retention shorter than the interval: %v", err)
	}
}
