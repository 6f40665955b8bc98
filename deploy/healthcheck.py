"""The web container's health check: GET a path of the site over plain HTTP, exit 0 on 200.

    python deploy/healthcheck.py /readyz      # docker-compose.yml, service `web`

Inside the container the site is reached at 127.0.0.1:$PORT (default 8000), so the request sends a
Host the site allows (the first of ALLOWED_HOSTS) and relies on /healthz and /readyz being exempt from
the HTTPS redirect (SECURE_REDIRECT_EXEMPT). Standard library only: it must not start Django.
"""

import http.client
import os
import sys


def allowed_host(allowed: str) -> str:
    """A Host header the site accepts: the first entry of ALLOWED_HOSTS ('.example.vn' -> 'example.vn')."""
    for entry in (part.strip() for part in allowed.split(",")):
        if entry and entry != "*":
            return entry.lstrip(".")
    return "localhost"


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else "/readyz"
    port = int(os.environ.get("PORT", "8000"))
    host = allowed_host(os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost"))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=float(os.environ.get("HEALTHCHECK_TIMEOUT", "10")))
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        body = response.read(4096).decode("utf-8", "replace")
    except OSError as error:
        print(f"{path}: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    print(f"{path}: {response.status} {body.strip()[:2000]}")
    return 0 if response.status == 200 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
