// Package session owns the gateway's call state: connections (one RTP port
// pair facing one remote media endpoint), conferences (mixed, or two-party
// bridges relayed without mixing), the resource pools they draw on, and the
// one release path every front ends in: DeleteConnection.
//
// All state lives in Table behind one mutex. Callers get copies (Connection,
// Conference), never pointers into the table. Slow work — binding and closing
// sockets, notifying subscribers — happens outside the lock.
//
// Every failure is a *Error carrying its Media Control ResultCode; fronts map
// that code to their own protocol (see DESIGN §2).
package session
