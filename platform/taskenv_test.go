package platform

import "testing"

func TestTaskEnvInheritsOnlyEssentials(t *testing.T) {
	for _, name := range []string{"LABRUNNER_PROVISIONER_TOKEN", "TASKCLUSTER_ACCESS_TOKEN", "AWS_SECRET_ACCESS_KEY", "SECRET_X", "GOFLAGS", "PATHX", "XPATH"} {
		if TaskEnvInherited(name) {
			t.Errorf("%s is inherited by tasks; only OS essentials may be", name)
		}
	}
	if !TaskEnvInherited("PATH") {
		t.Error("PATH is not inherited by tasks")
	}
	for _, name := range TaskTempEnv() {
		if TaskEnvInherited(name) {
			t.Errorf("%s is inherited; a task gets its own temporary directory", name)
		}
	}
}
