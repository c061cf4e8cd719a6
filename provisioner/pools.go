package provisioner

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

var (
	// poolIDPattern keeps pool ids safe in URLs, metrics labels and YAML.
	poolIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	// tcIdentifier is Taskcluster's identifier pattern (provisionerId,
	// workerType, workerGroup, workerId).
	tcIdentifier = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,38}$`)
)

// defaultWorkerGroup is the workerGroup of pools that name none.
const defaultWorkerGroup = "labrunner"

// validatePoolID checks a pool id from a path or request.
func validatePoolID(field, id string) *apiError {
	if !poolIDPattern.MatchString(id) {
		return badField(field, "%q is not a valid pool id: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	}
	return nil
}

// Sane bounds of a pool's numbers.
const (
	maxPoolCapacity   = 100_000
	maxPoolPriority   = 1_000_000
	maxTargetWaitSecs = 7 * 24 * 3600
	maxQuarantineFor  = 365 * 24 * time.Hour
)

// validatePoolSpec checks a spec and fills its defaults; sent says which
// fields the body carried, so that an optional field sent empty or 0 is
// refused rather than silently replaced by its default.
func validatePoolSpec(spec *client.PoolSpec, sent present) *apiError {
	switch spec.Source {
	case client.SourceTaskcluster, client.SourceBuildbot, client.SourceBoth:
	case "":
		return badField("source", "missing: set it to %q (with taskQueueId), %q (with builders) or %q (with both)", client.SourceTaskcluster, client.SourceBuildbot, client.SourceBoth)
	default:
		return badField("source", "%q is not a source: use %q, %q or %q", spec.Source, client.SourceTaskcluster, client.SourceBuildbot, client.SourceBoth)
	}
	if client.HasTaskcluster(spec.Source) {
		prov, wt, ok := strings.Cut(spec.TaskQueueID, "/")
		if !ok || !tcIdentifier.MatchString(prov) || !tcIdentifier.MatchString(wt) {
			return badField("taskQueueId", "%q is not a task queue id: a %s pool needs <provisionerId>/<workerType>, each 1-38 of [a-zA-Z0-9_-]", spec.TaskQueueID, spec.Source)
		}
	} else if spec.TaskQueueID != "" {
		return badField("taskQueueId", "a buildbot pool has no task queue; remove it, or set source: both to claim from the queue too")
	}
	if client.HasBuildbot(spec.Source) {
		if len(spec.Builders) == 0 {
			return badField("builders", "a %s pool needs at least one builder name", spec.Source)
		}
		for i, b := range spec.Builders {
			if strings.TrimSpace(b) == "" {
				return badField("builders", "builders[%d] is empty; remove it or name a builder", i)
			}
		}
	} else if len(spec.Builders) > 0 {
		return badField("builders", "only buildbot and both pools have builders; remove it or set source: both")
	}
	if spec.WorkerGroup == "" && !sent["workerGroup"] {
		spec.WorkerGroup = defaultWorkerGroup
	}
	if !tcIdentifier.MatchString(spec.WorkerGroup) {
		return badField("workerGroup", "%q is not a Taskcluster identifier: use 1-38 of [a-zA-Z0-9_-]", spec.WorkerGroup)
	}
	if spec.MinCapacity < 0 || spec.MinCapacity > maxPoolCapacity {
		return badField("minCapacity", "must be from 0 to %d, not %d", maxPoolCapacity, spec.MinCapacity)
	}
	if spec.MaxCapacity < 1 || spec.MaxCapacity > maxPoolCapacity {
		return badField("maxCapacity", "must be from 1 to %d, not %d", maxPoolCapacity, spec.MaxCapacity)
	}
	if spec.MaxCapacity < spec.MinCapacity {
		return badField("maxCapacity", "%d is less than minCapacity %d", spec.MaxCapacity, spec.MinCapacity)
	}
	if spec.Priority < -maxPoolPriority || spec.Priority > maxPoolPriority {
		return badField("priority", "must be from %d to %d, not %d", -maxPoolPriority, maxPoolPriority, spec.Priority)
	}
	if spec.ScalingRatio == 0 && !sent["scalingRatio"] {
		spec.ScalingRatio = 1
	}
	if spec.ScalingRatio <= 0 || spec.ScalingRatio > 100 {
		return badField("scalingRatio", "must be more than 0 and at most 100, not %g: leave it out for the default 1", spec.ScalingRatio)
	}
	if spec.TargetWaitSeconds == 0 && !sent["targetWaitSeconds"] {
		spec.TargetWaitSeconds = 600
	}
	if spec.TargetWaitSeconds < 1 || spec.TargetWaitSeconds > maxTargetWaitSecs {
		return badField("targetWaitSeconds", "must be from 1 to %d, not %d: leave it out for the default 600", maxTargetWaitSecs, spec.TargetWaitSeconds)
	}
	if spec.Constraints.OSVersion != "" {
		if _, err := regexp.Compile(spec.Constraints.OSVersion); err != nil {
			return badField("constraints.osVersion", "not a regular expression: %v", err)
		}
	}
	for k := range spec.Constraints.Tags {
		if k == "" {
			return badField("constraints.tags", "a tag name is empty")
		}
	}
	if spec.Reboot != nil && spec.Reboot.AfterTasks < 0 {
		return badField("reboot.afterTasks", "must be 0 or more, not %d", spec.Reboot.AfterTasks)
	}
	if h := spec.Health; h != nil {
		if h.QuarantineAfterFailures < 0 {
			return badField("health.quarantineAfterFailures", "must be 0 or more, not %d", h.QuarantineAfterFailures)
		}
		if h.MinFreeDiskGB < 0 {
			return badField("health.minFreeDiskGB", "must be 0 or more, not %d", h.MinFreeDiskGB)
		}
		if h.QuarantineFor != "" || sent["health.quarantineFor"] {
			if d, err := time.ParseDuration(h.QuarantineFor); err != nil || d <= 0 || d > maxQuarantineFor {
				return badField("health.quarantineFor", "%q is not a positive duration up to %s such as 1h or 30m", h.QuarantineFor, maxQuarantineFor)
			}
		}
	}
	if aerr := validateBlackHole(spec.BlackHole, sent); aerr != nil {
		return aerr
	}
	if len(spec.WorkerConfig) > 0 {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(spec.WorkerConfig, &obj); err != nil || obj == nil {
			return badField("workerConfig", "must be a JSON object: leave it out for none")
		}
	}
	return nil
}

func (s *Server) listPools(w http.ResponseWriter, r *http.Request, _ *principal) *apiError {
	ps, err := s.store.ListPools(r.Context())
	if err != nil {
		return storeError("list pools", err)
	}
	writeJSON(w, http.StatusOK, client.PoolList{Pools: ps})
	return nil
}

func (s *Server) getPool(w http.ResponseWriter, r *http.Request, _ *principal) *apiError {
	p, err := s.store.GetPool(r.Context(), r.PathValue("poolId"))
	if err != nil {
		return storeError("get pool", err)
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// decodePoolSpec reads and validates a PUT body.
func decodePoolSpec(data []byte) (client.PoolSpec, *apiError) {
	var spec client.PoolSpec
	sent, aerr := decodeFields(data, &spec)
	if aerr != nil {
		return spec, aerr
	}
	return spec, validatePoolSpec(&spec, sent)
}

func (s *Server) putPool(w http.ResponseWriter, r *http.Request, p *principal) *apiError {
	id := r.PathValue("poolId")
	if aerr := validatePoolID("poolId", id); aerr != nil {
		return aerr
	}
	raw, aerr := readBody(r.Body)
	if aerr != nil {
		return aerr
	}
	spec, aerr := decodePoolSpec(raw)
	if aerr != nil {
		return aerr
	}
	now := s.now()
	pool := client.Pool{PoolID: id, Spec: spec, Created: now, Updated: now}
	status := http.StatusCreated
	if old, err := s.store.GetPool(r.Context(), id); err == nil {
		pool.Created = old.Created
		status = http.StatusOK
	}
	if err := s.store.PutPool(r.Context(), pool); err != nil {
		return storeError("store pool", err)
	}
	s.log.Info("pool stored", "pool", id, "by", p.name)
	s.changed()
	stored, err := s.store.GetPool(r.Context(), id)
	if err != nil {
		return storeError("read stored pool", err)
	}
	writeJSON(w, status, stored)
	return nil
}

func (s *Server) deletePool(w http.ResponseWriter, r *http.Request, p *principal) *apiError {
	id := r.PathValue("poolId")
	raw, aerr := readBody(r.Body)
	if aerr != nil {
		return aerr
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		return badField("(body)", "DELETE of a pool takes no body: send none")
	}
	if err := s.store.DeletePool(r.Context(), id); err != nil {
		return storeError("delete pool", err)
	}
	s.log.Info("pool deleted", "pool", id, "by", p.name)
	s.changed()
	w.WriteHeader(http.StatusNoContent)
	return nil
}
