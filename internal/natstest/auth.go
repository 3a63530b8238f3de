package natstest

import (
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// OnPort returns server options that listen on port (Run picks a random one
// otherwise), e.g. a port a client was told to dial before the server starts.
func OnPort(port int) func(*server.Options) {
	return func(o *server.Options) { o.Port = port }
}

// UserPassword returns server options that admit only user with password.
func UserPassword(user, password string) func(*server.Options) {
	return func(o *server.Options) { o.Username, o.Password = user, password }
}

// Token returns server options that admit only clients presenting token.
func Token(token string) func(*server.Options) {
	return func(o *server.Options) { o.Authorization = token }
}

// NKeyUser is a user nkey whose seed is written to a file.
type NKeyUser struct {
	// Public is the user's public key.
	Public string
	// Seed is the user's seed, the secret a client signs with.
	Seed []byte
	// SeedFile is the path of the file that holds Seed.
	SeedFile string
}

// NewNKeyUser creates a user nkey and writes its seed to a file under t.TempDir().
func NewNKeyUser(t testing.TB) NKeyUser {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	return NKeyUser{Public: pub, Seed: seed, SeedFile: WriteFile(t, "user.nk", seed)}
}

// ServerOptions returns server options that admit only u.
func (u NKeyUser) ServerOptions() func(*server.Options) {
	return func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: u.Public}} }
}

// Operator is an operator-mode (JWT) setup: an operator with one account and a
// user of that account whose credentials are written to a creds file.
type Operator struct {
	// CredsFile is the path of the user's creds file (JWT and seed).
	CredsFile string

	claims   *jwt.OperatorClaims
	resolver *server.MemAccResolver
}

// NewOperator creates the operator, the account and the user, and writes the
// user's creds file under t.TempDir().
func NewOperator(t testing.TB) Operator {
	t.Helper()
	okp, err := nkeys.CreateOperator()
	if err != nil {
		t.Fatal(err)
	}
	opub, err := okp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	oc := jwt.NewOperatorClaims(opub)
	if _, err := oc.Encode(okp); err != nil {
		t.Fatal(err)
	}
	akp, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	apub, err := akp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	ajwt, err := jwt.NewAccountClaims(apub).Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	ukp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	upub, err := ukp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	ujwt, err := jwt.NewUserClaims(upub).Encode(akp)
	if err != nil {
		t.Fatal(err)
	}
	useed, err := ukp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	creds, err := jwt.FormatUserConfig(ujwt, useed)
	if err != nil {
		t.Fatal(err)
	}
	resolver := &server.MemAccResolver{}
	if err := resolver.Store(apub, ajwt); err != nil {
		t.Fatal(err)
	}
	return Operator{CredsFile: WriteFile(t, "user.creds", creds), claims: oc, resolver: resolver}
}

// ServerOptions returns server options for operator mode that trust op's
// operator and resolve its account from memory.
func (op Operator) ServerOptions() func(*server.Options) {
	return func(o *server.Options) {
		o.TrustedOperators = []*jwt.OperatorClaims{op.claims}
		o.AccountResolver = op.resolver
	}
}

// Credentials are the generated credentials a test that covers every kind of
// authentication needs: a user nkey, an operator-mode creds file and a TLS PKI
// for client certificates.
type Credentials struct {
	// NKey is a user nkey with its seed file.
	NKey NKeyUser
	// Operator is an operator-mode setup with a creds file.
	Operator Operator
	// PKI is a CA with server and client certificates.
	PKI PKI
}

// NewCredentials creates all of Credentials under t.TempDir().
func NewCredentials(t testing.TB) Credentials {
	t.Helper()
	return Credentials{NKey: NewNKeyUser(t), Operator: NewOperator(t), PKI: NewPKI(t)}
}
