// Package auth owns tenant identity: the bearer tokens kerfd issues, the
// store that checks and revokes them, and the token bundle a tenant carries
// to reach the appliance. It knows nothing of transports, GPUs or the REST
// API, so every side (kerfd, the shim, the CLI) can use it without linking
// the others.
package auth
