// Package dcap parses and verifies Intel SGX DCAP ECDSA quotes.
package dcap
