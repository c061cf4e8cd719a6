package provisioner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"

	"github.com/labrunner/labrunner/provisioner/client"
)

// decodeRegister reads and checks a registration body.
func decodeRegister(data []byte) (client.RegisterRequest, *apiError) {
	var req client.RegisterRequest
	if aerr := decodeBytes(data, &req); aerr != nil {
		return req, aerr
	}
	if strings.TrimSpace(req.Facts.Hostname) == "" {
		return req, badField("facts.hostname", "missing: send the machine's host name")
	}
	if req.Facts.OS == "" {
		return req, badField("facts.os", "missing: send windows, darwin or linux")
	}
	for name, n := range map[string]int64{"cpus": int64(req.Facts.CPUs), "memoryMB": req.Facts.MemoryMB, "diskGB": req.Facts.DiskGB} {
		if n < 0 {
			return req, badField("facts."+name, "must be 0 or more, not %d", n)
		}
	}
	switch {
	case req.EnrollmentToken != "" && req.EC2 != nil:
		return req, badField("ec2", "send either enrollmentToken or ec2, not both")
	case req.EnrollmentToken == "" && req.EC2 == nil:
		return req, badField("enrollmentToken", "missing: send an enrollment token (provisioner token create --enroll N) or, on EC2, the ec2 identity document and signature")
	case req.EC2 != nil && (req.EC2.Document == "" || req.EC2.Signature == ""):
		return req, badField("ec2", "both ec2.document and ec2.signature are required")
	}
	return req, nil
}

// machineIDFromHostname derives a Taskcluster-valid workerId from a host
// name: lower case, [a-z0-9-], at most 32 characters.
func machineIDFromHostname(host string) string {
	host, _, _ = strings.Cut(strings.ToLower(host), ".")
	var b strings.Builder
	for _, r := range host {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	id := strings.Trim(b.String(), "-")
	if len(id) > 32 {
		id = id[:32]
	}
	if id == "" {
		id = "machine"
	}
	return id
}

func randomSuffix() string {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) register(w http.ResponseWriter, r *http.Request, _ *principal) *apiError {
	raw, aerr := readBody(r.Body)
	if aerr != nil {
		return aerr
	}
	req, aerr := decodeRegister(raw)
	if aerr != nil {
		return aerr
	}
	ctx := r.Context()
	facts := req.Facts
	identity := ""
	if req.EC2 != nil {
		doc, aerr := s.ec2.verify(req.EC2.Document, req.EC2.Signature)
		if aerr != nil {
			return aerr
		}
		// The signed document, not the runner's claims, is the truth.
		facts.InstanceID, facts.Region, facts.InstanceType = doc.InstanceID, doc.Region, doc.InstanceType
		facts.AMI, facts.AvailabilityZ = doc.ImageID, doc.AvailabilityZone
		identity = "ec2:" + doc.InstanceID
	} else {
		if err := s.store.UseEnrollmentToken(ctx, hashToken(req.EnrollmentToken), s.now()); err != nil {
			if errors.Is(err, ErrNotFound) {
				return errStatus(http.StatusUnauthorized, "AuthenticationFailed", "enrollment token is unknown, used up or expired: create one with `provisioner token create --enroll N`")
			}
			return storeError("enrollment token", err)
		}
		if facts.Serial != "" {
			identity = "serial:" + facts.Serial
		}
	}
	token, err := newSecret(machineTokenPrefix)
	if err != nil {
		return storeError("machine token", err)
	}
	m, status, aerr := s.upsertMachine(ctx, identity, facts, token)
	if aerr != nil {
		return aerr
	}
	var pool *client.Pool
	if m.PoolID != "" {
		if p, err := s.store.GetPool(ctx, m.PoolID); err == nil {
			pool = &p
		}
	}
	as, err := s.assignment(pool, m.MachineID)
	if err != nil {
		return errStatus(http.StatusInternalServerError, "CredentialsFailed", "%v", err)
	}
	if as.Credentials != nil {
		exp := as.Credentials.Expires
		m.CredentialsExpire = &exp
		if err := s.store.SaveMachine(ctx, m); err != nil {
			return storeError("save machine", err)
		}
	}
	_ = s.store.AddAction(ctx, m.MachineID, client.Action{Action: "register", Who: "machine " + m.MachineID, Why: "registered as " + facts.Hostname, At: s.now()})
	s.metrics.registrations.Inc()
	s.log.Info("machine registered", "machine", m.MachineID, "hostname", facts.Hostname, "pool", m.PoolID)
	s.changed()
	writeJSON(w, status, client.RegisterResponse{MachineID: m.MachineID, MachineToken: token, Assignment: as})
	return nil
}

// upsertMachine finds the machine with identity (re-registration keeps its
// id and pool and gets a new token) or creates one with a fresh id and the
// pool that needs it most.
func (s *Server) upsertMachine(ctx context.Context, identity string, facts client.Facts, token string) (*MachineRecord, int, *apiError) {
	if identity != "" {
		m, err := s.store.MachineByIdentity(ctx, identity)
		if err == nil {
			m.Facts = facts
			m.TokenHash = hashToken(token)
			if err := s.store.SaveMachine(ctx, m); err != nil {
				return nil, 0, storeError("save machine", err)
			}
			// The replaced token must stop working here at once.
			s.authCache.clear()
			return m, http.StatusOK, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, 0, storeError("find machine", err)
		}
	}
	base := machineIDFromHostname(facts.Hostname)
	m := &MachineRecord{
		Machine:   client.Machine{Facts: facts, Registered: s.now(), State: client.StateStarting},
		TokenHash: hashToken(token),
		Identity:  identity,
	}
	pool, err := s.initialPool(ctx, facts)
	if err != nil {
		return nil, 0, storeError("choose pool", err)
	}
	m.PoolID = pool
	for attempt := 0; attempt < 8; attempt++ {
		m.MachineID = base
		if attempt > 0 {
			m.MachineID = base + "-" + randomSuffix()
		}
		err := s.store.InsertMachine(ctx, m)
		if err == nil {
			return m, http.StatusCreated, nil
		}
		if !errors.Is(err, ErrConflict) {
			return nil, 0, storeError("insert machine", err)
		}
		if identity != "" {
			// Another registration with the same identity may have won.
			if other, err := s.store.MachineByIdentity(ctx, identity); err == nil {
				other.TokenHash = m.TokenHash
				if err := s.store.SaveMachine(ctx, other); err != nil {
					return nil, 0, storeError("save machine", err)
				}
				return other, http.StatusOK, nil
			}
		}
	}
	return nil, 0, errStatus(http.StatusConflict, "Conflict", "could not find a free machine id for host %s", facts.Hostname)
}
