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
//	go build -tags dev -ldflags "-X main.release=2 -X main.stateVersion=3" ./cmd/integritee-enclave
//
// An enclave hands the shard's keys and state only to a later release the
// chain authorized; the new release migrates the state to its format at
// its enactment height. They are strings because -X sets only strings;
// they are never changed at run time.
var (
	release      = "1"
	stateVersion = "2"
)

// releaseConfig parses the build's release and state version and lists
// the migrations this build can apply.
func releaseConfig() (rel uint64, sv uint32, ms []enclave.Migration, err error) {
	if rel, err = strconv.ParseUint(release, 10, 64); err != nil || rel == 0 {
		return 0, 0, nil, fmt.Errorf("build's release %q: want a positive integer", release)
	}
	v, err := strconv.ParseUint(stateVersion, 10, 32)
	if err != nil || v == 0 || v > 3 {
		return 0, 0, nil, fmt.Errorf("build's state version %q: this code knows versions 1 to 3", stateVersion)
	}
	return rel, uint32(v), []enclave.Migration{{From: 2, Apply: migrateV2}}, nil
}

// The versions: 1 is the state of releases that checked signatures with
// the cofactorless rule; 2 (enclave.StateVersionCofactored, the default)
// checks them with the cofactored rule, and the enclave's own step to it
// changes no data. migrateV2 brings a state of version 2 to version 3. The
// balances STF's format is the same in both (version 3 exists to exercise
// the mechanism end to end, in localnet --upgrade; enclave's
// TestUpgradeHandover shows a migration that renames a field), so there is
// nothing to convert: the enclave records the new version in the same
// batch.
func migrateV2(*state.Batch) error { return nil }
