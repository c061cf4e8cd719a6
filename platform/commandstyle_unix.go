//go:build unix

package platform

const taskCommandStyle = ArgvCommands
