"""`aurelius sign MODEL --key KEY.pem [--signature OUT]`: a local file -> its signature bundle.

Follows the command-module protocol of ``aurelius.cli.commands``: ``register(subparsers,
common)`` adds the subcommand and sets ``run(args, clients) -> exit code``. Nothing here talks to
AWS (``clients`` is unused): ``aurelius publish`` uploads.

The bundle is the OpenSSF model signing format (``aurelius.signing``): ``python -m model_signing
verify key --public_key KEY.pub --signature OUT MODEL`` accepts it. Exit 0 signed, 2 bad input
(unreadable model, unsupported key, certificate not matching the key).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from aurelius.core.signature_layout import SIGNATURE_INFIX
from aurelius.exits import EXIT_OK, EXIT_USAGE
from aurelius.signing import CertificateSigner, KeySigner, Signer, SigningError, SigstoreSigner, sign_file

PASSWORD_VARIABLE = "AURELIUS_SIGNING_KEY_PASSWORD"


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "sign",
        parents=[common],
        help="sign a model file (OpenSSF model signing bundle)",
        description="Sign a local model file. Writes an OpenSSF model signing bundle (a Sigstore bundle over "
        "the file's sha256) that the model server checks before loading.",
        epilog=f"An encrypted key's password is read from ${PASSWORD_VARIABLE}. Exit codes: 0 signed, 2 bad input.",
    )
    parser.add_argument("model", type=Path, metavar="MODEL", help="the model file (pickle, joblib or skops)")
    add_signer_arguments(parser, required=True)
    parser.add_argument(
        "--signature", type=Path, metavar="OUT", help="where to write the bundle (default: MODEL.sig next to MODEL)"
    )
    parser.set_defaults(run=run)


def add_signer_arguments(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """--key [--certificate --chain] | --sigstore: how to sign (shared by `sign` and `publish`)."""
    how = parser.add_mutually_exclusive_group(required=required)
    how.add_argument("--key", type=Path, metavar="KEY.pem", help="ECDSA P-256/P-384/P-521 private key (PEM)")
    how.add_argument(
        "--sigstore",
        action="store_true",
        help="Sigstore keyless signing with your OIDC identity (needs Sigstore's public services)",
    )
    parser.add_argument(
        "--certificate",
        type=Path,
        metavar="CERT.pem",
        help="with --key: the key's signing certificate (bring your own PKI); the bundle carries it",
    )
    parser.add_argument(
        "--chain",
        type=Path,
        action="append",
        default=[],
        metavar="CA.pem",
        help="with --certificate: the issuing certificates to include, at least the issuer (repeatable)",
    )


def run(args: argparse.Namespace, clients: Any = None) -> int:
    try:
        signer = signer_from_args(args)
        assert signer is not None  # --key or --sigstore is required
        signed = sign_file(args.model, signer)
    except SigningError as exc:
        print(f"aurelius sign: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    output = args.signature or args.model.with_name(args.model.name + ".sig")
    temporary = output.with_name(f".{output.name}.partial")
    temporary.write_bytes(signed.bundle)
    temporary.replace(output)  # never a half-written bundle under the final name
    print(f"signed {args.model} ({signed.size} bytes, sha256 {signed.sha256})")
    print(f"signature: {output}")
    print(f"in S3, upload it first as <model key>{SIGNATURE_INFIX}{signed.sha256}, then the model")
    return EXIT_OK


def signer_from_args(args: argparse.Namespace) -> Signer | None:
    """The signer the arguments name (None: no --key and no --sigstore); SigningError when they conflict."""
    if not args.key and not args.sigstore:
        if args.certificate or args.chain:
            raise SigningError("--certificate and --chain go with --key")
        return None
    if args.sigstore:
        if args.certificate or args.chain:
            raise SigningError("--certificate and --chain go with --key, not --sigstore")
        return SigstoreSigner(identity_token=os.environ.get("SIGSTORE_ID_TOKEN") or None)
    if args.chain and not args.certificate:
        raise SigningError("--chain needs --certificate")
    if args.certificate and not args.chain:
        raise SigningError("--certificate needs --chain: at least the certificate that issued it")
    if args.certificate:
        return CertificateSigner(args.key, args.certificate, tuple(args.chain))
    password = os.environ.get(PASSWORD_VARIABLE)
    return KeySigner(args.key, password.encode("utf-8") if password else None)
