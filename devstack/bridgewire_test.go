package devstack

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/labrunner/labrunner/bridge"
	"github.com/labrunner/labrunner/provisioner/client"
)

// The bridge writes its view of a task (bridge.TaskView, GET
// /api/v1/tasks/{taskId}) and the provisioner's "why" page reads it into
// its own types (client.BridgeTaskView): every field the bridge writes is
// read back, with nothing lost or renamed, so that the two stay in step.
func TestBridgeTaskViewReadsBackInTheProvisionersTypes(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	id := int64(7)
	in := bridge.TaskView{
		Instance: "bbb-1", TaskID: "T1", TaskQueueID: "buildbot-bridge/buildbot-bridge",
		Row: &bridge.TaskRow{RunID: 1, BuildRequestID: &id, State: "running", ProcessedDate: 100, TakenUntil: n(200), LeaseOwner: "bbb-1"},
		Requests: []bridge.RequestView{{ID: 7, Builder: "linux-build", Priority: 2, SubmittedAt: 90, ClaimedBy: "lab-1", ClaimedAt: 95,
			Complete: true, Result: "success", CompleteAt: n(150), Builds: []bridge.BuildView{{Number: 3, StartTime: 96, FinishTime: n(149)}}}},
	}
	wrote, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	// Every field is set, so that a field added to the bridge's type fails
	// here until the sample (and the provisioner's type) has it.
	assertAllSet(t, reflect.ValueOf(in), "bridge.TaskView")
	var out client.BridgeTaskView
	dec := json.NewDecoder(bytes.NewReader(wrote))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("the provisioner's types do not read the bridge's view: %v\n%s", err, wrote)
	}
	read, _ := json.Marshal(out)
	var a, b any
	_ = json.Unmarshal(wrote, &a)
	_ = json.Unmarshal(read, &b)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("lost or changed on the way:\nbridge wrote    %s\nprovisioner has %s", wrote, read)
	}
}

// assertAllSet fails for any zero field in v, recursively.
func assertAllSet(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			t.Errorf("%s is not set", path)
			return
		}
		assertAllSet(t, v.Elem(), path)
	case reflect.Struct:
		for i := range v.NumField() {
			assertAllSet(t, v.Field(i), path+"."+v.Type().Field(i).Name)
		}
	case reflect.Slice:
		if v.Len() == 0 {
			t.Errorf("%s is empty", path)
		}
		for i := range v.Len() {
			assertAllSet(t, v.Index(i), path)
		}
	default:
		if v.IsZero() {
			t.Errorf("%s is not set", path)
		}
	}
}
