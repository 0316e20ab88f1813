package enclave

import (
	"sync"

	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/shielding"
)

// maxChannels bounds the shielded channels an enclave remembers: about
// 80 bytes each, 5 MiB at the bound, far more clients than a worker
// serves at once.
const maxChannels = 1 << 16

// channels are the keys of the shielded channels (shielding.Channel) this
// enclave saw opened since it started, in memory only; the oldest is
// forgotten first. A client whose channel was forgotten (or opened at
// another enclave of the shard, or before a restart) is told
// ReasonUnknownChannel and sends its call again as an open ciphertext, so
// a host that floods the table costs clients an encapsulation each,
// never a call. The zero value is empty.
type channels struct {
	mu   sync.Mutex
	keys map[[shielding.ChannelIDSize]byte][]byte
	ring [][shielding.ChannelIDSize]byte // insertion order, for eviction
	next int
	max  int // 0 means maxChannels
}

func (c *channels) get(id [shielding.ChannelIDSize]byte) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.keys[id]
	return k, ok
}

func (c *channels) add(id [shielding.ChannelIDSize]byte, key []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys == nil {
		c.keys = make(map[[shielding.ChannelIDSize]byte][]byte)
	}
	if _, ok := c.keys[id]; ok {
		return // two calls of a new channel were opened concurrently
	}
	limit := c.max
	if limit == 0 {
		limit = maxChannels
	}
	if len(c.ring) < limit {
		c.ring = append(c.ring, id)
	} else {
		delete(c.keys, c.ring[c.next])
		c.ring[c.next] = id
		c.next = (c.next + 1) % limit
	}
	c.keys[id] = key
}

// openCall decrypts a direct call's ciphertext, one-shot or on a channel,
// or gives the reason it is invalid. A call that came on a channel also
// returns the channel's ID (nil for a one-shot ciphertext).
func (e *Enclave) openCall(ct []byte) (pt []byte, channel *[shielding.ChannelIDSize]byte, reason string) {
	e.decryptions.Add(1)
	if !shielding.IsChannel(ct) {
		e.decapsulations.Add(1)
		pt, err := e.keys.Decrypt(shielding.InfoTrustedCall, ct)
		if err != nil {
			return nil, nil, protocol.ReasonUndecryptable
		}
		return pt, nil, ""
	}
	p, err := shielding.ParseChannel(ct)
	if err != nil {
		return nil, nil, protocol.ReasonUndecryptable
	}
	key, known := e.channels.get(p.ID)
	if !known {
		if !p.Open {
			return nil, nil, protocol.ReasonUnknownChannel
		}
		e.decapsulations.Add(1)
		if key, err = e.keys.ChannelKey(p.Enc); err != nil {
			return nil, nil, protocol.ReasonUndecryptable
		}
	}
	aead, err := shielding.ChannelAEAD(key)
	if err != nil {
		return nil, nil, protocol.ReasonUndecryptable
	}
	if pt, err = p.OpenWith(aead); err != nil {
		return nil, nil, protocol.ReasonUndecryptable
	}
	if !known {
		// Only a channel whose first call opened takes a place: a forged
		// encapsulation (any bytes decapsulate to some key) never does.
		e.channels.add(p.ID, key)
	}
	return pt, &p.ID, ""
}
