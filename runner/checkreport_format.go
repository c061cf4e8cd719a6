package runner

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// FormatCheckReport writes `runner check`'s report for people: the checks
// directory's verdict, then one aligned row per check, however long the
// check names are.
func FormatCheckReport(w io.Writer, rep *CheckReport) error {
	fmt.Fprintf(w, "checks directory: %s", rep.Verdict)
	if rep.Check != "" {
		fmt.Fprintf(w, " (%s: %s)", rep.Check, rep.Output)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tRESULT\tVALUE\tTHRESHOLD\tNOTE")
	for _, ch := range rep.Checks {
		res := "ok"
		switch {
		case ch.Tripped:
			res = "TRIPPED"
		case !ch.OK:
			res = "failing"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", ch.Name, res, ch.Value, ch.Threshold, ch.Message)
	}
	return tw.Flush()
}
