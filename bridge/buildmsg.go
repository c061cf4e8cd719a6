package bridge

// Buildbot's Pulse messages on exchange/build (docs/bridge.md, "Buildbot's
// Pulse messages"): the mozillapulse envelope {payload, _meta}, build status dicts whose
// properties are [name, value, source] triples.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// BuildMessage is a build.<builder>.<number>.<event> message.
type BuildMessage struct {
	Payload BuildPayload `json:"payload"`
	Meta    BuildMeta    `json:"_meta"`
}

// BuildPayload is the message payload: the build status dict and, on
// started, the build requests the build satisfies.
type BuildPayload struct {
	Build      BuildStatus `json:"build"`
	RequestIDs []int64     `json:"request_ids,omitempty"`
}

// BuildStatus is the part of Buildbot's build status dict the bridge and
// its consumers use.
type BuildStatus struct {
	BuilderName string              `json:"builderName"`
	Number      int                 `json:"number"`
	Properties  [][]json.RawMessage `json:"properties"`
	Reason      string              `json:"reason"`
	Slave       string              `json:"slave"`
	Results     *int                `json:"results"`
	Times       []*string           `json:"times"`
	Text        []string            `json:"text"`
	SourceStamp map[string]any      `json:"sourceStamp"`
	Blame       []string            `json:"blame"`
	Steps       []any               `json:"steps"`
}

// BuildMeta is mozillapulse's _meta.
type BuildMeta struct {
	Exchange          string `json:"exchange"`
	RoutingKey        string `json:"routing_key"`
	Serializer        string `json:"serializer"`
	Sent              string `json:"sent"`
	MasterName        string `json:"master_name"`
	MasterIncarnation string `json:"master_incarnation"`
	MessageID         string `json:"message_id"`
}

// BuildProperty is one decoded build property.
type BuildProperty struct {
	Value  json.RawMessage
	Source string
}

// propertyMap decodes the [name, value, source] list; ok is false when the
// list is missing or malformed.
func (s BuildStatus) propertyMap() (map[string]BuildProperty, bool) {
	if s.Properties == nil {
		return nil, false
	}
	out := make(map[string]BuildProperty, len(s.Properties))
	for _, p := range s.Properties {
		if len(p) < 2 {
			return nil, false
		}
		var name string
		if json.Unmarshal(p[0], &name) != nil {
			return nil, false
		}
		bp := BuildProperty{Value: p[1]}
		if len(p) > 2 {
			_ = json.Unmarshal(p[2], &bp.Source)
		}
		out[name] = bp
	}
	return out, true
}

// PropertyTriple builds one [name, value, source] entry.
func PropertyTriple(name string, value any, source string) []json.RawMessage {
	n, _ := json.Marshal(name)
	v, err := json.Marshal(value)
	if err != nil {
		v = []byte("null")
	}
	s, _ := json.Marshal(source)
	return []json.RawMessage{n, v, s}
}

// BuilderRoutingWord is the <builder> word of a started routing key: dots
// and spaces become underscores (the log_uploaded key keeps the name).
func BuilderRoutingWord(builder string) string {
	return strings.NewReplacer(".", "_", " ", "_").Replace(builder)
}

// NewBuildMessage wraps a payload in the envelope a master's publisher
// sends.
func NewBuildMessage(exchange, routingKey, masterName, masterIncarnation string, p BuildPayload, now time.Time) ([]byte, error) {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	msg := BuildMessage{Payload: p, Meta: BuildMeta{Exchange: exchange, RoutingKey: routingKey, Serializer: "json",
		Sent: now.UTC().Format("2006-01-02T15:04:05+0000"), MasterName: masterName, MasterIncarnation: masterIncarnation,
		MessageID: hex.EncodeToString(id)}}
	body, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("bridge: encode build message: %w", err)
	}
	return body, nil
}
