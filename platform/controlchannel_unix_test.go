//go:build unix

package platform

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestControlSocketIsOwnerOnlyAndReplacesStaleOne(t *testing.T) {
	path := filepath.Join(testTempDir(t), "run", "control.sock")
	ln, err := ListenControl(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := ListenControl(path); err == nil || !strings.Contains(err.Error(), "another runner") {
		t.Errorf("second listener: %v, want 'another runner'", err)
	}
	accepted := make(chan struct{})
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
		close(accepted)
	}()
	c, err := DialControl(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	<-accepted
	// A killed runner leaves its socket file behind.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	ln2, err := ListenControl(path)
	if err != nil {
		t.Fatalf("listen over a stale socket: %v", err)
	}
	ln2.Close()

	plain := filepath.Join(testTempDir(t), "not-a-socket")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ListenControl(plain); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("listen over a regular file: %v, want 'not a socket'", err)
	}
}
