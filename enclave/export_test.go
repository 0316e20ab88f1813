package enclave

// Decryptions is the number of direct calls e decrypted.
func Decryptions(e *Enclave) uint64 { return e.decryptions.Load() }
