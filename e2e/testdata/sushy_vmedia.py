"""Ironic's redfish-virtual-media steps through sushy, the library under
Ironic's redfish hardware type. Usage:

    sushy_vmedia.py BASE_URL SYSTEM_ID USER PASSWORD CA_FILE STEP [IMAGE_URL]

STEP is one of:
  eject-all   eject whatever is inserted on every VirtualMedia device, found
              under the System and under its Manager;
  boot-cd     insert IMAGE_URL into the CD device (Inserted, WriteProtected),
              set a Once Cd boot override and reset the system;
  usb         insert IMAGE_URL into the USBStick device, write-protected.

Prints "sushy-vmedia: OK" when the step did what it should; exits non-zero
saying what failed otherwise.
"""
import sys

import sushy
from sushy import auth
from sushy.resources.manager import virtual_media


def check(cond, what):
    if not cond:
        raise SystemExit("FAIL: " + what)


base, sysid, user, password, ca, step = sys.argv[1:7]
image = sys.argv[7] if len(sys.argv) > 7 else None
root = sushy.Sushy(base + "/redfish/v1", auth=auth.SessionOrBasicAuth(user, password), verify=ca)
system = root.get_system("/redfish/v1/Systems/" + sysid)
managers = system.managers
check(len(managers) == 1, f"{len(managers)} managers")


def collections():
    """The VirtualMedia collections of the System and its Manager."""
    out = []
    # This sushy has no System.virtual_media (newer ones do, and Ironic
    # looks there first): read the System's link the same way.
    link = system.json.get("VirtualMedia", {}).get("@odata.id")
    check(link is not None, "the System has no VirtualMedia link")
    out.append(virtual_media.VirtualMediaCollection(
        root._conn, link, redfish_version=root.redfish_version, root=root))
    for m in managers:
        out.append(m.virtual_media)
    return out


def device(kind):
    """The Manager's device that takes kind, as Ironic picks it."""
    for v in managers[0].virtual_media.get_members():
        if kind in v.media_types:
            return v
    raise SystemExit(f"FAIL: no {kind} device")


if step == "eject-all":
    for coll in collections():
        for v in coll.get_members():
            if v.inserted:
                v.eject_media()
            v.refresh()
            check(not v.inserted and v.image is None,
                  f"{v.path} after eject: inserted {v.inserted}, image {v.image}")
elif step == "boot-cd":
    cd = device(sushy.VirtualMediaType.CD)
    check(not cd.inserted, "the CD is not empty")
    cd.insert_media(image, inserted=True, write_protected=True)
    cd.refresh()
    check(cd.inserted and cd.image == image and cd.write_protected,
          f"CD after insert: inserted {cd.inserted}, image {cd.image}, write protected {cd.write_protected}")
    check(cd.image_name == image.rsplit("/", 1)[-1], f"image name {cd.image_name}")
    check(cd.connected_via == sushy.ConnectedVia.URI, f"connected via {cd.connected_via}")
    # The System's path shows the same device.
    same = [v for v in collections()[0].get_members() if v.identity == cd.identity]
    check(len(same) == 1 and same[0].image == image, "the System's CD differs from the Manager's")
    system.set_system_boot_options(sushy.BootSource.CD, enabled=sushy.BootSourceOverrideEnabled.ONCE)
    system.refresh()
    check(system.boot.target == sushy.BootSource.CD and
          system.boot.enabled == sushy.BootSourceOverrideEnabled.ONCE,
          f"boot {system.boot.enabled} {system.boot.target}")
    if system.power_state == sushy.PowerState.ON:
        system.reset_system(sushy.ResetType.FORCE_RESTART)
    else:
        system.reset_system(sushy.ResetType.ON)
elif step == "usb":
    usb = device(sushy.VirtualMediaType.USB_STICK)
    usb.insert_media(image, inserted=True, write_protected=True)
    usb.refresh()
    check(usb.inserted and usb.image == image and usb.write_protected,
          f"USBStick after insert: inserted {usb.inserted}, image {usb.image}, write protected {usb.write_protected}")
else:
    raise SystemExit("FAIL: unknown step " + step)
print("sushy-vmedia: OK")
