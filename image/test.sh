#!/usr/bin/env bash
# Boots the appliance image in qemu (TCG: KVM crashes or hangs on our build
# machines) and checks it from the host through port forwards:
#   - the operator API speaks TLS only (it listens beyond loopback), with
#     the certificate whose fingerprint first boot shows on the console;
#     /healthz answers, and /readyz says what serves (the emulated GPU here);
#   - first boot shows the admin token once on the console (never the
#     journal), the QUIC, broker and API fingerprints, and no tenant token;
#     a tenant token issued through the REST API with it makes the host's
#     bundle;
#   - a tenant on the host reaches the emulated GPU over QUIC (a UDP
#     forward): `kerf info`, and the shim's vector add through `kerf run`
#     when bin/libcuda.so.1 and the test program are built;
#   - the broker refuses a device without a login; a device added with
#     `kerf devices add` (the API pinned by its fingerprint) publishes a load
#     signal over MQTT with TLS (the broker's certificate checked against
#     the console's fingerprint), which crosses a rule posted through the
#     REST API, and the re-slice shows in the API's events and /readyz.
# Takes about 10 minutes on 2 cores. Needs: qemu-system-x86_64, OVMF, curl,
# openssl, mosquitto_pub.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
img=${IMAGE:-$top/_build/image/kerf.img}
run=${IMAGE_TEST_DIR:-$(mktemp -d /tmp/kerf-image-test.XXXXXX)}
http=${HTTP_PORT:-17080}
quic=${QUIC_PORT:-17443}
mqtt=${MQTT_PORT:-11883}
boot_wait=${BOOT_WAIT:-900}
ovmf_code=/usr/share/OVMF/OVMF_CODE_4M.fd
ovmf_vars=/usr/share/OVMF/OVMF_VARS_4M.fd

die() { echo "image-test: FAIL: $*" >&2; exit 1; }
step() { echo "image-test: $*"; }
[ -f "$img" ] || die "no image at $img: run make image"
for t in qemu-system-x86_64 curl openssl; do command -v "$t" >/dev/null || die "$t is missing"; done
[ -f "$ovmf_code" ] || die "OVMF is missing (apt-get install ovmf)"
mkdir -p "$run"
cp "$ovmf_vars" "$run/vars.fd"
console=$run/console.log

step "booting $img under TCG (console: $console)"
qemu-system-x86_64 -machine q35,accel=tcg -cpu max -m 2048 -smp 2 \
	-drive if=pflash,format=raw,readonly=on,file="$ovmf_code" \
	-drive if=pflash,format=raw,file="$run/vars.fd" \
	-drive file="$img",format=raw,if=virtio,snapshot=on \
	-netdev user,id=n0,hostfwd=tcp:127.0.0.1:$http-:7080,hostfwd=udp:127.0.0.1:$quic-:7443,hostfwd=tcp:127.0.0.1:$mqtt-:1883 \
	-device virtio-net-pci,netdev=n0 \
	-display none -serial file:"$console" -pidfile "$run/qemu.pid" -daemonize
trap 'kill "$(cat "$run/qemu.pid")" 2>/dev/null || true' EXIT

# The API's and the broker's certificates are self-signed: curl and
# mosquitto_pub trust the one each serves once its fingerprint matches the
# console's.
api_url=https://localhost:$http
step "waiting for /healthz (up to ${boot_wait}s)"
start=$(date +%s)
until curl -fsSk --max-time 5 "$api_url/healthz" >/dev/null 2>&1; do
	[ $(($(date +%s) - start)) -lt "$boot_wait" ] || { tail -30 "$console"; die "kerfd did not come up"; }
	sleep 5
done
step "kerfd answered after $(($(date +%s) - start))s"
curl -fsS --max-time 5 "http://127.0.0.1:$http/healthz" >/dev/null 2>&1 && die "the operator API answers plain HTTP beyond loopback"
ready=$(curl -fsSk "$api_url/readyz")
echo "$ready"
echo "$ready" | grep -q '"emulated":true' || die "readyz does not report the emulated GPU"

step "reading the admin token and the fingerprint from the console"
# kerfd init writes to the console only, with no journal prefix.
plain=$run/firstboot.txt
tr -d '\r' <"$console" >"$plain"
admin=$(sed -nE 's/^.*operator API admin token, shown once: (kerfadm_[A-Za-z0-9_-]+).*/\1/p' "$plain" | head -1)
fp=$(sed -nE 's/^.*kerfd certificate fingerprint: (sha256:[0-9a-f]{64}).*/\1/p' "$plain" | head -1)
[ -n "$admin" ] || die "no admin token on the console"
[ -n "$fp" ] || die "no certificate fingerprint on the console"
api_fp=$(sed -nE 's/^.*operator API certificate fingerprint: (sha256:[0-9a-f]{64}).*/\1/p' "$plain" | head -1)
broker_fp=$(sed -nE 's/^.*broker certificate fingerprint: (sha256:[0-9a-f]{64}).*/\1/p' "$plain" | head -1)
[ -n "$api_fp" ] || die "no operator API certificate fingerprint on the console"
[ -n "$broker_fp" ] || die "no broker certificate fingerprint on the console"
# served_cert PORT FILE: the certificate served on PORT, to FILE; prints
# its fingerprint.
served_cert() {
	openssl s_client -connect "127.0.0.1:$1" -servername localhost </dev/null 2>/dev/null | openssl x509 -out "$2" ||
		die "no TLS on port $1"
	echo "sha256:$(openssl x509 -in "$2" -outform DER | sha256sum | cut -d' ' -f1)"
}
[ "$(served_cert "$http" "$run/api.pem")" = "$api_fp" ] || die "the operator API serves another certificate than the console's $api_fp"
grep -q 'first tenant bundle (tenant default): /var/lib/kerf/bundles/default.json' "$plain" || die "the console does not say where the first bundle is"
! grep -q 'kerf_' "$plain" || die "a tenant token appeared on the console"
api() { curl -fsS --cacert "$run/api.pem" -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' "$@"; }
issued=$(api -X POST "$api_url/v1/tokens" -d '{"tenant":"image-test"}') || die "issuing a tenant token through the REST API failed"
tok=$(echo "$issued" | sed -nE 's/.*"token": *"(kerf_[A-Za-z0-9_-]+)".*/\1/p')
[ -n "$tok" ] || die "no token in the API's answer"
bundle=$run/bundle.json
(umask 077 && printf '{"tenant": "image-test", "token": "%s", "quic": "127.0.0.1:%s", "fingerprint": "%s"}\n' "$tok" "$quic" "$fp" >"$bundle")

step "a tenant on the host reaches the emulated GPU over QUIC"
"$top/bin/kerf" info --token "$bundle" --via quic | tee "$run/info.txt"
grep -q "emulated *true" "$run/info.txt" || die "kerf info did not reach the emulated GPU"

vadd=$run/vadd
if [ -f "$top/bin/libcuda.so.1" ] && command -v gcc >/dev/null; then
	gcc -O1 -I"$top/abi/include" -I"$top/intercept/testdata" -o "$vadd" "$top/intercept/testdata/vadd.c" \
		-L"$top/bin" -l:libcuda.so.1 -lpthread -lm || die "building the vector add"
fi
if [ -x "$vadd" ]; then
	step "vector add through kerf run over QUIC"
	"$top/bin/kerf" run --token "$bundle" --via quic --server "127.0.0.1:$quic" -n 1 -p 0.25 -- \
		"$vadd" "$top/gpu/emu/kernels/vadd.ptx" || die "vector add through kerf run failed"
else
	die "no vector add to run: make build (for bin/libcuda.so.1) and install gcc"
fi

command -v mosquitto_pub >/dev/null || die "mosquitto_pub is missing (apt-get install mosquitto-clients)"
step "a policy rule through the REST API"
api -X POST "$api_url/v1/rules" -d '{"name":"camera-queue","rule":{"name":"camera-queue",
	"trigger":{"source":"*/*/cam-*","metric":"queue_depth","aggregate":"max","window":"30s","threshold":100,"activationThreshold":20},
	"target":{"profile":"whole","idleProfile":"mixed-2x25-5x10"}}}' >/dev/null || die "posting the rule failed"
step "the broker speaks TLS with the console's certificate and wants a login"
[ "$(served_cert "$mqtt" "$run/broker.pem")" = "$broker_fp" ] || die "the broker serves another certificate than the console's $broker_fp"
signal='[{"bn":"urn:dev:cam-07:","n":"queue_depth","u":"count","v":120}]'
# --insecure: the name is not checked (127.0.0.1 is not in the certificate);
# the certificate still is, against the one whose fingerprint was checked.
mqtt_pub() { mosquitto_pub -h 127.0.0.1 -p "$mqtt" --cafile "$run/broker.pem" --insecure -q 1 -t edge/v1/default/kerf/load/cam-07 -m "$signal" "$@"; }
mqtt_pub 2>/dev/null && die "the broker took a device without a login"
step "a device added with kerf devices add (the API pinned by fingerprint)"
KERF_API=$api_url KERF_API_FINGERPRINT=sha256:$(printf '%063d1' 0) KERF_ADMIN_TOKEN=$admin "$top/bin/kerf" devices list >/dev/null 2>&1 &&
	die "kerf trusted an operator API certificate with another fingerprint"
added=$(KERF_API=$api_url KERF_API_FINGERPRINT=$api_fp KERF_ADMIN_TOKEN=$admin "$top/bin/kerf" devices add cam-07) || die "kerf devices add failed"
password=$(echo "$added" | sed -nE 's/^password (.*)$/\1/p')
[ -n "$password" ] || die "kerf devices add showed no password"
step "a load signal over MQTT with TLS re-slices the node"
for _ in $(seq 1 60); do
	mqtt_pub -u cam-07 -P "$password" || die "MQTT publish failed"
	api "$api_url/v1/events" >"$run/events.json" || die "reading events failed"
	grep -q '"kind":"reslice"' "$run/events.json" && grep -q camera-queue "$run/events.json" && break
	sleep 2
done
grep -q camera-queue "$run/events.json" || die "the load signal left no re-slice in the API's events"
curl -fsS --cacert "$run/api.pem" "$api_url/readyz" | grep -q '"profile":"whole"' || die "readyz does not show the new layout"
step "PASS"
