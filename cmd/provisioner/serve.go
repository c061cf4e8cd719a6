package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/labrunner/labrunner/internal/stdlog"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"
	"gopkg.in/yaml.v3"

	"github.com/labrunner/labrunner/internal/pulse"
	"github.com/labrunner/labrunner/provisioner"
)

// fileConfig is the YAML of `serve --config`.
type fileConfig struct {
	Listen         string   `yaml:"listen"`
	DB             string   `yaml:"db"`
	RootURL        string   `yaml:"rootUrl"`
	AdminTokens    []string `yaml:"adminTokens"`
	ReadOnlyTokens []string `yaml:"readOnlyTokens"`
	// DashboardSecret signs dashboard sign-ins (same on every replica).
	DashboardSecret string `yaml:"dashboardSecret"`
	// DashboardPublicURL is the https:// address browsers reach the
	// dashboard at through a TLS-terminating proxy.
	DashboardPublicURL string `yaml:"dashboardPublicUrl"`
	Credentials        struct {
		Default *tcCreds           `yaml:"default"`
		Pools   map[string]tcCreds `yaml:"pools"`
	} `yaml:"credentials"`
	CredentialLifetime string `yaml:"credentialLifetime"`
	RenewBefore        string `yaml:"renewBefore"`
	EC2                struct {
		Accounts     []string          `yaml:"accounts"`
		Certificates map[string]string `yaml:"certificates"`
	} `yaml:"ec2"`
	PulseURL       string `yaml:"pulseUrl"`
	PulseQueue     string `yaml:"pulseQueue"`
	AssignInterval string `yaml:"assignInterval"`
	MoveInterval   string `yaml:"moveInterval"`
	OfflineAfter   string `yaml:"offlineAfter"`
	SizingWindow   string `yaml:"sizingWindow"`
	// HistoryInterval and HistoryRetention: the dashboard's history
	// samples; ReplicaID names this replica on the system map.
	HistoryInterval  string `yaml:"historyInterval"`
	HistoryRetention string `yaml:"historyRetention"`
	ReplicaID        string `yaml:"replicaId"`
	// RunRetention and DetectInterval: the black-hole detector's reports
	// and passes.
	RunRetention   string `yaml:"runRetention"`
	DetectInterval string `yaml:"detectInterval"`
	// Bridges are the bridge instances the system map and the "why"
	// page ask.
	Bridges []provisioner.BridgeEndpoint `yaml:"bridges"`
	TLS     struct {
		Cert string `yaml:"cert"`
		Key  string `yaml:"key"`
	} `yaml:"tls"`
}

type tcCreds struct {
	ClientID    string `yaml:"clientId"`
	AccessToken string `yaml:"accessToken"`
}

func (c *tcCreds) tc() tcclient.Credentials {
	return tcclient.Credentials{ClientID: c.ClientID, AccessToken: c.AccessToken}
}

func loadConfig(path string) (*fileConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read config (--config): %w", err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	var fc fileConfig
	if err := dec.Decode(&fc); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &fc, nil
}

// toConfig turns the file into provisioner.Config; durations are checked
// here so that a bad one names its key.
func (fc *fileConfig) toConfig(logger *slog.Logger) (provisioner.Config, error) {
	cfg := provisioner.Config{
		DB: fc.DB, RootURL: fc.RootURL, AdminTokens: fc.AdminTokens, ReadOnlyTokens: fc.ReadOnlyTokens,
		DashboardSecret: fc.DashboardSecret, DashboardPublicURL: fc.DashboardPublicURL,
		EC2Certificates: fc.EC2.Certificates, EC2Accounts: fc.EC2.Accounts, PulseQueue: fc.PulseQueue, Logger: logger,
		ReplicaID: fc.ReplicaID, Bridges: fc.Bridges,
	}
	if fc.Credentials.Default != nil {
		c := fc.Credentials.Default.tc()
		cfg.DefaultCredentials = &c
	}
	if len(fc.Credentials.Pools) > 0 {
		cfg.Credentials = map[string]tcclient.Credentials{}
		for id, c := range fc.Credentials.Pools {
			cfg.Credentials[id] = c.tc()
		}
	}
	for key, d := range map[string]struct {
		v   string
		dst *time.Duration
	}{
		"credentialLifetime": {fc.CredentialLifetime, &cfg.CredentialLifetime},
		"renewBefore":        {fc.RenewBefore, &cfg.RenewBefore},
		"assignInterval":     {fc.AssignInterval, &cfg.AssignInterval},
		"moveInterval":       {fc.MoveInterval, &cfg.MoveInterval},
		"offlineAfter":       {fc.OfflineAfter, &cfg.OfflineAfter},
		"sizingWindow":       {fc.SizingWindow, &cfg.SizingWindow},
		"historyInterval":    {fc.HistoryInterval, &cfg.HistoryInterval},
		"historyRetention":   {fc.HistoryRetention, &cfg.HistoryRetention},
		"runRetention":       {fc.RunRetention, &cfg.RunRetention},
		"detectInterval":     {fc.DetectInterval, &cfg.DetectInterval},
	} {
		if d.v == "" {
			continue
		}
		v, err := time.ParseDuration(d.v)
		if err != nil || v <= 0 {
			return cfg, fmt.Errorf("config %s: %q is not a positive duration such as 30s or 15m", key, d.v)
		}
		*d.dst = v
	}
	return cfg, nil
}

func newServeCommand() *cobra.Command {
	var configPath, db, listen string
	var verbose bool
	cmd := &cobra.Command{Use: "serve (--config FILE | --db URL --listen ADDR)", Short: "run the provisioner", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
		level := slog.LevelInfo
		if verbose {
			level = slog.LevelDebug
		}
		logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
		stdlog.Route(logger, slog.LevelDebug)
		fc := &fileConfig{}
		if configPath != "" {
			var err error
			if fc, err = loadConfig(configPath); err != nil {
				return err
			}
		}
		if db != "" {
			fc.DB = db
		}
		if listen != "" {
			fc.Listen = listen
		}
		if fc.Listen == "" {
			fc.Listen = "127.0.0.1:8080"
		}
		if env := os.Getenv("LABRUNNER_PROVISIONER_ADMIN_TOKENS"); env != "" {
			fc.AdminTokens = append(fc.AdminTokens, strings.Split(env, ",")...)
		}
		if env := os.Getenv("LABRUNNER_PROVISIONER_DASHBOARD_SECRET"); env != "" {
			fc.DashboardSecret = env
		}
		if fc.DB == "" {
			return errors.New("no database: pass --db (a SQLite path or postgres:// URL) or set db in --config")
		}
		cfg, err := fc.toConfig(logger)
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if fc.PulseURL != "" {
			bus, err := pulse.DialAMQP(ctx, fc.PulseURL, logger)
			if err != nil {
				return fmt.Errorf("connect to Pulse (pulseUrl): %w", err)
			}
			defer bus.Close()
			cfg.Pulse = bus
		}
		srv, err := provisioner.New(cfg)
		if err != nil {
			return err
		}
		defer srv.Close()
		ln, err := net.Listen("tcp", fc.Listen)
		if err != nil {
			return fmt.Errorf("listen on %s (--listen): %w", fc.Listen, err)
		}
		hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
		errc := make(chan error, 2)
		go func() {
			var err error
			if fc.TLS.Cert != "" {
				err = hs.ServeTLS(ln, fc.TLS.Cert, fc.TLS.Key)
			} else {
				err = hs.Serve(ln)
			}
			if !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve: %w", err)
			}
		}()
		go func() { errc <- srv.Run(ctx) }()
		logger.Info("provisioner listening", "addr", ln.Addr().String(), "tls", fc.TLS.Cert != "")
		srv.WarnInsecureDashboard(ln.Addr(), fc.TLS.Cert != "")
		select {
		case <-ctx.Done():
		case err := <-errc:
			if err != nil && !errors.Is(err, context.Canceled) {
				stop()
				return err
			}
		}
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return hs.Shutdown(shutdown)
	}}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "YAML config file (see docs/provisioner.md)")
	f.StringVar(&db, "db", "", "SQLite path or postgres:// URL (overrides the config)")
	f.StringVar(&listen, "listen", "", "address to serve on (default 127.0.0.1:8080)")
	f.BoolVar(&verbose, "verbose", false, "debug logs")
	return cmd
}
