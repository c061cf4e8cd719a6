package installers

import (
	"strconv"
	"strings"
	"testing"
)

// Custom action type bits (msidbCustomActionType*).
const (
	caExeFromFile   = 0x12 // an .exe installed by this package
	caContinue      = 0x40 // the exit code is ignored
	caInScript      = 0x400
	caNoImpersonate = 0x800
	caHideTarget    = 0x2000
)

// configArg is how every action and the service name the config file.
const configArg = `--config "[CommonAppDataFolder]labrunner\runner.yml"`

// TestMSITables reads the MSI back with msiinfo and checks what makes it
// work: runner.exe in Program Files\labrunner, the service, its control,
// the registry, the Add/Remove Programs properties, the custom actions
// and their order, and the major upgrade.
func TestMSITables(t *testing.T) {
	msi := buildMSI(t, "1.2.3")

	dirs := msiTable(t, msi, "Directory")
	inst := rowBy(t, dirs, "Directory", "INSTALLDIR")
	if inst["Directory_Parent"] != "ProgramFiles64Folder" || inst["DefaultDir"] != "labrunner" {
		t.Errorf("INSTALLDIR %v, want labrunner under ProgramFiles64Folder", inst)
	}

	files := msiTable(t, msi, "File")
	exe := rowBy(t, files, "File", "RunnerExe")
	if exe["FileName"] != "runner.exe" || exe["Component_"] != "RunnerExe" {
		t.Errorf("File row %v", exe)
	}
	if size, _ := strconv.Atoi(exe["FileSize"]); size < 1<<20 {
		t.Errorf("runner.exe is %s bytes: not the runner", exe["FileSize"])
	}

	comps := msiTable(t, msi, "Component")
	for _, id := range []string{"RunnerExe", "RegistryEntries"} {
		c := rowBy(t, comps, "Component", id)
		attrs, _ := strconv.Atoi(c["Attributes"])
		if attrs&0x100 == 0 || c["Directory_"] != "INSTALLDIR" {
			t.Errorf("component %s: %v; want 64-bit (0x100) in INSTALLDIR", id, c)
		}
	}

	svc := rowBy(t, msiTable(t, msi, "ServiceInstall"), "Name", "labrunner")
	want := map[string]string{"ServiceType": "16", "StartType": "2", "ErrorControl": "1", "StartName": "LocalSystem",
		"Arguments": "run " + configArg, "Component_": "RunnerExe"}
	for k, v := range want {
		if svc[k] != v {
			t.Errorf("ServiceInstall %s = %q, want %q (own process, auto start, LocalSystem)", k, svc[k], v)
		}
	}
	ctl := rowBy(t, msiTable(t, msi, "ServiceControl"), "Name", "labrunner")
	// 0x02 stop at install, 0x20 stop at uninstall, 0x80 delete at
	// uninstall; started by the StartRunner action instead (0x01 unset).
	if ctl["Event"] != strconv.Itoa(0x02|0x20|0x80) || ctl["Wait"] != "1" {
		t.Errorf("ServiceControl %v, want Event %d and Wait 1", ctl, 0x02|0x20|0x80)
	}

	reg := msiTable(t, msi, "Registry")
	for name, val := range map[string]string{"InstallDir": "[INSTALLDIR]", "ConfigFile": `[CommonAppDataFolder]labrunner\runner.yml`, "Version": "1.2.3"} {
		r := rowBy(t, reg, "Name", name)
		if r["Root"] != "2" || strings.TrimSuffix(r["Key"], `\`) != `SOFTWARE\labrunner` || r["Value"] != val {
			t.Errorf("Registry %s: %v; want HKLM (2) SOFTWARE\\labrunner = %q", name, r, val)
		}
	}

	props := map[string]string{}
	for _, r := range msiTable(t, msi, "Property") {
		props[r["Property"]] = r["Value"]
	}
	for k, v := range map[string]string{"ProductName": "labrunner", "Manufacturer": "labrunner", "ProductVersion": "1.2.3",
		"ARPNOMODIFY": "1", "MsiHiddenProperties": "ENROLLMENT_TOKEN", "UpgradeCode": "{AE10E64C-E7C7-478C-97CF-3AB5EAEBEE3D}"} {
		if props[k] != v {
			t.Errorf("Property %s = %q, want %q", k, props[k], v)
		}
	}
	if props["ARPCONTACT"] == "" || props["ARPHELPLINK"] == "" {
		t.Errorf("no ARPCONTACT/ARPHELPLINK for Add/Remove Programs: %v", props)
	}
	secure := strings.Split(props["SecureCustomProperties"], ";")
	for _, p := range []string{"PROVISIONER_URL", "ENROLLMENT_TOKEN", "POOL_HINT", "TAGS", "TASK_USER", "REMOVE_DATA", "WIX_UPGRADE_DETECTED"} {
		if !contains(secure, p) {
			t.Errorf("SecureCustomProperties %v lacks %s: an elevated or MDM install would drop it", secure, p)
		}
	}

	cas := msiTable(t, msi, "CustomAction")
	type caWant struct {
		set, unset int
		target     []string
	}
	for name, w := range map[string]caWant{
		"ConfigureRunnerService": {set: caExeFromFile | caInScript | caNoImpersonate | caContinue, target: []string{"service configure"}},
		"EnrollRunner": {set: caExeFromFile | caInScript | caNoImpersonate | caHideTarget, unset: caContinue,
			target: []string{"enroll ", `--provisioner "[PROVISIONER_URL]"`, `--token "[ENROLLMENT_TOKEN]"`, `--pool-hint "[POOL_HINT]"`, `--tags "[TAGS]"`, `--task-user "[TASK_USER]"`, configArg, `--data-dir "[CommonAppDataFolder]labrunner"`}},
		"StartRunner":      {set: caExeFromFile | caInScript | caNoImpersonate, unset: caContinue, target: []string{"service start --if-configured " + configArg}},
		"RemoveRunnerData": {set: caExeFromFile | caInScript | caNoImpersonate | caContinue, target: []string{"remove-data " + configArg}},
		"StopRunner":       {set: caExeFromFile | caInScript | caNoImpersonate | caContinue, target: []string{"service stop"}},
	} {
		r := rowBy(t, cas, "Action", name)
		typ, _ := strconv.Atoi(r["Type"])
		if typ&w.set != w.set || typ&w.unset != 0 || r["Source"] != "RunnerExe" {
			t.Errorf("custom action %s: type %#x source %q; want bits %#x set, %#x unset, from RunnerExe", name, typ, r["Source"], w.set, w.unset)
		}
		for _, s := range w.target {
			if !strings.Contains(r["Target"], s) {
				t.Errorf("custom action %s runs %q, which lacks %q", name, r["Target"], s)
			}
		}
	}
	forget := rowBy(t, cas, "Action", "ForgetEnrollmentToken")
	if typ, _ := strconv.Atoi(forget["Type"]); typ&0x3f != 51 || forget["Source"] != "ENROLLMENT_TOKEN" {
		t.Errorf("ForgetEnrollmentToken %v, want a type 51 action emptying ENROLLMENT_TOKEN", forget)
	}

	checkSequence(t, msiTable(t, msi, "InstallExecuteSequence"))

	var upgrade, downgrade map[string]string
	for _, r := range msiTable(t, msi, "Upgrade") {
		switch r["ActionProperty"] {
		case "WIX_UPGRADE_DETECTED":
			upgrade = r
		case "WIX_DOWNGRADE_DETECTED":
			downgrade = r
		}
	}
	if upgrade == nil || upgrade["UpgradeCode"] != props["UpgradeCode"] || upgrade["VersionMax"] != "1.2.3" || upgrade["Attributes"] != "1" {
		t.Errorf("Upgrade row for older versions %v; want VersionMax 1.2.3, attributes 1 (migrate features)", upgrade)
	}
	if downgrade == nil || downgrade["VersionMin"] != "1.2.3" {
		t.Errorf("Upgrade row for newer versions %v; want VersionMin 1.2.3 (downgrades refused)", downgrade)
	}
}

// checkSequence checks the order that makes install, upgrade and
// uninstall work.
func checkSequence(t *testing.T, rows []map[string]string) {
	t.Helper()
	seq := map[string]int{}
	cond := map[string]string{}
	for _, r := range rows {
		seq[r["Action"]], _ = strconv.Atoi(r["Sequence"])
		cond[r["Action"]] = r["Condition"]
	}
	before := func(a, b, why string) {
		if seq[a] == 0 || seq[b] == 0 || seq[a] >= seq[b] {
			t.Errorf("%s (%d) must come before %s (%d): %s", a, seq[a], b, seq[b], why)
		}
	}
	before("RemoveExistingProducts", "InstallInitialize", "the old version and its service go before the new one is installed")
	before("StopRunner", "StopServices", "the service's process has exited before the files go (Windows locks a running program)")
	before("DeleteServices", "RemoveRunnerData", "the service is stopped and gone before its data")
	before("RemoveRunnerData", "RemoveFiles", "runner.exe must still be there to remove the data")
	before("InstallServices", "ConfigureRunnerService", "the service exists to be configured")
	before("ConfigureRunnerService", "EnrollRunner", "")
	before("EnrollRunner", "StartRunner", "the service starts with the config the enrolment wrote")
	before("StartRunner", "InstallFinalize", "deferred actions run inside the script")
	before("InstallFinalize", "ForgetEnrollmentToken", "the token is emptied only once the enrolment has run")
	for a, c := range map[string]string{
		"EnrollRunner":     "NOT REMOVE AND PROVISIONER_URL AND ENROLLMENT_TOKEN",
		"StartRunner":      "NOT REMOVE",
		"RemoveRunnerData": `REMOVE~="ALL" AND REMOVE_DATA="1" AND NOT UPGRADINGPRODUCTCODE`,
		"StopRunner":       `REMOVE~="ALL"`,
	} {
		if cond[a] != c {
			t.Errorf("%s condition %q, want %q", a, cond[a], c)
		}
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
