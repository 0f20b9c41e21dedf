"""What makes a teacher base URL usable: one rule for a spec's `base_url`, `--base-url` and
OPENAI_BASE_URL (standard library only: the spec front end imports it)."""

from __future__ import annotations

from urllib.parse import urlsplit


def http_url_problem(url: str) -> str | None:
    """Why `url` is not an http(s) URL the openai client can call, or None when it is.

    The client (httpx) would otherwise fail later and worse: `ftp://h` as "cannot reach
    the server", `http://[::1` as a traceback from deep inside the URL parser.

    >>> http_url_problem("http://127.0.0.1:8000/v1") is None
    True
    >>> http_url_problem("ftp://host/v1")
    'the scheme is `ftp`, not http or https'
    >>> http_url_problem("localhost:8000/v1")
    'it has no http:// or https://'
    >>> http_url_problem("http://[::1/v1")
    'it cannot be parsed (Invalid IPv6 URL)'
    >>> http_url_problem("http://h:99999/v1")
    'its port is not a number from 0 to 65535'
    """
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "it contains a space or a control character"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not a number in range
    except ValueError as err:
        if "port" in str(err).lower():
            return "its port is not a number from 0 to 65535"
        return f"it cannot be parsed ({err})"
    if parts.scheme not in ("http", "https"):
        # `localhost:8000/v1` parses as scheme `localhost`: say what is missing instead.
        if "://" not in url:
            return "it has no http:// or https://"
        return f"the scheme is `{parts.scheme}`, not http or https"
    if not parts.hostname:
        return "it names no host"
    return None
