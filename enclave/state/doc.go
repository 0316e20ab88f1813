// Package state is a shard's confidential state: an authenticated
// key-value map whose keys are blinded and whose values are encrypted, with
// an incrementally maintained Merkle root as the state hash.
//
//   - The blind, nonce and encryption keys are HKDF-SHA256 of the state
//     key (no salt), 32 bytes each, with the infos
//     "integritee/state/v1/blind", ".../nonce" and ".../encrypt".
//   - A plaintext key k is stored under its blinded key
//     HMAC-SHA256(blind key, k).
//   - A value v is stored as nonce || AES-256-GCM(enc key, nonce, v,
//     associated data = blinded key). The nonce is synthetic,
//     HMAC-SHA256(nonce key, blinded key || height || v)[:12], the height
//     as 8 bytes big-endian, so every enclave of the shard (they share the
//     state key) produces the same ciphertext for the same block, and two
//     different plaintexts never share a nonce (SIV-style).
//   - The state hash is the root of a sparse Merkle tree over (blinded key,
//     SHA-256 of the ciphertext) (see smt.go): RootOf recomputes it from the
//     encrypted entries alone, so the host and provisioning peers can check
//     it without any key.
//
// The enclave keeps the plaintext values in memory and hands the host, per
// block, only the changed encrypted entries (ChangeSet).
//
// Leakage to the host (and anyone reading its disk): the number of entries;
// which blinded entries a block creates, changes or deletes, and so when
// the same (unknown) account is touched again, and which entries change
// together in a block; the sizes of the values. Not the keys, not the
// values, not which block entry belongs to which trusted call.
//
// # State hash
//
// The state hash is the root of a compact sparse Merkle tree over the
// blinded keys (256-bit paths), the construction the chain's store uses
// (Dahlberg, Pulls and Peeters, "Efficient Sparse Merkle Trees"):
//
//   - an empty subtree hashes to 32 zero bytes;
//   - a subtree holding exactly one entry is that entry's leaf, placed at
//     the top of the subtree: leaf = sha256(0x00 || key || sha256(value));
//   - any other subtree is an inner node: sha256(0x01 || left || right),
//     left for bit 0 of the key at that depth (most significant bit first).
//
// Here value is the encrypted value, so anyone holding the entries (the
// host, a provisioning peer) can recompute the root, and the shape depends
// only on the set of entries. The tree lives in memory with each node's
// hash cached; a change marks its path dirty and Root rehashes only dirty
// nodes, so a block costs O(changes * log n), not O(n).
package state
