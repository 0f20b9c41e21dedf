"""The chat-completions client: where to connect, with which key, and what failures mean.

Retries are the `openai` client's own (`max_retries`): it honours `Retry-After` /
`retry-after-ms`, and otherwise backs off exponentially with jitter on 408, 409, 429, 5xx,
connection errors and timeouts. kvsl never loops on a request itself; it only decides what
a failure that survived those retries means for the run:

- fatal (`Fatal`): the server is unreachable, rejects the key, or has no such model or
  endpoint. Every later request would fail the same way, so the run stops (exit 3) and
  keeps everything already written.
- not fatal (`RequestFailed`): rate limits, server errors and timeouts that outlasted the
  retries, and requests the server refused (400). The question is logged as skipped and
  asked again by the next run; many in a row stop the run (KVS514).

The API key is never put into a message: every text that leaves this module goes through
`Redactor`, which also hides credentials written into a base URL (`http://user:pw@host`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from kvsl.lang.diagnostics import COMMAND_LINE, Diagnostic, ExitCode, KvslError, Severity
from kvsl.lang.source import Span
from kvsl.lang.urls import http_url_problem

if TYPE_CHECKING:  # openai is imported lazily: `kvsl --help` must not pay for it
    from openai import AsyncOpenAI

DEFAULT_BASE_URL = "https://api.openai.com/v1"
REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 8  # shorter keys are placeholders for servers that check none


@dataclass(frozen=True)
class Endpoint:
    """Where the teacher connects; `key` is never printed (`repr` hides it)."""

    base_url: str
    key: str
    base_url_origin: str  # "--base-url", "the spec", "OPENAI_BASE_URL" or "the default"

    def __repr__(self) -> str:
        return f"Endpoint(base_url={display_url(self.base_url)!r}, key={REDACTED!r})"


def display_url(url: str) -> str:
    """A URL safe to print: user info (`user:password@`) replaced by `[redacted]@`.

    >>> display_url("http://me:s3cret@localhost:8000/v1")
    'http://[redacted]@localhost:8000/v1'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{REDACTED}@{host}"))


@dataclass(frozen=True)
class Redactor:
    """Removes secrets (the API key, base-URL credentials) from any text kvsl writes.

    >>> Redactor(("sk-abc123",)).scrub("bad key sk-abc123!")
    'bad key [redacted]!'
    """

    secrets: tuple[str, ...] = ()

    @classmethod
    def for_endpoint(cls, endpoint: Endpoint | None) -> Redactor:
        if endpoint is None:
            return cls()
        secrets = [endpoint.key]
        netloc = urlsplit(endpoint.base_url).netloc
        if "@" in netloc:
            userinfo = netloc.rsplit("@", 1)[0]
            secrets.extend([userinfo, *userinfo.split(":")])
        # Longest first, so a secret that contains another is removed whole. Short values
        # are placeholders, not secrets (`OPENAI_API_KEY=unused` for a local server), and
        # scrubbing them would shred ordinary words in the traces.
        usable = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        return cls(tuple(usable))

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text


def choose_base_url(
    cli_base_url: str | None, spec_base_url: str | None, environ: Mapping[str, str]
) -> tuple[str, str]:
    """(base URL, where it came from): the flag, the spec, OPENAI_BASE_URL, then OpenAI.

    >>> choose_base_url(None, None, {})
    ('https://api.openai.com/v1', 'the default')
    """
    if cli_base_url:
        return _usable(cli_base_url, "--base-url"), "--base-url"
    if spec_base_url:
        return _usable(spec_base_url, "the spec's `base_url`"), "the spec"
    if environ.get("OPENAI_BASE_URL"):
        return _usable(environ["OPENAI_BASE_URL"], "OPENAI_BASE_URL"), "OPENAI_BASE_URL"
    return DEFAULT_BASE_URL, "the default"


def _usable(url: str, origin: str) -> str:
    """`url` when it is an http(s) URL, else KVS524 (exit 2) naming where it came from.

    >>> _usable("ftp://h/v1", "--base-url")
    Traceback (most recent call last):
    kvsl.lang.diagnostics.KvslError: KVS524: --base-url `ftp://h/v1` is not an http(s) URL: the scheme is `ftp`, not http or https
    """
    problem = http_url_problem(url)
    if problem is None:
        return url
    shown = display_url(url) if "@" in url else url  # user info in a URL is a credential
    # Located where the user must fix it: the environment for OPENAI_BASE_URL (unset it, or
    # export a fixed one), the command line for --base-url.
    where = Span.whole_file("<environment>") if origin == "OPENAI_BASE_URL" else COMMAND_LINE
    raise KvslError.one(
        "KVS524",
        f"{origin} `{shown[:200]}` is not an http(s) URL: {problem}",
        where,
        help="give the server's OpenAI-compatible base URL, e.g. `http://127.0.0.1:8000/v1` "
        "(vLLM), `http://127.0.0.1:11434/v1` (ollama)",
        exit_code=ExitCode.USAGE,
    )


def resolve_endpoint(
    spec_path: str,
    *,
    cli_base_url: str | None,
    spec_base_url: str | None,
    environ: Mapping[str, str] | None = None,
) -> Endpoint:
    """Pick the base URL (flag, then spec, then `OPENAI_BASE_URL`, then OpenAI) and the key.

    Raises KvslError (KVS510, exit 3) when `OPENAI_API_KEY` is unset or empty.

    >>> resolve_endpoint("s.kvs", cli_base_url=None, spec_base_url="http://h:1/v1",
    ...                  environ={"OPENAI_API_KEY": "k"}).base_url
    'http://h:1/v1'
    """
    env = os.environ if environ is None else environ
    base_url, origin = choose_base_url(cli_base_url, spec_base_url, env)
    key = env.get("OPENAI_API_KEY", "").strip()
    if not key:
        raise KvslError.one(
            "KVS510",
            f"no API key for the teacher at `{display_url(base_url)}`",
            Span.whole_file(spec_path),
            help="export OPENAI_API_KEY=... (a local vLLM, ollama or llama.cpp server "
            "that checks no key accepts any value: OPENAI_API_KEY=unused); "
            "`kvsl teach --dry-run` shows the prompts without a key",
            exit_code=ExitCode.ENVIRONMENT,
        )
    return Endpoint(base_url=base_url, key=key, base_url_origin=origin)


def make_client(endpoint: Endpoint, *, max_retries: int, timeout: float) -> AsyncOpenAI:
    """An AsyncOpenAI client whose retries and timeout are the only ones kvsl uses.

    Its transport (`kvsl.teacher.transport`) holds each attempt to `timeout` seconds in all
    (a server dribbling bytes otherwise never times out) and each reply to 16 MiB.
    """
    from openai import AsyncOpenAI

    from kvsl.teacher.transport import HTTP, bounded_http_client

    try:
        http_client = bounded_http_client(seconds=timeout)
    except (ValueError, ImportError, HTTP.InvalidURL) as err:
        raise _proxy_error(err) from None
    return AsyncOpenAI(
        api_key=endpoint.key,
        base_url=endpoint.base_url,
        max_retries=max_retries,
        timeout=timeout,
        http_client=http_client,
    )


PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy")


def _proxy_error(err: Exception) -> KvslError:
    """KVS529: a proxy URL in the environment the HTTP library refuses (the URL's password,
    if any, is already masked in the library's message)."""
    named = [name for name in PROXY_VARIABLES if os.environ.get(name)]
    return KvslError.one(
        "KVS529",
        f"the proxy named by {' / '.join(named) or 'the environment'} cannot be used: {err}",
        Span.whole_file("<environment>"),
        help="a proxy URL is http://HOST:PORT (or https://, or socks5:// with "
        "`pip install httpx[socks]`); unset the variable to reach the teacher directly",
        exit_code=ExitCode.ENVIRONMENT,
    )


# --- what a failure means ----------------------------------------------------------------


@dataclass(frozen=True)
class Fatal:
    """A failure that ends the run: every later request would fail the same way."""

    diagnostic: Diagnostic


@dataclass(frozen=True)
class RequestFailed:
    """A failure of one request; the question is logged as skipped."""

    reason: str  # "timeout", "rate_limited", "server_error", "bad_request", ...
    detail: str  # already scrubbed
    permanent: bool


def classify_error(
    error: BaseException, *, endpoint: Endpoint, model: str, spec_path: str
) -> Fatal | RequestFailed:
    """Map an `openai` exception (after its retries) to what the run does next."""
    import openai

    redact = Redactor.for_endpoint(endpoint)
    url = display_url(endpoint.base_url)
    span = Span.whole_file(spec_path)
    detail = redact.scrub(_message(error))

    def fatal(code: str, message: str, help: str) -> Fatal:
        return Fatal(
            Diagnostic(code, Severity.ERROR, redact.scrub(message), span, help=redact.scrub(help))
        )

    if isinstance(error, openai.APITimeoutError):
        return RequestFailed("timeout", "the request timed out after every retry", False)
    if isinstance(error, openai.APIConnectionError):
        broken = _broken_exchange(error.__cause__)
        if isinstance(broken, RequestFailed):
            return broken
        if broken is not None:
            return fatal(
                "KVS534",
                f"the teacher server at `{url}` (base URL from {endpoint.base_url_origin}) "
                f"redirects without end: {broken}",
                "point the base URL at where the server answers chat completions itself "
                "(the address it redirects to: often `https://` for `http://`, or a "
                "missing or extra `/v1`)",
            )
        return fatal(
            "KVS511",
            f"cannot reach the teacher server at `{url}` (base URL from "
            f"{endpoint.base_url_origin})",
            "start the server, or point `--base-url` / the spec's `base_url` / "
            "OPENAI_BASE_URL at it (vLLM: http://127.0.0.1:8000/v1, ollama: "
            "http://127.0.0.1:11434/v1, llama.cpp: http://127.0.0.1:8080/v1)",
        )
    if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
        return fatal(
            "KVS512",
            f"the teacher server at `{url}` rejected the API key "
            f"(HTTP {error.status_code}): {detail}",
            "check OPENAI_API_KEY (and that it belongs to this server and project)",
        )
    if isinstance(error, openai.NotFoundError):
        return fatal(
            "KVS513",
            f"the teacher server at `{url}` has no model `{model}` or no chat-completions "
            f"endpoint (HTTP 404): {detail}",
            "check the spec's teacher `model` (or `--model`) against the server's model "
            "list, and that the base URL ends in `/v1`",
        )
    if isinstance(error, openai.RateLimitError):
        return RequestFailed("rate_limited", _asked_to_wait(error) + detail, False)
    if isinstance(error, openai.APIStatusError) and 300 <= error.status_code < 400:
        return fatal(
            "KVS534",
            f"the teacher server at `{url}` (base URL from {endpoint.base_url_origin}) "
            f"answered with a redirect that cannot be followed (HTTP {error.status_code}"
            f"{_location(error)})",
            "point the base URL at where the server answers chat completions itself "
            "(the address it redirects to: often `https://` for `http://`, or a missing "
            "or extra `/v1`)",
        )
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        if status >= 500 or status in (408, 409):
            return RequestFailed(
                "server_error", f"HTTP {status}: {_asked_to_wait(error)}{detail}", False
            )
        # Not permanent: a 400 is as often about the request options (a model that rejects
        # `max_tokens` or `temperature`) as about the question, and then every question
        # fails alike; the consecutive-failure limit stops such a run (KVS514).
        return RequestFailed("bad_request", f"HTTP {status}: {detail}", False)
    if isinstance(error, openai.APIError):  # e.g. a reply that is not chat-completions JSON
        return RequestFailed("bad_response", detail, False)
    raise error  # a programming error: let it surface


def _broken_exchange(cause: BaseException | None) -> RequestFailed | str | None:
    """What a connection error after a connection was made means, or None for "unreachable".

    A `RequestFailed` when the server was reached but the exchange broke (it closed the
    connection before a whole reply, sent something that is not HTTP, a reply too large):
    one request failed, and many in a row stop the run (KVS514) without claiming that the
    server cannot be reached. A string when the server redirects in a loop (fatal).
    """
    from kvsl.teacher.transport import HTTP, ReplyTooLarge

    if isinstance(cause, ReplyTooLarge):
        return RequestFailed("bad_response", str(cause), False)
    if isinstance(cause, HTTP.TooManyRedirects):
        return _short(cause)
    connect_failures = (HTTP.ConnectError, HTTP.ProxyError, HTTP.UnsupportedProtocol)
    if cause is None or isinstance(cause, connect_failures) or not isinstance(cause, HTTP.RequestError):
        return None
    if isinstance(cause, HTTP.DecodingError):
        said = "the server's reply could not be decoded"
    elif isinstance(cause, HTTP.RemoteProtocolError):
        said = "the server broke the HTTP exchange before a whole reply"
    else:
        said = "the connection broke before a whole reply"
    return RequestFailed("server_error", f"{said} ({_short(cause)})", False)


def _asked_to_wait(error: BaseException) -> str:
    """`the server asks to wait N s ...; ` when its Retry-After is one the client refused.

    The client honours a `Retry-After` up to its own limit (`_retry_after_limit`) and gives
    up at once on a longer one, which otherwise reads as a retry that never happened.
    """
    response = getattr(error, "response", None)
    value = response.headers.get("retry-after", "") if response is not None else ""
    try:
        seconds = float(value)
    except ValueError:
        return ""
    if not seconds > _retry_after_limit():  # NaN too
        return ""
    shown = "ever" if seconds == float("inf") else f"{seconds:.0f} s"
    return f"the server asks to wait {shown}, longer than the client waits to retry; "


def _retry_after_limit() -> float:
    """The longest `Retry-After` (seconds) the installed openai client waits for: 120 in
    openai 3 (`MAX_RETRY_AFTER_DELAY`), 60 written into the retry code of openai 1.x."""
    import openai._constants as constants

    return float(getattr(constants, "MAX_RETRY_AFTER_DELAY", 60))


def _short(error: BaseException) -> str:
    text = re.sub(r"\s+", " ", str(error)).strip().rstrip(".") or type(error).__name__
    return text[:200]


def _location(error: BaseException) -> str:
    response = getattr(error, "response", None)
    location = response.headers.get("location") if response is not None else None
    return f" to `{display_url(location)[:200]}`" if location else ", with no `Location`"


def _message(error: BaseException) -> str:
    import openai

    message = str(error)
    if isinstance(error, openai.APIStatusError):
        body = error.body
        if isinstance(body, dict):
            inner = body.get("error", body)
            if isinstance(inner, dict) and isinstance(inner.get("message"), str):
                message = inner["message"]
            elif isinstance(inner, str):
                message = inner
    # Diagnostics have no trailing period; server messages usually do.
    message = re.sub(r"\s+", " ", message).strip().rstrip(".")
    return message[:300]
