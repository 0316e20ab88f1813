package trusted

import (
	"context"
	"crypto/ed25519"
	"errors"
	"sync/atomic"

	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
)

// ErrUnknownChannel is a call sealed on a channel that the enclave it
// reached has not seen opened (it restarted, forgot the channel, or is
// another worker's): nothing was applied, and the call may be sent again
// sealed as an open ciphertext. It is an *InvalidCallError too.
var ErrUnknownChannel = errors.New("trusted: the enclave does not know the call's channel")

// reasonUnknownChannel is the enclave's reason for it
// (protocol.ReasonUnknownChannel).
const reasonUnknownChannel = "unknown channel"

// Channel is a shielded channel to the shard (shielding.Channel): the
// first call a client sends on it carries an HPKE encapsulation, the
// later ones only an AES-256-GCM ciphertext, so the enclave decapsulates
// once per channel instead of once per call (about half of a direct
// call's cost in the enclave). Use one per sender; it is safe for
// concurrent use.
type Channel struct {
	c      *Client
	ch     *shielding.Channel
	opened atomic.Bool
}

// OpenChannel opens a channel to the verified shielding key of the shard.
// Nothing is sent until the first call.
func (c *Client) OpenChannel() (*Channel, error) {
	ch, err := shielding.NewChannel(c.key)
	if err != nil {
		return nil, err
	}
	return &Channel{c: c, ch: ch}, nil
}

// EncryptCall signs call like Client.EncryptCall and seals it on the
// channel: as an open ciphertext until the enclave answered one (Opened),
// then as a data ciphertext.
func (ch *Channel) EncryptCall(key ed25519.PrivateKey, call stf.Call, nonce uint64) ([]byte, error) {
	return ch.EncryptCallAs(key, call, nonce, !ch.opened.Load())
}

// EncryptCallAs is EncryptCall with the form chosen by the caller (open or
// data): a load generator builds a sender's calls before sending any, the
// first open and the rest data, and sends them in order.
func (ch *Channel) EncryptCallAs(key ed25519.PrivateKey, call stf.Call, nonce uint64, open bool) ([]byte, error) {
	signed, err := ch.c.signCall(key, call, nonce)
	if err != nil {
		return nil, err
	}
	return ch.ch.Seal(signed, open), nil
}

// Opened records the enclave's answer err to a call sealed on the
// channel: a result, or a refusal that only a decrypted call can earn (a
// bad signature or nonce), means the enclave knows the channel;
// ErrUnknownChannel means the next call must open it again; any other
// error says nothing (a ciphertext refused as too large or malformed may
// never have been opened).
func (ch *Channel) Opened(err error) {
	var ie *InvalidCallError
	switch {
	case errors.Is(err, ErrUnknownChannel):
		ch.opened.Store(false)
	case err == nil, errors.As(err, &ie) && decryptedReasons[ie.Reason]:
		ch.opened.Store(true)
	}
}

// The enclave's reasons (protocol.Reason*): for a ciphertext that does not
// open, and for calls it refused after opening them.
const (
	reasonUndecryptable = "undecryptable"
	reasonFutureNonce   = "future nonce"
)

var decryptedReasons = map[string]bool{reasonBadSignature: true, reasonStaleNonce: true, reasonFutureNonce: true}

// SubmitCall is Client.SubmitCall with the call sealed on the channel. If
// the enclave does not know the channel it applied nothing, and the call
// is sealed again as an open ciphertext and sent once more.
func (ch *Channel) SubmitCall(ctx context.Context, key ed25519.PrivateKey, call stf.Call) (*Result, error) {
	n, err := ch.c.Nonce(ctx, key)
	if err != nil {
		return nil, err
	}
	for retried := false; ; retried = true {
		ct, err := ch.EncryptCall(key, call, n)
		if err != nil {
			return nil, err
		}
		res, err := ch.c.Submit(ctx, ct, SignedBy(key, n))
		ch.Opened(err)
		if errors.Is(err, ErrUnknownChannel) && !retried {
			continue
		}
		return res, err
	}
}
