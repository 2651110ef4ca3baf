"""argparse -> ReflectorConfig, and the bearer token file it may require."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from reverseprobe.config import MAX_DIALBACK_TIMEOUT, MAX_TOKEN_BYTES, BadInput, ReflectorConfig


def reflector_config(args: argparse.Namespace, environ: Mapping[str, str]) -> ReflectorConfig:
    del environ
    given = tuple(dict.fromkeys(args.listen or [("127.0.0.1", 8470)]))
    host, port = given[0]
    if args.timeout > MAX_DIALBACK_TIMEOUT:
        raise BadInput(
            f"invalid --timeout {args.timeout:g}: a dial-back budget is at most "
            f"{MAX_DIALBACK_TIMEOUT:g} seconds"
        )
    return ReflectorConfig(
        host=host,
        port=port,
        trust_proxy=tuple(args.trust_proxy),
        allow_ports=tuple(args.allow_ports),
        rate_per_minute=args.rate,
        burst=args.burst,
        max_concurrent=args.max_concurrent,
        token=read_token(args.token_file) if args.token_file else None,
        connect_timeout=min(args.connect_timeout, args.timeout),
        timeout=args.timeout,
        json_log=bool(args.json),
        max_per_source=args.max_per_source,
        allow_loopback=bool(args.allow_loopback),
        listen=given if len(given) > 1 else (),
    )


def read_token(path: str) -> str:
    """The bearer token (RFC 6750 2.1 b64token) from a file, surrounding whitespace ignored."""
    from reverseprobe.userfile import read_regular_file

    try:  # a regular file of bounded size: not a FIFO (blocks), not /dev/zero (endless)
        raw = read_regular_file(path, MAX_TOKEN_BYTES + 1, what="--token-file", truncate=True)
    except BadInput as exc:
        raise BadInput(f"invalid --token-file {path!r}: {str(exc).rsplit(': ', 1)[-1]}") from None
    try:
        token = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise BadInput(f"invalid --token-file {path!r}: the token must be ASCII") from None
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=")
    if not token or len(token) > MAX_TOKEN_BYTES or not set(token) <= allowed:
        raise BadInput(
            f"invalid --token-file {path!r}: one token of letters, digits and -._~+/= "
            f"(1-{MAX_TOKEN_BYTES} characters) expected"
        )
    return token
