"""Alert provenance: only alert changes the evaluator produced reach a desk.

The evaluator signs each change it publishes on the alerts topic (HMAC-SHA256 of the message value with a key
of the deployment, in the header ``sentimon-alert-mac``); the notifier delivers a change only when that
signature verifies. Anyone else who can write to the topic (a misrouted producer, an attacker with broker
access) gets their message dead-lettered and counted, never a signed webhook to a desk.

The key: ``alerts.provenance_key`` (secret: environment or secrets directory); unset, a random key generated
once under ``<var_dir>/secrets/`` (mode 0600), shared by the processes of one host. Deployments whose
evaluator and notifier run on different hosts, or restart on another, set the key.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

HEADER = "sentimon-alert-mac"
KEY_FILE = "alerts-provenance.key"


def sign(value: bytes, key: bytes) -> list[tuple[str, bytes]]:
    """The headers that mark ``value`` as the evaluator's."""
    return [(HEADER, hmac.digest(key, value, "sha256").hex().encode())]


def verify(value: bytes | None, headers: Sequence[tuple[str, bytes]] | dict | None, key: bytes) -> str:
    """'' when ``value`` carries the evaluator's signature, else why not (for the dead letter)."""
    pairs = headers.items() if isinstance(headers, dict) else (headers or ())
    macs = [v for k, v in pairs if k == HEADER]
    if not macs:
        return f"unauthenticated alert change: no {HEADER} header (only the evaluator publishes alerts)"
    expected = hmac.digest(key, value or b"", "sha256").hex().encode()
    if len(macs) != 1 or not hmac.compare_digest(bytes(macs[0]), expected):
        return f"forged alert change: {HEADER} does not verify (only the evaluator publishes alerts)"
    return ""


def key_from(configured: str, var_dir: Path) -> bytes:
    """The configured key, or the host's generated one (created on first use, readable by its owner only)."""
    if configured:
        return configured.encode()
    path = var_dir / "secrets" / KEY_FILE
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        draft = path.with_name(f".{KEY_FILE}.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        try:
            os.link(draft, path)  # atomic, and never replaces a key another process of this host made first
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip().encode()
