"""`kvsl serve`: an OpenAI-compatible server with per-request steering (thin; see kvsl.serve)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from kvsl.cli import app
from kvsl.cli.errors import reported_errors
from kvsl.cli.options import DeviceOption, PrecisionOption, ThreadsOption

TargetsArgument = Annotated[
    list[str] | None,
    typer.Argument(metavar="SPEC_OR_STYLE", help="Styles to serve: `.kvs` specs (built first if needed), built-in "
                   "style names, or artifacts. None: the plain model only."),
]
ModelOption = Annotated[
    str | None,
    typer.Option("--model", help="The model (default: the styles' model, else the embedded one)."),
]
HostOption = Annotated[str, typer.Option("--host", help="Address to listen on.")]
PortOption = Annotated[int, typer.Option("--port", help="Port (0: any free one).")]
ApiKeyOption = Annotated[
    str | None,
    typer.Option("--api-key", help="Require `Authorization: Bearer KEY` (or set KVSL_API_KEY).",
                 show_default=False),
]
MaxBatchOption = Annotated[int, typer.Option("--max-batch", help="Rows generated at once.")]
MaxQueueOption = Annotated[
    int, typer.Option("--max-queue", help="Requests waiting beyond that; then 429.")
]
MaxPromptTokensOption = Annotated[int, typer.Option("--max-prompt-tokens")]
MaxNewTokensOption = Annotated[
    int, typer.Option("--max-new-tokens", help="The largest `max_tokens` a request may ask.")
]
MaxNOption = Annotated[int, typer.Option("--max-n", help="The largest `n` a request may ask.")]
MaxCoefficientOption = Annotated[
    float, typer.Option("--max-coefficient", help="Bound on |value| and |key| in requests.")
]
MaxBodyBytesOption = Annotated[int, typer.Option("--max-body-bytes")]
GatherMsOption = Annotated[
    float, typer.Option("--gather-ms", help="How long an idle server waits to batch requests.")
]
BatchingOption = Annotated[
    str,
    typer.Option("--batching", help="continuous (requests join the running batch between "
                 "decoding steps) or dynamic (a batch runs to its end, then the next)."),
]
ShutdownTimeoutOption = Annotated[
    float, typer.Option("--shutdown-timeout", help="Seconds in-flight requests get on SIGTERM.")
]
RequestTimeoutOption = Annotated[
    float, typer.Option("--request-timeout", help="Seconds a client gets to send a request's "
                        "head, again its body (then 408), and to take each chunk of a stream.")
]


@app.command()
def serve(
    targets: TargetsArgument = None,
    model: ModelOption = None,
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    api_key: ApiKeyOption = None,
    max_batch: MaxBatchOption = 16,
    max_queue: MaxQueueOption = 64,
    max_prompt_tokens: MaxPromptTokensOption = 4096,
    max_new_tokens: MaxNewTokensOption = 512,
    max_n: MaxNOption = 4,
    max_coefficient: MaxCoefficientOption = 16.0,
    max_body_bytes: MaxBodyBytesOption = 1_000_000,
    gather_ms: GatherMsOption = 5.0,
    batching: BatchingOption = "continuous",
    shutdown_timeout: ShutdownTimeoutOption = 30.0,
    request_timeout: RequestTimeoutOption = 30.0,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "auto",
    threads: ThreadsOption = None,
) -> None:
    """Serve the model and its styles over the OpenAI API: `kvsl serve step-by-step causal-chain`."""
    with reported_errors():
        from kvsl.engine.distributed import refuse_launcher

        refuse_launcher("serve")  # KVS317 under torchrun: every rank would bind the port
        from kvsl.serve.catalog import api_key_from, check_options

        check_options(port=port, max_batch=max_batch, max_queue=max_queue,
                      max_prompt_tokens=max_prompt_tokens, max_new_tokens=max_new_tokens,
                      max_n=max_n, max_body_bytes=max_body_bytes, max_coefficient=max_coefficient,
                      gather_ms=gather_ms, batching=batching,
                      request_timeout=request_timeout, shutdown_timeout=shutdown_timeout)
        from kvsl.engine.setup import prepare

        # Threads (KVS313), the device (KVS309) and the precision, before anything loads.
        setup = prepare(threads=threads, device=device, precision=precision)
        print(f"kvsl serve: {setup.line()}", file=sys.stderr)  # as build, run, eval and tune
        where, precision = setup.device, setup.precision.name
        from kvsl.serve.server import bind, model_thread

        key = api_key_from(api_key)
        sock = bind(host, port)  # before the model loads: a busy port fails fast (KVS803)
        thread = model_thread()  # all of torch's work on one thread (see model_thread)
        try:
            from rich.console import Console

            from kvsl.serve.app import ServerConfig, batching_for, create_app
            from kvsl.serve.catalog import load_catalog
            from kvsl.serve.schemas import Limits

            status = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)
            catalog = thread.submit(load_catalog, list(targets or []), model=model, device=where,
                                    precision=precision, console=status).result()
            batching, why_not = batching_for(catalog, batching)
            if why_not is not None:
                from kvsl.lang.codes import CODES

                print(f"warning[KVS805]: {CODES['KVS805'].title}: {why_not}; serving with "
                      "dynamic batching", file=sys.stderr)
            config = ServerConfig(
                limits=Limits(max_prompt_tokens, max_new_tokens, max_coefficient, max_n),
                api_key=key, max_batch=max_batch, max_queue=max_queue, gather_ms=gather_ms,
                max_body_bytes=max_body_bytes, batching=batching, body_timeout_s=request_timeout,
            )
            application = create_app(catalog, config, executor=thread)
        except BaseException:
            sock.close()
            thread.shutdown(wait=False)
            raise
        from kvsl.serve.server import run_server

        run_server(application, sock, shutdown_timeout=shutdown_timeout,
                   request_timeout=request_timeout,
                   announce=lambda: _announce(sock, host, key, catalog),
                   drain=application.state.server.drain, ignore_after=True)
        print("kvsl serve: stopped", file=sys.stderr, flush=True)


def _announce(sock: Any, host: str, key: str | None, catalog: Any) -> None:
    """KVS804 when no API key guards a non-loopback address, then the listening line."""
    from kvsl.serve.server import is_loopback

    if key is None and not is_loopback(host):
        from kvsl.lang.codes import CODES

        print(f"warning[KVS804]: {CODES['KVS804'].title}: set --api-key or KVSL_API_KEY",
              file=sys.stderr)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    print(f"kvsl serve: listening on http://{shown}:{bound_port}/v1 "
          f"(models: {', '.join(catalog.model_ids())})", file=sys.stderr, flush=True)
