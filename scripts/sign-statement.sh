#!/bin/sh
# Signs a vouch statement about FILE without vouch: POSIX sh, coreutils and OpenSSL >= 3.0.
# It shows the format for CI in any language (docs/formats.md, "Statement").
#   usage: sign-statement.sh FILE SIGNER_ID PRIVATE_KEY [STATUS] > envelope.json
set -eu
file=$1 signer=$2 key=$3 status=${4:-trusted}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
digest=$(sha256sum "$file" | cut -d' ' -f1)
printf '{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"%s","digest":{"sha256":"%s"}}],"predicateType":"urn:vouch:status:v1","predicate":{"status":"%s","signer":"%s","issuedAt":"%s"}}' \
  "$(basename "$file")" "$digest" "$status" "$signer" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$work/payload"
type=application/vnd.in-toto+json
# DSSE PAE: "DSSEv1 <len type> <type> <len payload> <payload>", lengths in bytes.
printf 'DSSEv1 %d %s %d ' "${#type}" "$type" "$(wc -c <"$work/payload")" | cat - "$work/payload" >"$work/pae"
sig=$(openssl pkeyutl -sign -inkey "$key" -rawin -in "$work/pae" | base64 | tr -d '\n')
printf '{"payloadType":"%s","payload":"%s","signatures":[{"sig":"%s"}]}\n' \
  "$type" "$(base64 <"$work/payload" | tr -d '\n')" "$sig"
