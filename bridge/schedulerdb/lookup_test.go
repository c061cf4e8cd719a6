package schedulerdb

import (
	"context"
	"errors"
	"testing"
)

func TestRequestsForTaskAndBuildByNumber(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		db := tg.open(t)
		newClock(db)
		first := inject(t, db, injection(taskA, "win build", 100))
		second := inject(t, db, injection(taskA, "win build", 200)) // the task's next run
		inject(t, db, injection("otherTaskotherTaskothA", "win build", 150))
		reqs, err := db.RequestsForTask(ctx, taskA)
		if err != nil {
			t.Fatal(err)
		}
		if len(reqs) != 2 || reqs[0].ID != first || reqs[1].ID != second || reqs[0].BuilderName != "win build" {
			t.Fatalf("requests of %s: %+v, want %d then %d", taskA, reqs, first, second)
		}
		if none, err := db.RequestsForTask(ctx, "noSuchTasknoSuchTaskno"); err != nil || len(none) != 0 {
			t.Fatalf("a task never injected: %+v %v", none, err)
		}
		c := claim(t, db, masterA, "win build")
		b, r, err := db.BuildByNumber(ctx, "win build", c.Build.Number)
		if err != nil {
			t.Fatal(err)
		}
		if b != c.Build || r.ID != c.Request.ID || r.ClaimedByName != masterA.Name {
			t.Fatalf("build %s #%d: %+v %+v, claimed %+v", "win build", c.Build.Number, b, r, c)
		}
		if _, _, err := db.BuildByNumber(ctx, "win build", c.Build.Number+1); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a build not started yet: %v, want ErrNotFound", err)
		}
		if _, _, err := db.BuildByNumber(ctx, "other builder", c.Build.Number); !errors.Is(err, ErrNotFound) {
			t.Fatalf("the same number of another builder: %v, want ErrNotFound", err)
		}
		if err := db.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
