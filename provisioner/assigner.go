package provisioner

// The assigner decides which idle machines change pool. Each pass:
//
//	demand ──▶ desired per pool ──▶ deficits, surpluses ──▶ moves
//
// A pool's desired capacity extends worker-manager's estimator
// (services/worker-manager/src/estimator.js):
//
//	worker-manager: desired = max(min, min(pending*ratio + existing, max))
//	here:           desired = max(min, min(ceil(pending*ratio) + busy, max))
//
// Hardware cannot be spawned, only moved, so an idle machine already in a
// pool is supply that another pool may need: it counts as capacity but not
// as demand. A pool then lacks desired - capacity machines and can spare
// capacity - desired idle ones. Pools lacking machines are served in order
// of priority (highest first), then of shortfall; donors are unassigned
// machines first, then idle machines of pools with a surplus, lowest
// priority first. A move of an assigned machine is two-phase:
//
//	idle in A ──drain──▶ drained (movingTo=B) ──reassign──▶ in B
//
// so that a task claimed in between is never interrupted. A machine moves at
// most once per MoveInterval (hysteresis), which keeps machines from
// flapping while pending counts oscillate.

import (
	"math"
	"sort"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

// planInput is everything a pass decides on.
type planInput struct {
	pools    []client.Pool
	machines []*MachineRecord
	// pending per pool id; a pool missing here has unknown demand and
	// neither gives nor takes machines.
	pending      map[string]int64
	now          time.Time
	moveInterval time.Duration
	offlineAfter time.Duration
}

// move is one decision: machine leaves from (empty: unassigned) for to
// (empty: released from a pool above its maximum).
type move struct {
	machine  *MachineRecord
	from, to string
}

// poolPlan is one pool's figures in a pass.
type poolPlan struct {
	pool     *client.Pool
	match    matcher
	known    bool
	pending  int64
	busy     int
	capacity int
	desired  int
	donors   []*MachineRecord
}

// online reports whether m has heartbeated recently enough to count.
func online(m *MachineRecord, now time.Time, offlineAfter time.Duration) bool {
	return m.LastHeartbeat != nil && now.Sub(*m.LastHeartbeat) <= offlineAfter
}

func quarantined(m *MachineRecord, now time.Time) bool {
	return m.QuarantinedUntil != nil && m.QuarantinedUntil.After(now)
}

// busy reports whether m runs (or may be about to run) a task.
func isBusy(m *MachineRecord) bool {
	return m.CurrentTask != nil || m.State == client.StateBusy
}

// usable reports whether m counts as a pool's capacity.
func usable(m *MachineRecord, now time.Time, offlineAfter time.Duration) bool {
	return online(m, now, offlineAfter) && !quarantined(m, now) && !m.Draining
}

// desiredCapacity is the estimator above.
func desiredCapacity(spec client.PoolSpec, pending int64, busy int) int {
	ratio := spec.ScalingRatio
	if ratio == 0 {
		ratio = 1
	}
	want := int(math.Ceil(float64(pending)*ratio)) + busy
	return max(spec.MinCapacity, min(want, spec.MaxCapacity))
}

// plan computes the moves of one pass; it changes nothing.
func plan(in planInput) ([]move, map[string]*poolPlan) {
	pools := map[string]*poolPlan{}
	for i := range in.pools {
		p := &in.pools[i]
		pending, known := in.pending[p.PoolID]
		pools[p.PoolID] = &poolPlan{pool: p, match: compileConstraints(p.Spec.Constraints), known: known, pending: pending}
	}
	var free []*MachineRecord
	for _, m := range in.machines {
		if !usable(m, in.now, in.offlineAfter) {
			continue
		}
		idle := !isBusy(m) && m.State == client.StateIdle
		if m.MovingTo != "" {
			if pp := pools[m.MovingTo]; pp != nil {
				pp.capacity++
			}
			continue
		}
		pp := pools[m.PoolID]
		if pp == nil {
			if idle || m.State == client.StateDrained {
				free = append(free, m)
			}
			continue
		}
		pp.capacity++
		if isBusy(m) {
			pp.busy++
			continue
		}
		if idle && (m.LastMoved == nil || in.now.Sub(*m.LastMoved) >= in.moveInterval) {
			pp.donors = append(pp.donors, m)
		}
	}
	var needy, giving []*poolPlan
	for _, pp := range pools {
		if !pp.known {
			pp.desired = pp.capacity
			continue
		}
		pp.desired = desiredCapacity(pp.pool.Spec, pp.pending, pp.busy)
		if pp.desired > pp.capacity {
			needy = append(needy, pp)
		} else if pp.capacity > pp.desired && len(pp.donors) > 0 {
			giving = append(giving, pp)
		}
	}
	sort.Slice(needy, func(i, j int) bool {
		a, b := needy[i], needy[j]
		if a.pool.Spec.Priority != b.pool.Spec.Priority {
			return a.pool.Spec.Priority > b.pool.Spec.Priority
		}
		if da, db := a.desired-a.capacity, b.desired-b.capacity; da != db {
			return da > db
		}
		return a.pool.PoolID < b.pool.PoolID
	})
	sort.Slice(giving, func(i, j int) bool {
		a, b := giving[i], giving[j]
		if a.pool.Spec.Priority != b.pool.Spec.Priority {
			return a.pool.Spec.Priority < b.pool.Spec.Priority
		}
		if sa, sb := a.capacity-a.desired, b.capacity-b.desired; sa != sb {
			return sa > sb
		}
		return a.pool.PoolID < b.pool.PoolID
	})
	sort.Slice(free, func(i, j int) bool { return free[i].MachineID < free[j].MachineID })
	taken := map[*MachineRecord]bool{}
	var moves []move
	for _, need := range needy {
		// Machines before a cursor were taken or do not fit need, so each
		// needy pool scans every candidate at most once.
		cur := &donorCursor{giving: map[*poolPlan]int{}}
		for need.desired > need.capacity {
			m, from := pickDonor(need, free, giving, taken, cur)
			if m == nil {
				break
			}
			taken[m] = true
			need.capacity++
			if from != nil {
				from.capacity--
			}
			moves = append(moves, move{machine: m, from: m.PoolID, to: need.pool.PoolID})
		}
	}
	// Pools above their maximum (it was lowered) release idle machines
	// nobody took.
	for _, pp := range pools {
		if !pp.known {
			continue
		}
		for _, m := range pp.donors {
			if pp.capacity <= pp.pool.Spec.MaxCapacity {
				break
			}
			if taken[m] {
				continue
			}
			taken[m] = true
			pp.capacity--
			moves = append(moves, move{machine: m, from: pp.pool.PoolID, to: ""})
		}
	}
	return moves, pools
}

// donorCursor remembers how far one needy pool has scanned each list.
type donorCursor struct {
	free   int
	giving map[*poolPlan]int
}

// pickDonor finds an eligible machine for need: unassigned first, then
// from pools with a surplus in their sort order.
func pickDonor(need *poolPlan, free []*MachineRecord, giving []*poolPlan, taken map[*MachineRecord]bool, cur *donorCursor) (*MachineRecord, *poolPlan) {
	for ; cur.free < len(free); cur.free++ {
		m := free[cur.free]
		if !taken[m] && need.match.matches(&m.Facts) {
			return m, nil
		}
	}
	for _, g := range giving {
		if g == need || g.capacity <= g.desired {
			continue
		}
		i := cur.giving[g]
		for ; i < len(g.donors); i++ {
			m := g.donors[i]
			if !taken[m] && need.match.matches(&m.Facts) {
				cur.giving[g] = i
				return m, g
			}
		}
		cur.giving[g] = i
	}
	return nil, nil
}
