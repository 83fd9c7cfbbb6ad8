package profiles

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kerf-edge/kerf/profiles/api"
)

// readState reads server-sent events until a state event, skipping
// keep-alives.
func readState(t *testing.T, br *bufio.Reader) api.State {
	t.Helper()
	var event, data string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		case line == "" && event == "state":
			var st api.State
			if err := json.Unmarshal([]byte(data), &st); err != nil {
				t.Fatal(err)
			}
			return st
		}
	}
}

func TestStream(t *testing.T) {
	e := newEnv(t)
	e.srv.cfg.StreamInterval = 50 * time.Millisecond
	ts := httptest.NewServer(e.srv)
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/v1/stream", nil)
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != 401 {
		t.Fatalf("stream without a token: %v %v", r, err)
	}
	req.Header.Set("Authorization", "Bearer "+e.admin)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if ct := r.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	br := bufio.NewReader(r.Body)
	st := readState(t, br)
	if len(st.GPUs) != 2 || len(st.Slices) != 1 || st.Slices[0].Tenant != "alice" {
		t.Fatalf("first state %+v", st)
	}
	// A policy decision reaches the stream.
	e.srv.RecordDecision("hot", "shrink", "temp 85")
	deadline := time.Now().Add(5 * time.Second)
	for {
		st = readState(t, br)
		if n := len(st.Events); n > 0 && st.Events[n-1].Kind == api.EventKindPolicy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no policy event in the stream: %+v", st.Events)
		}
	}
	// A changed slice reaches the stream.
	e.node.mu.Lock()
	e.node.slices[0].MemoryUsedBytes = 5 << 30
	e.node.mu.Unlock()
	for {
		if st = readState(t, br); st.Slices[0].MemoryUsedBytes == 5<<30 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("slice change not streamed")
		}
	}
	// Close ends open streams.
	e.srv.Close()
	done := make(chan struct{})
	go func() {
		for {
			if _, err := br.ReadString('\n'); err != nil {
				close(done)
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the stream")
	}
}

// The live page's stream outlives the HTTP server's read and write
// timeouts, which bound every other request.
func TestStreamOutlivesServerTimeouts(t *testing.T) {
	const timeout = 100 * time.Millisecond
	e := newEnv(t)
	e.srv.cfg.StreamInterval = timeout / 4
	ts := httptest.NewUnstartedServer(e.srv)
	ts.Config.ReadTimeout, ts.Config.WriteTimeout = timeout, timeout
	ts.Start()
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/v1/stream", nil)
	req.Header.Set("Authorization", "Bearer "+e.admin)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	br := bufio.NewReader(r.Body)
	for start := time.Now(); time.Since(start) < 10*timeout; {
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatalf("stream ended after %v under %v server timeouts: %v", time.Since(start), timeout, err)
		}
	}
}
