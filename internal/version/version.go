// Package version holds govbmc's version, stamped at build time.
package version

// Version is set by the Makefile with -ldflags "-X …/version.Version=…".
var Version = "dev"
