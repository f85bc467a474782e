"""Container healthcheck: exit 0 when a URL answers 2xx within a few seconds, else 1.

The image is python:3.11-slim, which has neither curl nor wget; this needs only the
standard library, so docker-compose.yml's healthchecks run `python /app/deploy/docker/
http_ok.py URL` in every service that speaks HTTP.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 5.0


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: http_ok.py URL", file=sys.stderr)
        return 2
    try:
        with urllib.request.urlopen(argv[0], timeout=TIMEOUT_SECONDS) as response:
            status = int(response.status)
    except urllib.error.HTTPError as error:
        status = error.code
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        print(f"{argv[0]}: {getattr(error, 'reason', error)}", file=sys.stderr)
        return 1
    if 200 <= status < 300:
        return 0
    print(f"{argv[0]}: HTTP {status}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
