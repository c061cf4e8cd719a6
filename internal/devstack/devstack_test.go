package devstack

import (
	"context"
	"strings"
	"testing"
)

func TestStartRejectsBadListenAddress(t *testing.T) {
	_, err := Start(context.Background(), Options{Listen: "127.0.0.1:notaport"})
	if err == nil || !strings.Contains(err.Error(), "--listen") {
		t.Fatalf("want an error naming --listen, got %v", err)
	}
}
