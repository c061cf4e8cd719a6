package schedulerdb

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/labrunner/labrunner/internal/testsvc"
)

// Many injections at once on MySQL share batches; each caller must still
// get the ids of its own rows, with the numbering taken from multi-row
// INSERTs or, where the server may interleave ids, row by row.
func TestInjectBatchesGiveEachCallerItsOwnRows(t *testing.T) {
	for _, mode := range []struct {
		name string
		rule *autoIncrement // nil: ask the server
	}{{"server-rule", nil}, {"row-by-row", &autoIncrement{}}} {
		t.Run(mode.name, func(t *testing.T) {
			ctx := context.Background()
			dsn := testsvc.MySQL(t)
			db, err := Open(ctx, MySQL, dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			if err := db.CreateSchema(ctx); err != nil {
				t.Fatal(err)
			}
			if mode.rule != nil {
				db.autoInc.Set(mode.rule.consecutive, mode.rule.step)
			} else if !db.autoIncrementRule(ctx).consecutive {
				t.Log("this server interleaves auto-increment ids; batches insert row by row")
			}
			// Rows another writer adds meanwhile must not confuse the numbering.
			other, err := Open(ctx, MySQL, dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = other.Close() })
			// The noise needs no more than a few connections; unbounded, its
			// 120 writers and the injections together came near MariaDB's
			// max_connections (151) while other packages' tests used it too.
			other.SQL().SetMaxOpenConns(4)

			const n = 120 // more than one batch
			results := make([]Injected, n)
			var wg sync.WaitGroup
			errs := make(chan error, 2*n)
			for i := range n {
				wg.Add(2)
				go func() {
					defer wg.Done()
					in := injection(fmt.Sprintf("task%03dxxxxxxxxxxxxxxx", i), fmt.Sprintf("builder-%d", i%7), 1000+int64(i))
					in.Sourcestamp.Revision = fmt.Sprintf("rev%03d", i)
					in.Properties["n"] = json.RawMessage(fmt.Sprint(i))
					got, err := db.Inject(ctx, in)
					if err != nil {
						errs <- err
						return
					}
					results[i] = got
				}()
				go func() {
					defer wg.Done()
					_, err := other.SQL().ExecContext(ctx, "INSERT INTO sourcestamps (branch, revision, repository, project) VALUES ('noise', 'noise', '', '')")
					if err == nil {
						_, err = other.SQL().ExecContext(ctx, "INSERT INTO buildsets (external_idstring, reason, sourcestampid, submitted_at) VALUES ('noise', 'noise', 0, 1)")
					}
					if err != nil {
						errs <- err
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			seen := map[int64]bool{}
			for i, got := range results {
				if got.Existed {
					t.Errorf("injection %d: Existed, want a new request", i)
				}
				if seen[got.BRID] {
					t.Errorf("injection %d: brid %d given twice", i, got.BRID)
				}
				seen[got.BRID] = true
				var ext, builder, revision, n string
				var submitted, ssid int64
				err := db.SQL().QueryRowContext(ctx, `SELECT bs.external_idstring, br.buildername, br.submitted_at, ss.revision, ss.id, bp.property_value
					FROM buildrequests br JOIN buildsets bs ON bs.id = br.buildsetid JOIN sourcestamps ss ON ss.id = bs.sourcestampid
					JOIN buildset_properties bp ON bp.buildsetid = bs.id AND bp.property_name = 'n'
					WHERE br.id = ? AND bs.id = ?`, got.BRID, got.BuildsetID).Scan(&ext, &builder, &submitted, &revision, &ssid, &n)
				if err != nil {
					t.Errorf("injection %d: rows of brid %d / buildset %d: %v", i, got.BRID, got.BuildsetID, err)
					continue
				}
				want := fmt.Sprintf("task%03dxxxxxxxxxxxxxxx", i)
				if ext != ExternalIDPrefix+want || builder != fmt.Sprintf("builder-%d", i%7) || submitted != 1000+int64(i) ||
					revision != fmt.Sprintf("rev%03d", i) || ssid != got.SourcestampID || n != fmt.Sprintf(`[%d, "bbb"]`, i) {
					t.Errorf("injection %d got the rows of another: %s %s %d %s ss=%d/%d n=%s", i, ext, builder, submitted, revision, ssid, got.SourcestampID, n)
				}
			}
			if c := count(t, db, "SELECT COUNT(*) FROM buildrequests"); c != n {
				t.Errorf("%d build requests, want %d", c, n)
			}
			// Injected again, all at once: every one is found, none is new.
			var again sync.WaitGroup
			for i := range n {
				again.Add(1)
				go func() {
					defer again.Done()
					in := injection(fmt.Sprintf("task%03dxxxxxxxxxxxxxxx", i), fmt.Sprintf("builder-%d", i%7), 1000+int64(i))
					got, err := db.Inject(ctx, in)
					if err != nil || !got.Existed || got.BRID != results[i].BRID {
						t.Errorf("injection %d again = %+v, %v; want brid %d, existed", i, got, err, results[i].BRID)
					}
				}()
			}
			again.Wait()
			if c := count(t, db, "SELECT COUNT(*) FROM buildrequests"); c != n {
				t.Errorf("%d build requests after injecting again, want %d", c, n)
			}
		})
	}
}
