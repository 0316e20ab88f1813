// Package types holds the chain's wire primitives that every other package
// shares: the 32-byte Hash (measurements, digests, genesis IDs, shard IDs)
// and the stable error codes (Error) that transactions, queries and the
// modules' calls are rejected with. It imports nothing of the chain's
// state machine, so clients and enclaves can use it without linking the
// node.
package types
