# shellcheck shell=sh
# kerf on the appliance: the operator API speaks TLS on every address
# (listen.http is 0.0.0.0:7080); kerf pins its certificate by
# /var/lib/kerf/api-fingerprint.
export KERF_API=https://127.0.0.1:7080
