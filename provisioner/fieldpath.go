package provisioner

import (
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/labrunner/labrunner/provisioner/client"
)

var (
	rawMessageType = reflect.TypeFor[json.RawMessage]()
	timeType       = reflect.TypeFor[time.Time]()
)

// requiredFields lists, per request type, the fields a body must carry
// (with the hint a refusal gives); openapi.json's "required" lists say the
// same, which TestRequiredFieldsMatchOpenAPI checks. Every other field is
// optional: leave it out rather than send null.
var requiredFields = map[reflect.Type][]requiredField{
	reflect.TypeFor[client.RegisterRequest]():   {{"facts", "send the machine's facts (hostname, os, ...)"}},
	reflect.TypeFor[client.Facts]():             {{"hostname", "send the machine's host name"}, {"os", "send windows, darwin or linux"}},
	reflect.TypeFor[client.EC2Identity]():       {{"document", "send the instance identity document"}, {"signature", "send the document's signature"}},
	reflect.TypeFor[client.HeartbeatRequest]():  {{"state", "send the machine's state (idle, busy, ...)"}},
	reflect.TypeFor[client.TaskRef]():           {{"taskId", "omit currentTask when no task runs"}, {"runId", "send the run's number (0 for the first)"}},
	reflect.TypeFor[client.HealthResult]():      {{"name", "name the health check"}, {"ok", "say whether the check passed"}},
	reflect.TypeFor[client.PoolSpec]():          {{"source", "set it to taskcluster, buildbot or both"}, {"maxCapacity", "the most machines the pool may hold (at least 1)"}},
	reflect.TypeFor[quarantineBody]():           {{"reason", "say why, for the record"}, {"until", "an RFC 3339 date-time such as 2026-12-01T00:00:00Z"}},
	reflect.TypeFor[client.AssignRequest]():     {{"poolId", "name the pool to assign the machine to"}},
	reflect.TypeFor[client.TokenRequest]():      {{"kind", "admin, readonly or enroll"}},
	reflect.TypeFor[client.RunReportsRequest](): {{"runs", "send the finished runs (a list)"}},
	reflect.TypeFor[client.RunReport](): {{"taskId", "name the run's task"}, {"runId", "send the run's number (0 for the first)"},
		{"result", "completed, failed or exception"}, {"started", "when the run started (RFC 3339)"}, {"finished", "when the run ended (RFC 3339)"}},
}

type requiredField struct{ name, hint string }

// fieldCache holds jsonFields' answers, by type.
var fieldCache sync.Map // reflect.Type → map[string]reflect.Type

// jsonFields maps a struct's JSON names, exactly as spelled in its tags
// (the API matches names case-sensitively), to their types, following
// embedded structs. The map is shared: do not change it.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := collectFields(t)
	fieldCache.Store(t, m)
	return m
}

func collectFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			for k, v := range collectFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// caseVariant returns the declared name that equals key but for case,
// for the hint of an unknown field.
func caseVariant(fields map[string]reflect.Type, key string) string {
	for name := range fields {
		if strings.EqualFold(name, key) {
			return name
		}
	}
	return ""
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
