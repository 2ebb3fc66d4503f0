// Package libvirtconn will hold govbmc's libvirt back end: URI parsing,
// dialers (unix, TCP with SASL, TLS, SSH), one shared connection per
// hypervisor, and the bmc.Machine implementation over libvirt domains.
package libvirtconn
