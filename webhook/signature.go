package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries a Sender's signature of its body when it has a
// key (WithSigningKey):
//
//	Servekit-Signature: t=1718000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd
//
// t is the attempt's time in Unix seconds and v1 the lower-case hex of
// HMAC-SHA256(key, t + "." + body): the timestamp is signed with the body,
// so a receiver that checks it (Verify, within a tolerance) turns
// away a delivery replayed later, and one that remembers the
// Idempotency-Key of what it took within that tolerance turns away a
// replay inside it too. Every attempt is signed afresh. The format is
// Stripe's, so receivers written for it need only the header's name.
const SignatureHeader = "Servekit-Signature"

// DefaultSignatureTolerance is how far a signature's time may be from the
// receiver's clock in Verify: five minutes, as Stripe and Slack
// allow, for clock skew and slow networks.
const DefaultSignatureTolerance = 5 * time.Minute

// ErrSignature is wrapped by Verify's errors.
var ErrSignature = errors.New("webhook: signature")

// WithSigningKey signs every delivery with key (HMAC-SHA256, see
// SignatureHeader). Share the key with the receiver as a secret; an empty
// key is refused.
func WithSigningKey(key []byte) Option {
	return optionFunc(func(w *Sender) { w.key = append([]byte{}, key...) })
}

// Sign returns the SignatureHeader value of body signed with key at t.
func Sign(key []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(key, ts, body)
}

func mac(key []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks a SignatureHeader value against the body received:
// one of its v1 signatures must be body's under key (compared in constant
// time), and its time within tolerance of now (0: the default). It is what
// a receiver runs before trusting an alert; the error says why it failed
// and wraps ErrSignature.
func Verify(key []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultSignatureTolerance
	}
	var ts string
	var sigs []string
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("%w: want t=<unix seconds>,v1=<hex>, got %q", ErrSignature, header)
	}
	if d := now.Sub(time.Unix(secs, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed at %d, %v from now: outside the tolerance of %v (a replay, or a clock off)", ErrSignature, secs, d.Round(time.Second), tolerance)
	}
	want := []byte(mac(key, ts, body))
	for _, s := range sigs {
		if hmac.Equal([]byte(s), want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no signature matches the body", ErrSignature)
}
