package schedulerdb

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/labrunner/labrunner/internal/testsvc"
)

// BenchmarkInject measures task-pending → BuildRequest rows per second from
// parallel injectors (the whole pending path's target, ≥ 1 000/s on MariaDB,
// is in docs/bridge.md, "Benchmarks").
func BenchmarkInject(b *testing.B) {
	for _, d := range []Dialect{MySQL, SQLite} {
		b.Run(string(d), func(b *testing.B) {
			dsn := filepath.Join(b.TempDir(), "scheduler.db")
			if d == MySQL {
				dsn = testsvc.MySQL(b)
			}
			ctx := context.Background()
			db, err := Open(ctx, d, dsn)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = db.Close() }()
			if err := db.CreateSchema(ctx); err != nil {
				b.Fatal(err)
			}
			var n atomic.Int64
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := db.Inject(ctx, benchInjection(n.Add(1))); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
		})
	}
}

// benchInjection spreads scheduled times as real tasks have them, a few per
// second, so the duplicate check reads a handful of rows.
func benchInjection(i int64) Injection {
	return injection(fmt.Sprintf("bench%017d", i), "b", 1_700_000_000+i/4)
}
