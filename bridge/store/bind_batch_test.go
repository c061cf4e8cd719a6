package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

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
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
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
