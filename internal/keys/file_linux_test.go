package keys

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const diskFullEnv = "PETREL_KEYS_DISK_FULL_PATH"

// TestWriteFailsWhenDiskFull makes the kernel refuse the write: the test
// re-runs itself in a child process with RLIMIT_FSIZE at 16 bytes (a write
// past it fails with EFBIG, which Go reports instead of dying of SIGXFSZ;
// root is subject to the limit too) and the child tries to replace a key
// file with a new key. The child must get an error, and the old key file
// must be intact with no temporary file left. No fake is involved: an
// in-place write would truncate the key and leave 16 bytes of the new one.
func TestWriteFailsWhenDiskFull(t *testing.T) {
	if path := os.Getenv(diskFullEnv); path != "" {
		lim := syscall.Rlimit{Cur: 16, Max: 16}
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
			t.Fatalf("setrlimit: %v", err)
		}
		err := WriteFileAtomic(path, []byte(mustKey(t).String()+"\n"), 0o600)
		if err == nil {
			t.Fatal("CHILD: write succeeded past RLIMIT_FSIZE")
		}
		t.Logf("CHILD-ERR: %v", err)
		return
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "private.key")
	old := mustKey(t).String() + "\n"
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestWriteFailsWhenDiskFull$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), diskFullEnv+"="+path)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "CHILD-ERR:") {
		t.Fatalf("child did not report a failed write (exit %v):\n%s", err, out)
	}
	if !strings.Contains(string(out), "file too large") {
		t.Fatalf("child failed for another reason than the size limit:\n%s", out)
	}
	if b, _ := os.ReadFile(path); string(b) != old {
		t.Fatalf("old key damaged by the failed write: %q", b)
	}
	if k, err := ReadPrivate(path); err != nil || k.String()+"\n" != old {
		t.Fatalf("old key no longer loads: %v", err)
	}
	onlyFile(t, dir, "private.key")
}
