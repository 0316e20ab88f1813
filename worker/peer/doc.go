// Package peer carries the envelopes of a shard's enclaves between their
// workers: the transport of the sidechain (in progress), over which the
// enclaves' Raft nodes (enclave/replica) talk.
//
// The hosts only carry bytes. An envelope is sealed by the sending enclave
// under a key only the shard's enclaves hold, its sender and recipient
// bound to it, so a host (or anyone on the network) can drop, delay,
// duplicate or reorder envelopes but not forge or alter one; Raft
// tolerates all of these. That is why the transport is plain HTTP with no
// authentication of its own, why it may drop messages freely (a full
// queue drops the oldest, a failed delivery is not retried: Raft
// retransmits what still matters), and why its limits only protect the
// worker's resources.
//
// # Wire
//
// A sender POSTs one envelope per request to Path on the recipient's
// worker (the worker URL of the recipient signer's registration on chain,
// ws:// and wss:// read as http:// and https://). The body is a frame:
//
//	version  1 byte, FrameVersion
//	to       tx.AddressLen bytes, the recipient enclave's signer
//	data     the envelope, at least 1 byte
//
// The sender sets Content-Type application/octet-stream (the server does
// not require it). The recipient lets a worker refuse an envelope for an
// enclave it no longer runs without asking it. The answers:
//
//	204  delivered to the enclave
//	400  malformed frame, or a body that did not arrive in time
//	405  not a POST
//	413  body over the server's MaxBodyBytes
//	421  the recipient is not this worker's enclave (the sender looks the
//	     worker up again)
//	429  rate or concurrency limit of the sender's IP
//	500  the enclave's handler failed unexpectedly
//	503  the enclave cannot take it now (busy, restarting)
//
// # Parts
//
//	Server      the endpoint: limits, then a Deliver callback
//	Sender      asynchronous delivery: a bounded queue and a goroutine per
//	            recipient, worker URLs from a Directory, cached
//	Registry    a Directory over the chain's enclave registry (proved
//	            queries through the node client)
package peer

import (
	"errors"
	"fmt"

	"github.com/integritee-go/integritee/chain/tx"
)

// Path is the endpoint's path on a worker.
const Path = "/peer/v1/envelope"

// FrameVersion is the first byte of a frame.
const FrameVersion = 1

// frameHeader is the length of a frame before the envelope.
const frameHeader = 1 + tx.AddressLen

// ErrFrame means a request body is not a frame.
var ErrFrame = errors.New("peer: malformed frame")

// appendHeader appends a frame's header for recipient to to b.
func appendHeader(b []byte, to tx.Address) []byte {
	return append(append(b, FrameVersion), to[:]...)
}

// parseFrame splits a frame into its recipient and envelope; the envelope
// aliases b.
func parseFrame(b []byte) (tx.Address, []byte, error) {
	var to tx.Address
	if len(b) <= frameHeader {
		return to, nil, fmt.Errorf("%w: %d bytes, want more than %d", ErrFrame, len(b), frameHeader)
	}
	if b[0] != FrameVersion {
		return to, nil, fmt.Errorf("%w: version %d, want %d", ErrFrame, b[0], FrameVersion)
	}
	copy(to[:], b[1:frameHeader])
	return to, b[frameHeader:], nil
}
