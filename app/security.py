"""Kafka security from settings: SASL and/or SSL, for Faust and for plain aiokafka clients.

>>> import settings
>>> kafka_client_options(settings)
{'security_protocol': 'PLAINTEXT'}
"""
from __future__ import annotations

import ssl
from typing import Any

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


def _ssl_context(conf: Any) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=conf.KAFKA_SSL_CAFILE or None)
    if conf.KAFKA_SSL_CERTFILE:
        context.load_cert_chain(conf.KAFKA_SSL_CERTFILE, conf.KAFKA_SSL_KEYFILE or None)
    return context


def kafka_client_options(conf: Any) -> dict[str, Any]:
    """Keyword arguments for aiokafka producers, consumers and admin clients."""
    protocol = conf.KAFKA_SECURITY_PROTOCOL.upper()
    if protocol not in PROTOCOLS:
        raise ValueError(f"FRAUD_KAFKA_SECURITY_PROTOCOL={protocol!r}: use one of {', '.join(PROTOCOLS)}")
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = _ssl_context(conf)
    if protocol.startswith("SASL"):
        if not conf.KAFKA_SASL_USERNAME:
            raise ValueError(f"{protocol} needs FRAUD_KAFKA_SASL_USERNAME and FRAUD_KAFKA_SASL_PASSWORD")
        options.update(sasl_mechanism=conf.KAFKA_SASL_MECHANISM, sasl_plain_username=conf.KAFKA_SASL_USERNAME,
                       sasl_plain_password=conf.KAFKA_SASL_PASSWORD)
    return options


def faust_credentials(conf: Any) -> Any:
    """Faust's ``broker_credentials`` for the configured protocol (``None`` for PLAINTEXT)."""
    import faust
    from faust.types.auth import SASLMechanism

    protocol = conf.KAFKA_SECURITY_PROTOCOL.upper()
    kafka_client_options(conf)  # validates
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(_ssl_context(conf))
    return faust.SASLCredentials(
        username=conf.KAFKA_SASL_USERNAME, password=conf.KAFKA_SASL_PASSWORD,
        ssl_context=_ssl_context(conf) if protocol == "SASL_SSL" else None,
        mechanism=SASLMechanism(conf.KAFKA_SASL_MECHANISM),
    )
