// Package testbed exists only so this module has a package; the binaries it
// builds are listed as tool directives in go.mod.
package testbed
