package safefile

import (
	"os"
	"syscall"
)

// pseudoFS names the kernel pseudo file system f is on ("" for any
// other): their files report a size of 0 or 4096 whatever they hold, and
// reading them has meanings of its own (/proc/self/environ).
func pseudoFS(f *os.File) string {
	var st syscall.Statfs_t
	if err := syscall.Fstatfs(int(f.Fd()), &st); err != nil {
		return ""
	}
	switch st.Type {
	case 0x9fa0: // PROC_SUPER_MAGIC
		return "/proc (procfs)"
	case 0x62656572: // SYSFS_MAGIC
		return "/sys (sysfs)"
	case 0x64626720: // DEBUGFS_MAGIC
		return "debugfs"
	case 0x73636673: // SECURITYFS_MAGIC
		return "securityfs"
	}
	return ""
}
