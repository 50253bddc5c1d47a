package driver

import "net"

// dialUDP binds a client socket on local (port 0 for any) with a 4 MiB
// receive buffer, and resolves the peer at remote.
func dialUDP(local, remote string) (*net.UDPConn, *net.UDPAddr, error) {
	ra, err := net.ResolveUDPAddr("udp", remote)
	if err != nil {
		return nil, nil, err
	}
	la, err := net.ResolveUDPAddr("udp", local)
	if err != nil {
		return nil, nil, err
	}
	conn, err := net.ListenUDP("udp", la)
	if err != nil {
		return nil, nil, err
	}
	_ = conn.SetReadBuffer(4 << 20)
	return conn, ra, nil
}
