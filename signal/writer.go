package signal

import (
	"petrel/proto/signalpb"
)

// writeLoop is the only writer to the stream after registration. It ends
// when a send fails or quit closes.
func (s *Server) writeLoop(stream signalpb.Signal_ConnectServer, sess *session, pings <-chan uint64, quit <-chan struct{}) error {
	err := stream.Send(&signalpb.ServerFrame{Kind: &signalpb.ServerFrame_Registered{
		Registered: &signalpb.Registered{HeartbeatIntervalMs: uint32(s.cfg.HeartbeatInterval.Milliseconds())},
	}})
	if err != nil {
		return err
	}
	var carry *outItem // dequeued but did not fit the previous frame
	for {
		var it outItem
		if carry != nil {
			it, carry = *carry, nil
		} else {
			select {
			case it = <-sess.q.ch:
				sess.q.dequeued(it)
			case seq := <-pings:
				if err := stream.Send(&signalpb.ServerFrame{Kind: &signalpb.ServerFrame_Ping{Ping: &signalpb.Ping{Seq: seq}}}); err != nil {
					return err
				}
				continue
			case <-quit:
				return nil
			}
		}
		var f *signalpb.ServerFrame
		f, carry = s.batch(sess, it)
		if err := stream.Send(f); err != nil {
			return err
		}
	}
}

// batch builds one frame from first (already dequeued) plus whatever else
// is queued, up to MaxBatch items and MaxFrame bytes. An item that does not
// fit is returned as carry, to start the next frame. A pong ends a frame.
func (s *Server) batch(sess *session, first outItem) (f *signalpb.ServerFrame, carry *outItem) {
	f = &signalpb.ServerFrame{}
	size := frameOverhead
	add := func(it outItem) {
		size += it.wireSize()
		switch {
		case it.env != nil:
			f.Envelopes = append(f.Envelopes, it.env)
		case it.err != nil:
			f.Errors = append(f.Errors, it.err)
		case it.pong != nil:
			f.Kind = &signalpb.ServerFrame_Pong{Pong: it.pong}
		}
	}
	add(first)
	for n := 1; n < s.cfg.MaxBatch && f.Kind == nil; n++ {
		select {
		case it := <-sess.q.ch:
			sess.q.dequeued(it)
			if size+it.wireSize() > s.cfg.MaxFrame {
				return f, &it
			}
			add(it)
		default:
			return f, nil
		}
	}
	return f, nil
}
