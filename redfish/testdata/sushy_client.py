"""Drives govbmc's Redfish front end with sushy, the library under Ironic's
redfish hardware type, the way Ironic does. Usage:

    sushy_client.py BASE_URL SYSTEM_ID USER PASSWORD CA_FILE EXPECTED_MAC

Exits non-zero, saying what failed, when the service does not behave.
"""
import datetime
import sys
import time

import sushy
from sushy import auth


def check(cond, what):
    if not cond:
        raise SystemExit("FAIL: " + what)


base, sysid, user, password, ca, mac = sys.argv[1:7]
path = "/redfish/v1/Systems/" + sysid


def connect(a):
    return sushy.Sushy(base + "/redfish/v1", auth=a, verify=ca)


# Every authentication Ironic uses; auto tries a session first.
for name, a in [("session", auth.SessionAuth(user, password)),
                ("basic", auth.BasicAuth(user, password)),
                ("auto", auth.SessionOrBasicAuth(user, password))]:
    root = connect(a)
    s = root.get_system(path)
    check(sysid in (s.identity, s.name), f"{name}: system id {s.identity}, name {s.name}")
    check(s.power_state in (sushy.PowerState.ON, sushy.PowerState.OFF),
          f"{name}: power state {s.power_state}")
    if name != "basic":
        check(a.get_session_key() is not None, f"{name}: no session was opened")
        a.close()  # logs out (DELETE of the session)
        try:
            root2 = connect(auth.BasicAuth(user, password))
            sessions = root2.get_session_service().sessions.get_members()
        except sushy.exceptions.SushyError as e:
            raise SystemExit(f"FAIL: {name}: listing sessions: {e}")
        check(len(sessions) == 0, f"{name}: {len(sessions)} sessions left after logout")

# Wrong password: sushy's AccessError (401).
try:
    connect(auth.BasicAuth(user, password + "x")).get_system(path)
    raise SystemExit("FAIL: a wrong password was accepted")
except sushy.exceptions.AccessError:
    pass

main_auth = auth.SessionOrBasicAuth(user, password)
root = connect(main_auth)
s = root.get_system(path)

# Power: every reset type Ironic and sushy-tools offer.
allowed = s.get_allowed_reset_system_values()
for rt in (sushy.ResetType.ON, sushy.ResetType.FORCE_ON, sushy.ResetType.FORCE_OFF,
           sushy.ResetType.GRACEFUL_SHUTDOWN, sushy.ResetType.GRACEFUL_RESTART,
           sushy.ResetType.FORCE_RESTART, sushy.ResetType.POWER_CYCLE, sushy.ResetType.NMI):
    check(rt in allowed, f"reset type {rt} not allowed: {allowed}")


def power(want):
    deadline = time.time() + 5
    while True:
        s.refresh()
        if s.power_state == want:
            return
        check(time.time() < deadline, f"power state {s.power_state}, want {want}")
        time.sleep(0.05)


s.reset_system(sushy.ResetType.FORCE_OFF)
power(sushy.PowerState.OFF)
s.reset_system(sushy.ResetType.ON)
power(sushy.PowerState.ON)
s.reset_system(sushy.ResetType.FORCE_RESTART)
power(sushy.PowerState.ON)
s.reset_system(sushy.ResetType.NMI)
s.reset_system(sushy.ResetType.POWER_CYCLE)
power(sushy.PowerState.ON)
s.reset_system(sushy.ResetType.GRACEFUL_RESTART)
s.reset_system(sushy.ResetType.GRACEFUL_SHUTDOWN)
power(sushy.PowerState.OFF)
s.reset_system(sushy.ResetType.FORCE_ON)
power(sushy.PowerState.ON)
s.reset_system(sushy.ResetType.FORCE_OFF)
power(sushy.PowerState.OFF)

# Boot: Once is consumed by the next boot, Continuous stays; mode.
sources = s.get_allowed_system_boot_source_values()
for src in (sushy.BootSource.PXE, sushy.BootSource.HDD, sushy.BootSource.CD,
            sushy.BootSource.BIOS_SETUP, sushy.BootSource.UEFI_HTTP):
    check(src in sources, f"boot source {src} not allowed: {sources}")
s.set_system_boot_options(sushy.BootSource.PXE,
                          enabled=sushy.BootSourceOverrideEnabled.ONCE,
                          mode=sushy.BootSourceOverrideMode.UEFI)
s.refresh()
check(s.boot.target == sushy.BootSource.PXE, f"target {s.boot.target}")
check(s.boot.enabled == sushy.BootSourceOverrideEnabled.ONCE, f"enabled {s.boot.enabled}")
check(s.boot.mode == sushy.BootSourceOverrideMode.UEFI, f"mode {s.boot.mode}")
s.reset_system(sushy.ResetType.ON)
power(sushy.PowerState.ON)
s.refresh()
check(s.boot.enabled == sushy.BootSourceOverrideEnabled.DISABLED,
      f"Once not consumed by the boot: {s.boot.enabled} {s.boot.target}")
s.set_system_boot_options(sushy.BootSource.HDD,
                          enabled=sushy.BootSourceOverrideEnabled.CONTINUOUS)
s.reset_system(sushy.ResetType.POWER_CYCLE)
s.refresh()
check(s.boot.target == sushy.BootSource.HDD and
      s.boot.enabled == sushy.BootSourceOverrideEnabled.CONTINUOUS,
      f"Continuous lost: {s.boot.enabled} {s.boot.target}")
s.set_system_boot_options(mode=sushy.BootSourceOverrideMode.LEGACY)
s.refresh()
check(s.boot.mode == sushy.BootSourceOverrideMode.LEGACY, f"mode {s.boot.mode}")
try:
    s.set_system_boot_options(sushy.BootSource.UEFI_HTTP)
    raise SystemExit("FAIL: UefiHttp accepted in Legacy mode")
except sushy.exceptions.BadRequestError:
    pass
s.set_system_boot_options(mode=sushy.BootSourceOverrideMode.UEFI)

# Secure boot.
sb = s.secure_boot
check(sb.enabled is False, f"secure boot {sb.enabled}")
sb.set_enabled(True)
sb.refresh()
check(sb.enabled is True, "secure boot not enabled")
sb.set_enabled(False)

# Inventory: MACs, processors, memory, storage.
macs = s.ethernet_interfaces.summary
check(mac in macs, f"MACs {macs}, want {mac}")
check(s.processors.summary.count and s.processors.summary.count > 0,
      f"processors {s.processors.summary}")
check(s.memory_summary.size_gib and s.memory_summary.size_gib > 0,
      f"memory {s.memory_summary}")
check(s.simple_storage.max_size_bytes and s.simple_storage.max_size_bytes > 0,
      "simple storage size")

# BIOS: settings pending until the next reset, then applied; ResetBios.
bios = s.bios
check(bios.attributes.get("ProcTurboMode") == "Enabled", f"bios {bios.attributes}")
bios.set_attributes({"ProcTurboMode": "Disabled", "PowerOnDelaySeconds": 7})
bios.refresh()
check(bios.pending_attributes.get("ProcTurboMode") == "Disabled",
      f"pending {bios.pending_attributes}")
check(bios.attributes.get("ProcTurboMode") == "Enabled", "applied before the reset")
s.reset_system(sushy.ResetType.FORCE_RESTART)
bios = s.bios
bios.refresh()
check(bios.attributes.get("ProcTurboMode") == "Disabled" and
      bios.attributes.get("PowerOnDelaySeconds") == 7, f"after reset {bios.attributes}")
check(not bios.pending_attributes, f"still pending {bios.pending_attributes}")
# (sushy's get_attribute_registry needs the standard registries Debian's
# python3-sushy does not ship, so follow the links as it would.)
reg_name = root._conn.get(bios.path).json()["AttributeRegistry"]
names = []
for member in root._conn.get("/redfish/v1/Registries").json()["Members"]:
    f = root._conn.get(member["@odata.id"]).json()
    if f["Registry"] == reg_name:
        reg = root._conn.get(f["Location"][0]["Uri"]).json()
        names = [a["AttributeName"] for a in reg["RegistryEntries"]["Attributes"]]
check("ProcTurboMode" in names, f"registry attributes {names}")
bios.reset_bios()
s.reset_system(sushy.ResetType.FORCE_RESTART)
bios = s.bios
bios.refresh()
check(bios.attributes.get("ProcTurboMode") == "Enabled", f"after ResetBios {bios.attributes}")

# Manager: DateTime set, then verified, as Ironic does.
managers = s.managers
check(len(managers) == 1, f"managers {managers}")
m = managers[0]
check(m.firmware_version, "no FirmwareVersion")
want = datetime.datetime(2031, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)
root._conn.patch(m.path, data={"DateTime": want.isoformat(), "DateTimeLocalOffset": "+00:00"})
got = root._conn.get(m.path).json()["DateTime"]
gotdt = datetime.datetime.fromisoformat(got)
check(abs((gotdt - want).total_seconds()) < 5, f"DateTime {got}, want about {want}")

main_auth.close()
print("sushy: OK")
