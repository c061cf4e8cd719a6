package platform

// CommandStyle is how a generic-worker payload writes its commands on this
// OS, and so which payload schema applies.
type CommandStyle int

const (
	// ArgvCommands: each command is an argv list run directly, without a
	// shell (generic-worker on Linux and macOS).
	ArgvCommands CommandStyle = iota + 1
	// CmdLineCommands: each command is one line run by cmd.exe from a
	// batch file (generic-worker on Windows).
	CmdLineCommands
)

// String names the style for logs and errors.
func (s CommandStyle) String() string {
	switch s {
	case ArgvCommands:
		return "argv lists"
	case CmdLineCommands:
		return "cmd.exe command lines"
	}
	return "unknown command style"
}

// TaskCommandStyle is the command style of task payloads on this OS.
func TaskCommandStyle() CommandStyle { return taskCommandStyle }
