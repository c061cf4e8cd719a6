package pulse

import (
	"errors"
	"fmt"
)

// maxShortString is AMQP's limit for exchange and queue names and routing
// keys; the in-process bus enforces it too so that code tested against it
// does not fail later against RabbitMQ.
const maxShortString = 255

// defaultPrefetch is ConsumeOptions.Prefetch when left zero.
const defaultPrefetch = 10

func validateOutgoing(msg Outgoing) error {
	if msg.Exchange == "" {
		return errors.New("pulse: Outgoing.Exchange is empty: set it to the exchange name, e.g. exchange/taskcluster-queue/v1/task-pending")
	}
	if len(msg.Exchange) > maxShortString {
		return fmt.Errorf("pulse: Outgoing.Exchange is %d bytes: AMQP allows at most %d", len(msg.Exchange), maxShortString)
	}
	if len(msg.RoutingKey) > maxShortString {
		return fmt.Errorf("pulse: Outgoing.RoutingKey is %d bytes: AMQP allows at most %d", len(msg.RoutingKey), maxShortString)
	}
	for i, cc := range msg.CC {
		if len(cc) > maxShortString {
			return fmt.Errorf("pulse: Outgoing.CC[%d] is %d bytes: AMQP allows at most %d", i, len(cc), maxShortString)
		}
	}
	return nil
}

// withDefaults checks opts and the bindings and fills in the defaults.
func (opts ConsumeOptions) withDefaults(bindings []Binding, handler Handler) (ConsumeOptions, error) {
	if handler == nil {
		return opts, errors.New("pulse: Consume handler is nil: pass a function that acks or nacks each delivery")
	}
	if opts.Queue == "" && !opts.Exclusive {
		return opts, errors.New("pulse: ConsumeOptions.Queue is empty: name the queue (queue/<user>/<name>) or set Exclusive for a server-named temporary queue")
	}
	if len(opts.Queue) > maxShortString {
		return opts, fmt.Errorf("pulse: ConsumeOptions.Queue is %d bytes: AMQP allows at most %d", len(opts.Queue), maxShortString)
	}
	if opts.Prefetch < 0 || opts.Prefetch > 65535 {
		return opts, fmt.Errorf("pulse: ConsumeOptions.Prefetch is %d: use 1..65535, or 0 for the default %d", opts.Prefetch, defaultPrefetch)
	}
	if opts.MaxLength < 0 {
		return opts, fmt.Errorf("pulse: ConsumeOptions.MaxLength is %d: use a positive cap, or 0 for none", opts.MaxLength)
	}
	if opts.ReconnectMin < 0 || opts.ReconnectMax < 0 {
		return opts, errors.New("pulse: ConsumeOptions.ReconnectMin/ReconnectMax are negative: use positive durations, or 0 for the defaults")
	}
	if opts.Prefetch == 0 {
		opts.Prefetch = defaultPrefetch
	}
	if opts.ReconnectMin == 0 {
		opts.ReconnectMin = defaultReconnectMin
	}
	if opts.ReconnectMax == 0 {
		opts.ReconnectMax = defaultReconnectMax
	}
	if opts.ReconnectMax < opts.ReconnectMin {
		return opts, fmt.Errorf("pulse: ConsumeOptions.ReconnectMax (%s) is below ReconnectMin (%s): raise ReconnectMax", opts.ReconnectMax, opts.ReconnectMin)
	}
	for i, b := range bindings {
		if b.Exchange == "" {
			return opts, fmt.Errorf("pulse: bindings[%d].Exchange is empty: set the exchange to bind to", i)
		}
		if len(b.Exchange) > maxShortString || len(b.RoutingKeyPattern) > maxShortString {
			return opts, fmt.Errorf("pulse: bindings[%d] has an exchange or pattern longer than AMQP's %d bytes", i, maxShortString)
		}
	}
	return opts, nil
}
