package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/labrunner/labrunner/internal/stdlog"

	"github.com/labrunner/labrunner/agent"
	"github.com/labrunner/labrunner/platform"
)

func newRunTaskCommand() *cobra.Command {
	var artifactsDir, tasksDir, taskUser string
	var keep bool
	cmd := &cobra.Command{
		Use:   "run-task FILE [--artifacts DIR]",
		Short: "Run a task definition or bare payload (JSON) locally, with no queue; exits with the task's exit code",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			def, err := os.ReadFile(args[0])
			if err != nil {
				return exitErrorf(cmd, 2, "read task file: %v", err)
			}
			run, err := agent.NewLocalRun(def, artifactsDir)
			if err != nil {
				return exitErrorf(cmd, 2, "%v", err)
			}
			if tasksDir == "" {
				tasksDir = filepath.Join(os.TempDir(), "labrunner-tasks")
			}
			stdlog.Route(slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)), slog.LevelDebug)
			mode, err := platform.ParseTaskUserMode(taskUser)
			if err != nil {
				return exitErrorf(cmd, 2, "--task-user: %v", err)
			}
			a, err := agent.New(agent.Config{
				TasksDir: tasksDir, Version: version, KeepTaskDirs: keep, TaskUser: mode,
				Logger: slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn})),
			})
			if err != nil {
				return exitErrorf(cmd, 2, "%v (here: --task-user service)", err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res := a.RunOne(ctx, run, cmd.OutOrStdout())
			if code := res.TaskExitCode(); code != 0 {
				return exitError{code: code}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&artifactsDir, "artifacts", "", "copy the task's artifacts (and its log) into this directory")
	cmd.Flags().StringVar(&tasksDir, "tasks-dir", "", "where to make the task directory (default: the system temp directory)")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the task directory after the run")
	cmd.Flags().StringVar(&taskUser, "task-user", "", "the account the task runs as: per-task (default; needs root), console, or service (the caller's own account, no isolation)")
	return cmd
}

func exitErrorf(cmd *cobra.Command, code int, format string, args ...any) error {
	fmt.Fprintf(cmd.ErrOrStderr(), format+"\n", args...)
	return exitError{code: code}
}
