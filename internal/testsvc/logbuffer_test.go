package testsvc

import (
	"log/slog"
	"sync"
	"testing"
)

func TestLogBufferCountsMessagesFromConcurrentWriters(t *testing.T) {
	var b LogBuffer
	log := b.Logger(slog.LevelInfo)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			log.Info("quarantined", "i", i)
			log.Info("quarantined again")
			log.Debug("quarantined")
		})
	}
	wg.Wait()
	if got := b.CountMessage("quarantined"); got != 8 {
		t.Fatalf("CountMessage(quarantined) = %d, want 8 (debug lines filtered, other messages apart):\n%s", got, b.String())
	}
}
