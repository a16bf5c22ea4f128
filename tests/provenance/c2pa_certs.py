"""Throwaway certificate authorities and signing certificates for the C2PA tests.

Made here with ``cryptography``, independently of emo's development key, with knobs
that break one requirement at a time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PEM = serialization.Encoding.PEM


@dataclass
class PKI:
    """A CA and a leaf it issued, written as PEM files."""

    ca_pem: bytes
    chain_pem: bytes
    key_pem: bytes
    chain: Path
    key: Path
    ca: Path


def _name(common: str, org: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        ]
    )


def _usage(*, sign: bool, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def make_pki(
    folder: Path,
    *,
    name: str = "test",
    leaf_is_ca: bool = False,
    self_signed: bool = False,
    eku: bool = True,
    digital_signature: bool = True,
    expired: bool = False,
    rsa_key: bool = False,
    password: bytes | None = None,
) -> PKI:
    """Write ``<name>-ca.pem``, ``<name>-chain.pem`` (leaf then CA) and ``<name>-key.pem``."""
    now = dt.datetime.now(dt.timezone.utc)
    start, end = now - dt.timedelta(days=1), now + dt.timedelta(days=7)
    if expired:
        start, end = now - dt.timedelta(days=30), now - dt.timedelta(days=2)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"{name} CA", "emo tests CA org")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=60))
        .not_valid_after(now + dt.timedelta(days=60))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_usage(sign=False, cert_sign=True), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if rsa_key
        else ec.generate_private_key(ec.SECP256R1())
    )
    subject = _name(f"{name} signer", "emo tests signer org")
    issuer_key = key if self_signed else ca_key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if self_signed else ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=leaf_is_ca, path_length=None), critical=True)
        .add_extension(_usage(sign=digital_signature, cert_sign=leaf_is_ca), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if eku:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
    leaf = builder.sign(issuer_key, hashes.SHA256())
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    key_pem = key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, encryption)
    ca_pem = ca.public_bytes(PEM)
    chain_pem = leaf.public_bytes(PEM) + (b"" if self_signed else ca_pem)
    paths = {kind: folder / f"{name}-{kind}.pem" for kind in ("ca", "chain", "key")}
    paths["ca"].write_bytes(ca_pem)
    paths["chain"].write_bytes(chain_pem)
    paths["key"].write_bytes(key_pem)
    return PKI(ca_pem, chain_pem, key_pem, paths["chain"], paths["key"], paths["ca"])
