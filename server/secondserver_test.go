package server

import (
	"net/http"
	"strings"
	"testing"

	"petrel/management/store/storetest"
)

// TestSecondServerOnSameStoreRefused: a second petrel-server on the data
// dir (SQLite) or the PostgreSQL database of a running one refuses to start
// with a clear error, and the first keeps serving.
func TestSecondServerOnSameStoreRefused(t *testing.T) {
	check := func(t *testing.T, cfg func() Config, want string) {
		first := start(t, cfg())
		second, err := New(cfg())
		if err != nil {
			t.Fatal(err)
		}
		err = second.Start(testCtx(t))
		if err == nil {
			second.Stop()
			t.Fatal("a second server started on the same store")
		}
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("second server: %v; want an error saying %q", err, want)
		}
		resp, err := http.Get(first.PublicURL() + "/healthz")
		if err != nil {
			t.Fatalf("the first server stopped serving: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("first server /healthz: %s", resp.Status)
		}
	}
	t.Run("SQLite", func(t *testing.T) {
		dir := t.TempDir()
		check(t, func() Config { return loopbackConfig(t, dir) }, "in use by another petrel-server")
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		dsn := storetest.PostgresDSN(t)
		check(t, func() Config {
			c := loopbackConfig(t, t.TempDir())
			c.Store = dsn
			return c
		}, "in use by")
	})
}
