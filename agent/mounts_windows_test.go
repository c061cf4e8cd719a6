//go:build windows

package agent

import (
	"log/slog"
	"os"
	"strconv"
	"strings"
)

// A Windows step is cmd.exe lines (variables carry between them, and a
// variable is expanded when its line is read, so setting and testing take
// two lines).

func checkFile(path, want string) []string {
	p := strings.ReplaceAll(path, "/", `\`)
	return []string{
		`set GOT=& set /p GOT=<` + p,
		`if not "%GOT%"=="` + want + `" (echo ` + p + `: got "%GOT%", want "` + want + `" & exit /b 3)`,
	}
}

func writeFile(path, content string) []string {
	return []string{`echo ` + content + `> ` + strings.ReplaceAll(path, "/", `\`)}
}

func checkAbsent(path string) []string {
	p := strings.ReplaceAll(path, "/", `\`)
	return []string{`if exist ` + p + ` (echo ` + p + ` exists & exit /b 5)`}
}

func exitWith(code int) []string {
	return []string{"exit /b " + strconv.Itoa(code)}
}

func mountPayload(mounts []map[string]any, steps ...[]string) map[string]any {
	var lines []string
	for _, s := range steps {
		lines = append(lines, s...)
	}
	return map[string]any{"command": lines, "maxRunTime": 120, "mounts": mounts}
}

func quietMountLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
