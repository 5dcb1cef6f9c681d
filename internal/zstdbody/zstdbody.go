// Package zstdbody compresses the plaintext of sealed management messages
// (COMPRESSION_ZSTD in proto/management.proto) and decodes it under a size
// cap, so that a broken or hostile body cannot make the agent allocate more
// than the cap.
//
// A compressed body is one zstd frame whose header declares its content
// size. Decode refuses a frame without a declared size or declaring more
// than the cap before it allocates anything, and never writes past the
// declared size (extra blocks or frames are refused), so the memory one
// Decode takes is bounded by the declared size, itself at most the cap.
//
// The server (management/grpcapi) compresses with an Encoder; the agent
// (client/mgmt) decodes with a Decoder. Both are safe for concurrent use
// and start no goroutines.
package zstdbody

import (
	"errors"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// MaxDecoded is the largest body an agent decodes: 64 MiB. Servers never
// send a compressed body that decodes to more.
const MaxDecoded = 64 << 20

// MinSize is the size below which servers send bodies uncompressed: the
// frame header and entropy tables would eat most of the gain.
const MinSize = 512

// ErrTooLarge is returned by Decode for a body that declares (or turns
// out to hold) more than the decoder's cap.
var ErrTooLarge = errors.New("compressed body decodes to more than the limit")

// ErrCorrupt is returned by Decode for a body that is not one zstd frame
// with a declared content size matching what it holds.
var ErrCorrupt = errors.New("compressed body is not a valid zstd frame")

// Encoder compresses bodies.
type Encoder struct{ enc *zstd.Encoder }

// NewEncoder returns an Encoder at zstd's fastest level: a full 10,000-peer
// map compresses in a few milliseconds and the gain over the default level
// is small on maps, whose bulk is random keys.
func NewEncoder() *Encoder {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false))
	if err != nil { // only bad options fail, and these are constant
		panic(fmt.Sprintf("zstdbody: new encoder: %v", err))
	}
	return &Encoder{enc: enc}
}

// Compress returns the compressed form of src and true, or nil and false
// when src should be sent as it is: shorter than MinSize (zstd would not
// declare its size either) or not made smaller.
func (e *Encoder) Compress(src []byte) ([]byte, bool) {
	if len(src) < MinSize {
		return nil, false
	}
	c := e.enc.EncodeAll(src, make([]byte, 0, len(src)/2))
	if len(c) >= len(src) {
		return nil, false
	}
	return c, true
}

// Decoder decodes bodies of at most a fixed size.
type Decoder struct {
	dec *zstd.Decoder
	max uint64
}

// NewDecoder returns a Decoder that refuses bodies decoding to more than
// max bytes (max <= 0 or above MaxDecoded: MaxDecoded). Close releases it.
func NewDecoder(max int) (*Decoder, error) {
	if max <= 0 || max > MaxDecoded {
		max = MaxDecoded
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(uint64(max)), zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		return nil, fmt.Errorf("new zstd decoder: %w", err)
	}
	return &Decoder{dec: dec, max: uint64(max)}, nil
}

// Decode returns the body src holds. It allocates at most the size the
// frame declares (refused above the cap, so never more than the cap).
// Failures are ErrTooLarge or ErrCorrupt.
func (d *Decoder) Decode(src []byte) ([]byte, error) {
	var h zstd.Header
	if err := h.Decode(src); err != nil || h.Skippable {
		return nil, ErrCorrupt
	}
	if !h.HasFCS {
		return nil, fmt.Errorf("%w: the frame does not declare its size", ErrCorrupt)
	}
	if h.FrameContentSize > d.max {
		return nil, fmt.Errorf("%w: %d bytes declared, limit %d", ErrTooLarge, h.FrameContentSize, d.max)
	}
	// The cap of dst bounds what DecodeAll writes (WithDecodeAllCapLimit).
	out, err := d.dec.DecodeAll(src, make([]byte, 0, int(h.FrameContentSize)))
	switch {
	case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded):
		return nil, fmt.Errorf("%w: holds more than the %d bytes declared", ErrTooLarge, h.FrameContentSize)
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	case uint64(len(out)) != h.FrameContentSize:
		return nil, fmt.Errorf("%w: %d bytes declared, %d decoded", ErrCorrupt, h.FrameContentSize, len(out))
	}
	return out, nil
}

// Close releases the decoder's buffers.
func (d *Decoder) Close() { d.dec.Close() }
