package ed25519x

// KeyShape exposes keyShape to the tests, which hold it to CheckPublicKey.
var KeyShape = keyShape
