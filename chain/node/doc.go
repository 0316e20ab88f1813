// Package node runs integritee-node: CometBFT embedded in-process with the
// chain application, its home directory layout, genesis and testnets.
//
// Home layout (CometBFT's, plus node.toml; see also docs/files.md):
//
//	config/node.toml               this package's settings (see Config),
//	                               commented; node.json in homes of earlier
//	                               releases
//	config/genesis.json            CometBFT genesis; app_state = chain.AppState
//	config/priv_validator_key.json validator key
//	config/node_key.json           p2p key
//	data/                          CometBFT block/state stores, application.db
package node
