package bmc

// PowerWatcher is a machine that sees its own power changes, whoever made
// them (for libvirt, the domain's lifecycle events: virsh, the guest
// shutting itself down, a crash). A BMC records them in its event log.
type PowerWatcher interface {
	// WatchPower calls fn with each power change until stop is called; fn
	// must not block.
	WatchPower(fn func(PowerState)) (stop func())
}
