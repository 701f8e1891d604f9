"""Seed corpora for the fuzz targets from the shared vectors.

usage: seed.py <shared dir> <corpus dir>

Writes <corpus>/metadata/* (every metadata file of the vector repositories)
and <corpus>/celery_message/* (the API's task messages in the target's
input layout: selector byte, u16 little-endian header length, headers JSON,
body).
"""
import glob
import json
import os
import shutil
import struct
import sys

shared, corpus = sys.argv[1], sys.argv[2]
metadata = os.path.join(corpus, "metadata")
messages = os.path.join(corpus, "celery_message")
os.makedirs(metadata, exist_ok=True)
os.makedirs(messages, exist_ok=True)

for n, path in enumerate(sorted(glob.glob(f"{shared}/vectors/tuf/repo-*/*/*.json"))):
    shutil.copy(path, os.path.join(metadata, f"{n}-{os.path.basename(path)}"))

for path in sorted(glob.glob(f"{shared}/vectors/celery/amqp-*_*-*.json")):
    vector = json.load(open(path))
    headers = json.dumps(vector["headers"]).encode()
    body = vector["body_text"].encode()
    seed = bytes([0]) + struct.pack("<H", len(headers)) + headers + body
    with open(os.path.join(messages, os.path.basename(path)), "wb") as out:
        out.write(seed)
