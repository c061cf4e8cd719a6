package runner

// Enrolment is the one way a machine joins a provisioner: `runner enroll`
// typed by an operator, the MSI's custom action and the macOS pkg's
// postinstall all call Enroll. It registers first and writes only once the
// provisioner has accepted the token, so a bad or spent token leaves the
// machine exactly as it was.
//
//	check options ──bad──▶ error naming the flag, nothing written
//	     │
//	config exists? ──enrolled with this provisioner──▶ AlreadyEnrolled (token not spent)
//	     │          └─anything else, without Force──▶ error, nothing written
//	     ▼
//	register (spends one use of the token) ──refused/unreachable──▶ error, nothing written
//	     ▼
//	data directory private; link state (machine id and token) 0600;
//	config 0600, without the enrollment token (it is spent, and a secret)

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/labrunner/labrunner/platform"
	"github.com/labrunner/labrunner/provisioner/client"
)

// PoolHintTag is the machine tag that carries `runner enroll --pool-hint`:
// a pool that wants such machines lists it in constraints.tags.
const PoolHintTag = "pool"

// EnrollOptions says where to enrol and where to write.
type EnrollOptions struct {
	// ConfigPath is the configuration file to write
	// (platform.DefaultConfigPath() when empty).
	ConfigPath string
	// DataDir is the state directory; tasks go in <DataDir>/tasks
	// (platform.DefaultDataDir() when empty).
	DataDir string
	// ProvisionerURL is the provisioner's base URL.
	ProvisionerURL string
	// Token is the enrollment token (`provisioner token create --enroll N`).
	Token string
	// PoolHint, when set, is sent as the machine tag PoolHintTag.
	PoolHint string
	// Tags are sent with the machine's facts at registration.
	Tags map[string]string
	// TaskUser, when set, is written as the config's taskUser (per-task,
	// console or service); empty leaves the runner's default.
	TaskUser string
	// Force registers again even when the machine is already enrolled, and
	// replaces a configuration file of another kind.
	Force bool
	// ClientOptions adjust the provisioner client (TLS, retries).
	ClientOptions []client.Option
	// Facts collects the machine's facts (platform.CollectMachineFacts
	// when nil).
	Facts func(context.Context) (client.Facts, error)
}

// EnrollResult says what Enroll did.
type EnrollResult struct {
	MachineID string
	// PoolID is the pool assigned at registration ("" while none fits).
	PoolID string
	// ConfigPath and LinkStatePath are the files written (or found).
	ConfigPath, LinkStatePath string
	// AlreadyEnrolled is true when the machine was enrolled with this
	// provisioner before: nothing was sent or written, the token is unspent.
	AlreadyEnrolled bool
}

// tagKey is what a tag key may be: short, no spaces, no "=" or ",".
var tagKey = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,62}$`)

// Enroll registers this machine with a provisioner using an enrollment
// token, then writes the configuration and the provisioner link's state
// (the machine token) for the service to run with.
func Enroll(ctx context.Context, o EnrollOptions) (EnrollResult, error) {
	if o.ConfigPath == "" {
		o.ConfigPath = platform.DefaultConfigPath()
	}
	if o.DataDir == "" {
		o.DataDir = platform.DefaultDataDir()
	}
	if err := o.check(); err != nil {
		return EnrollResult{}, err
	}
	res := EnrollResult{ConfigPath: o.ConfigPath, LinkStatePath: filepath.Join(o.DataDir, "provisioner-link.json")}
	if done, err := o.existing(&res); done || err != nil {
		return res, err
	}
	cfg, err := enrolledConfig(o.DataDir, o.ProvisionerURL, o.TaskUser)
	if err != nil {
		return EnrollResult{}, err
	}

	facts, err := o.collectFacts(ctx)
	if err != nil {
		return EnrollResult{}, fmt.Errorf("enroll: %w; nothing was written", err)
	}
	c := client.New(o.ProvisionerURL, "", o.ClientOptions...)
	reg, err := c.Register(ctx, client.RegisterRequest{Facts: facts, EnrollmentToken: o.Token})
	if err != nil {
		return EnrollResult{}, registerError(o.ProvisionerURL, err)
	}

	st := linkState{Version: linkStateVersion, URL: o.ProvisionerURL, MachineID: reg.MachineID, MachineToken: reg.MachineToken, Assignment: &reg.Assignment}
	if err := writeEnrolment(o, res.LinkStatePath, st, cfg); err != nil {
		return EnrollResult{}, fmt.Errorf("enroll: registered as machine %s, but: %w; fix that and run runner enroll again with a new token", reg.MachineID, err)
	}
	res.MachineID, res.PoolID = reg.MachineID, reg.Assignment.PoolID
	return res, nil
}

// check names the first bad option and its fix.
func (o *EnrollOptions) check() error {
	if o.ProvisionerURL == "" {
		return errors.New("enroll: --provisioner is missing: give the provisioner's URL, e.g. https://prov.example.com")
	}
	o.ProvisionerURL = strings.TrimRight(o.ProvisionerURL, "/")
	if p := provisionerURLProblem(o.ProvisionerURL); p != "" {
		return fmt.Errorf("enroll: --provisioner: %s", strings.TrimPrefix(p, "runner.provisioner.url "))
	}
	o.Token = strings.TrimSpace(o.Token)
	if o.Token == "" {
		return errors.New("enroll: --token is missing: create an enrollment token with `provisioner token create --enroll 1` and pass it")
	}
	if strings.ContainsAny(o.Token, " \t\r\n") {
		return errors.New("enroll: --token contains white space: pass the token exactly as `provisioner token create` printed it")
	}
	if o.PoolHint != "" && !tagKey.MatchString(o.PoolHint) {
		return fmt.Errorf("enroll: --pool-hint %q: use letters, digits and _ . : / - (a pool name)", o.PoolHint)
	}
	for k, v := range o.Tags {
		if !tagKey.MatchString(k) {
			return fmt.Errorf("enroll: --tag %q: a tag key is letters, digits and _ . : / - (write key=value)", k)
		}
		if strings.ContainsAny(v, "\r\n") {
			return fmt.Errorf("enroll: --tag %s: the value is one line", k)
		}
	}
	if o.PoolHint != "" && o.Tags[PoolHintTag] != "" && o.Tags[PoolHintTag] != o.PoolHint {
		return fmt.Errorf("enroll: --pool-hint %q and --tag %s=%s disagree: give one", o.PoolHint, PoolHintTag, o.Tags[PoolHintTag])
	}
	if o.TaskUser != "" {
		if _, err := platform.ParseTaskUserMode(o.TaskUser); err != nil {
			return fmt.Errorf("enroll: --task-user: %w", err)
		}
	}
	if !filepath.IsAbs(o.ConfigPath) || !filepath.IsAbs(o.DataDir) {
		return fmt.Errorf("enroll: --config %q and --data-dir %q must be absolute paths", o.ConfigPath, o.DataDir)
	}
	return nil
}

// existing looks at a configuration already in place. done is true when
// the machine is enrolled with this provisioner and nothing is to be done.
func (o *EnrollOptions) existing(res *EnrollResult) (done bool, err error) {
	if _, err := os.Stat(o.ConfigPath); errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("enroll: config %s: %w", o.ConfigPath, err)
	}
	if o.Force {
		return false, nil
	}
	ac, rc, err := Load(o.ConfigPath)
	if err != nil {
		return false, fmt.Errorf("enroll: config %s exists but does not load (%v); fix it, or pass --force to replace it", o.ConfigPath, err)
	}
	if rc.Provisioner.URL != o.ProvisionerURL {
		return false, fmt.Errorf("enroll: config %s exists and uses provisioner %q, not %q; pass --force to replace it and register again", o.ConfigPath, rc.Provisioner.URL, o.ProvisionerURL)
	}
	statePath := rc.Provisioner.StateFile
	if statePath == "" {
		statePath = filepath.Join(ac.StateDir, "provisioner-link.json")
	}
	st, err := readLinkState(statePath)
	if err != nil {
		return false, fmt.Errorf("enroll: %w; or pass --force to register again", err)
	}
	if st.MachineToken == "" || st.URL != o.ProvisionerURL {
		return false, fmt.Errorf("enroll: config %s exists but the machine is not registered (no machine token in %s); pass --force to register again", o.ConfigPath, statePath)
	}
	res.MachineID, res.LinkStatePath, res.AlreadyEnrolled = st.MachineID, statePath, true
	if st.Assignment != nil {
		res.PoolID = st.Assignment.PoolID
	}
	return true, nil
}

// enrolledConfig is the configuration file an enrolled machine runs with.
// It is not run through Parse here: Parse also asks whether this process
// could run tasks in the chosen task-user mode, and enroll runs as an
// administrator while the service runs as LocalSystem or root.
func enrolledConfig(dataDir, url, taskUser string) ([]byte, error) {
	var doc struct {
		StateDir string `yaml:"stateDir"`
		TasksDir string `yaml:"tasksDir"`
		TaskUser string `yaml:"taskUser,omitempty"`
		Runner   struct {
			Provisioner struct {
				URL string `yaml:"url"`
			} `yaml:"provisioner"`
		} `yaml:"runner"`
	}
	doc.StateDir, doc.TasksDir, doc.TaskUser = dataDir, filepath.Join(dataDir, "tasks"), taskUser
	doc.Runner.Provisioner.URL = url
	body, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, fmt.Errorf("enroll: encode config: %w", err)
	}
	return append([]byte("# Written by `runner enroll` (docs/config.md). The enrollment token was\n"+
		"# spent on registration and is not kept; the machine id and token are in\n"+
		"# <stateDir>/provisioner-link.json.\n"), body...), nil
}

func (o *EnrollOptions) collectFacts(ctx context.Context) (client.Facts, error) {
	var f client.Facts
	if o.Facts != nil {
		var err error
		if f, err = o.Facts(ctx); err != nil {
			return f, err
		}
	} else {
		mf, err := platform.CollectMachineFacts(ctx)
		if err != nil {
			return f, err
		}
		f = client.Facts{Hostname: mf.Hostname, OS: mf.OS, OSVersion: mf.OSVersion, Arch: mf.Arch, Model: mf.Model,
			CPUs: mf.CPUs, MemoryMB: mf.MemoryMB, DiskGB: mf.DiskGB, Serial: mf.Serial}
	}
	if len(o.Tags) > 0 || o.PoolHint != "" {
		tags := map[string]string{}
		for k, v := range f.Tags {
			tags[k] = v
		}
		keys := make([]string, 0, len(o.Tags))
		for k := range o.Tags {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			tags[k] = o.Tags[k]
		}
		if o.PoolHint != "" {
			tags[PoolHintTag] = o.PoolHint
		}
		f.Tags = tags
	}
	return f, nil
}

// registerError explains a failed registration; the token is never in it.
func registerError(url string, err error) error {
	switch st := client.StatusOf(err); {
	case st == http.StatusUnauthorized:
		return fmt.Errorf("enroll: the provisioner at %s refused the enrollment token: it is unknown, used up or expired (%v); nothing was written: create a new one with `provisioner token create --enroll 1`", url, err)
	case st >= 400 && st < 500:
		return fmt.Errorf("enroll: the provisioner at %s refused the registration (%v); nothing was written", url, err)
	case st != 0:
		return fmt.Errorf("enroll: the provisioner at %s failed (%v); nothing was written: try again later", url, err)
	}
	return fmt.Errorf("enroll: cannot reach the provisioner at %s (%v); nothing was written: check --provisioner and the network", url, err)
}
