// Package protocol is the wire protocol between the untrusted worker host and
// the trusted enclave: length-prefixed, versioned, deterministic-CBOR
// request and reply frames over any byte stream (a pipe to the enclave child
// process, a Unix socket, or net.Pipe in tests).
//
// A frame is a 4-byte big-endian length followed by that many bytes of CBOR:
// an envelope {v: version, id: request id, t: message type, b: body}. Every
// request is one of the typed messages of this package; every reply is
// either the request's typed reply or an *Error {code, message}. The server
// answers a malformed frame (bad CBOR, unknown type, wrong version) with an
// error reply and keeps serving; a frame longer than the limit is refused
// with an error reply and the connection is closed, since the stream cannot
// be resynchronised without reading the oversized frame. A panic while
// handling a request is answered with CodeInternal ("restart required")
// and ends serving (ErrHandlerPanic): the handler's state may be
// half-changed, so the enclave process exits and the host starts a fresh
// one from its persisted state.
//
// Nothing in this package carries private key material: keys leave the
// enclave only sealed (SealedKeys), state only encrypted (Entry).
//
// # Direct invocation
//
// Trusted calls and getters (SubmitCalls, PrivateGetter) reach the enclave
// through the worker's RPC instead of the chain.
//
// # Order of state transitions
//
// The shard's state changes only by whole requests, one at a time, in the
// order the host sends them: a ProcessBlock applies one chain block (its
// indirect calls, in chain order), a SubmitCalls applies one batch of
// direct calls (in batch order) as one shard block. Nothing interleaves,
// and each shard block records where it sits: after chain block
// Header.ChainHeight, after shard block Number-1 (ParentHash). The host
// must serialise these two requests, and persist each reply before it
// sends the next.
//
// # Host duties for SubmitCalls
//
// A reply with a Block changed the state. Persist Changes (write, or
// delete for an empty value), Checkpoint, Outgoing and Block in ONE atomic
// batch; only then tell any client that a call was executed. A reply that
// was not persisted did not happen: after a crash a fresh enclave restores
// the last persisted checkpoint, and the calls of the lost block were never
// acknowledged, so clients resubmit them. Submit Outgoing (the unshields of
// the block's calls and its confirm_sidechain_block) like those of
// ProcessBlock. A reply without a Block changed nothing (every call was
// invalid) and needs no persistence.
//
// # Leakage of direct invocation
//
// Besides what chain blocks leak, the host learns per direct call: its
// ciphertext size, whether it was executed, failed (authentic, but refused
// by the STF) or invalid, and the reason's class (e.g. "insufficient
// funds", "stale nonce"; never amounts or balances); and which calls were
// batched together. Getters leak their timing and sizes only.
//
// # Provisioning
//
// A new enclave of a shard (the requester) obtains the
// shard's shielding and state keys and a checkpoint from an enclave that
// has them (the provider), over mutual RA-TLS between the two enclaves.
// The TLS session runs inside the enclaves; the hosts only relay its
// records, opaque to them:
//
//	requester host                         provider host
//	ProvisionInit        -> Out ---------> ProvisionServe{Checkpoint, In}
//	ProvisionStep{In}    <---------------- Out (and Session)
//	ProvisionStep        -> Out ---------> ProvisionServe{Session, In}
//	...                                    ... until both report Done
//
// The provider host passes, when the provider enclave asks for it
// (ProvisionServeReply.NeedCheckpoint: the requester is attested and its
// request checked), the sealed checkpoint it persisted together with the
// state entries it will hand to the requester host (the same store
// snapshot). When the requester
// reports Done, its host has the provisioned keys and a checkpoint sealed
// to the requester, and the enclave waits for the snapshot's entries
// (LoadEntries, then Resume) exactly as after a restart with a
// checkpoint. The host persists Result.SealedKeys, then the entries with
// Result.Checkpoint as the store's first batch, and continues at
// Result.Height+1.
//
// Leakage: the hosts see the sizes and timing of the TLS records and the
// public result (height, state root, number of entries); never a key.
package protocol
