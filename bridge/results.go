package bridge

import "github.com/labrunner/labrunner/bridge/schedulerdb"

// resultInfo is public/buildbot-result.json: the Buildbot result by name
// and code and the colour Treeherder shows for it, so that consumers need
// not infer it from the Taskcluster resolution.
type resultInfo struct {
	Result           string `json:"result"`
	Code             int    `json:"code"`
	TreeherderColour string `json:"treeherderColour"`
}

// treeherderColours follow Treeherder's Buildbot result mapping: success,
// testfailed, busted, skipped, exception, retry, usercancel.
var treeherderColours = map[schedulerdb.Result]string{
	schedulerdb.Success:   "green",
	schedulerdb.Warnings:  "orange",
	schedulerdb.Failure:   "red",
	schedulerdb.Skipped:   "grey",
	schedulerdb.Exception: "purple",
	schedulerdb.Retry:     "blue",
	schedulerdb.Cancelled: "pink",
}

func newResultInfo(r schedulerdb.Result) resultInfo {
	c, ok := treeherderColours[r]
	if !ok {
		c = "grey"
	}
	return resultInfo{Result: r.String(), Code: int(r), TreeherderColour: c}
}
