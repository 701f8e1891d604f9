"""A stand-in for Google's OAuth2 token endpoint and Cloud KMS REST API.

No local Cloud KMS exists, so this server checks what the worker sends the
way the documentation describes it and answers with signatures made by
keys of its own:

- POST /token: form grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer
  and assertion=<JWT>; the JWT must be RS256, verify with the service
  account's public key, and claim iss=client_email, the cloudkms scope,
  aud=token_uri, exp - iat <= 3600 around now.
- GET /v1/<key version>/publicKey with a token it issued.
- POST /v1/<key version>:asymmetricSign with {"digest": {"<hash>": b64}}
  of the key's hash and length: {"signature": b64}.
- GET /stats: how many tokens and signatures it handed out.
- POST /revoke: every token issued so far stops working (401), as an
  expired or revoked token does.

usage: gcp_kms_stand_in.py <port> <service account key file to write>
Prints one JSON line once listening: {"<key version name>": "<public PEM>"}.
"""
import base64
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

SCOPE = "https://www.googleapis.com/auth/cloudkms"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
EMAIL = "rstuf-worker@test-project.iam.gserviceaccount.com"
RING = "projects/test-project/locations/global/keyRings/rstuf/cryptoKeys"


def pss(h):
    return padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size)


def key_version(key_name, algorithm, private, hash_alg, sign):
    return f"{RING}/{key_name}/cryptoKeyVersions/1", {
        "algorithm": algorithm,
        "private": private,
        "hash": hash_alg,
        "sign": sign,
    }


def make_keys():
    p256 = ec.generate_private_key(ec.SECP256R1())
    p384 = ec.generate_private_key(ec.SECP384R1())
    rsa3072 = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    rsa2048 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return dict([
        key_version("p256", "EC_SIGN_P256_SHA256", p256, hashes.SHA256(),
                    lambda k, d, h: k.sign(d, ec.ECDSA(Prehashed(h)))),
        key_version("p384", "EC_SIGN_P384_SHA384", p384, hashes.SHA384(),
                    lambda k, d, h: k.sign(d, ec.ECDSA(Prehashed(h)))),
        key_version("rsa-pss", "RSA_SIGN_PSS_3072_SHA256", rsa3072, hashes.SHA256(),
                    lambda k, d, h: k.sign(d, pss(h), Prehashed(h))),
        key_version("rsa-pkcs1", "RSA_SIGN_PKCS1_2048_SHA256", rsa2048, hashes.SHA256(),
                    lambda k, d, h: k.sign(d, padding.PKCS1v15(), Prehashed(h))),
    ])


def public_pem(private):
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Refused(Exception):
    def __init__(self, code, body):
        super().__init__(body)
        self.code = code
        self.body = body


def api_error(code, status, message):
    return Refused(code, {"error": {"code": code, "status": status, "message": message}})


class State:
    def __init__(self, token_uri):
        self.account = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.token_uri = token_uri
        self.keys = make_keys()
        self.tokens = set()
        self.revoked = set()
        self.signatures = 0
        self.lock = threading.Lock()

    def key_file(self):
        private = self.account.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "type": "service_account",
            "project_id": "test-project",
            "private_key_id": "0123456789abcdef",
            "private_key": private,
            "client_email": EMAIL,
            "client_id": "1",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri,
        }

    def token(self, form):
        if form.get("grant_type") != [GRANT]:
            raise Refused(400, {"error": "unsupported_grant_type",
                                "error_description": f"grant_type {form.get('grant_type')}"})
        try:
            self.check_assertion(form["assertion"][0])
        except Exception as e:  # every flaw of the JWT is the client's
            raise Refused(400, {"error": "invalid_grant", "error_description": repr(e)})
        with self.lock:
            token = f"token-{len(self.tokens) + len(self.revoked) + 1}"
            self.tokens.add(token)
        return {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def check_assertion(self, jwt):
        header, claims, signature = jwt.split(".")
        assert json.loads(b64url_decode(header)) == {"alg": "RS256", "typ": "JWT"}, header
        self.account.public_key().verify(
            b64url_decode(signature), f"{header}.{claims}".encode(),
            padding.PKCS1v15(), hashes.SHA256(),
        )
        c = json.loads(b64url_decode(claims))
        assert c["iss"] == EMAIL, c
        assert c["scope"] == SCOPE, c
        assert c["aud"] == self.token_uri, c
        assert 0 < c["exp"] - c["iat"] <= 3600, c
        assert abs(c["iat"] - time.time()) < 300, c

    def authorise(self, header):
        if not header or not header.startswith("Bearer ") or header[7:] not in self.tokens:
            raise api_error(401, "UNAUTHENTICATED", f"no valid token: {header!r}")

    def key(self, name):
        if name not in self.keys:
            raise api_error(404, "NOT_FOUND", f"CryptoKeyVersion {name} not found.")
        return self.keys[name]

    def public_key(self, name):
        key = self.key(name)
        return {"name": name, "algorithm": key["algorithm"], "pem": public_pem(key["private"])}

    def sign(self, name, body):
        key = self.key(name)
        digest = body.get("digest", {})
        hash_alg = key["hash"]
        if list(digest) != [hash_alg.name]:
            raise api_error(400, "INVALID_ARGUMENT",
                            f"digest must be {{{hash_alg.name}: ...}}, got {list(digest)}")
        data = base64.b64decode(digest[hash_alg.name])
        if len(data) != hash_alg.digest_size:
            raise api_error(400, "INVALID_ARGUMENT", f"digest of {len(data)} bytes")
        with self.lock:
            self.signatures += 1
        signature = key["sign"](key["private"], data, hash_alg)
        return {"name": name, "signature": base64.b64encode(signature).decode()}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def handle_with(self, route):
        try:
            self.answer(200, route())
        except Refused as e:
            self.answer(e.code, e.body)

    def do_GET(self):
        state = self.server.state

        def route():
            if self.path == "/stats":
                issued = len(state.tokens) + len(state.revoked)
                return {"tokens": issued, "signatures": state.signatures}
            state.authorise(self.headers.get("Authorization"))
            if self.path.startswith("/v1/") and self.path.endswith("/publicKey"):
                return state.public_key(self.path[len("/v1/"):-len("/publicKey")])
            raise api_error(404, "NOT_FOUND", f"GET {self.path}")

        self.handle_with(route)

    def do_POST(self):
        state = self.server.state
        body = self.body()

        def route():
            if self.path == "/revoke":
                with state.lock:
                    state.revoked |= state.tokens
                    state.tokens = set()
                return {}
            if self.path == "/token":
                kind = self.headers.get("Content-Type")
                if kind != "application/x-www-form-urlencoded":
                    raise Refused(400, {"error": "invalid_request", "error_description": kind})
                return state.token(parse_qs(body.decode(), strict_parsing=True))
            state.authorise(self.headers.get("Authorization"))
            if self.path.startswith("/v1/") and self.path.endswith(":asymmetricSign"):
                if self.headers.get("Content-Type") != "application/json":
                    raise api_error(400, "INVALID_ARGUMENT", "not JSON")
                name = self.path[len("/v1/"):-len(":asymmetricSign")]
                return state.sign(name, json.loads(body))
            raise api_error(404, "NOT_FOUND", f"POST {self.path}")

        self.handle_with(route)


def main():
    port, key_file = int(sys.argv[1]), sys.argv[2]
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.state = State(f"http://127.0.0.1:{port}/token")
    with open(key_file, "w") as f:
        json.dump(server.state.key_file(), f)
    keys = {name: public_pem(k["private"]) for name, k in server.state.keys.items()}
    print(json.dumps(keys), flush=True)
    server.serve_forever()


main()
