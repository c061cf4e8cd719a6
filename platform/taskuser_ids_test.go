package platform

import (
	"strings"
	"testing"
)

// A configured range is read back; a range that would collide with
// system accounts, systemd's reserved ids or container ranges, or that
// wraps too soon, is refused with the reason.
func TestParseTaskUserIDs(t *testing.T) {
	for in, want := range map[string]TaskUserIDs{
		"":              DefaultTaskUserIDs,
		"70000-99999":   {70000, 99999},
		" 2000 - 2999":  {2000, 2999},
		"100000-524287": {100000, 524287},
	} {
		if got, err := ParseTaskUserIDs(in); err != nil || got != want {
			t.Errorf("ParseTaskUserIDs(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, why := range map[string]string{
		"70000":         "FIRST-LAST",
		"a-b":           "FIRST-LAST",
		"9000-8000":     "above the last",
		"500-5000":      "between 1000",
		"100000-600000": "systemd-nspawn",
		"59000-61000":   "systemd reserves",
		"65535-70000":   "systemd reserves",
		"70000-70500":   "at least 1000",
	} {
		if _, err := ParseTaskUserIDs(in); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("ParseTaskUserIDs(%q) = %v; want a refusal saying %q", in, err, why)
		}
	}
	if got := (TaskUserIDs{}).OrDefault(); got != DefaultTaskUserIDs {
		t.Errorf("the zero range is %v, want the default", got)
	}
	if _, err := ParseTaskUserIDs(DefaultTaskUserIDs.String()); err != nil {
		t.Errorf("the default range is refused: %v", err)
	}
}
