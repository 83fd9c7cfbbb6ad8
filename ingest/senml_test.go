package ingest

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

var testNow = time.Unix(1_800_000_000, 0)

func TestDecodeSenML(t *testing.T) {
	type want struct {
		name, metric, unit string
		value              float64
		at                 time.Time
	}
	ok := []struct {
		in   string
		want []want
	}{
		{`[{"bn":"urn:dev:cam-07:","n":"queue_depth","u":"count","v":12}]`,
			[]want{{"urn:dev:cam-07:queue_depth", "queue_depth", "count", 12, testNow}}},
		// Base fields carry forward; bv adds; relative and absolute times.
		{`[{"bn":"d1/","bt":1700000000,"bu":"%","bv":10,"n":"a","v":1,"t":5},{"n":"b","v":2,"u":"W"}]`,
			[]want{{"d1/a", "a", "%", 11, time.Unix(1700000005, 0)}, {"d1/b", "b", "W", 12, time.Unix(1700000000, 0)}}},
		{`[{"n":"x","v":3,"t":-10}]`, []want{{"x", "x", "", 3, testNow.Add(-10 * time.Second)}}},
		{`[{"bn":"only","v":4}]`, []want{{"only", "only", "", 4, testNow}}},
		{`[{"n":"busy","vb":true},{"n":"energy","s":7,"bs":1}]`,
			[]want{{"busy", "busy", "", 1, testNow}, {"energy", "energy", "", 8, testNow}}},
		{`[{"n":"x","v":1,"unknown":true,"bver":10}]`, []want{{"x", "x", "", 1, testNow}}},
		{`[{"n":"x","v":1.5,"t":1700000000.25}]`, []want{{"x", "x", "", 1.5, time.Unix(1700000000, 250_000_000)}}},
	}
	for _, c := range ok {
		recs, err := DecodeSenML([]byte(c.in), testNow)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if len(recs) != len(c.want) {
			t.Errorf("%s: %d records, want %d", c.in, len(recs), len(c.want))
			continue
		}
		for i, w := range c.want {
			r := recs[i]
			v, _ := r.Numeric()
			if r.Name != w.name || r.Metric != w.metric || r.Unit != w.unit || v != w.value || !r.Time.Equal(w.at) {
				t.Errorf("%s record %d: got %q %q %q %v %v, want %+v", c.in, i, r.Name, r.Metric, r.Unit, v, r.Time, w)
			}
		}
	}

	// Non-numeric values decode but have no numeric value.
	recs, err := DecodeSenML([]byte(`[{"n":"fw","vs":"1.2.3"},{"n":"blob","vd":"aGk"}]`), testNow)
	if err != nil || *recs[0].String != "1.2.3" || string(recs[1].Data) != "hi" {
		t.Fatalf("vs/vd: %v %+v", err, recs)
	}
	if _, ok := recs[0].Numeric(); ok {
		t.Error("vs is numeric")
	}

	bad := []struct{ in, msg string }{
		{``, "unexpected end"},
		{`{}`, "want a JSON array"},
		{`[]`, "empty pack"},
		{`[{"v":1}]`, "record 0: empty name"},
		{`[{"n":"_x","v":1}]`, "must start with a letter"},
		{`[{"n":"a b","v":1}]`, "not allowed"},
		{`[{"n":"x"}]`, "no value"},
		{`[{"n":"x","v":1,"vs":"a"}]`, "more than one"},
		{`[{"n":"x","v":"12"}]`, `field "v"`},
		{`[{"n":"x","vd":"!!"}]`, "base64url"},
		{`[{"n":"x","v":1,"bver":11}]`, "bver 11"},
		{`[{"n":"x","v":1,"t":1e300}]`, "out of range"},
		{`[{"n":"x","v":1e308,"bv":1e308}]`, "overflows"},
		{`[{"n":"x","v":1},{"n":"y","v":1,"foo_":1}]`, `record 1: must-understand field "foo_"`},
		{`[{"n":"x","v":1,"foo\u005f":1}]`, `record 0: must-understand field "foo_"`},
		{`[{"n":"x","v":1,"foo\u005F":1}]`, `record 0: must-understand field "foo_"`},
		{`[{"n":"x","v":1,"ut":-1}]`, "ut"},
		{"[" + strings.Repeat(`{"n":"x","v":1},`, MaxRecords) + `{"n":"x","v":1}]`, "records exceed"},
		{strings.Repeat(" ", MaxPayload+1), "exceeds"},
	}
	for _, c := range bad {
		_, err := DecodeSenML([]byte(c.in), testNow)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%.60s: error %v, want it to mention %q", c.in, err, c.msg)
		}
	}
}

func FuzzSenML(f *testing.F) {
	for _, s := range []string{
		`[{"bn":"urn:dev:cam-07:","n":"queue_depth","u":"count","v":12}]`,
		`[{"bn":"d/","bt":1700000000,"bv":1,"n":"a","v":1,"t":5},{"n":"b","vb":false}]`,
		`[{"n":"x","vd":"aGk","s":1,"foo_":2}]`,
		`[{"n":"x","vs":"s","t":-1e10}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := DecodeSenML(data, testNow)
		if err != nil {
			return
		}
		if len(recs) == 0 || len(recs) > MaxRecords {
			t.Fatalf("%d records", len(recs))
		}
		for _, r := range recs {
			if validName(r.Name) != nil {
				t.Fatalf("invalid name %q accepted", r.Name)
			}
			n := 0
			for _, set := range []bool{r.Value != nil, r.String != nil, r.Bool != nil, r.Data != nil} {
				if set {
					n++
				}
			}
			if n > 1 || (n == 0 && r.Sum == nil) {
				t.Fatalf("record with %d values accepted: %+v", n, r)
			}
		}
	})
}

func TestParseTopic(t *testing.T) {
	tp, err := ParseTopic("edge/v1/plant-1/node_a/load/cam-07")
	if err != nil || tp != (Topic{"plant-1", "node_a", "load", "cam-07"}) {
		t.Fatalf("%+v %v", tp, err)
	}
	if tp.NATS() != "edge.v1.plant-1.node_a.load.cam-07" || tp.MQTT() != "edge/v1/plant-1/node_a/load/cam-07" || tp.Key() != "plant-1/node_a/cam-07" {
		t.Fatal(tp.NATS(), tp.MQTT(), tp.Key())
	}
	if s, err := ParseSubject(tp.NATS()); err != nil || s != tp {
		t.Fatal(s, err)
	}
	if s, err := ParseTopic("edge/v1/s/n/status/kerfd"); err != nil || s.Kind != KindStatus {
		t.Fatal(s, err)
	}
	for _, bad := range []string{"", "edge/v1/s/n/load", "edge/v2/s/n/load/x", "edge/v1/s/n/other/x",
		"edge/v1/s//load/x", "edge/v1/s/n/load/x/y", "edge/v1/s.t/n/load/x", "edge/v1/s/n/load/" + strings.Repeat("a", 65),
		"edge/v1/+/n/load/x", "x/v1/s/n/load/x"} {
		if _, err := ParseTopic(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// senmlFastSeeds are packs the fast path must answer, and near misses it
// must leave to encoding/json.
var senmlFastSeeds = []string{
	`[{"bn":"urn:dev:cam-07:","n":"queue_depth","u":"count","v":12}]`,
	` [ { "n" : "load" , "v" : -1.5e+3 , "t" : 1700000000.123456 } ,{"n":"b","vb":true,"bver":10}]`,
	`[{"bn":"d/","bt":1,"bu":"W","bv":2,"bs":3,"n":"a","u":"V","s":4,"ut":5,"vs":"x","vd":"aGk"},{}]`,
	`[]`,
	`[{"n":"x","v":1,"n":"y"}]`,
	`[{"N":"x","v":1}]`,
	`[{"n":"x\u0041","v":1}]`,
	`[{"n":"x","v":null}]`,
	`[{"n":"x","v":01}]`,
	`[{"n":"x","v":1.}]`,
	`[{"n":"x","v":"1"}]`,
	`[{"n":"x","bver":1.0}]`,
	`[{"n":"x","bver":99999999999999999999}]`,
	`[{"n":"x","v":1e999}]`,
	`[{"n":"x","v":1,"extra":{"a":[1]}}]`,
	`[{"n":"x","vb":truex}]`,
	`[{"n":"é","v":1}]`,
	`[{"n":"x","v":1}] x`,
	`[{"n":"x","v":1},]`,
	`{"n":"x","v":1}`,
}

func TestSenMLFastPathTakesPlainPacks(t *testing.T) {
	for _, in := range senmlFastSeeds[:5] {
		if _, ok := parsePackFast([]byte(in)); !ok {
			t.Errorf("%s: fast path declined a plain pack", in)
		}
	}
	for _, in := range senmlFastSeeds[5:] {
		if _, ok := parsePackFast([]byte(in)); ok {
			t.Errorf("%s: fast path answered; it is encoding/json's to judge", in)
		}
	}
}

// FuzzSenMLFastPath: wherever the fast path answers, encoding/json accepts
// the same bytes and decodes the same records.
func FuzzSenMLFastPath(f *testing.F) {
	for _, s := range senmlFastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := parsePackFast(data)
		if !ok {
			return
		}
		var ref []rawRecord
		if err := json.Unmarshal(data, &ref); err != nil {
			t.Fatalf("fast path accepted what encoding/json refuses: %v", err)
		}
		if err := checkMustUnderstand(data); err != nil {
			t.Fatalf("fast path accepted a must-understand field: %v", err)
		}
		if !reflect.DeepEqual(fast, ref) {
			t.Fatalf("fast path decoded %s, encoding/json %s", dumpRaws(fast), dumpRaws(ref))
		}
	})
}

func dumpRaws(rs []rawRecord) string {
	b, _ := json.Marshal(rs)
	return string(b)
}

func BenchmarkDecodeSenML(b *testing.B) {
	pack := []byte(`[{"n":"load","v":42,"t":1800000000.123456}]`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeSenML(pack, testNow); err != nil {
			b.Fatal(err)
		}
	}
}
