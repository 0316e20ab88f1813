// Package teerex is the enclave registry module: it admits enclaves to the
// chain only after verifying their attestation (SGX DCAP quotes or IAS
// reports) at block time under an on-chain policy, binds each registration
// to the account that signs the enclave's transactions and to its shielding
// key, and expires registrations that are not renewed.
//
// State (values deterministic CBOR):
//
//	teerex/policy                        Policy (roots, signed collateral, rules)
//	teerex/allowlist                     MRENCLAVEs, sorted
//	teerex/e/<signer>                    Enclave
//	teerex/all/n                         number of registrations (uint64)
//	teerex/all/i/<8-byte slot>           signer in that slot (tx.Address)
//	teerex/all/s/<signer>                slot of the signer (uint64)
//	teerex/m/<mrenclave>/{n,i/..,s/..}   the same for one measurement
//	teerex/x/<8-byte time><signer>       signer, by attestation time (pruning)
//
// The lists of registrations keep one key per entry, never a value that
// grows with them, and number their entries densely (removing one moves
// the last into its slot) so that a client can prove a complete listing
// key by key: the state's Merkle tree hashes its keys and proves no
// ranges.
//
// Queries: /teerex/enclave/<hex signer>; /teerex/enclaves (the number of
// registrations) and /teerex/enclaves/<slot> (the signer in a slot, slots
// 0 to number-1, in no particular order); /teerex/enclaves/<hex
// mrenclave> and /teerex/enclaves/<hex mrenclave>/<slot>, the same for
// the registrations of one measurement (the enclaves of the shard it
// serves by default); /teerex/policy; /teerex/allowlist. Each answers one
// small value with its proof; listings are read slot by slot at one height
// (client.Enclaves).
//
// Registration. The evidence is verified first (trusted roots, signatures,
// for DCAP the collateral of the quote's FMSPC, for IAS the report's age,
// all at block time), then its report data must be ReportData(sender,
// shielding key, genesis ID): its first half SHA-256(sender || shielding
// key), else ErrSenderNotAttested, its second half the chain's genesis ID
// (GenesisID, runtime.Context.Genesis), else ErrWrongChain, so that only
// an enclave following this chain registers. Then the policy decides:
// debug, TCB status and the MRENCLAVE allowlist. Registering again renews. A
// registration whose attested_at lies more than the renewal period before
// the block time is expired: keeper.Keeper.Active refuses it, so it can neither
// confirm blocks nor unshield funds in the bridge. ExpiredRetention after
// it expired, the end of a block removes it (EventPruned; at most
// MaxPrunedPerBlock per block, oldest first), so that registrations nobody
// renews do not accumulate.
//
// Liveness. Under a policy with a liveness period (Policy.LivenessSecs;
// production: DefaultLiveness, dev chains: none), a registration is also
// inactive (ErrSilent) once neither its latest registration nor its latest
// keep_alive (Enclave.AliveAt, set to the block time) lies within the
// liveness period, so that a lost machine's enclave leaves its shard's
// membership and voting set after minutes rather than at the end of the
// renewal period. A silent but unexpired enclave revives itself by a
// keep_alive; a renewal resets AliveAt. Sudo removes a registration at
// once with remove_enclave (EventRemoved).
package teerex
