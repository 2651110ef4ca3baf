"""argparse + environment -> MoveTestConfig."""

from __future__ import annotations

import argparse
import ssl
from collections.abc import Mapping

from reverseprobe.config import DEFAULT_GRACE, MIN_MOVE_TIME_S, BadInput, MoveTestConfig
from reverseprobe.config.environ import ip_service_urls, reflector_url
from reverseprobe.config.recorded import recorded_contexts
from reverseprobe.config.tls import tls_settings
from reverseprobe.config.validate import parse_save_dir
from reverseprobe.model.tls import TlsSettings


def move_test_config(args: argparse.Namespace, environ: Mapping[str, str]) -> MoveTestConfig:
    """A --grace the user gave must leave time for the move; the default grace is clamped to
    the time there is instead (so `--timeout 3` alone is not an error about --grace)."""
    host, port = args.pacs
    grace = getattr(args, "grace", None)
    if grace is None:
        grace = max(0.0, min(DEFAULT_GRACE, args.timeout - MIN_MOVE_TIME_S, args.timeout / 2))
    elif grace >= args.timeout:
        raise BadInput(
            f"invalid --grace {grace:g}: must be shorter than --timeout {args.timeout:g}"
        )
    return MoveTestConfig(
        pacs_host=host,
        pacs_port=port,
        pacs_aet=args.pacs_aet,
        aet=args.aet,
        port=args.port,
        study=args.study,
        try_cget=bool(args.try_cget),
        save_dir=parse_save_dir(args.save) if getattr(args, "save", None) else None,
        grace=float(grace),
        ip_services=ip_service_urls(args.ip_services, environ),
        public_ip=not args.no_public_ip,
        strict=bool(args.strict),
        timeout=args.timeout,
        receiver=getattr(args, "receiver", None) or "auto",
        contexts=tuple(getattr(args, "contexts", None) or ()),
        recorded_contexts=recorded_contexts(args),
        reflector=reflector_url(getattr(args, "reflector", None), environ),
        tls=_move_tls(args),
    )


def _move_tls(args: argparse.Namespace) -> TlsSettings | None:
    """move-test --tls: our own receiver is a TLS server, so it needs a certificate whose key
    loads (a bad pair is bad input here, not a failure in the middle of the move)."""
    tls = tls_settings(args)
    if tls is None or (getattr(args, "receiver", None) or "auto") == "running":
        return tls
    if not tls.cert:
        raise BadInput("invalid --tls: move-test's receiver needs --tls-cert (and --tls-key)")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(tls.cert, tls.key)
    except (OSError, ssl.SSLError) as exc:
        raise BadInput(f"invalid --tls-cert {tls.cert}: {exc}") from None
    return tls
