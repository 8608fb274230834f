#!/usr/bin/env python3
"""jwt_mint.py: keys, JWKS and JWTs for tests, made with the openssl CLI only.

  jwt_mint.py keygen rs256|es256 KEY.pem          a new private key (RSA 2048 / EC P-256)
  jwt_mint.py jwks KID=KEY.pem[,...] > jwks.json   the public keys as a JWKS (alg from the key)
  jwt_mint.py token KEY.pem KID CLAIMS-JSON        a compact JWS on stdout
        CLAIMS-JSON values "@+N" / "@-N" are now + N / now - N seconds (exp, nbf, iat).
        Env: JWT_ALG=none|HS256 (a token with that alg and an empty or junk signature),
             JWT_CORRUPT=1 (one byte of the signature changed).

RS256 is RSASSA-PKCS1-v1_5 with SHA-256 (openssl dgst -sign); ES256 is ECDSA P-256 with
SHA-256, its DER signature turned into R || S (32 bytes each) as RFC 7518 section 3.4 says.
"""
import base64
import json
import re
import subprocess
import sys
import time


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def openssl(*args, data=None):
    return subprocess.run(["openssl", *args], input=data, check=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE).stdout


def key_type(path):
    text = openssl("pkey", "-in", path, "-noout", "-text").decode()
    return "EC" if "ASN1 OID: prime256v1" in text or "NIST CURVE: P-256" in text else "RSA"


def hexblock(text, label):
    """The hex bytes printed under `label` by openssl -text (colon separated lines)."""
    m = re.search(label + r"[^\n]*\n((?:\s+[0-9a-f:]+\n)+)", text)
    return bytes.fromhex(re.sub(r"[\s:]", "", m.group(1)))


def jwk(kid, path):
    text = openssl("pkey", "-in", path, "-noout", "-text_pub").decode()
    if key_type(path) == "EC":
        pub = hexblock(text, "pub:")
        assert pub[0] == 4 and len(pub) == 65
        return {"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
                "x": b64url(pub[1:33]), "y": b64url(pub[33:])}
    n = hexblock(text, "Modulus:").lstrip(b"\x00")
    e = int(re.search(r"Exponent: (\d+)", text).group(1))
    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64url(n),
            "e": b64url(e.to_bytes((e.bit_length() + 7) // 8, "big"))}


def der_to_raw(der):
    """ECDSA-Sig-Value (SEQUENCE of two INTEGERs) to R || S, 32 bytes each."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 3
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        v = der[i + 2:i + 2 + n].lstrip(b"\x00")
        out += v.rjust(32, b"\x00")
        i += 2 + n
    return out


def resolve(claims):
    now = int(time.time())
    for k, v in list(claims.items()):
        if isinstance(v, str) and re.fullmatch(r"@[+-]\d+", v):
            claims[k] = now + int(v[1:])
    return claims


def token(path, kid, claims_text):
    import os
    alg = os.environ.get("JWT_ALG") or ("ES256" if key_type(path) == "EC" else "RS256")
    header = {"alg": alg, "typ": "JWT", "kid": kid}
    claims = resolve(json.loads(claims_text))
    signing = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
               b64url(json.dumps(claims, separators=(",", ":")).encode()))
    if alg == "none":
        return signing + "."
    if alg not in ("RS256", "ES256"):
        return signing + "." + b64url(b"not a real signature for " + alg.encode())
    sig = openssl("dgst", "-sha256", "-sign", path, data=signing.encode())
    if alg == "ES256":
        sig = der_to_raw(sig)
    if os.environ.get("JWT_CORRUPT"):
        sig = bytes([sig[0] ^ 1]) + sig[1:]
    return signing + "." + b64url(sig)


def main(argv):
    if len(argv) == 3 and argv[0] == "keygen":
        if argv[1] == "rs256":
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", argv[2])
        else:
            openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-out", argv[2])
        return 0
    if len(argv) >= 2 and argv[0] == "jwks":
        keys = [jwk(*a.split("=", 1)) for a in argv[1:]]
        print(json.dumps({"keys": keys}, indent=1))
        return 0
    if len(argv) == 4 and argv[0] == "token":
        print(token(argv[1], argv[2], argv[3]))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
