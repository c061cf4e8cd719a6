package provisioner

import (
	"sync"
	"time"
)

// probeLog keeps, per component of the system map, the last error seen
// and when, so the map shows it after the component recovered.
type probeLog struct {
	mu   sync.Mutex
	last map[string]probeError
}

type probeError struct {
	Msg string
	At  time.Time
}

func (p *probeLog) note(component string, err error, at time.Time) {
	if err == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil {
		p.last = map[string]probeError{}
	}
	p.last[component] = probeError{Msg: err.Error(), At: at}
}

func (p *probeLog) get(component string) (probeError, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.last[component]
	return e, ok
}
