package rendezvous

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/seedfleet/seedfleet/internal/wire"
)

// ProtocolID is the libp2p protocol of rendezvous.
const ProtocolID = "/seedfleet/rendezvous/1.0.0"

// ServiceName is the resource-manager service of rendezvous streams.
const ServiceName = "seedfleet.rendezvous"

// Bounds of the protocol. A request carries at most one record, so 16 KiB
// is ample; a response carries at most a lookup's records.
const (
	MaxRequestSize  = 16 << 10
	MaxResponseSize = 1 << 20
	// StreamTimeout bounds a whole exchange, on both sides.
	StreamTimeout = 10 * time.Second
	// maxReasonLen bounds a refusal's text.
	maxReasonLen = 1024
)

// The wire format. Each message is one frame (see wire.ReadFrame): a
// minimal uvarint length, then that many bytes.
//
//	request  = type | body
//	  type 1 (register): record encoding (DecodeRecord)
//	  type 2 (lookup):   uvarint len | agent DID
//	response = status | body
//	  status 0 (ok):      register: uvarint ttl (seconds the seed keeps the record after its
//	                      timestamp; the device registers again before it runs out)
//	                      lookup: uvarint n | n × (uvarint len | record)
//	  status 1 (refused): code | uvarint len | reason (UTF-8, ≤ 1024 bytes)
const (
	reqRegister = 1
	reqLookup   = 2

	respOK      = 0
	respRefused = 1
)

// ErrProtocol marks a peer that broke the protocol.
var ErrProtocol = errors.New("rendezvous protocol violation")

// Code says why a seed refused a request; it is sent with the reason text
// and labels the refusal metrics.
type Code uint8

// Refusal codes.
const (
	CodeMalformed     Code = 1  // the request could not be decoded
	CodeTooLarge      Code = 2  // the request exceeds MaxRequestSize
	CodeInvalidRecord Code = 3  // the record breaks the format's rules (DID, context, addresses)
	CodeBadSignature  Code = 4  // the signature does not verify
	CodeNotSelf       Code = 5  // the record is not the requesting peer's own
	CodeFuture        Code = 6  // the timestamp is too far in the future
	CodeExpired       Code = 7  // the timestamp is older than the TTL
	CodeReplay        Code = 8  // a record at least as new is already held
	CodeUnauthorized  Code = 9  // the Authorizer refused the device
	CodeAgentFull     Code = 10 // the agent has the most records a seed keeps
	CodeSeedFull      Code = 11 // the seed holds records of the most agents it keeps
	CodeUnavailable   Code = 12 // the seed cannot serve now (shutting down, out of resources)
)

var codeNames = map[Code]string{
	CodeMalformed:     "malformed",
	CodeTooLarge:      "too_large",
	CodeInvalidRecord: "invalid_record",
	CodeBadSignature:  "bad_signature",
	CodeNotSelf:       "not_self",
	CodeFuture:        "future",
	CodeExpired:       "expired",
	CodeReplay:        "replay",
	CodeUnauthorized:  "unauthorized",
	CodeAgentFull:     "agent_full",
	CodeSeedFull:      "seed_full",
	CodeUnavailable:   "unavailable",
}

func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("code_%d", uint8(c))
}

// RefusedError is a seed's refusal of a request, with its reason.
type RefusedError struct {
	Code   Code
	Reason string
}

func (e *RefusedError) Error() string { return "seed refused: " + e.Reason }

// refuse builds a RefusedError with a formatted reason.
func refuse(code Code, format string, args ...any) *RefusedError {
	return &RefusedError{Code: code, Reason: fmt.Sprintf(format, args...)}
}

type request struct {
	kind     byte
	record   Record // reqRegister
	agentDID string // reqLookup
}

func (q *request) append(b []byte) []byte {
	b = append(b, q.kind)
	switch q.kind {
	case reqRegister:
		return q.record.appendBinary(b)
	case reqLookup:
		return wire.AppendLenBytes(b, q.agentDID)
	}
	return b
}

// decodeRequest decodes a request body. A failure is a *RefusedError, ready
// to be sent back.
func decodeRequest(b []byte) (request, *RefusedError) {
	if len(b) == 0 {
		return request{}, refuse(CodeMalformed, "empty request")
	}
	q := request{kind: b[0]}
	switch q.kind {
	case reqRegister:
		r, err := DecodeRecord(b[1:])
		if err != nil {
			return request{}, refuse(CodeInvalidRecord, "register: %v", err)
		}
		q.record = r
	case reqLookup:
		d := frameDecoder(b[1:])
		q.agentDID = string(d.LenBytes("agent DID", MaxAgentDIDLen))
		if err := d.Done("lookup request"); err != nil {
			return request{}, refuse(CodeMalformed, "lookup: %v", err)
		}
		if err := CheckAgentDID(q.agentDID); err != nil {
			return request{}, refuse(CodeInvalidRecord, "lookup: %v", err)
		}
	default:
		return request{}, refuse(CodeMalformed, "unknown request type %d (this seed speaks %s: 1 register, 2 lookup)", q.kind, ProtocolID)
	}
	return q, nil
}

func appendRefusal(b []byte, e *RefusedError) []byte {
	b = append(b, respRefused, byte(e.Code))
	return wire.AppendLenBytes(b, wire.Truncate(e.Reason, maxReasonLen))
}

// appendLookupOK appends an ok response listing encoded records.
func appendLookupOK(b []byte, recs [][]byte) []byte {
	b = append(b, respOK)
	b = binary.AppendUvarint(b, uint64(len(recs)))
	for _, r := range recs {
		b = wire.AppendLenBytes(b, r)
	}
	return b
}

func lookupOKLen(recs [][]byte) int {
	n := 1 + wire.UvarintLen(uint64(len(recs)))
	for _, r := range recs {
		n += wire.UvarintLen(uint64(len(r))) + len(r)
	}
	return n
}

// response is a decoded response: a refusal, or for a lookup the raw
// records (each decoded and verified separately, so one bad record does
// not hide the others).
type response struct {
	refused *RefusedError
	records [][]byte
	ttl     time.Duration // register: how long the seed keeps the record
}

// appendRegisterOK appends an ok response to a registration: the seed's
// TTL in whole seconds (at least one).
func appendRegisterOK(b []byte, ttl time.Duration) []byte {
	b = append(b, respOK)
	return binary.AppendUvarint(b, uint64(max(ttl/time.Second, 1)))
}

func decodeResponse(b []byte, kind byte) (response, error) {
	d := frameDecoder(b)
	var resp response
	switch status := d.Byte("status"); {
	case d.Err != nil:
	case status == respRefused:
		code := Code(d.Byte("refusal code"))
		reason := d.LenBytes("refusal reason", maxReasonLen)
		if d.Err == nil {
			resp.refused = &RefusedError{Code: code, Reason: wire.Sanitize(string(reason))}
		}
	case status != respOK:
		return response{}, fmt.Errorf("%w: response status %d", ErrProtocol, status)
	case kind == reqRegister:
		secs := d.Uvarint("record TTL")
		if d.Err == nil && (secs == 0 || secs > uint64(MaxTTL/time.Second)) {
			return response{}, fmt.Errorf("%w: seed claims to keep the record %d s (between 1 s and %s)", ErrProtocol, secs, MaxTTL)
		}
		resp.ttl = time.Duration(secs) * time.Second
	case kind == reqLookup:
		n := d.Uvarint("record count")
		// A record is at least ~150 bytes: refuse counts the body cannot hold.
		if d.Err == nil && n > uint64(len(d.B)) {
			return response{}, fmt.Errorf("%w: response claims %d records in %d bytes", ErrProtocol, n, len(b))
		}
		for i := uint64(0); i < n && d.Err == nil; i++ {
			// Records are checked one by one later; an oversized one is
			// dropped then, not here, so it does not hide the others.
			if r := d.LenBytes("record", MaxResponseSize); d.Err == nil {
				resp.records = append(resp.records, r)
			}
		}
	}
	return resp, d.Done("response")
}

// recordDecoder and frameDecoder read a message (see wire.Decoder); their
// errors wrap ErrInvalidRecord for records, ErrProtocol for frames.
func recordDecoder(b []byte) *wire.Decoder {
	return &wire.Decoder{B: b, Sentinel: ErrInvalidRecord}
}

func frameDecoder(b []byte) *wire.Decoder { return &wire.Decoder{B: b, Sentinel: ErrProtocol} }

func truncErr(err error) error {
	return errors.New(wire.Truncate(err.Error(), 200))
}
