package main

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labrunner/labrunner/provisioner"
)

// TestServeConfigDashboardPublicURL reads dashboardPublicUrl from the
// file, and the provisioner refuses at start one that is not an origin,
// naming the key.
func TestServeConfigDashboardPublicURL(t *testing.T) {
	fc, err := loadConfig(writeFile(t, "c.yaml", "db: x.db\ndashboardPublicUrl: https://prov.lab.example.com\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := fc.toConfig(slog.Default())
	if err != nil || cfg.DashboardPublicURL != "https://prov.lab.example.com" {
		t.Fatalf("toConfig = %q, %v", cfg.DashboardPublicURL, err)
	}
	cfg.DB = filepath.Join(t.TempDir(), "prov.db")
	cfg.DashboardPublicURL = "prov.lab.example.com"
	if _, err := provisioner.New(cfg); err == nil || !strings.Contains(err.Error(), "dashboardPublicUrl") {
		t.Fatalf("a public URL without a scheme: %v, want an error naming dashboardPublicUrl", err)
	}
}
