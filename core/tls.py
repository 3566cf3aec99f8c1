"""HTTPS for `facegate serve`: browsers give the desk pages a camera only on a secure page (https://, or
localhost itself), so a desk on another computer of the LAN needs the service over HTTPS. A site with its own
certificate sets FACEGATE_TLS_CERT_FILE and FACEGATE_TLS_KEY_FILE; `facegate make-cert` makes a self-signed one for
a LAN host name (README "HTTPS on a LAN" says how to trust it). openssl makes it: the service has no other use for a
cryptography library."""

import ipaddress
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

# Browsers refuse to trust a server certificate valid for longer than this (Apple's limit; Chrome's is similar).
MAX_DAYS = 825


@dataclass(frozen=True)
class CertificatePair:
    cert_file: Path
    key_file: Path


def _subject_alt_name(host: str) -> str:
    try:
        return f"IP:{ipaddress.ip_address(host)}"
    except ValueError:
        return f"DNS:{host}"


def make_self_signed(hosts: list[str], directory: Path, *, days: int = MAX_DAYS) -> CertificatePair:
    """A self-signed certificate for these host names and IP addresses (the first is its common name) and its key,
    written as DIRECTORY/HOST.crt and DIRECTORY/HOST.key (the key readable by its owner only)."""
    if not hosts:
        raise ValueError("name at least one host (--host): the name or address the desk computers open")
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"--days must be between 1 and {MAX_DAYS}: browsers refuse longer-lived certificates")
    for host in hosts:
        if not host or any(c in host for c in ",/=\\ \n") or len(host) > 253:
            raise ValueError(f"{host!r} is not a host name or an IP address")
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ValueError("openssl is not installed: install it (Debian: apt install openssl) or bring a certificate")
    directory.mkdir(parents=True, exist_ok=True)
    pair = CertificatePair(directory / f"{hosts[0]}.crt", directory / f"{hosts[0]}.key")
    pair.key_file.touch(mode=0o600)
    pair.key_file.chmod(0o600)
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-days", str(days), "-subj", f"/CN={hosts[0]}",
            "-keyout", str(pair.key_file), "-out", str(pair.cert_file),
            "-addext", "subjectAltName=" + ",".join(_subject_alt_name(h) for h in hosts),
            "-addext", "basicConstraints=critical,CA:FALSE",
            "-addext", "keyUsage=critical,digitalSignature",
            "-addext", "extendedKeyUsage=serverAuth",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return pair


def check_pair(cert_file: Path | None, key_file: Path | None) -> CertificatePair | None:
    """The certificate and key `facegate serve` is to use, both or neither; None: plain HTTP."""
    if cert_file is None and key_file is None:
        return None
    if cert_file is None or key_file is None:
        raise ValueError("set both FACEGATE_TLS_CERT_FILE and FACEGATE_TLS_KEY_FILE, or neither")
    for path in (cert_file, key_file):
        if not path.is_file():
            raise ValueError(f"{path} is not a file (FACEGATE_TLS_CERT_FILE / FACEGATE_TLS_KEY_FILE)")
    _load(cert_file, key_file)
    return CertificatePair(cert_file, key_file)


class _EncryptedKey(Exception):
    pass


def _no_passphrase() -> str:
    raise _EncryptedKey


def _load(cert_file: Path, key_file: Path) -> None:
    """Load the pair as uvicorn will, so that a wrong file is named before the service starts, not as OpenSSL's
    traceback after it; and so that an encrypted key is refused instead of prompting a service for its passphrase."""
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert_file, key_file, _no_passphrase)
    except _EncryptedKey:
        raise ValueError(
            f"{key_file} is encrypted with a passphrase; the service needs it unencrypted"
            f" (openssl pkey -in {key_file} -out plain.key, then keep plain.key readable by the service alone)"
        ) from None
    except ssl.SSLError as exc:
        mismatch = "KEY_VALUES_MISMATCH" in str(exc)
        reason = "the key does not belong to the certificate" if mismatch else "one is not PEM, or they are swapped"
        raise ValueError(
            f"{cert_file} and {key_file} are not a PEM certificate and its private key: {reason}"
            f" (FACEGATE_TLS_CERT_FILE / FACEGATE_TLS_KEY_FILE; OpenSSL: {exc})"
        ) from None
