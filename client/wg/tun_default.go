//go:build !linux

package wg

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/tun"
)

// toolTimeout bounds one ifconfig, route or netsh run.
const toolTimeout = 15 * time.Second

// createKernelTUN creates the TUN interface with wireguard-go, then gives
// it the overlay address and route with the system's tools.
func createKernelTUN(name string, mtu int, addr netip.Prefix) (tun.Device, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	td, err := tun.CreateTUN(name, mtu)
	if err != nil {
		return nil, fmt.Errorf("create tun %s: %w%s", name, err, createHint(runtime.GOOS))
	}
	real, err := td.Name()
	if err != nil {
		td.Close()
		return nil, fmt.Errorf("read tun name: %w", err)
	}
	cmds, err := setupCommands(runtime.GOOS, real, mtu, addr)
	if err == nil {
		err = runTools(cmds)
	}
	if err != nil {
		td.Close()
		return nil, fmt.Errorf("configure %s: %w", real, err)
	}
	return td, nil
}

// DeleteInterface removes the TUN name if a crashed agent left it behind;
// a missing interface is success.
func DeleteInterface(name string) error {
	cmds, err := deleteCommands(runtime.GOOS, name)
	if err != nil || len(cmds) == 0 {
		return err
	}
	if _, err := net.InterfaceByName(name); err != nil {
		return nil // gone (the only error InterfaceByName gives for a valid name)
	}
	if err := runTools(cmds); err != nil {
		return fmt.Errorf("delete interface %s: %w", name, err)
	}
	return nil
}

// runTools runs each command in turn. A route command that finds its
// route in place ("File exists") succeeded.
func runTools(cmds [][]string) error {
	for _, c := range cmds {
		ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
		out, err := exec.CommandContext(ctx, c[0], c[1:]...).CombinedOutput()
		cancel()
		if err == nil || c[0] == "route" && strings.Contains(string(out), "File exists") {
			continue
		}
		return fmt.Errorf("%s: %w: %s", strings.Join(c, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
