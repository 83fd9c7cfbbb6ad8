package auth

// Tenant is an authenticated caller and the limits attached to its token.
type Tenant struct {
	ID   string
	Name string
	// MemLimit caps each session's device memory; 0 means the device's.
	MemLimit uint64
}

// Authenticator checks a bearer token.
type Authenticator interface {
	Authenticate(token []byte) (Tenant, error)
}
