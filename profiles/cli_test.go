package profiles

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kerf-edge/kerf/profiles/api"
	"github.com/kerf-edge/kerf/profiles/client"
)

// TestCLI runs the operator commands of the kerf CLI against the server.
func TestCLI(t *testing.T) {
	e := newEnv(t)
	ts := httptest.NewServer(e.srv)
	defer ts.Close()
	c := client.New(ts.URL, e.admin)
	ctx := context.Background()
	run := func(args ...string) (string, error) {
		var b strings.Builder
		err := client.RunCLI(ctx, c, args, &b)
		return b.String(), err
	}
	file := filepath.Join(t.TempDir(), "p.json")
	bundle := filepath.Join(t.TempDir(), "carol.json")
	os.WriteFile(file, []byte(`{"name":"half","gpus":[{"gpu":0,"slices":[{"tenant":"alice","memoryFraction":0.5,"computeShare":0.5}]}]}`), 0o600)
	ruleFile := filepath.Join(t.TempDir(), "hot.yaml")
	os.WriteFile(ruleFile, []byte("# a rule as in ingest.rules\nname: hot\nwhen: temp > 80\nprofile: half\n"), 0o600)
	shown := filepath.Join(t.TempDir(), "shown.json")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"profiles", "put", file}, "stored profile half"},
		{[]string{"profiles", "list"}, "half"},
		{[]string{"profiles", "show", "half"}, `"memoryFraction": 0.5`},
		{[]string{"profiles", "validate", "half"}, "fits this node"},
		{[]string{"profiles", "apply", "--dry-run", "half"}, "would change 1 slice(s)"},
		{[]string{"profiles", "apply", "half"}, "changed 1 slice(s)"},
		{[]string{"rules", "validate", ruleFile}, "rule hot is valid"},
		{[]string{"rules", "list"}, "NAME"},
		{[]string{"rules", "put", ruleFile}, "stored rule hot (active)"},
		{[]string{"rules", "list"}, "hot   api     active"},
		{[]string{"rules", "show", "hot"}, `"when": "temp`},
		{[]string{"slices"}, "alice"},
		{[]string{"smi"}, "GPU 0  Kerf emulated GPU"},
		{[]string{"tokens", "issue", "--memory", "1KiB", "--out", bundle, "carol"}, "issued a token for tenant carol; bundle written to " + bundle},
		{[]string{"tokens", "issue", "--out", bundle, "carol"}, "replaced the token of tenant carol (1 earlier token(s) revoked"},
		{[]string{"tokens", "list"}, "carol"},
		{[]string{"tokens", "revoke", "carol"}, "revoked 1 token(s) of tenant carol"},
	} {
		out, err := run(tc.args...)
		if err != nil || !strings.Contains(out, tc.want) {
			t.Errorf("%v: %v\n%s", tc.args, err, out)
		}
	}
	// What show prints, put takes back.
	out, err := run("rules", "show", "hot")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(shown, []byte(out), 0o600)
	if out, err := run("rules", "put", shown); err != nil || !strings.Contains(out, "stored rule hot") {
		t.Errorf("put what show printed: %v %s", err, out)
	}
	// A refusal names the field at fault.
	os.WriteFile(ruleFile, []byte("name: cold\nwhen: 3\nprofile: nope\n"), 0o600)
	_, err = run("rules", "validate", ruleFile)
	if err == nil || !strings.Contains(err.Error(), "422") || !strings.Contains(err.Error(), `rule.profile: "nope": no such profile`) {
		t.Errorf("validate a bad rule: %v", err)
	}
	if out, err := run("rules", "delete", "hot"); err != nil || !strings.Contains(out, "deleted rule hot") {
		t.Errorf("delete: %v %s", err, out)
	}
	_, err = run("profiles", "show", "nope")
	var p *api.Problem
	if !errors.As(err, &p) || p.Status != 404 {
		t.Errorf("missing profile: %v", err)
	}
	c.Token = e.tenant
	if _, err := run("slices"); !errors.As(err, &p) || p.Status != 403 {
		t.Errorf("tenant token: %v", err)
	}
}
