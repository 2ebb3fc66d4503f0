// Package e2e holds govbmc's end-to-end tests: the IPMI front end and the
// libvirt back end wired together as vbmcd wires them, driven by the real
// clients against real libvirtd, qemu and sshd.
package e2e
