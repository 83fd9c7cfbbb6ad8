package api

import (
	"fmt"
	"strings"
)

// Error makes a problem document the error of the request it answers,
// with its field errors: `422 Unprocessable Entity: the rule is not
// valid: rule.target.profile: "x": no such profile`.
func (p *Problem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s: %s", p.Status, p.Title, p.Detail)
	for i, f := range p.Errors {
		sep := "; "
		if i == 0 {
			sep = ": "
		}
		b.WriteString(sep + f.Field + ": " + f.Message)
	}
	return b.String()
}
