package main

import (
	"encoding/json"
	"fmt"
	"io"
)

// printJSON writes v indented, for scripts and people alike: `>=` and `<`
// in check thresholds stay as typed rather than becoming \u003e escapes.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("print JSON: %w", err)
	}
	return nil
}
