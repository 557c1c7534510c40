#!/usr/bin/env bash
# Makes a throwaway CA and certificates for the TLS tests, into DIR (nothing here is shipped):
#   ca.pem/ca.key          the test CA
#   server.pem/server.key  signed by it, for DNS:localhost and IP:127.0.0.1
#   other.pem/other.key    signed by it, for DNS:elsewhere.invalid (a wrong host name)
#   client.pem/client.key  signed by it, a client certificate (mTLS)
#   client-enc.key         client.key encrypted with the passphrase in $KEY_PASSPHRASE (if set)
#   rogue-ca.pem           an unrelated CA (a wrong CA)
# Usage: scripts/tls-certs.sh DIR
set -euo pipefail
D=$1
mkdir -p "$D"
cd "$D"
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; }
ca() { # name cn
  ec "$1.key"
  openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 2 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
leaf() { # name cn san usage
  ec "$1.key"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\n' "$3" "$4" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" -days 2 -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
ca ca spate-test-ca
ca rogue-ca spate-rogue-ca
leaf server localhost "DNS:localhost,IP:127.0.0.1" serverAuth
leaf other elsewhere.invalid "DNS:elsewhere.invalid" serverAuth
leaf client spate-client "DNS:spate-client" clientAuth
if [ -n "${KEY_PASSPHRASE:-}" ]; then
  openssl pkey -in client.key -aes256 -passout env:KEY_PASSPHRASE -out client-enc.key
fi
chmod 600 ./*.key
