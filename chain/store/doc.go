// Package store is the Merkle-ized, versioned key-value state of the chain.
//
// IAVL, the usual choice for CometBFT applications, is not available from
// this project's module proxy, so the state is a compact sparse Merkle tree
// (its hashing and proofs in chain/smt, built here in smt.go) kept in a cometbft-db database (goleveldb). A flat index of the
// latest values serves reads and prefix scans without walking the tree; the
// tree serves the app hash and proofs at any committed version. One version is
// committed per block in a single synced batch, so a crash leaves either the
// previous or the new version, never a mix.
//
// # Authenticated map
//
// (chain/smt hashes and proves it; clients verify proofs with that package
// alone.) The authenticated map is a compact sparse Merkle tree over 256-bit paths
// (path = sha256(key)), the construction of Dahlberg, Pulls and Peeters,
// "Efficient Sparse Merkle Trees" (2016), as used by Diem's Jellyfish tree
// and Celestia's SMT:
//
//   - an empty subtree hashes to 32 zero bytes;
//   - a subtree holding exactly one entry is that entry's leaf, placed at the
//     top of the subtree: leaf = sha256(0x00 || path || sha256(value));
//   - any other subtree is an inner node: sha256(0x01 || left || right),
//     left for bit 0 of the path at that depth (most significant bit first).
//
// The shape, and so the root, depends only on the set of entries, never on
// the order of updates. Nodes are content-addressed and immutable, so every
// committed version stays readable and provable.
package store
