#!/bin/sh
# How the TLS fixtures here were made (Java 17's keytool, openssl 3), valid for
# 100 years: a CA, the server's key and chain (SAN localhost, 127.0.0.1) as
# JKS, PKCS12 and PEM, a JKS trust store holding the CA, a client signed by
# the CA (CN=client,O=zk-rs) and a self-signed client nobody trusts
# (CN=rogue,O=elsewhere). Password: apassword. Run in an empty directory.
set -e
P=apassword
kt() { keytool "$@" -storepass $P 2>/dev/null; }
kt -genkeypair -alias ca -keyalg RSA -keysize 2048 -dname "CN=Test CA,O=zk-rs" -ext bc:c \
   -validity 36500 -keystore ca.p12 -storetype PKCS12 -keypass $P
kt -exportcert -alias ca -keystore ca.p12 -rfc -file ca.pem
signed() { # alias dname store [ext]
  kt -genkeypair -alias "$1" -keyalg RSA -keysize 2048 -dname "$2" -validity 36500 \
     -keystore "$3" -storetype JKS -keypass $P
  kt -certreq -alias "$1" -keystore "$3" | kt -gencert -alias ca -keystore ca.p12 \
     ${4:+-ext "$4"} -validity 36500 -rfc > "$1.chain.pem"
  cat ca.pem >> "$1.chain.pem"
  kt -importcert -noprompt -alias ca -file ca.pem -keystore "$3"
  kt -importcert -alias "$1" -file "$1.chain.pem" -keystore "$3"
}
signed server "CN=localhost,OU=Servers,O=zk-rs" server.jks SAN=dns:localhost,ip:127.0.0.1
signed client "CN=client,O=zk-rs" client.jks
kt -importkeystore -srckeystore server.jks -srcstorepass $P -destkeystore server.p12 \
   -deststoretype PKCS12 -deststorepass $P -srcalias server -destkeypass $P
openssl pkcs12 -in server.p12 -passin pass:$P -nodes -out all.pem
openssl pkey -in all.pem > server-key.pem
openssl crl2pkcs7 -nocrl -certfile all.pem | openssl pkcs7 -print_certs \
  | grep -v '^subject\|^issuer\|^$' >> server-key.pem
kt -importcert -noprompt -alias ca -file ca.pem -keystore truststore.jks -storetype JKS
kt -genkeypair -alias rogue -keyalg RSA -keysize 2048 -dname "CN=rogue,O=elsewhere" \
   -validity 36500 -keystore rogue.jks -storetype JKS -keypass $P
rm -f ca.p12 all.pem server.chain.pem client.chain.pem
# Version-1 certificates (no extensions), as kazoo's test harness makes its
# server's and client's: v1-server.pem (key, CN=localhost, the CA) and
# v1-client.pem (key, "O=zk-rs, CN=v1 client"), both signed by the CA; made
# before the CA key above is removed:
#   openssl pkcs12 -in ca.p12 -passin pass:$P -nodes | openssl pkey > ca-key.pem
#   openssl req -new -newkey rsa:2048 -nodes -keyout k.pem -subj "/CN=localhost" -out r.csr
#   openssl x509 -req -in r.csr -CA ca.pem -CAkey ca-key.pem -set_serial 8 -days 36500 \
#     -sha256 -out c.pem && cat k.pem c.pem ca.pem > v1-server.pem
#   (and the same with -subj "/O=zk-rs/CN=v1 client", serial 7, for v1-client.pem)
# rogue.pem: rogue.jks's key and certificate as PEM (keytool -importkeystore to
# PKCS12, then openssl pkcs12 -nodes, key and certificate).
