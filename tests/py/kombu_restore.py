#!/usr/bin/env python3
"""Run kombu's restore of abandoned messages once, as a Python worker does at
start-up and every 100 s (kombu 5.6.2 Redis transport, `restore_visible`).

Usage: kombu_restore.py BROKER_URL VISIBILITY_TIMEOUT
"""
import sys

from kombu import Connection


def main() -> int:
    url, timeout = sys.argv[1], float(sys.argv[2])
    with Connection(url, transport_options={"visibility_timeout": timeout}) as conn:
        conn.default_channel.qos.restore_visible(num=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
