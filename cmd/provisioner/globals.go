package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// globalFlags are the flags every API command shares.
type globalFlags struct {
	url, token string
	json       bool
}

// client builds the API client from the flags and environment.
func (g *globalFlags) client() (*client.Client, error) {
	if g.url == "" {
		return nil, errors.New("no provisioner URL: pass --url or set LABRUNNER_PROVISIONER_URL")
	}
	tok := g.token
	if tok == "" {
		tok = os.Getenv("LABRUNNER_PROVISIONER_TOKEN")
	}
	if tok == "" {
		return nil, errors.New("no token: pass --token or set LABRUNNER_PROVISIONER_TOKEN (an admin token for changes, read-only for lists)")
	}
	op := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		op = u.Username
	}
	return client.New(g.url, tok, client.WithOperator(op)), nil
}

// ctx bounds one CLI call.
func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 2*time.Minute)
}

// printJSON writes v indented.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("print JSON: %w", err)
	}
	return nil
}

// ago renders how long before now t was, for tables.
func ago(t *time.Time) string {
	if t == nil {
		return "-"
	}
	d := time.Since(*t).Round(time.Second)
	if d < 0 {
		return "in " + (-d).String()
	}
	return d.String() + " ago"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
