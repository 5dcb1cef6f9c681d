// Package service writes and removes the systemd unit that runs the agent
// daemon (`petrel service install|uninstall`), and renders that unit's
// text, which the .deb package ships too (packaging/systemd/petrel.service
// is Render of DefaultConfig, kept equal by a test).
//
// Render is pure and builds on every platform. Install and Uninstall are
// Linux only (install_linux.go); elsewhere they return ErrUnsupported
// (install_default.go). They change the host only through the file system
// (the unit directory, and the state directory when it lies outside
// /var/lib) and the Systemctl they are given, so tests run them against a
// temporary unit directory with a fake or with NoStart.
//
// Imported by cmd/petrel only. Nothing here starts goroutines; calls are
// made by the CLI's one goroutine.
package service
