//go:build unix

package agent

import (
	"log/slog"
	"os"
	"strconv"
)

// A Unix command per step: a shell line.

func checkFile(path, want string) []string {
	return []string{"/bin/sh", "-c", `got=$(cat '` + path + `') && test "$got" = '` + want + `' || { echo "` + path + `: got '$got', want '` + want + `'"; exit 3; }`}
}

func writeFile(path, content string) []string {
	return []string{"/bin/sh", "-c", `printf '%s\n' '` + content + `' > '` + path + `'`}
}

func checkAbsent(path string) []string {
	return []string{"/bin/sh", "-c", `if [ -e '` + path + `' ]; then echo "` + path + ` exists"; exit 5; fi`}
}

func exitWith(code int) []string {
	return []string{"/bin/sh", "-c", "exit " + strconv.Itoa(code)}
}

func mountPayload(mounts []map[string]any, commands ...[]string) map[string]any {
	return map[string]any{"command": commands, "maxRunTime": 120, "mounts": mounts}
}

func quietMountLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
