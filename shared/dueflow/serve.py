"""`python -m dueflow.serve`: the functions-framework server, as `functions-framework` starts it
(same options and environment: FUNCTION_TARGET, FUNCTION_SOURCE, PORT, ...), that also lets the
Dapr sidecar's `ce_*` headers through. The commands function runs under it in Dapr mode
(knative/dapr/100-commands.yaml).

Why: a Dapr Kafka input binding delivers a binary-mode record's CloudEvents attributes as the
record's Kafka headers, `ce_type`, `ce_id`, ... (the Kafka protocol binding's names), and
gunicorn (functions-framework's server) drops every header whose name holds `_` (its
`header_map` default, `drop`, since gunicorn 22): `ce_type` and `ce-type` would otherwise land
in the same WSGI variable, HTTP_CE_TYPE, and a sender could smuggle one past whatever checked
the other. The fix is the setting gunicorn made for headers a trusted front end adds:
`forwarder_headers` names exactly the `ce_*` headers dueflow reads, and gunicorn maps them only
for peers in `forwarded_allow_ips`, here the pod's loopback (daprd, in the same pod). Not
`header_map=dangerous` (every underscore header from anyone), not `refuse` (a 400 for every
such record). functions-framework's CLI passes no gunicorn options, but its server takes them
(`create_server(app, debug, **options)`, applied with gunicorn's own `cfg.set`).

What is left: a peer on the loopback (daprd, and Knative's queue-proxy, which forwards Broker
deliveries from inside the cluster: the Service is cluster-local) could send both spellings of
one attribute; gunicorn then joins them with a comma, the attribute is no valid value and the
command is rejected (4xx), never read as the other spelling.
"""

from __future__ import annotations

import click
from functions_framework import create_app
from functions_framework._http import create_server

#: The CloudEvents attributes dueflow's commands carry, as Kafka header names (upper-case, as
#: gunicorn compares them): the context attributes and the extensions dueflow uses.
CE_HEADERS = tuple(
    f"CE_{name}"
    for name in (
        "SPECVERSION", "ID", "SOURCE", "TYPE", "TIME", "SUBJECT", "DATASCHEMA",
        "DATACONTENTTYPE", "PARTITIONKEY", "TRACEPARENT", "TRACESTATE",
    )
)  # fmt: skip
#: daprd reaches the app over the pod's loopback.
SIDECAR_PEERS = "127.0.0.1,::1"


def server_options() -> dict[str, str]:
    """The gunicorn settings that let the sidecar's `ce_*` headers through (see above)."""
    return {"forwarder_headers": ",".join(CE_HEADERS), "forwarded_allow_ips": SIDECAR_PEERS}


@click.command()
@click.option("--target", envvar="FUNCTION_TARGET", type=click.STRING, required=True)
@click.option("--source", envvar="FUNCTION_SOURCE", type=click.Path(), default=None)
@click.option(
    "--signature-type",
    envvar="FUNCTION_SIGNATURE_TYPE",
    type=click.Choice(["http", "event", "cloudevent", "typed"]),
    default="http",
)
@click.option("--host", envvar="HOST", type=click.STRING, default="0.0.0.0")
@click.option("--port", envvar="PORT", type=click.INT, default=8080)
def main(target: str, source: str | None, signature_type: str, host: str, port: int) -> None:
    app = create_app(target, source, signature_type)
    create_server(app, False, **server_options()).run(host, port)


if __name__ == "__main__":
    main()
