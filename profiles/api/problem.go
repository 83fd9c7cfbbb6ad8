package api

import "fmt"

// Error makes a problem document the error of the request it answers.
func (p *Problem) Error() string { return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail) }
