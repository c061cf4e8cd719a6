package provisioner

import (
	"context"
	"errors"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// ErrNotFound is returned by a Store when the named record does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned by a Store when a record with the same key exists.
var ErrConflict = errors.New("already exists")

// MachineRecord is a machine as stored: the public view plus its secrets'
// hashes and the identity it registered with.
type MachineRecord struct {
	client.Machine
	// TokenHash is the SHA-256 of the machine token.
	TokenHash []byte
	// Identity is a unique proof key ("ec2:<instanceId>", "serial:<serial>")
	// so that a re-registering machine keeps its id; empty when unknown.
	Identity string
	// TaskStarted is when CurrentTask was first reported.
	TaskStarted *time.Time
}

// TokenRecord is a stored API or enrollment token (hashed).
type TokenRecord struct {
	ID          string
	Kind        string
	Hash        []byte
	UsesLeft    int
	Expires     *time.Time
	Description string
	Created     time.Time
}

// TaskRun is one finished run a machine reported, kept for sizing.
type TaskRun struct {
	PoolID    string
	MachineID string
	TaskID    string
	RunID     int
	Started   time.Time
	Finished  time.Time
}

// MoveWrite is one machine's change in a move: its provisioner-owned
// fields, the directive it gets and the action recorded.
type MoveWrite struct {
	Machine   *MachineRecord
	Directive client.Directive
	Action    client.Action
}

// Leadership is held by the one replica that runs the assigner.
type Leadership interface {
	// Lost is closed when leadership ends (connection lost or released).
	Lost() <-chan struct{}
	// Release gives leadership up.
	Release()
}

// Store keeps the registry. Implementations: SQLite and PostgreSQL
// (sqlstore.go); every method is safe for concurrent use.
type Store interface {
	// PutPool creates or replaces a pool (created is kept on replace).
	PutPool(ctx context.Context, p client.Pool) error
	// GetPool returns a pool or ErrNotFound.
	GetPool(ctx context.Context, poolID string) (client.Pool, error)
	// ListPools returns every pool by id.
	ListPools(ctx context.Context) ([]client.Pool, error)
	// DeletePool removes a pool or returns ErrNotFound.
	DeletePool(ctx context.Context, poolID string) error

	// InsertMachine adds a machine; ErrConflict when its id, token or
	// identity is taken.
	InsertMachine(ctx context.Context, m *MachineRecord) error
	// GetMachine returns a machine or ErrNotFound.
	GetMachine(ctx context.Context, machineID string) (*MachineRecord, error)
	// MachineByIdentity finds the machine registered with identity.
	MachineByIdentity(ctx context.Context, identity string) (*MachineRecord, error)
	// MachineIDByTokenHash finds whose machine token hashes to hash.
	MachineIDByTokenHash(ctx context.Context, hash []byte) (string, error)
	// ListMachines returns every machine by id.
	ListMachines(ctx context.Context) ([]*MachineRecord, error)
	// SaveMachine writes the provisioner-owned fields (pool, moves,
	// quarantine, drain, credentials expiry, token, facts); never the
	// fields a heartbeat reports.
	SaveMachine(ctx context.Context, m *MachineRecord) error
	// Heartbeat records what a machine reported and, when its current task
	// changed, the finished run.
	Heartbeat(ctx context.Context, machineID string, hb client.HeartbeatRequest, now time.Time) error

	// ApplyMoves saves each machine, queues its directive and records its
	// action, all in one transaction.
	ApplyMoves(ctx context.Context, writes []MoveWrite) error

	// AddDirective queues a directive and returns its id.
	AddDirective(ctx context.Context, machineID string, d client.Directive) (int64, error)
	// Directives returns the machine's directives with ID > after and
	// forgets those <= after (the runner has handled them).
	Directives(ctx context.Context, machineID string, after int64) ([]client.Directive, error)

	// RecentDirectiveMachines lists machines with directives queued since
	// since, for replicas that wake their long-polls by polling.
	RecentDirectiveMachines(ctx context.Context, since time.Time) ([]string, error)
	// Shared reports whether other replicas may use the same database.
	Shared() bool

	// AddAction records an action on a machine.
	AddAction(ctx context.Context, machineID string, a client.Action) error
	// Actions returns a machine's latest actions, newest first.
	Actions(ctx context.Context, machineID string, limit int) ([]client.Action, error)
	// TaskRuns returns a pool's runs finished since since.
	TaskRuns(ctx context.Context, poolID string, since time.Time) ([]TaskRun, error)

	// AddRunReports records finished runs (their ID is ignored), each
	// once: a run already recorded is skipped. It returns how many were new.
	AddRunReports(ctx context.Context, runs []RunRecord, now time.Time) (int, error)
	// RunReports returns a pool's reported runs finished since
	// finishedSince and received since receivedSince, in the order they
	// finished.
	RunReports(ctx context.Context, poolID string, finishedSince, receivedSince time.Time) ([]RunRecord, error)
	// FindRunReport returns the machine's latest reported run of taskID
	// of that kind, or ErrNotFound.
	FindRunReport(ctx context.Context, machineID, taskID, kind string) (RunRecord, error)
	// LatestCanary returns the latest canary run reported, with its log:
	// of machineID and of taskID, either left empty to match any
	// (ErrNotFound when none).
	LatestCanary(ctx context.Context, machineID, taskID string) (RunRecord, error)
	// PruneRunReports forgets runs finished before before.
	PruneRunReports(ctx context.Context, before time.Time) (int64, error)
	// Watches returns the black-hole detector's memory, by machine.
	Watches(ctx context.Context) (map[string]Watch, error)
	// SaveWatch stores one machine's detector memory.
	SaveWatch(ctx context.Context, w Watch) error
	// ReleaseRuns marks every run the machine reported so far as judged
	// and ends the detector's quarantine (an operator released it).
	ReleaseRuns(ctx context.Context, machineID string) error

	// InsertToken stores a token record.
	InsertToken(ctx context.Context, t TokenRecord) error
	// TokenByHash finds an API or enrollment token by its hash.
	TokenByHash(ctx context.Context, hash []byte) (TokenRecord, error)
	// UseEnrollmentToken spends one use of an enrollment token, failing
	// with ErrNotFound when it is unknown, spent or expired.
	UseEnrollmentToken(ctx context.Context, hash []byte, now time.Time) error

	// EndSession records that the dashboard session id was signed out,
	// so that its cookie is refused until it expires, and forgets the
	// sign-outs of sessions expired before now.
	EndSession(ctx context.Context, id string, expires, now time.Time) error
	// SessionEnded reports whether the dashboard session id was signed out.
	SessionEnded(ctx context.Context, id string) (bool, error)

	// TryLeadership takes the assigner lock if free; ok is false when
	// another replica holds it.
	TryLeadership(ctx context.Context) (l Leadership, ok bool, err error)
	// Close releases the database.
	Close() error
}
