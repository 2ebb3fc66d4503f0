package ipmi_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/govbmc/govbmc/bmc"
)

var cpuSDR = regexp.MustCompile(`(?m)^CPU Utilization\s+\|\s+(\d+) percent\s+\|\s+ok`)

// TestSensors: the SDR repository and readings through ipmitool (sdr list,
// sdr -v as Ironic runs it, sensor list) and freeipmi's ipmi-sensors; the
// CPU reading rises when the simulated guest works.
func TestSensors(t *testing.T) {
	n := startNode(t)
	out := n.lanplus("sdr", "list")
	mustContain(t, out, "CPU Utilization", "Memory Usage", "Disk Read", "Net Transmit", "Power State")
	n.setPower(bmc.PowerOn)
	n.sim.SetLoad(bmc.SimLoad{CPUPercent: 5})
	before := cpuReading(t, n.lanplus("sdr", "list"))
	n.sim.SetLoad(bmc.SimLoad{CPUPercent: 75, MemoryUsedMiB: 2048, DiskReadBytesPerSec: 50 << 20, NetTxBytesPerSec: 12.5e6})
	eventually(t, toolTimeoutShort, "the CPU reading rises", func() bool { return cpuReading(t, n.lanplus("sdr", "list")) >= before+60 })

	out = n.lanplus("sdr", "-v")
	mustContain(t, out, "Sensor ID              : CPU Utilization (0x1)", "Sensor Type (Threshold)  : Processor (0x07)",
		"Sensor Reading        : 75 (+/- 0) percent", "Readable Thresholds   : unc",
		"Sensor ID              : Memory Usage (0x2)", "Sensor Reading        : 63 (+/- 0) percent",
		"Sensor Reading        : 50 (+/- 0) megabyte/second", "Sensor Reading        : 100 (+/- 0) megabit/second",
		"Sensor Type (Discrete): System ACPI Power State (0x22)", "S0/G0: working")
	sensors := ironicSensors(t, out)
	for typ, id := range map[string]string{"Processor": "CPU Utilization (0x1)", "Memory": "Memory Usage (0x2)", "Other": "Net Receive (0x5)"} {
		if _, ok := sensors[typ][id]; !ok {
			t.Errorf("Ironic's parser finds no %s sensor %q: %v", typ, id, sensors)
		}
	}
	mustContain(t, n.lanplus("sensor", "list"), "CPU Utilization", "75.000", "percent", "ok")
	mustContain(t, n.lanplus("sensor", "get", "CPU Utilization"), "Upper Non-Critical    : 90.000")
	out, err := n.freeipmi("ipmi-sensors", "LAN_2_0", admin, "user", "--quiet-cache", "--sdr-cache-recreate", "--sdr-cache-directory", t.TempDir())
	if err != nil {
		t.Fatalf("ipmi-sensors: %v\n%s", err, out)
	}
	mustContain(t, out, "CPU Utilization", "75.00", "Memory Usage", "Power State")
}

func cpuReading(t *testing.T, sdr string) int {
	t.Helper()
	m := cpuSDR.FindStringSubmatch(sdr)
	if m == nil {
		t.Fatalf("no CPU reading:\n%s", sdr)
	}
	v, _ := strconv.Atoi(m[1])
	return v
}

// ironicSensors parses `sdr -v` output as Ironic's ipmitool driver does
// (_parse_ipmi_sensors_data): blocks split on blank lines, "key: value"
// lines with exactly one colon, the type from the first word of
// "Sensor Type (…)", sensors without a reading skipped; a block with
// fields but no sensor type is the error Ironic raises.
func ironicSensors(t *testing.T, out string) map[string]map[string]map[string]string {
	t.Helper()
	res := map[string]map[string]map[string]string{}
	for _, block := range strings.Split(out, "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(block, "\n") {
			if kv := strings.Split(line, ":"); len(kv) == 2 {
				fields[strings.TrimSpace(kv[0])] = strings.TrimSpace(kv[1])
			}
		}
		if len(fields) == 0 {
			continue
		}
		typ := ""
		for _, k := range []string{"Sensor Type (Analog)", "Sensor Type (Discrete)", "Sensor Type (Threshold)"} {
			if v, ok := fields[k]; ok {
				typ, _, _ = strings.Cut(v, " ")
				break
			}
		}
		if typ == "" {
			t.Fatalf("Ironic fails: unknown sensor type in %v", fields)
		}
		if _, ok := fields["Sensor Reading"]; ok {
			if res[typ] == nil {
				res[typ] = map[string]map[string]string{}
			}
			res[typ][fields["Sensor ID"]] = fields
		}
	}
	if len(res) == 0 {
		t.Fatal("Ironic fails: no sensor data")
	}
	return res
}

// TestSDRRepositoryTimesStandStill: `sdr info` gives the repository's
// last addition and erase as when its records were made, not the time of
// asking, so a client's SDR cache (freeipmi's) stays valid: asked again in
// a later second, the times are the same, and ipmi-sensors reads through a
// cache it filled a second before.
func TestSDRRepositoryTimesStandStill(t *testing.T) {
	n := startNode(t)
	times := func() string {
		var lines []string
		for _, l := range strings.Split(n.lanplus("sdr", "info"), "\n") {
			if strings.HasPrefix(l, "Most recent Addition") || strings.HasPrefix(l, "Most recent Erase") {
				lines = append(lines, l)
			}
		}
		if len(lines) != 2 {
			t.Fatalf("sdr info has no addition and erase times:\n%v", lines)
		}
		return strings.Join(lines, "\n")
	}
	first, asked := times(), time.Now().Unix()
	cache := t.TempDir()
	if out, err := n.freeipmi("ipmi-sensors", "LAN_2_0", admin, "user", "--sdr-cache-directory", cache); err != nil {
		t.Fatalf("ipmi-sensors: %v\n%s", err, out)
	}
	eventually(t, toolTimeoutShort, "a later second", func() bool { return time.Now().Unix() > asked+1 })
	if again := times(); again != first {
		t.Fatalf("the repository's times moved with the clock:\n%s\nthen\n%s", first, again)
	}
	out, err := n.freeipmi("ipmi-sensors", "LAN_2_0", admin, "user", "--sdr-cache-directory", cache)
	if err != nil || strings.Contains(out, "out of date") {
		t.Fatalf("ipmi-sensors through its cache: %v\n%s", err, out)
	}
	mustContain(t, out, "CPU Utilization")
}
