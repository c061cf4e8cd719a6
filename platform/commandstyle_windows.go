//go:build windows

package platform

const taskCommandStyle = CmdLineCommands
