"""moto's server, with KMS Sign honouring MessageType=DIGEST.

moto 5 ignores MessageType and hashes whatever it is given, so a DIGEST
request (what the worker and securesystemslib send) comes back signed over
the hash of the digest. Every request these tests make is a DIGEST one, so
the keys here sign the message as a prehashed digest.

With RSTUF_TEST_KMS_LATENCY_MS set, each signature takes that much longer,
as a round trip to a real KMS does (the server is threaded, so waits
overlap as they would there).

usage: moto_kms_digest.py <port>
"""
import os
import sys
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from moto.kms import utils
from moto.server import main

LATENCY = float(os.environ.get("RSTUF_TEST_KMS_LATENCY_MS", "0")) / 1000


def prehashed(arg):
    if isinstance(arg, hashes.HashAlgorithm):
        return Prehashed(arg)
    if isinstance(arg, ec.ECDSA):
        return ec.ECDSA(Prehashed(arg.algorithm))
    return arg


class DigestSigningKey:
    """A cryptography private key whose sign() takes a digest."""

    def __init__(self, key):
        self._key = key

    def sign(self, message, *args):
        time.sleep(LATENCY)
        return self._key.sign(message, *map(prehashed, args))

    def __getattr__(self, name):
        return getattr(self._key, name)


def signing_digests(cls):
    init = cls.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.private_key = DigestSigningKey(self.private_key)

    cls.__init__ = __init__


for name in ("RSAPrivateKey", "ECDSAPrivateKey"):
    signing_digests(getattr(utils, name))

main(["-H", "127.0.0.1", "-p", sys.argv[1]])
