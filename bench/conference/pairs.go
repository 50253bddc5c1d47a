package main

import (
	"context"
	"fmt"
	"time"
)

// addPairs adds n legs as n/2 two-party calls (-mode relay and loop). Every
// leg talks with its own tone and must hear its partner's and not its own;
// both legs of one pair in five are analysed. In relay mode each pair is an
// MGCP rtpbridge endpoint of the gateway with a connection facing each leg;
// in loop mode each leg sends straight to its partner's socket.
func (l *load) addPairs(n, _ int) error {
	for i := 0; i+1 < n; i += 2 {
		l.mu.Lock()
		ci := len(l.confs)
		l.mu.Unlock()
		var pair [2]*leg
		for j := range pair {
			l.nextSSRC++
			pair[j] = &leg{conf: ci, sock: (2*ci + j) % len(l.socks), talker: (2*ci + j) % len(toneFreqs), listen: ci%5 == 0}
			pair[j].ssrc, pair[j].seq, pair[j].ts = l.nextSSRC*2654435761, uint16(l.nextSSRC*7919), l.nextSSRC*104729
		}
		a, b := pair[0], pair[1]
		sa, sb := l.socks[a.sock], l.socks[b.sock]
		conf := &conference{id: fmt.Sprint(ci), legs: pair[:]}
		if l.mgcp != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			call, err := l.mgcp.Setup(ctx, ci, sa.addr, sb.addr)
			cancel()
			if err != nil {
				return err
			}
			conf.call = call
			// The connection facing a leg takes its packets and sends it
			// its partner's, from the same port.
			a.rx, b.rx = call.AToB, call.BToA
			sa.mu.Lock()
			sa.byPort[a.rx.Port()] = a
			sa.mu.Unlock()
			sb.mu.Lock()
			sb.byPort[b.rx.Port()] = b
			sb.mu.Unlock()
		} else {
			a.rx, b.rx = sb.addr, sa.addr
			sb.mu.Lock()
			sb.bySSRC[a.ssrc] = b
			sb.mu.Unlock()
			sa.mu.Lock()
			sa.bySSRC[b.ssrc] = a
			sa.mu.Unlock()
		}
		for _, lg := range pair {
			s := l.socks[lg.sock]
			s.mu.Lock()
			s.legs = append(s.legs, lg)
			s.mu.Unlock()
		}
		l.addGroup(conf)
	}
	return nil
}
