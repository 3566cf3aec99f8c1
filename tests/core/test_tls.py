"""HTTPS for `facegate serve`: `facegate make-cert` writes a self-signed certificate and key that pair, for the LAN
names asked; bad names, lifetimes, half-set settings and files that do not load as a pair are refused with a
plain message. The browser test (tests/test_desk_browser.py) serves the desk over HTTPS with such a certificate."""

import ssl
import stat
import subprocess

import pytest

from cli import main
from core.tls import MAX_DAYS, check_pair, make_self_signed


def test_make_cert_writes_a_pair_for_the_lan_names(tmp_path, capsys):
    main(["make-cert", "--host", "gym-server", "--host", "192.168.1.20", "--out", str(tmp_path)])
    cert, key = tmp_path / "gym-server.crt", tmp_path / "gym-server.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)  # raises unless they pair
    decoded = ssl._ssl._test_decode_cert(str(cert))  # type: ignore[attr-defined]
    assert decoded["subjectAltName"] == (("DNS", "gym-server"), ("IP Address", "192.168.1.20"))
    assert decoded["subject"] == ((("commonName", "gym-server"),),)
    printed = capsys.readouterr().out
    assert f"FACEGATE_TLS_CERT_FILE={cert}" in printed and f"FACEGATE_TLS_KEY_FILE={key}" in printed
    assert check_pair(cert, key) is not None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--host", "gym server"], "'gym server' is not a host name or an IP address"),
        (["--host", "gym-server", "--days", "0"], f"--days must be between 1 and {MAX_DAYS}"),
        (["--host", "gym-server", "--days", str(MAX_DAYS + 1)], "browsers refuse longer-lived certificates"),
    ],
)
def test_make_cert_refuses_bad_input(tmp_path, capsys, arguments, message):
    with pytest.raises(SystemExit) as exited:
        main(["make-cert", *arguments, "--out", str(tmp_path)])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_serve_takes_both_files_or_neither(tmp_path):
    cert = tmp_path / "server.crt"
    cert.write_text("not read here")
    assert check_pair(None, None) is None
    with pytest.raises(ValueError, match="set both FACEGATE_TLS_CERT_FILE and FACEGATE_TLS_KEY_FILE"):
        check_pair(cert, None)
    with pytest.raises(ValueError, match="missing.key is not a file"):
        check_pair(cert, tmp_path / "missing.key")


def test_serve_refuses_a_pair_it_cannot_load_before_it_starts(tmp_path):
    """Named in a plain line instead of OpenSSL's traceback once the service is up; an encrypted key is refused
    rather than left to prompt a service for its passphrase."""
    ours = make_self_signed(["gym-server"], tmp_path / "ours")
    other = make_self_signed(["other"], tmp_path / "other")
    encrypted = tmp_path / "encrypted.key"
    subprocess.run(
        ["openssl", "pkey", "-in", ours.key_file, "-aes256", "-passout", "pass:secret", "-out", encrypted], check=True
    )
    not_pem = tmp_path / "server.crt"
    not_pem.write_text("not a certificate")
    with pytest.raises(ValueError, match="the key does not belong to the certificate"):
        check_pair(ours.cert_file, other.key_file)
    with pytest.raises(ValueError, match="one is not PEM, or they are swapped"):
        check_pair(ours.key_file, ours.cert_file)
    with pytest.raises(ValueError, match="one is not PEM"):
        check_pair(not_pem, ours.key_file)
    with pytest.raises(ValueError, match="encrypted.key is encrypted with a passphrase"):
        check_pair(ours.cert_file, encrypted)
