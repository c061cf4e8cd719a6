package provisioner

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
)

// dialect is what differs between the SQL databases the store runs on.
type dialect struct {
	name string
	// rebind turns ?-placeholders into the database's form.
	rebind func(q string) string
	// lockMigrations serialises migrations across processes; finish
	// releases the lock, committing when ok.
	lockMigrations func(ctx context.Context, conn *sql.Conn) (finish func(ok bool) error, err error)
	// heartbeatTxSetup runs first in a heartbeat's transaction.
	heartbeatTxSetup string
	// lockIsTx says the migration lock is an open transaction.
	lockIsTx bool
}

func rebindDollar(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
