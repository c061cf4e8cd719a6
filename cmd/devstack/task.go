package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	tcclient "github.com/taskcluster/taskcluster/v44/clients/client-go"

	"github.com/labrunner/labrunner/devstack"
)

// exitCode carries a task's outcome out of `devstack task submit`.
type exitCode int

// Error names the exit code.
func (e exitCode) Error() string { return fmt.Sprintf("exit code %d", int(e)) }

func newTaskCommand() *cobra.Command {
	task := &cobra.Command{Use: "task", Short: "submit tasks by hand to the dev queue (or any Taskcluster queue)"}
	var o devstack.SubmitOptions
	submit := &cobra.Command{
		Use:   "submit FILE|-",
		Short: "create a task from a JSON task definition or bare payload, follow it and print its log; exit 0 completed, 1 failed, 2 exception",
		Long: `Create a task from FILE (or standard input with -): a task definition, or
just a generic-worker payload such as

  {"command": [["echo", "hello"]], "maxRunTime": 60}

What the definition leaves out is filled in: taskQueueId (--task-queue, the
demo's pool by default), created, deadline (1 h), expires and metadata. The
queue and credentials come from TASKCLUSTER_ROOT_URL, TASKCLUSTER_CLIENT_ID
and TASKCLUSTER_ACCESS_TOKEN, as devstack serve and make demo print them.
The task is followed until it resolves; its log is then printed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var src []byte
			var err error
			if args[0] == "-" {
				src, err = io.ReadAll(cmd.InOrStdin())
			} else {
				src, err = os.ReadFile(args[0])
			}
			if err != nil {
				return fmt.Errorf("read the task: %w", err)
			}
			if o.RootURL == "" {
				o.RootURL = os.Getenv("TASKCLUSTER_ROOT_URL")
			}
			o.Credentials = tcclient.Credentials{ClientID: os.Getenv("TASKCLUSTER_CLIENT_ID"), AccessToken: os.Getenv("TASKCLUSTER_ACCESS_TOKEN"), Certificate: os.Getenv("TASKCLUSTER_CERTIFICATE")}
			ctx, stop := signalContext()
			defer stop()
			res, err := devstack.SubmitTask(ctx, cmd.OutOrStdout(), src, o)
			if err != nil {
				return err
			}
			switch res.State {
			case "completed":
				return nil
			case "failed":
				return exitCode(1)
			}
			return exitCode(2)
		},
	}
	f := submit.Flags()
	f.StringVar(&o.RootURL, "root-url", "", "queue root URL (default: env TASKCLUSTER_ROOT_URL)")
	f.StringVar(&o.TaskQueueID, "task-queue", devstack.TaskQueueID, "task queue for a definition without one")
	f.StringVar(&o.TaskID, "task-id", "", "the new task's id (default: a new slug)")
	f.DurationVar(&o.Wait, "wait", 30*time.Minute, "how long to follow the task before giving up")
	task.AddCommand(submit)
	return task
}
