package tests

import (
	"net"
	"os"
	"strconv"
	"strings"
)

// procSocket is one TCP socket of /proc/net/tcp or /proc/net/tcp6.
type procSocket struct {
	LocalIP    net.IP
	LocalPort  int
	RemotePort int
	Listening  bool
	// Link is how a process's descriptor names it: "socket:[inode]".
	Link string
}

// procSockets reads every TCP socket of the host (IPv4 and IPv6).
func procSockets() []procSocket {
	var out []procSocket
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			// sl local_address rem_address st ... inode (10th field)
			fs := strings.Fields(line)
			if len(fs) <= 9 {
				continue
			}
			localIP, localPort, _ := strings.Cut(fs[1], ":")
			_, remotePort, _ := strings.Cut(fs[2], ":")
			lp, _ := strconv.ParseInt(localPort, 16, 32)
			rp, _ := strconv.ParseInt(remotePort, 16, 32)
			out = append(out, procSocket{LocalIP: procIP(localIP), LocalPort: int(lp), RemotePort: int(rp),
				Listening: fs[3] == "0A", Link: "socket:[" + fs[9] + "]"})
		}
	}
	return out
}

// procIP decodes an address of /proc/net/tcp: 32-bit words in host (little
// endian) order.
func procIP(h string) net.IP {
	ip := make(net.IP, len(h)/2)
	for i := 0; i < len(ip); i++ {
		b, _ := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		ip[i] = byte(b)
	}
	for w := 0; w+4 <= len(ip); w += 4 {
		ip[w], ip[w+1], ip[w+2], ip[w+3] = ip[w+3], ip[w+2], ip[w+1], ip[w]
	}
	return ip
}
