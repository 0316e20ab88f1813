package rpc

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// pipeListener hands out the server ends of net.Pipe connections.
type pipeListener struct{ conns chan net.Conn }

func (l pipeListener) Accept() (net.Conn, error) {
	c, ok := <-l.conns
	if !ok {
		return nil, net.ErrClosed
	}
	return c, nil
}
func (pipeListener) Close() error   { return nil }
func (pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// TestStalledWriteFails: a write that the client does not read fails after
// WriteTimeout, a client that reads gets a response of many chunks whole,
// and closing a connection frees its slot. Without the write deadline a
// response to a client that never reads held its goroutine (and its
// connection slot) for good: the first write below never returned.
func TestStalledWriteFails(t *testing.T) {
	pl := pipeListener{conns: make(chan net.Conn, 2)}
	ln := Options{WriteTimeout: 100 * time.Millisecond, MaxConns: 1}.Listener(pl).(*limitListener)

	srv, cli := net.Pipe()
	defer cli.Close()
	pl.conns <- srv
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Write(make([]byte, 1<<20))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("unread write: %v, want a deadline error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("unread write still blocked")
	}
	c.Close()

	// The slot is free again: the next connection is kept, and a reader
	// gets a response of many write chunks.
	srv2, cli2 := net.Pipe()
	defer cli2.Close()
	pl.conns <- srv2
	c2, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	read := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(io.Discard, cli2)
		read <- n
	}()
	if n, err := c2.Write(make([]byte, 4*stallChunk+1)); err != nil || n != 4*stallChunk+1 {
		t.Fatalf("write to a reading client: %d, %v", n, err)
	}
	c2.Close()
	if n := <-read; n != 4*stallChunk+1 {
		t.Fatalf("client read %d bytes", n)
	}
	ln.mu.Lock()
	defer ln.mu.Unlock()
	if ln.total != 0 || len(ln.byIP) != 0 {
		t.Fatalf("slots held after every connection closed: %d %v", ln.total, ln.byIP)
	}
}
