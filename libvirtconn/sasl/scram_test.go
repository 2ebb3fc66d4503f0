package sasl

import (
	"testing"

	"github.com/xdg-go/scram"
)

// TestSCRAMSHA256RFC7677: the exchange of RFC 7677 §3 (user "user",
// password "pencil"), through the Client interface.
func TestSCRAMSHA256RFC7677(t *testing.T) {
	const (
		clientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
		serverFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
		clientFinal = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
		serverFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
	)
	start := func() *scramClient {
		c, err := scram.SHA256.NewClient("user", "pencil", "")
		if err != nil {
			t.Fatal(err)
		}
		c = c.WithNonceGenerator(func() string { return "rOprNGfwEbeRWgbNEkqO" })
		return &scramClient{name: "SCRAM-SHA-256", conv: c.NewConversation()}
	}
	s := start()
	if first, err := s.Start(); err != nil || string(first) != clientFirst {
		t.Fatalf("client-first %q, %v", first, err)
	}
	if final, err := s.Step([]byte(serverFirst)); err != nil || string(final) != clientFinal {
		t.Fatalf("client-final %q, %v", final, err)
	}
	if s.Done() {
		t.Fatal("done before the server's signature")
	}
	if out, err := s.Step([]byte(serverFinal)); err != nil || out != nil || !s.Done() || s.SSF() != 0 {
		t.Fatalf("server-final: %q, %v, done=%v", out, err, s.Done())
	}

	// A server that does not know the password cannot sign.
	s = start()
	s.Start()
	s.Step([]byte(serverFirst))
	if _, err := s.Step([]byte("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")); err == nil || s.Done() {
		t.Fatal("a wrong server signature was accepted")
	}
}
