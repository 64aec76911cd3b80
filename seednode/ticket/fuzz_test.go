package ticket

import (
	"errors"
	"strings"
	"testing"
)

// Fuzz targets for the two parsers. Run one with, for example:
//
//	go test ./seednode/ticket -run='^$' -fuzz='^FuzzParseBlobTicket$' -fuzztime=30s
//
// Each input is tried twice: as ticket text, and as a payload sealed with a
// correct checksum. The second way lets the fuzzer reach the field decoder,
// which random text almost never does past the checksum. Inputs that once
// failed are kept in testdata/fuzz/<FuzzName>/ and run as regular tests.

func fuzzSeeds(f *testing.F, prefix string, texts []string) {
	for _, s := range texts {
		f.Add(s)
		f.Add(strings.ToUpper(wrap(s, 16, "\n")))
		f.Add(s[:len(s)-1])
		f.Add(s + "a")
		raw, err := b32.DecodeString(s[len(prefix):])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(raw[:len(raw)-checksumLen])) // the payload, for the sealed path
	}
	f.Add("")
	f.Add(prefix)
	f.Add(prefix + "ae")
	f.Add("\x01")
}

func FuzzParseBlobTicket(f *testing.F) {
	var texts []string
	for n := 1; n <= 3; n++ {
		tk, err := NewBlobTicket(blake3Hash("fuzz"), uint64(n)<<20, Format(n%2), samplePeers(f, n))
		if err != nil {
			f.Fatal(err)
		}
		texts = append(texts, tk.String())
	}
	fuzzSeeds(f, BlobPrefix, append(texts, goldenBlobText))
	f.Fuzz(func(t *testing.T, s string) {
		checkBlob(t, s)
		if len(s) <= MaxEncodedLen {
			checkBlob(t, seal(BlobPrefix, []byte(s)))
		}
	})
}

func checkBlob(t *testing.T, s string) {
	tk, err := ParseBlobTicket(s)
	if err != nil {
		if !errors.Is(err, ErrInvalidTicket) {
			t.Fatalf("error %v does not wrap ErrInvalidTicket", err)
		}
		return
	}
	if err := tk.Validate(); err != nil {
		t.Fatalf("accepted a ticket that does not validate: %v", err)
	}
	canon := tk.String()
	if canon != normalize(s) {
		t.Fatalf("accepted text is not canonical:\n  in %q\n out %q", s, canon)
	}
	again, err := ParseBlobTicket(canon)
	if err != nil {
		t.Fatalf("canonical form does not parse: %v", err)
	}
	if !again.Equal(tk) {
		t.Fatalf("canonical form parses to another ticket:\n%+v\n%+v", again, tk)
	}
	if v, err := Parse(s); err != nil || !v.(BlobTicket).Equal(tk) {
		t.Fatalf("Parse disagrees with ParseBlobTicket: %v", err)
	}
}

func FuzzParseDocTicket(f *testing.F) {
	ns, secret := namespaceKey(3)
	var texts []string
	for n := 0; n <= 3; n++ {
		tk, err := NewDocTicket(ns, samplePeers(f, n))
		if err != nil {
			f.Fatal(err)
		}
		w, _, err := tk.WithWriteSecret(secret)
		if err != nil {
			f.Fatal(err)
		}
		texts = append(texts, tk.String(), w.String())
	}
	fuzzSeeds(f, DocPrefix, append(texts, goldenDocText, goldenWriteText))
	f.Fuzz(func(t *testing.T, s string) {
		checkDoc(t, s)
		if len(s) <= MaxEncodedLen {
			checkDoc(t, seal(DocPrefix, []byte(s)))
		}
	})
}

func checkDoc(t *testing.T, s string) {
	tk, err := ParseDocTicket(s)
	if err != nil {
		if !errors.Is(err, ErrInvalidTicket) {
			t.Fatalf("error %v does not wrap ErrInvalidTicket", err)
		}
		return
	}
	if err := tk.Validate(); err != nil {
		t.Fatalf("accepted a ticket that does not validate: %v", err)
	}
	if tk.HasWrite() != (len(tk.WriteSecret) == WriteSecretLen) {
		t.Fatalf("write secret of %d bytes", len(tk.WriteSecret))
	}
	canon := tk.String()
	if canon != normalize(s) {
		t.Fatalf("accepted text is not canonical:\n  in %q\n out %q", s, canon)
	}
	again, err := ParseDocTicket(canon)
	if err != nil {
		t.Fatalf("canonical form does not parse: %v", err)
	}
	if !again.Equal(tk) {
		t.Fatalf("canonical form parses to another ticket:\n%+v\n%+v", again, tk)
	}
	if ro := tk.ReadOnly(); ro.HasWrite() || ro.WriteSecret != nil || (tk.HasWrite() && ro.String() == canon) {
		t.Fatal("ReadOnly kept the write secret")
	}
	if v, err := Parse(s); err != nil || !v.(DocTicket).Equal(tk) {
		t.Fatalf("Parse disagrees with ParseDocTicket: %v", err)
	}
}
