#!/bin/sh
# Runs every Go fuzz target in the module for $FUZZTIME (default 3s) each.
set -eu
cd "$(dirname "$0")/.."
t=${FUZZTIME:-3s}
grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
	pkg=./$(dirname "${f#./}")
	for fz in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$f"); do
		echo "fuzz $pkg $fz ($t)"
		go test -run '^$' -fuzz "^$fz\$" -fuzztime "$t" "$pkg" >/tmp/kerf-fuzz.log 2>&1 || { cat /tmp/kerf-fuzz.log; exit 1; }
	done
done
