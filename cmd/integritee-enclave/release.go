package main

import (
	"fmt"
	"strconv"

	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/enclave/state"
)

// The build's release and state format (docs/upgrades.md), set when it is
// built, so part of the binary and of its measurement:
//
//	go build -tags dev -ldflags "-X main.release=2 -X main.stateVersion=4" ./cmd/integritee-enclave
//
// An enclave hands the shard's keys and state only to a later release the
// chain authorized; the new release migrates the state to its format at
// its enactment height. They are strings because -X sets only strings;
// they are never changed at run time.
var (
	release      = "1"
	stateVersion = "3"
)

// releaseConfig parses the build's release and state version and lists
// the migrations this build can apply.
func releaseConfig() (rel uint64, sv uint32, ms []enclave.Migration, err error) {
	if rel, err = strconv.ParseUint(release, 10, 64); err != nil || rel == 0 {
		return 0, 0, nil, fmt.Errorf("build's release %q: want a positive integer", release)
	}
	v, err := strconv.ParseUint(stateVersion, 10, 32)
	if err != nil || v == 0 || v > 4 {
		return 0, 0, nil, fmt.Errorf("build's state version %q: this code knows versions 1 to 4", stateVersion)
	}
	return rel, uint32(v), []enclave.Migration{{From: 3, Apply: migrateV3}}, nil
}

// The versions: 1 and 2 are the states of releases that checked
// signatures with the cofactorless rule (2 was their upgrade demo's); 3
// (enclave.StateVersionCofactored, the default) checks them with the
// cofactored rule, and the enclave's own steps to it change no data.
// migrateV3 brings a state of version 3 to version 4. The balances STF's
// format is the same in all of them (version 4 exists to exercise the
// mechanism end to end, in localnet --upgrade; enclave's
// TestUpgradeHandover shows a migration that renames a field), so there is
// nothing to convert: the enclave records the new version in the same
// batch.
func migrateV3(*state.Batch) error { return nil }
