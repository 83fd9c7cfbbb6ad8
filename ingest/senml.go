package ingest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// SenML limits.
const (
	MaxPayload     = 64 << 10 // bytes per pack
	MaxRecords     = 256      // records per pack
	senmlVersion   = 10
	relativeCutoff = 1 << 28 // RFC 8428 §4.5.3: times below this are relative to now
)

// Record is one resolved SenML record: base fields applied, name and time
// resolved. Exactly one of Value, String, Bool, Data is set, or none when the
// record carries only a Sum.
type Record struct {
	Name   string // resolved name: bn + n
	Metric string // n alone, or Name when n is empty
	Unit   string
	Time   time.Time
	Value  *float64
	String *string
	Bool   *bool
	Data   []byte
	Sum    *float64
}

// Numeric is the value the windows use: v, else vb as 0/1, else s.
func (r Record) Numeric() (float64, bool) {
	switch {
	case r.Value != nil:
		return *r.Value, true
	case r.Bool != nil:
		if *r.Bool {
			return 1, true
		}
		return 0, true
	case r.Sum != nil:
		return *r.Sum, true
	}
	return 0, false
}

// rawRecord is a record as sent; pointers tell absent from zero.
type rawRecord struct {
	BN   *string  `json:"bn"`
	BT   *float64 `json:"bt"`
	BU   *string  `json:"bu"`
	BV   *float64 `json:"bv"`
	BS   *float64 `json:"bs"`
	BVer *int     `json:"bver"`
	N    *string  `json:"n"`
	U    *string  `json:"u"`
	V    *float64 `json:"v"`
	VS   *string  `json:"vs"`
	VB   *bool    `json:"vb"`
	VD   *string  `json:"vd"`
	S    *float64 `json:"s"`
	T    *float64 `json:"t"`
	UT   *float64 `json:"ut"`
}

// DecodeSenML decodes and validates a SenML JSON pack. Relative times
// resolve against now. The error names the record and field at fault.
func DecodeSenML(data []byte, now time.Time) ([]Record, error) {
	if len(data) > MaxPayload {
		return nil, fmt.Errorf("senml: pack of %d bytes exceeds %d", len(data), MaxPayload)
	}
	raws, fast := parsePackFast(data)
	if !fast {
		if err := json.Unmarshal(data, &raws); err != nil {
			return nil, fmt.Errorf("senml: %w", jsonErr(err))
		}
	}
	if len(raws) == 0 {
		return nil, errors.New("senml: empty pack")
	}
	if len(raws) > MaxRecords {
		return nil, fmt.Errorf("senml: %d records exceed %d", len(raws), MaxRecords)
	}
	// The fast path accepts SenML's own labels only, none of which ends in "_".
	if !fast {
		if err := checkMustUnderstand(data); err != nil {
			return nil, err
		}
	}
	out := make([]Record, 0, len(raws))
	var bn, bu string
	var bt, bv, bs float64
	for i, r := range raws {
		if r.BVer != nil && (*r.BVer < 1 || *r.BVer > senmlVersion) {
			return nil, fmt.Errorf("senml: record %d: bver %d: want 1..%d", i, *r.BVer, senmlVersion)
		}
		if r.BN != nil {
			bn = *r.BN
		}
		if r.BT != nil {
			bt = *r.BT
		}
		if r.BU != nil {
			bu = *r.BU
		}
		if r.BV != nil {
			bv = *r.BV
		}
		if r.BS != nil {
			bs = *r.BS
		}
		rec, err := resolve(r, bn, bu, bt, bv, bs, now)
		if err != nil {
			return nil, fmt.Errorf("senml: record %d: %w", i, err)
		}
		out = append(out, rec)
	}
	return out, nil
}

func resolve(r rawRecord, bn, bu string, bt, bv, bs float64, now time.Time) (Record, error) {
	var rec Record
	n := ""
	if r.N != nil {
		n = *r.N
	}
	rec.Name = bn + n
	rec.Metric = n
	if n == "" {
		rec.Metric = rec.Name
	}
	if err := validName(rec.Name); err != nil {
		return rec, err
	}
	rec.Unit = bu
	if r.U != nil {
		rec.Unit = *r.U
	}
	values := 0
	if r.V != nil {
		values++
		v := bv + *r.V
		rec.Value = &v
	}
	if r.VS != nil {
		values++
		rec.String = r.VS
	}
	if r.VB != nil {
		values++
		rec.Bool = r.VB
	}
	if r.VD != nil {
		values++
		d, err := base64.RawURLEncoding.DecodeString(*r.VD)
		if err != nil {
			return rec, fmt.Errorf("vd: not base64url without padding: %w", err)
		}
		rec.Data = d
	}
	if r.S != nil {
		s := bs + *r.S
		rec.Sum = &s
	}
	if values > 1 {
		return rec, errors.New("more than one of v, vs, vb, vd")
	}
	if values == 0 && rec.Sum == nil {
		return rec, errors.New("no value: want one of v, vs, vb, vd or s")
	}
	for _, f := range []*float64{rec.Value, rec.Sum} {
		if f != nil && (math.IsInf(*f, 0) || math.IsNaN(*f)) {
			return rec, errors.New("value overflows float64")
		}
	}
	if r.UT != nil && *r.UT < 0 {
		return rec, fmt.Errorf("ut %v: must not be negative", *r.UT)
	}
	t := bt
	if r.T != nil {
		t += *r.T
	}
	if math.IsInf(t, 0) || math.IsNaN(t) || math.Abs(t) > 1e11 {
		return rec, fmt.Errorf("time %v out of range", t)
	}
	if t < relativeCutoff {
		rec.Time = now.Add(time.Duration(t * float64(time.Second)))
	} else {
		sec, frac := math.Modf(t)
		rec.Time = time.Unix(int64(sec), int64(frac*1e9))
	}
	return rec, nil
}

// validName applies RFC 8428 §4.5.1: 1 or more of A-Z a-z 0-9 - : . / _,
// starting with a letter or digit.
func validName(s string) error {
	if s == "" {
		return errors.New("empty name: want bn, n or both")
	}
	c := s[0]
	if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
		return fmt.Errorf("name %q: must start with a letter or digit", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == ':' || c == '.' || c == '/' || c == '_') {
			return fmt.Errorf("name %q: character %q not allowed", s, c)
		}
	}
	return nil
}

// checkMustUnderstand rejects fields ending in "_" (RFC 8428 §4.4): this
// decoder understands none. Only packs that could hold one are re-parsed.
func checkMustUnderstand(data []byte) error {
	// A key ending in "_" has `_"` in it, or the underscore escaped (only
	// the escape's last digit has a case).
	if !bytes.Contains(data, []byte(`_"`)) && !bytes.Contains(data, []byte(`\u005f`)) && !bytes.Contains(data, []byte(`\u005F`)) {
		return nil
	}
	var maps []map[string]json.RawMessage
	if err := json.Unmarshal(data, &maps); err != nil {
		return fmt.Errorf("senml: %w", err)
	}
	for i, m := range maps {
		for k := range m {
			if len(k) > 0 && k[len(k)-1] == '_' {
				return fmt.Errorf("senml: record %d: must-understand field %q not supported", i, k)
			}
		}
	}
	return nil
}

// jsonErr names the field behind a type error.
func jsonErr(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return fmt.Errorf("want a JSON array of records, got %s", te.Value)
		}
		return fmt.Errorf("field %q: got %s, want %s", te.Field, te.Value, te.Type)
	}
	return err
}
