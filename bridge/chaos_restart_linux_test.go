package bridge

// The restart chaos run (TestChaos/mariadb-rabbitmq-restarts): the chaos of
// chaos_linux_test.go (three instances, the victim killed and restarted,
// duplicated and reordered deliveries) on a RabbitMQ node and a MariaDB
// server of the test's own (testsvc.StartPrivateRabbitMQ and
// StartPrivateMariaDB: child processes on free ports with their data in a
// temporary directory), which are really stopped and started again while
// tasks flow. The dev queue, the three instances and the agents use the
// private node; the SchedulerDB and the bridge DB both live on the private
// MariaDB. In order, each step while a batch of tasks is being created and
// handled, with the victim restarted after each:
//
//	MariaDB  SIGTERM (clean shutdown), then started again on the same data
//	RabbitMQ SIGTERM (clean shutdown), then started again on the same
//	         database: durable queues and persistent messages survive
//	MariaDB  SIGKILL (crash), then started again (InnoDB crash recovery)
//	RabbitMQ SIGKILL (crash), then started again (queue recovery)
//
// The instances must reconnect by themselves. The machine's shared
// RabbitMQ and MariaDB are not touched. The test skips when rabbitmq-server
// or mariadbd is not installed.
//
// LABRUNNER_CHAOS_RESTART_TASKS sets the number of tasks (default 150).

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/labrunner/labrunner/internal/testsvc"
)

func chaosRestartTasks() int {
	if n, err := strconv.Atoi(os.Getenv("LABRUNNER_CHAOS_RESTART_TASKS")); err == nil && n > 0 {
		return n
	}
	return 150
}

// restartStep stops a private server one way and starts it again.
type restartStep struct {
	name        string
	stop, start func() error
}

func runChaosRestarts(t *testing.T, nTasks int) {
	mdb := testsvc.StartPrivateMariaDB(t)
	rmq := testsvc.StartPrivateRabbitMQ(t)
	c := newChaosRun(t, setup{"mariadb-rabbitmq-restarts", true}, envOpts{amqpURL: rmq.URL(), newMySQL: mdb.Database})
	c.startAgents()
	steps := []restartStep{
		{"MariaDB restart (SIGTERM)", mdb.Stop, mdb.Start},
		{"RabbitMQ restart (SIGTERM)", rmq.Stop, rmq.Start},
		{"MariaDB crash (SIGKILL)", mdb.Kill, mdb.Start},
		{"RabbitMQ crash (SIGKILL)", rmq.Kill, rmq.Start},
	}
	batch := nTasks / (len(steps) + 1)
	for _, step := range steps {
		// Tasks flow: a batch is created, and more while the server is
		// down (the dev queue holds its messages until RabbitMQ is back).
		c.createTasks(batch/2, 10*time.Millisecond)
		done := make(chan error, 1)
		began := time.Now()
		go func() {
			if err := step.stop(); err != nil {
				done <- err
				return
			}
			t.Logf("%s: down after %s", step.name, time.Since(began).Round(time.Millisecond))
			done <- step.start()
		}()
		c.createTasks(batch-batch/2, 20*time.Millisecond)
		if err := <-done; err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		t.Logf("%s: up again after %s (%d tasks created so far)", step.name, time.Since(began).Round(time.Millisecond), len(c.ids))
		c.restartVictim(nil)
	}
	c.createTasks(nTasks-len(c.ids), 10*time.Millisecond)
	t.Logf("created %d tasks; chaos over after %s", len(c.ids), time.Since(c.began))
	c.verify()
}
