package platform

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

func TestControlPipeServesHTTPAndIsExclusive(t *testing.T) {
	path := fmt.Sprintf(`\\.\pipe\labrunner-test-%d`, time.Now().UnixNano())
	ln, err := ListenControl(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, b)
	})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	switch second, err := ListenControl(path); {
	case err == nil && underWine():
		// Wine 8 ignores FILE_FLAG_FIRST_PIPE_INSTANCE.
		second.Close()
	case err == nil:
		second.Close()
		t.Errorf("second listener on %s succeeded; want 'another runner' error", path)
	case !strings.Contains(err.Error(), "another runner"):
		t.Errorf("second listener on %s: %v, want 'another runner' error", path, err)
	}

	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return DialControl(ctx, path)
	}}}
	// Several requests, so that more than one pipe instance is used and a
	// kept-alive connection carries more than one exchange.
	for i := range 3 {
		resp, err := client.Post("http://runner/v1/drain", "text/plain", strings.NewReader(fmt.Sprint(i)))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("POST /v1/drain %d", i); string(b) != want {
			t.Errorf("request %d: %q, want %q", i, b, want)
		}
	}
	client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Errorf("Serve returned %v", err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), time.Second)
	defer dcancel()
	if c, err := DialControl(dctx, path); err == nil {
		c.Close()
		t.Errorf("pipe still accepts connections after Close")
	}
}

func TestControlPipeACLAdmitsOnlyAdministratorsAndSystem(t *testing.T) {
	sd, err := windows.SecurityDescriptorFromString(controlPipeSDDL)
	if err != nil {
		t.Fatal(err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		t.Fatal(err)
	}
	admins, _ := windows.CreateWellKnownSid(windows.WinBuiltinAdministratorsSid)
	system, _ := windows.CreateWellKnownSid(windows.WinLocalSystemSid)
	var sids []*windows.SID
	for i := uint32(0); i < uint32(dacl.AceCount); i++ {
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &ace); err != nil {
			t.Fatal(err)
		}
		sids = append(sids, (*windows.SID)(unsafe.Pointer(&ace.SidStart)))
	}
	if len(sids) != 2 || !sids[0].Equals(admins) || !sids[1].Equals(system) {
		t.Errorf("DACL has %d entries %v; want exactly Administrators and SYSTEM", len(sids), sids)
	}
	if sd.String() == "" || !strings.HasPrefix(sd.String(), "D:P") {
		t.Errorf("DACL %q is not protected from inheritance", sd.String())
	}
}

func TestEnableShutdownPrivilege(t *testing.T) {
	if err := EnablePrivilege(SeShutdownPrivilege); err != nil {
		t.Fatalf("enable: %v", err)
	}
	on, err := PrivilegeEnabled(SeShutdownPrivilege)
	if err != nil {
		t.Fatal(err)
	}
	if !on {
		t.Errorf("%s not enabled after EnablePrivilege", SeShutdownPrivilege)
	}
	if err := EnablePrivilege("SeNoSuchPrivilege"); err == nil || !strings.Contains(err.Error(), "SeNoSuchPrivilege") {
		t.Errorf("unknown privilege: %v, want an error naming it", err)
	}
}
