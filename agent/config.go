package agent

// The standalone configuration of `runner run --config FILE`: YAML, strict
// (unknown keys are errors), and validated as a whole so that one run of
// the command lists every problem with its fix.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/labrunner/labrunner/agent/cot"
	"github.com/labrunner/labrunner/platform"
)

// FileConfig is the agent's standalone configuration file.
type FileConfig struct {
	RootURL     string          `yaml:"rootURL"`
	Credentials FileCredentials `yaml:"credentials"`
	// TaskQueueID, or ProvisionerID and WorkerType, name the pool.
	TaskQueueID   string `yaml:"taskQueueId"`
	ProvisionerID string `yaml:"provisionerId"`
	WorkerType    string `yaml:"workerType"`
	WorkerGroup   string `yaml:"workerGroup"`
	WorkerID      string `yaml:"workerId"`
	Capacity      int    `yaml:"capacity"`
	StateDir      string `yaml:"stateDir"`
	TasksDir      string `yaml:"tasksDir"`
	// CachesDir holds the writable caches of payload mounts (default
	// <stateDir>/caches); DownloadsDir holds downloaded mount content
	// (default <stateDir>/downloads). Keep them on the tasks volume.
	CachesDir    string `yaml:"cachesDir"`
	DownloadsDir string `yaml:"downloadsDir"`
	// PulseURL, when set, enables cancellation through task-exception
	// messages (amqp://user:password@host:5672/vhost).
	PulseURL string `yaml:"pulseURL"`
	// PulseQueue names the Pulse queue (default queue/<user>/labrunner-<workerGroup>-<workerId>).
	PulseQueue string      `yaml:"pulseQueue"`
	LiveLog    FileLiveLog `yaml:"livelog"`

	// IdlePollWait is the pause after a claimWork long poll that returned
	// nothing (default 1s).
	IdlePollWait Duration `yaml:"idlePollWait"`
	// ErrorPollWait is the pause after a failed claimWork (default 5s).
	ErrorPollWait Duration `yaml:"errorPollWait"`
	// ReclaimMargin is how long before takenUntil to reclaim (default a
	// third of the claim).
	ReclaimMargin Duration `yaml:"reclaimMargin"`
	// CancelPollInterval is how often to poll a running task's status when
	// pulseURL is not set (default 1s).
	CancelPollInterval Duration `yaml:"cancelPollInterval"`
	// KillGrace is the time between interrupting and killing a task's
	// processes (default 10s).
	KillGrace Duration `yaml:"killGrace"`
	// KeepTaskDirs keeps each run's directory after it ends (default false).
	KeepTaskDirs bool `yaml:"keepTaskDirs"`
	// ChainOfTrust configures features.chainOfTrust.
	ChainOfTrust FileChainOfTrust `yaml:"chainOfTrust"`
	// TaskUser is the account task commands run as: per-task, console or
	// service (default per-task; docs/operations.md, "Task users").
	TaskUser string `yaml:"taskUser"`
	// ConsoleUser, with taskUser: console, is the account expected at the
	// console (the autologin account); empty: whoever is logged in.
	ConsoleUser string `yaml:"consoleUser"`
	// TaskUserIDs is the range of uids per-task accounts get on Linux and
	// macOS, FIRST-LAST (default platform.DefaultTaskUserIDs); only the
	// machine's own file sets it, never a pool.
	TaskUserIDs string `yaml:"taskUserIds"`
}

// FileChainOfTrust configures the signing of chain-of-trust documents.
type FileChainOfTrust struct {
	// Ed25519SigningKey is the private key file (`runner
	// new-ed25519-keypair` makes one); without it tasks asking for chain
	// of trust are refused.
	Ed25519SigningKey string `yaml:"ed25519SigningKey"`
}

// FileCredentials are Taskcluster client credentials.
type FileCredentials struct {
	ClientID    string `yaml:"clientId"`
	AccessToken string `yaml:"accessToken"`
	Certificate string `yaml:"certificate"`
}

// FileLiveLog configures the live log server.
type FileLiveLog struct {
	// Listen is the TCP address the live log server binds (e.g. ":60099").
	Listen string `yaml:"listen"`
	// PublicURL is the base URL by which others reach it (e.g.
	// http://machine.example.com:60099).
	PublicURL string `yaml:"publicURL"`
}

// Duration is a time.Duration written as "5s" or "2m30s" in YAML.
type Duration struct {
	time.Duration
	// bad keeps unparsable text, reported by validation with the others.
	bad string
}

// UnmarshalYAML parses a Go duration string; a bad one is kept for
// validation to report, so that one run lists every problem.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		d.bad = n.Value
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.bad = s
		return nil
	}
	d.Duration = v
	return nil
}

// ConfigError lists every problem found in a configuration.
type ConfigError struct {
	Problems []string
}

// Error lists the problems, one per line.
func (e *ConfigError) Error() string { return strings.Join(e.Problems, "\n") }

var idPattern = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,38}$`)

// LoadConfig reads and validates a configuration file; a *ConfigError
// lists all problems.
func LoadConfig(path string) (*FileConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &ConfigError{Problems: []string{fmt.Sprintf("config file %s: %v; pass an existing file with --config", path, err)}}
	}
	return ParseConfig(b)
}

// ParseConfig parses and validates configuration YAML.
func ParseConfig(b []byte) (*FileConfig, error) {
	return ParseConfigWith(b, ParseOptions{})
}

// ParseOptions adjust ParseConfigWith's validation.
type ParseOptions struct {
	// Assigned means a provisioner hands out the root URL, credentials,
	// task queue and worker names: they may be missing from the file (but
	// are still checked when given).
	Assigned bool
	// Sections are top-level keys the caller decodes itself (the runner's
	// `runner:`); any other unknown key is a problem.
	Sections []string
}

// ParseConfigWith parses and validates configuration YAML with options.
func ParseConfigWith(b []byte, o ParseOptions) (*FileConfig, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, &ConfigError{Problems: []string{fmt.Sprintf("config: not valid YAML: %v", err)}}
	}
	root := reflect.TypeFor[FileConfig]()
	probs := UnknownTopLevelKeys(&doc, root, o.Sections...)
	// Unknown top-level keys land in Other (reported above, with their
	// lines); unknown keys deeper down are decoding errors.
	var w struct {
		FileConfig `yaml:",inline"`
		Other      map[string]yaml.Node `yaml:",inline"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&w); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, &ConfigError{Problems: []string{fmt.Sprintf("config: not valid YAML: %v", err)}}
		}
		// The rest of the file was still decoded: validate it too.
		probs = append(probs, YAMLProblems(&doc, root, te.Errors)...)
	}
	c := w.FileConfig
	c.applyDefaults()
	probs = append(probs, c.validate(o.Assigned)...)
	if len(probs) > 0 {
		return nil, &ConfigError{Problems: probs}
	}
	return &c, nil
}

func (c *FileConfig) applyDefaults() {
	if c.Capacity == 0 {
		c.Capacity = 1
	}
	if c.TaskUser == "" {
		c.TaskUser = string(platform.DefaultTaskUserMode)
	}
	if c.CachesDir == "" && c.StateDir != "" {
		c.CachesDir = filepath.Join(c.StateDir, "caches")
	}
	if c.DownloadsDir == "" && c.StateDir != "" {
		c.DownloadsDir = filepath.Join(c.StateDir, "downloads")
	}
	if c.TaskQueueID == "" && c.ProvisionerID != "" && c.WorkerType != "" {
		c.TaskQueueID = c.ProvisionerID + "/" + c.WorkerType
	}
	if c.TaskQueueID != "" && c.ProvisionerID == "" && c.WorkerType == "" {
		if p, w, ok := strings.Cut(c.TaskQueueID, "/"); ok {
			c.ProvisionerID, c.WorkerType = p, w
		}
	}
}

func (c *FileConfig) validate(assigned bool) []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	switch {
	case assigned && c.RootURL == "":
	case c.RootURL == "":
		add("rootURL: missing; set it to the Taskcluster root URL, e.g. https://tc.example.com")
	default:
		if u, err := url.Parse(c.RootURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("rootURL: %q is not an absolute http(s) URL; write e.g. https://tc.example.com", c.RootURL)
		}
	}
	if c.Credentials.ClientID == "" && !assigned {
		add("credentials.clientId: missing; set the worker's Taskcluster clientId")
	}
	if c.Credentials.AccessToken == "" && !assigned {
		add("credentials.accessToken: missing; set the worker's Taskcluster accessToken")
	}
	switch {
	case assigned && c.TaskQueueID == "" && c.ProvisionerID == "" && c.WorkerType == "":
	case c.TaskQueueID == "" && c.ProvisionerID == "" && c.WorkerType == "":
		add("taskQueueId: missing; set taskQueueId (\"<provisionerId>/<workerType>\") or both provisionerId and workerType")
	case c.TaskQueueID == "":
		if c.ProvisionerID == "" {
			add("provisionerId: missing while workerType is set; set it, or set taskQueueId instead")
		}
		if c.WorkerType == "" {
			add("workerType: missing while provisionerId is set; set it, or set taskQueueId instead")
		}
	default:
		pr, wt, ok := strings.Cut(c.TaskQueueID, "/")
		if !ok || !idPattern.MatchString(pr) || !idPattern.MatchString(wt) {
			add("taskQueueId: %q is not \"<provisionerId>/<workerType>\" (each 1-38 of a-z A-Z 0-9 _ -); fix it", c.TaskQueueID)
		} else if (c.ProvisionerID != "" && c.ProvisionerID != pr) || (c.WorkerType != "" && c.WorkerType != wt) {
			add("taskQueueId: %q disagrees with provisionerId %q / workerType %q; set only one form", c.TaskQueueID, c.ProvisionerID, c.WorkerType)
		}
	}
	if !idPattern.MatchString(c.WorkerGroup) && !(assigned && c.WorkerGroup == "") {
		add("workerGroup: %q must be 1-38 of a-z A-Z 0-9 _ -; set it, e.g. the lab or datacenter name", c.WorkerGroup)
	}
	if !idPattern.MatchString(c.WorkerID) && !(assigned && c.WorkerID == "") {
		add("workerId: %q must be 1-38 of a-z A-Z 0-9 _ -; set it, e.g. the machine's host name", c.WorkerID)
	}
	if c.Capacity < 1 {
		add("capacity: %d; set a number of concurrent tasks of 1 or more (default 1)", c.Capacity)
	}
	if c.StateDir == "" {
		add("stateDir: missing; set a directory for the agent's journal, e.g. /var/lib/labrunner")
	}
	if c.TasksDir == "" {
		add("tasksDir: missing; set the directory under which task directories are made, e.g. /var/lib/labrunner/tasks")
	}
	if c.PulseURL != "" {
		if u, err := url.Parse(c.PulseURL); err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Host == "" {
			add("pulseURL: %q is not an amqp(s):// URL; write e.g. amqps://user:password@pulse.example.com:5671 or remove the key", redactURL(c.PulseURL))
		} else if c.PulseQueue == "" && u.User.Username() == "" {
			add("pulseURL: has no user name, so no Pulse queue name can be made; add the user or set pulseQueue")
		}
	}
	if c.LiveLog.Listen != "" {
		if _, _, err := net.SplitHostPort(c.LiveLog.Listen); err != nil {
			add("livelog.listen: %q is not host:port; write e.g. \":60099\"", c.LiveLog.Listen)
		}
		if c.LiveLog.PublicURL == "" {
			add("livelog.publicURL: missing while livelog.listen is set; set the URL others reach the live log at, e.g. http://host.example.com:60099")
		}
	}
	if c.LiveLog.PublicURL != "" {
		if u, err := url.Parse(c.LiveLog.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("livelog.publicURL: %q is not an absolute http(s) URL; write e.g. http://host.example.com:60099", c.LiveLog.PublicURL)
		}
		if c.LiveLog.Listen == "" {
			add("livelog.listen: missing while livelog.publicURL is set; set the address to serve on, e.g. \":60099\"")
		}
	}
	if path := c.ChainOfTrust.Ed25519SigningKey; path != "" {
		if _, err := cot.ReadPrivateKey(path); err != nil {
			add("chainOfTrust.ed25519SigningKey: %v; make a key with `runner new-ed25519-keypair --file %s`, or remove the key to refuse chain-of-trust tasks", err, path)
		}
	}
	// Only the spelling is checked here: whether this account can run the
	// mode (root, SeAssignPrimaryTokenPrivilege) is agent.New's question,
	// asked when the service starts. The config is also read by `runner
	// status`, `runner check` and `runner enroll` from an administrator's
	// console, which lacks what the service account has.
	if _, err := platform.ParseTaskUserMode(c.TaskUser); err != nil {
		add("taskUser: %v", err)
	}
	if _, err := platform.ParseTaskUserIDs(c.TaskUserIDs); err != nil {
		add("taskUserIds: %v", err)
	}
	for key, d := range map[string]Duration{"idlePollWait": c.IdlePollWait, "errorPollWait": c.ErrorPollWait, "reclaimMargin": c.ReclaimMargin, "cancelPollInterval": c.CancelPollInterval, "killGrace": c.KillGrace} {
		switch {
		case d.bad != "":
			add("%s: %q is not a duration; write e.g. \"5s\" or \"1m30s\"", key, d.bad)
		case d.Duration < 0:
			add("%s: %s is negative; use a positive duration or remove the key for the default", key, d.Duration)
		}
	}
	return p
}

// redactURL hides a URL's password for error messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// PulseQueueName is the Pulse queue the agent consumes task-exception
// messages from.
func (c *FileConfig) PulseQueueName() string {
	if c.PulseQueue != "" {
		return c.PulseQueue
	}
	u, _ := url.Parse(c.PulseURL)
	return fmt.Sprintf("queue/%s/labrunner-%s-%s", u.User.Username(), c.WorkerGroup, c.WorkerID)
}
