package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// inFlight bounds the calls at once: enough to fill batches, few enough
// for PostgreSQL's connection limit, which other packages' tests share.
const inFlight = 24

// Binds made at the same time (one UPDATE on MySQL) still answer each
// caller for its own row: bound, bound already to the same request,
// bound to another (ErrConflict) or missing (ErrNotFound).
func TestBindBuildRequestConcurrent(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		s := tg.open(t)
		ctx := context.Background()
		const n = 150
		id := func(i int) string { return fmt.Sprintf("bind%03dxxxxxxxxxxxxxxx", i) }
		for i := range n {
			if i%10 == 9 {
				continue // no row: ErrNotFound
			}
			if _, _, err := s.Create(ctx, NewTask{TaskID: id(i), RunID: 0, Created: time.Now()}); err != nil {
				t.Fatal(err)
			}
			if i%10 == 7 {
				if err := s.BindBuildRequest(ctx, id(i), 0, 5000+int64(i)); err != nil { // another request first
					t.Fatal(err)
				}
			}
			if i%10 == 8 {
				if err := s.BindBuildRequest(ctx, id(i), 0, 100+int64(i)); err != nil { // the same request first
					t.Fatal(err)
				}
			}
		}
		errs := make([]error, n)
		var wg sync.WaitGroup
		sem := make(chan struct{}, inFlight)
		for i := range n {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				errs[i] = s.BindBuildRequest(ctx, id(i), 0, 100+int64(i))
			}()
		}
		wg.Wait()
		for i := range n {
			switch i % 10 {
			case 9:
				if !errors.Is(errs[i], ErrNotFound) {
					t.Errorf("task %d without a row: %v, want ErrNotFound", i, errs[i])
				}
				continue
			case 7:
				if !errors.Is(errs[i], ErrConflict) {
					t.Errorf("task %d bound to another request: %v, want ErrConflict", i, errs[i])
				}
				continue
			}
			if errs[i] != nil {
				t.Errorf("task %d: %v", i, errs[i])
			}
			row, err := s.GetTask(ctx, id(i))
			if err != nil || row.BuildRequestID == nil || *row.BuildRequestID != 100+int64(i) {
				t.Errorf("task %d row = %+v, %v; want brid %d", i, row, err, 100+i)
			}
		}
		row, err := s.GetTask(ctx, id(7))
		if err != nil || row.BuildRequestID == nil || *row.BuildRequestID != 5007 {
			t.Errorf("the conflicting bind changed the row: %+v, %v", row, err)
		}
	})
}

// Creates made at the same time (one multi-row INSERT on MySQL) give each
// caller the id of its own row, and among duplicates exactly one is new.
func TestCreateBatchesGiveEachCallerItsRow(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		s := tg.open(t)
		ctx := context.Background()
		const n = 150
		id := func(i int) string { return fmt.Sprintf("crea%03dxxxxxxxxxxxxxxx", i%120) } // 30 duplicates
		rows := make([]Task, n)
		isNew := make([]bool, n)
		create := func(from, to int) {
			var wg sync.WaitGroup
			sem := make(chan struct{}, inFlight)
			for i := from; i < to; i++ {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer func() { <-sem; wg.Done() }()
					var err error
					if rows[i], isNew[i], err = s.Create(ctx, NewTask{TaskID: id(i), RunID: 0, Created: time.Unix(int64(1000+i%120), 0)}); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
		}
		create(0, 100) // all new: the multi-row path
		create(100, n) // 20 new and 30 duplicates of the first 30
		fresh := map[string]int{}
		for i := range n {
			if isNew[i] {
				fresh[id(i)]++
			}
			var taskID string
			var created int64
			if err := s.SQL().QueryRowContext(ctx, s.q("SELECT taskId, createdDate FROM tasks WHERE id = ?"), rows[i].ID).Scan(&taskID, &created); err != nil {
				t.Errorf("call %d: row id %d: %v", i, rows[i].ID, err)
				continue
			}
			if taskID != id(i) || rows[i].TaskID != id(i) || created != int64(1000+i%120) {
				t.Errorf("call %d for %s got row %d, which is %s created %d", i, id(i), rows[i].ID, taskID, created)
			}
		}
		for i := range 120 {
			if fresh[id(i)] != 1 {
				t.Errorf("%s: %d callers got created, want 1", id(i), fresh[id(i)])
			}
		}
	})
}
