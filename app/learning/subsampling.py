"""Negative subsampling for the central learner: learn every fraud and a share of the genuine examples.

Learning costs about five times what predicting does, and the one learner of central learning
(``docs/scaleout.md``) learns for the whole deployment. With a rate ``r`` below 1 it learns every
fraud and a share ``r`` of the genuine examples; on the ULB file ``r = 0.1`` divides its CPU per
event by about 8 without losing ranking quality (``docs/scaleout.md``, "Negative subsampling").

:func:`keep` chooses by a hash of the transaction id, not a random generator: every process that
sees an example (a new owner of the learner reading examples again after a snapshot included)
makes the same choice, and the share is fixed, which the correction needs. A model that learned so
believes frauds are ``1 / r`` times as common as they are; :func:`correct` divides the odds back
before a decision threshold is applied. The correction is increasing in ``p``, so rankings (and the
AUCs) are unchanged.

The hash is the one of :func:`evaluation.scaleout.keep_for_learning` (BLAKE2b, 8 bytes, of the id's
UTF-8 bytes), so the service keeps the examples the study measured.

>>> keep("tx-000000001", 1, 0.1)  # every fraud
True
>>> [i for i in range(60) if keep(f"tx-{i:09d}", 0, 0.1)]  # genuine: the ids whose hash falls low
[37, 40, 44, 51, 55]
>>> round(correct(0.5, 0.1), 4)  # even odds among the learned examples: 1 to 10 in the stream
0.0909
"""
from __future__ import annotations

import hashlib

__all__ = ["correct", "keep", "check_rate"]

_RANGE = 2.0 ** 64


def check_rate(rate: float) -> float:
    """``rate`` if it is a share in (0, 1]; ``ValueError`` otherwise (0 would learn no genuine example
    and make every probability 1 after correction).

    >>> check_rate(0.1)
    0.1
    >>> check_rate(0.0)
    Traceback (most recent call last):
    ...
    ValueError: the learning sample rate must be in (0, 1], got 0.0
    """
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"the learning sample rate must be in (0, 1], got {rate}")
    return rate


def keep(transaction_id: str, label: int, rate: float) -> bool:
    """Whether the learner learns this labelled example: every fraud (``label`` 1), every example at
    ``rate`` 1, and otherwise a genuine one when the hash of ``transaction_id`` falls in the first
    ``rate`` of the hash range.

    >>> keep("tx-1", 0, 1.0), keep("tx-1", 1, 0.01)
    (True, True)
    >>> kept = sum(keep(f"tx-{i:09d}", 0, 0.2) for i in range(10_000))
    >>> 1900 < kept < 2100
    True
    """
    if label or rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hashlib.blake2b(transaction_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < rate * _RANGE


def correct(p: float, rate: float) -> float:
    """The fraud probability in the stream given the probability ``p`` of a model that learned every
    fraud and a share ``rate`` of the genuine examples: ``p / (p + (1 - p) / rate)``. The identity at
    ``rate`` 1; 0 and 1 stay as they are.

    >>> correct(0.3, 1.0), correct(0.0, 0.2), correct(1.0, 0.2)
    (0.3, 0.0, 1.0)
    >>> correct(0.2, 0.5) < correct(0.4, 0.5) < 0.4
    True
    """
    if rate >= 1.0 or p <= 0.0:
        return p
    return p / (p + (1.0 - p) / rate)
