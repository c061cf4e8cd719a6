package testsvc

import (
	"database/sql"
	"testing"
)

func TestDatabasesAreCreatedAndUsable(t *testing.T) {
	for driver, dsn := range map[string]string{"pgx": Postgres(t), "mysql": MySQL(t)} {
		db, err := sql.Open(driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("CREATE TABLE t (x INT)"); err != nil {
			t.Fatalf("%s: %v", driver, err)
		}
		_ = db.Close()
	}
	if AMQPURL(t) == "" {
		t.Fatal("empty AMQP URL")
	}
}
