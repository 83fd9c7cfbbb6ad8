package auth

import (
	"fmt"
	"regexp"
	"strconv"
)

// TenantNamePattern is the one rule for tenant names: 1 to 63 of a-z, 0-9
// and '-', starting with a letter or digit (the characters of a DNS label,
// lower case). Names end up in logs, tables, file names and metric labels,
// so they carry no spaces, slashes, control, escape or bidi characters.
// openapi.yaml states the same pattern wherever a tenant name enters the
// API; a test in package profiles keeps the two equal.
const TenantNamePattern = `^[a-z0-9][a-z0-9-]{0,62}$`

var tenantNameRE = regexp.MustCompile(TenantNamePattern)

// CheckTenantName reports whether name follows TenantNamePattern. The
// error quotes the name, so printing it is safe.
func CheckTenantName(name string) error {
	if !tenantNameRE.MatchString(name) {
		return fmt.Errorf("tenant name %q: want 1 to 63 of a-z, 0-9 and '-', starting with a letter or digit", name)
	}
	return nil
}

// PrintableName is a tenant name as a terminal or log should show it: as
// is when it follows TenantNamePattern, quoted with escapes otherwise (a
// name written into the token file by hand, or before the rule).
func PrintableName(name string) string {
	if CheckTenantName(name) == nil {
		return name
	}
	return strconv.Quote(name)
}
