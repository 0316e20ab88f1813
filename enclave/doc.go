// Package enclave is the trusted core of an integritee worker: it answers
// the host's protocol requests (package protocol) with the enclave's keys,
// light client, STF and encrypted state. Everything it receives is checked
// (sealed blobs by authenticated decryption, blocks by the light client,
// calls by signature and nonce); everything secret it returns is sealed or
// encrypted.
//
// # Host duties
//
//  1. Start: send Init with the sealed keys and the latest checkpoint
//     persisted (none on first start). Persist InitReply.SealedKeys if
//     Created, durably, before using the keys (e.g. registering).
//  2. If InitReply.AwaitingEntries: send every persisted entry (LoadEntries,
//     in chunks), then Resume.
//  3. For each height H = InitReply.Height+1, ... once H+1 is committed:
//     send ProcessBlock with the signed header, validators, transactions
//     and results of H and the signed header and validators of H+1. Persist
//     the reply's Changes (write or, for an empty value, delete by key),
//     Checkpoint and Outgoing in ONE atomic batch together with H. A reply
//     that was not persisted did not happen: after a crash, restart from the
//     persisted checkpoint (a new enclave process) and feed H again.
//  4. Submit Outgoing, in order, signed with SignOutgoing at the account's
//     current nonce (again after a nonce clash). A shard block's
//     confirmation comes before its unshields, which pay only once it is
//     confirmed, once per call hash however often they are submitted.
//
// An error reply to ProcessBlock changes nothing; the host must not skip
// the block (it will be asked again). CodeInternal with "restart required"
// means the enclave stopped after an internal failure and must be restarted
// from the persisted state. A panic while handling any request is such a
// failure too, but the process does not linger: it answers that request
// with CodeInternal "restart required", closes the connection and exits
// non-zero (protocol.ErrHandlerPanic). The host restarts it as after a
// crash; nothing of the interrupted request was persisted.
//
// # Provisioning
//
// The enclaves of a shard share its shielding and state keys. A new one
// gets them, with a checkpoint, from another enclave of the shard over
// mutual RA-TLS that runs inside both enclaves while the hosts only relay
// the records (ProvisionInit, ProvisionStep, ProvisionServe); why this
// transport and what each side checks is in provision.go.
//
// # Leakage
//
// The host sees: which blinded state entries each block changes (so when
// the same unknown account is active again, and how many entries a block
// touches), the sizes of encrypted values, how many of a block's calls were
// applied, failed or rejected, and the public chain calls the enclave emits
// (unshield beneficiary and amount are public by nature). Not: account
// keys, balances, trusted call contents, which entry belongs to which call.
// A host can also withhold blocks (liveness only).
//
// # Trust
//
// What the enclave trusts comes from its build (Config: dev features,
// peer roots) and from chain data its light client verified from the
// genesis Init names; that genesis is bound into the sealed keys and
// checkpoints (SealScope) and into the quote's report data, so a host
// that points the enclave at another chain gets nothing that opens and a
// registration the chain refuses. docs/threat-model.md goes through every
// request and stored file.
//
// # Shard blocks
//
// Every state transition of the shard is a shard block (sidechain.go): a
// batch of direct calls (a direct block, authored and signed by this
// enclave) or the shard's calls of one chain block (a chain block: no
// author, the chain header's time, so every enclave of the shard derives
// the same header). The chain confirms them in order, one number after
// the other, each extending the last (chain/sidechain), and pays an
// unshield only with a Merkle proof into a confirmed block's unshields
// root.
//
// Both requests that change the state end in one function (commit.go):
// it commits the state, moves the light client and the shard chain on and
// seals the checkpoint, so a chain block and a direct batch leave the
// enclave in the same kind of state, and a failure half-way stops it the
// same way.
//
// # Rollback
//
// The host can restart the enclave from an older consistent checkpoint;
// without a monotonic counter the enclave cannot tell. The chain decides
// instead: every state transition is a shard block, the chain confirms a
// shard's blocks as one chain, and an unshield pays only with a proof
// into a confirmed block (sidechain.go). A rolled-back enclave's blocks
// repeat confirmed numbers with other hashes and are never confirmed, so
// nothing it signs out of the vault pays twice; once its light client
// shows it a confirmation its state lacks, it stops for good
// (ErrRolledBack). Until then it can answer getters from the old state,
// and direct calls that were executed but not yet confirmed can vanish:
// clients take only "confirmed" as final.
//
// # Key and state provisioning
//
// All enclaves of a shard share its shielding and state keys (design
// section 4); each keeps its own signer. A new enclave (the requester)
// gets the keys and a checkpoint from an enclave that has them (the
// provider) over mutual RA-TLS between the two enclaves
// (protocol.ProvisionInit, ProvisionStep, ProvisionServe).
//
// Why RA-TLS inside the enclaves, with the host relaying TLS records: TLS
// 1.3 gives an authenticated key exchange, transcript binding and record
// integrity from the standard library, and attestation/ratls binds each
// side's DCAP quote to its certificate key, so both directions are
// attested with the same verifier the chain uses, and the design names
// this transport. The TLS stack runs in the enclave over an in-memory
// connection (pump) that the host feeds request by request, so the
// enclave opens no socket and the host sees only ciphertext records: it
// can drop, reorder or alter them, which makes provisioning fail, never
// succeed with other keys.
//
// Each side accepts the peer only if its quote verifies with full
// collateral under roots from the enclave's own configuration
// (Config.Peers: built into the enclave binary, never from the host),
// with the same MRENCLAVE as itself, an accepted TCB status, and not in
// debug mode unless the enclave is a dev build. Upgrades to another
// measurement (a shard's pending configuration) are not provisioned yet.
//
// The provider sends the shielding key, the state key and the checkpoint
// the provider host persisted with the entries it serves (height, state
// root, number of entries, light client header, pending confirmation,
// sidechain head). The requester seals them as its own with its own
// signer, and from there on restores like an enclave restarted from a
// checkpoint: the host feeds the entries (LoadEntries), and Resume checks
// them against the provisioned state root.
package enclave
