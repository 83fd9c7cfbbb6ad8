package transport

import (
	"io"
	"strings"

	"github.com/kerf-edge/kerf/abi"
	"github.com/kerf-edge/kerf/transport/internal/wire"
)

// RefuseAdmitted answers the hello of a session a Handoff took with a
// refusal instead of a worker: the client's open fails with err's CUDA
// result and message, as it would for a refusal during the handshake.
// The caller then closes the stream.
func RefuseAdmitted(w io.Writer, err error) error {
	conn := wire.NewConnSize(readWriter(strings.NewReader(""), w), handshakeBufSize)
	m := wire.ErrorMsg{Code: abi.ResultOf(err), Message: err.Error()}
	b, aerr := m.Append(nil)
	if aerr != nil {
		return aerr
	}
	if err := conn.WriteFrame(wire.Header{Type: wire.Error}, b); err != nil {
		return err
	}
	return conn.Flush()
}
