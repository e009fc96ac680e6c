"""Credentials for a :class:`~app.testing.stack.PrivateStack`: a CA and the certificates it signs
(made with ``openssl`` in a folder), and the Keycloak realm of a registry behind auth."""
from __future__ import annotations

import functools
import subprocess
from pathlib import Path


def _openssl(folder: Path, *args: str) -> None:
    out = subprocess.run(["openssl", *args], cwd=folder, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{out.stderr[-2000:]}")


def certificates(folder: Path, ip: str) -> tuple[Path, Path]:
    """A new CA and a server certificate it signs for ``ip`` (openssl): the CA's PEM, and a broker
    keystore PEM (the server's unencrypted PKCS#8 key, then its certificate)."""
    folder.mkdir(parents=True, exist_ok=True)
    openssl = functools.partial(_openssl, folder)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=fraud-test-ca")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={ip}")
    (folder / "san.cnf").write_text(f"subjectAltName=IP:{ip}\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "san.cnf")
    keystore = folder / "keystore.pem"
    keystore.write_text((folder / "server.key").read_text() + (folder / "server.pem").read_text())
    return folder / "ca.pem", keystore


def client_certificate(folder: Path, name: str) -> tuple[Path, Path]:
    """A client certificate and key for ``name``, signed by the CA that :func:`certificates` made in
    ``folder``."""
    openssl = functools.partial(_openssl, folder)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2")
    return folder / f"{name}.pem", folder / f"{name}.key"


def registry_realm(name: str, clients: dict[str, str]) -> dict:
    """A Keycloak realm for a registry: confidential clients that get tokens with their id and secret
    (the client credentials grant, which Apicurio's basic auth uses), and the registry's own client.

    >>> realm = registry_realm("registry", {"fraud": "s3cret"})
    >>> [(c["clientId"], c.get("secret"), c.get("serviceAccountsEnabled")) for c in realm["clients"]]
    [('fraud', 's3cret', True), ('registry-api', None, None)]
    """
    return {"realm": name, "enabled": True, "clients": [
        *({"clientId": client, "secret": secret, "enabled": True, "publicClient": False, "protocol": "openid-connect",
           "serviceAccountsEnabled": True, "standardFlowEnabled": False, "directAccessGrantsEnabled": False}
          for client, secret in clients.items()),
        {"clientId": "registry-api", "enabled": True, "bearerOnly": True, "protocol": "openid-connect"}]}
