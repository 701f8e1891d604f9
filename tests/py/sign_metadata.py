#!/usr/bin/env python3
"""Sign metadata the way an RSTUF operator does offline (python-tuf 7).

Usage: sign_metadata.py METADATA_JSON KEY_FILE[:PASSWORD] ...

METADATA_JSON is a metadata dict ({"signatures", "signed"}). For each key
(a PEM private key, encrypted ones with their password) prints one line:
{"keyid": ..., "sig": ...}, a signature over the canonical form of
"signed", as `rstuf admin` would send it to POST /metadata/sign.
"""
import json
import sys

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata
from tuf.api.serialization.json import CanonicalJSONSerializer


def main() -> int:
    metadata = Metadata.from_dict(json.loads(sys.argv[1]))
    payload = CanonicalJSONSerializer().serialize(metadata.signed)
    for spec in sys.argv[2:]:
        path, _, password = spec.partition(":")
        with open(path, "rb") as f:
            private = load_pem_private_key(
                f.read(), password=password.encode() if password else None
            )
        signature = CryptoSigner(private).sign(payload)
        print(json.dumps({"keyid": signature.keyid, "sig": signature.signature}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
