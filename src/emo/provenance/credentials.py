"""Signing credentials for C2PA Content Credentials: a certificate chain and its private key.

A C2PA manifest is signed with an end-entity (leaf) certificate issued by a
certificate authority; a viewer trusts the signature when that CA is on its trust
list. The C2PA SDK refuses a leaf that is a CA or self-signed, lacks the
``digitalSignature`` key usage, an extended key usage (``emailProtection`` is the
usual one) or an authority key identifier; :class:`SigningCredentials` checks these
up front so the message names the file and the missing part.

Where they come from:

- files: :meth:`SigningCredentials.from_files` (``emo generate --c2pa-cert --c2pa-key``);
- the environment: :meth:`SigningCredentials.from_env` reads ``EMO_C2PA_CERT`` and
  ``EMO_C2PA_KEY`` (a path, or the PEM text itself), ``EMO_C2PA_KEY_PASSWORD`` for an
  encrypted key and ``EMO_C2PA_TSA_URL`` for a time-stamp authority;
- :meth:`SigningCredentials.development`: a throwaway CA and leaf made in this process,
  named "emo development ... (untrusted)", which every viewer shows as untrusted.

Needs the ``c2pa`` extra (``pip install "emo[c2pa]"``, which brings ``cryptography``).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from emo.errors import CredentialsError

__all__ = [
    "ENV_CERT",
    "ENV_KEY",
    "ENV_KEY_PASSWORD",
    "ENV_TSA_URL",
    "SigningCredentials",
    "import_cryptography",
]

#: Environment variable: the certificate chain (PEM file path, or PEM text), leaf first.
ENV_CERT = "EMO_C2PA_CERT"
#: Environment variable: the private key of the leaf certificate (PEM file path, or PEM text).
ENV_KEY = "EMO_C2PA_KEY"
#: Environment variable: the password of an encrypted private key.
ENV_KEY_PASSWORD = "EMO_C2PA_KEY_PASSWORD"
#: Environment variable: an RFC 3161 time-stamp authority URL (optional; needs the network).
ENV_TSA_URL = "EMO_C2PA_TSA_URL"

_INSTALL = 'install the c2pa extra: pip install "emo[c2pa]"'
_DEV_NOTE = "emo development key (untrusted)"
_DEV_LOCK = threading.Lock()
_DEV_CACHE: list[SigningCredentials] = []


def import_cryptography() -> Any:
    """Import and return ``cryptography.x509``, or raise a :class:`CredentialsError` saying how to install it."""
    try:
        from cryptography import x509
    except ImportError as exc:
        raise CredentialsError(
            f"C2PA signing needs the 'cryptography' package, which is not installed; {_INSTALL}"
        ) from exc
    return x509


@dataclass(frozen=True, repr=False)
class SigningCredentials:
    """A checked certificate chain and private key, ready to sign C2PA manifests.

    Build one with :meth:`from_files`, :meth:`from_pem`, :meth:`from_env` or
    :meth:`development`; the constructor takes already checked values.

    Attributes
    ----------
    certificate_chain
        PEM certificates, the signing (leaf) certificate first, then its intermediates.
    private_key
        The leaf's private key, PEM (PKCS #8, unencrypted: it stays in memory only).
    algorithm
        The C2PA signing algorithm for the key: ``es256``, ``es384``, ``es512``, ``ps256``
        or ``ed25519``.
    signer
        The leaf certificate's subject (common name, organisation), as viewers show it.
    issuer
        The leaf certificate's issuer.
    not_after
        The end of the leaf certificate's validity (UTC).
    source
        Where the credentials came from (files, environment, development).
    is_development
        True for the throwaway development key of :meth:`development`.
    timestamp_url
        An RFC 3161 time-stamp authority that countersigns each signature, or ``None``.
    """

    certificate_chain: bytes
    private_key: bytes
    algorithm: str
    signer: str
    issuer: str
    not_after: dt.datetime
    source: str
    is_development: bool = False
    timestamp_url: str | None = None

    def __repr__(self) -> str:  # never print the key
        return (
            f"SigningCredentials(signer={self.signer!r}, issuer={self.issuer!r}, "
            f"algorithm={self.algorithm!r}, source={self.source!r}"
            + (", development key" if self.is_development else "")
            + ")"
        )

    @classmethod
    def from_pem(
        cls,
        certificate_chain: bytes | str,
        private_key: bytes | str,
        *,
        password: bytes | str | None = None,
        timestamp_url: str | None = None,
        source: str = "PEM data",
    ) -> SigningCredentials:
        """Check a PEM certificate chain and private key.

        Parameters
        ----------
        certificate_chain
            PEM text: the leaf certificate first, then intermediates (the root may follow;
            viewers find it in their trust list).
        private_key
            The leaf's private key, PEM (PKCS #8 or traditional; encrypted if ``password``).
        password
            The private key's password, if it is encrypted.
        timestamp_url
            Optional RFC 3161 time-stamp authority (contacted at every signature).
        source
            Where they came from, for messages.

        Raises
        ------
        CredentialsError
            If a part is not PEM, the key does not match the leaf, or the leaf lacks
            what the C2PA SDK requires (see the module docstring).
        """
        x509 = import_cryptography()
        chain_pem = (
            certificate_chain.encode()
            if isinstance(certificate_chain, str)
            else bytes(certificate_chain)
        )
        key_pem = private_key.encode() if isinstance(private_key, str) else bytes(private_key)
        try:
            chain = x509.load_pem_x509_certificates(chain_pem)
        except ValueError:
            chain = []
        if not chain:
            raise CredentialsError(
                f"the certificate chain from {source} holds no PEM certificate "
                "('-----BEGIN CERTIFICATE-----'); give the signing certificate first, then "
                "its intermediates"
            )
        leaf = chain[0]
        _check_leaf(leaf, source)
        key = _load_key(key_pem, password, source)
        algorithm = _algorithm_for(key, source)
        if _public_der(key.public_key()) != _public_der(leaf.public_key()):
            raise CredentialsError(
                f"the private key from {source} does not belong to the first certificate of "
                "the chain (their public keys differ); give the key of the signing certificate, "
                "and put that certificate first"
            )
        from cryptography.hazmat.primitives import serialization

        clean_key = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        chain_text = b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in chain)
        return cls(
            certificate_chain=chain_text,
            private_key=clean_key,
            algorithm=algorithm,
            signer=_describe_name(leaf.subject),
            issuer=_describe_name(leaf.issuer),
            not_after=leaf.not_valid_after_utc,
            source=source,
            timestamp_url=timestamp_url or None,
        )

    @classmethod
    def from_files(
        cls,
        certificate: str | os.PathLike[str],
        key: str | os.PathLike[str],
        *,
        password: bytes | str | None = None,
        timestamp_url: str | None = None,
    ) -> SigningCredentials:
        """Read and check a PEM certificate chain file and a PEM private key file.

        Raises
        ------
        CredentialsError
            If a file is missing or unreadable, or see :meth:`from_pem`.
        """
        chain = _read_pem(Path(certificate).expanduser(), "certificate chain")
        private = _read_pem(Path(key).expanduser(), "private key")
        return cls.from_pem(
            chain,
            private,
            password=password,
            timestamp_url=timestamp_url,
            source=f"{os.fspath(certificate)!r} and {os.fspath(key)!r}",
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SigningCredentials | None:
        """The credentials named by ``EMO_C2PA_CERT`` and ``EMO_C2PA_KEY``, or ``None`` if neither is set.

        Each variable holds a PEM file's path or the PEM text itself (handy for CI
        secrets). ``EMO_C2PA_KEY_PASSWORD`` decrypts an encrypted key;
        ``EMO_C2PA_TSA_URL`` names a time-stamp authority.

        Raises
        ------
        CredentialsError
            If only one of the two is set, or see :meth:`from_files`.
        """
        env = os.environ if environ is None else environ
        cert, key = env.get(ENV_CERT, "").strip(), env.get(ENV_KEY, "").strip()
        if not cert and not key:
            return None
        if not cert or not key:
            missing, given = (ENV_CERT, ENV_KEY) if not cert else (ENV_KEY, ENV_CERT)
            raise CredentialsError(
                f"{given} is set but {missing} is not; set both (the certificate chain and its "
                "private key), or neither to write files without Content Credentials"
            )
        password = env.get(ENV_KEY_PASSWORD) or None
        tsa = env.get(ENV_TSA_URL) or None
        chain_pem = (
            cert.encode()
            if cert.startswith("-----BEGIN")
            else _read_pem(Path(cert).expanduser(), f"certificate chain ({ENV_CERT})")
        )
        key_pem = (
            key.encode()
            if key.startswith("-----BEGIN")
            else _read_pem(Path(key).expanduser(), f"private key ({ENV_KEY})")
        )
        return cls.from_pem(
            chain_pem,
            key_pem,
            password=password,
            timestamp_url=tsa,
            source=f"the environment ({ENV_CERT}, {ENV_KEY})",
        )

    @classmethod
    def development(cls) -> SigningCredentials:
        """A throwaway CA and leaf certificate made in this process, for trying signing out.

        The signer is "emo development signer", issued by "emo development CA", both
        marked untrusted: no viewer has that CA on its trust list, so every viewer shows
        the signature as valid but from an unknown (untrusted) signer. The same pair is
        reused for the life of the process and never written to disk.

        Raises
        ------
        CredentialsError
            If ``cryptography`` is not installed.
        """
        with _DEV_LOCK:
            if not _DEV_CACHE:
                from emo.provenance.dev_certificates import make_certificate_chain

                chain, key = make_certificate_chain(
                    ca_name="emo development CA",
                    signer_name="emo development signer",
                    organization=_DEV_NOTE,
                )
                made = cls.from_pem(chain, key, source="a development key made by emo")
                _DEV_CACHE.append(replace(made, is_development=True))
            return _DEV_CACHE[0]


def _read_pem(path: Path, what: str) -> bytes:
    if not path.is_file():
        raise CredentialsError(
            f"{what} file {os.fspath(path)!r} does not exist; give the path of a PEM file"
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CredentialsError(f"cannot read the {what} file {os.fspath(path)!r}: {exc}") from exc


def _describe_name(name: Any) -> str:
    from cryptography.x509.oid import NameOID

    parts = []
    for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME):
        for attribute in name.get_attributes_for_oid(oid):
            parts.append(str(attribute.value))
    return ", ".join(parts) if parts else name.rfc4514_string()


def _extension(cert: Any, kind: Any) -> Any:
    from cryptography import x509

    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _check_leaf(leaf: Any, source: str) -> None:
    """Refuse, with a precise message, a leaf certificate the C2PA SDK would refuse."""
    from cryptography import x509

    where = f"the signing certificate (first in the chain from {source})"
    constraints = _extension(leaf, x509.BasicConstraints)
    if constraints is not None and constraints.ca:
        raise CredentialsError(
            f"{where} is a CA certificate; C2PA signs with an end-entity certificate that a CA "
            "issued: put that leaf certificate first in the chain"
        )
    if leaf.issuer == leaf.subject:
        raise CredentialsError(
            f"{where} is self-signed, which the C2PA SDK refuses; use a certificate issued by a "
            "CA (your own CA will do: viewers then show the signer as untrusted), or the "
            "development key (emo generate --c2pa-dev-key)"
        )
    usage = _extension(leaf, x509.KeyUsage)
    if usage is None or not usage.digital_signature:
        raise CredentialsError(
            f"{where} lacks the digitalSignature key usage the C2PA SDK requires"
        )
    if _extension(leaf, x509.ExtendedKeyUsage) is None:
        raise CredentialsError(
            f"{where} has no extended key usage; the C2PA SDK requires one, usually "
            "emailProtection (1.3.6.1.5.5.7.3.4)"
        )
    if _extension(leaf, x509.AuthorityKeyIdentifier) is None:
        raise CredentialsError(
            f"{where} has no authority key identifier extension, which the C2PA SDK requires"
        )
    now = dt.datetime.now(dt.timezone.utc)
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        raise CredentialsError(
            f"{where} is not valid now (valid from {leaf.not_valid_before_utc:%Y-%m-%d} to "
            f"{leaf.not_valid_after_utc:%Y-%m-%d}); renew it"
        )


def _load_key(pem: bytes, password: bytes | str | None, source: str) -> Any:
    from cryptography.hazmat.primitives import serialization

    secret = password.encode() if isinstance(password, str) else password
    try:
        return serialization.load_pem_private_key(pem, password=secret)
    except TypeError as exc:  # encrypted without a password, or a password for a plain key
        hint = (
            f"set {ENV_KEY_PASSWORD} (or pass password=)"
            if secret is None
            else "the key is not encrypted: give no password"
        )
        raise CredentialsError(f"cannot read the private key from {source}: {exc}; {hint}") from exc
    except ValueError as exc:
        raise CredentialsError(
            f"cannot read the private key from {source} ({exc}); give a PEM private key "
            "('-----BEGIN PRIVATE KEY-----'), and the right password if it is encrypted"
        ) from exc


def _algorithm_for(key: Any, source: str) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(key, ec.EllipticCurvePrivateKey):
        curves = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
        if key.curve.name in curves:
            return curves[key.curve.name]
        raise CredentialsError(
            f"the private key from {source} uses the curve {key.curve.name}; C2PA signs with "
            "P-256, P-384 or P-521"
        )
    if isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    raise CredentialsError(
        f"the private key from {source} is a {type(key).__name__}; C2PA signs with EC "
        "(P-256/384/521), RSA (PSS) or Ed25519 keys"
    )


def _public_der(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    data: bytes = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data
