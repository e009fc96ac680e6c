"""Signed state: a checkpoint is loaded only if this key signed it under its table key; anything else
(unsigned, altered, forged, signed with another key, moved to another partition) is refused before
``load`` / ``open`` sees it, logged and counted, and the partition starts without it."""
from __future__ import annotations

import asyncio
import logging
import pickle

import pytest

from app import metrics
from app.state.checkpointed import AsyncCheckpointedStates, CheckpointedStates, envelope, open_envelope
from app.state.signing import DEVELOPMENT_KEY, SignatureError, Signer, state_signer
from tests.fakes import ChangelogTable

KEY = "k" * 32
signer = Signer(KEY)


def rejected(state: str, reason: str) -> float:
    return metrics.REGISTRY.get_sample_value("fraud_state_rejected_total", {"state": state, "reason": reason}) or 0.0


# --- the signer -------------------------------------------------------------------------------------
def test_a_signed_blob_verifies_and_comes_back_whole():
    blob = pickle.dumps({"weights": [0.1, 0.2]})
    assert signer.verify(signer.sign(blob, b"0"), b"0") == blob
    assert signer.verify(signer.sign(b"", b"")) == b""


def test_an_unsigned_blob_is_refused():
    with pytest.raises(SignatureError) as error:
        signer.verify(b"FRDL" + pickle.dumps({"format": 1}), b"0")
    assert error.value.reason == "unsigned"
    with pytest.raises(SignatureError):
        signer.verify(b"", b"0")


@pytest.mark.parametrize("at", [0, 3, -1, -40, -41])
def test_any_altered_byte_is_refused(at):
    signed = bytearray(signer.sign(b"FRDL" + pickle.dumps(list(range(20))), b"0"))
    signed[at] ^= 0x01
    with pytest.raises(SignatureError) as error:
        signer.verify(bytes(signed), b"0")
    assert error.value.reason in ("bad_signature", "other_key", "unsigned")


def test_a_forged_trailer_with_this_keys_id_is_a_bad_signature():
    forged = b"payload" + b"FSG1" + signer.key_id + bytes(32)
    with pytest.raises(SignatureError) as error:
        signer.verify(forged)
    assert error.value.reason == "bad_signature"


def test_another_key_is_refused_and_said_so():
    signed = Signer("another secret, long enough").sign(b"state", b"0")
    with pytest.raises(SignatureError) as error:
        signer.verify(signed, b"0")
    assert error.value.reason == "other_key"


def test_a_blob_moved_to_another_key_is_refused():
    with pytest.raises(SignatureError) as error:
        signer.verify(signer.sign(b"state", b"features:0"), b"challenger:0")
    assert error.value.reason == "bad_signature"


def test_short_keys_are_refused():
    with pytest.raises(ValueError, match="at least 16 bytes"):
        Signer("short")


def test_without_a_configured_key_the_public_development_key_is_used_and_said_so(caplog):
    with caplog.at_level(logging.WARNING, logger="app.state.signing"):
        dev = state_signer("")
    assert dev.key_id == Signer(DEVELOPMENT_KEY).key_id
    assert "FRAUD_STATE_KEY is not set" in caplog.text
    assert state_signer(KEY).key_id == signer.key_id != dev.key_id


# --- checkpointed states ----------------------------------------------------------------------------
class Tally:
    def __init__(self, n: int = 0) -> None:
        self.n = n


def tallies(table, loaded: list, key_signer=signer) -> CheckpointedStates[Tally]:
    def load(blob: bytes) -> Tally:
        loaded.append(blob)
        return Tally(int(blob))
    return CheckpointedStates(table, "tally", new=Tally, dump=lambda t: str(t.n).encode(), load=load,
                              progress=lambda t: t.n, every=1, signer=key_signer)


def test_checkpoints_are_written_signed_and_restored():
    table, loaded = ChangelogTable(), []
    first = tallies(table, loaded)
    first.get(2).n = 5
    first.advance(2, 41)
    first.checkpoint_and_forget([2])
    (partition, key, value), = table.written
    assert open_envelope(value)[0] == 41  # the positions stay readable without the key
    assert signer.verify(value, key) == envelope(41, b"5")
    table.data[key] = value
    second = tallies(table, loaded)
    assert second.get(2).n == 5 and second.seen(2, 41) and loaded == [b"5"]


@pytest.mark.parametrize("reason, value", [
    ("unsigned", envelope(7, b"99")),
    ("other_key", Signer("another secret, long enough").sign(envelope(7, b"99"), b"0")),
    ("bad_signature", signer.sign(envelope(7, b"99"), b"0")[:-1] + b"\x00"),
    ("bad_signature", signer.sign(envelope(7, b"99"), b"1")),  # partition 1's checkpoint under partition 0
])
def test_a_checkpoint_that_does_not_verify_is_never_loaded(reason, value, caplog):
    table, loaded = ChangelogTable(), []
    table.data[b"0"] = value
    before = rejected("tally", reason)
    with caplog.at_level(logging.ERROR, logger="app.state.checkpointed"):
        states = tallies(table, loaded)
        state = states.get(0)
    assert loaded == [] and state.n == 0 and not states.seen(0, 0)  # a new one, no position
    assert rejected("tally", reason) == before + 1
    assert "partition 0: refused the tally checkpoint" in caplog.text and "key b'0'" in caplog.text
    assert reason in caplog.text


def test_without_a_signer_values_are_stored_as_they_are():
    table, loaded = ChangelogTable(), []
    states = tallies(table, loaded, key_signer=None)
    states.get(0).n = 3
    states.checkpoint(0)
    assert table.written == [(0, b"0", envelope(None, b"3"))]


# --- the async sibling (the scorer's): a refused blob reaches open() as None ----------------------------
def async_states(table, opened: list) -> AsyncCheckpointedStates:
    async def open_(partition, blob, positions):
        opened.append((blob, dict(positions)))
        return Tally(int(blob) if blob else 0)

    async def dump(tally):
        return str(tally.n).encode()

    return AsyncCheckpointedStates(table, "model", open=open_, dump=dump, pending=lambda t: 1, every=1,
                                   signer=signer)


def test_async_checkpoints_are_signed_and_restored():
    table, opened = ChangelogTable(), []

    async def run():
        first = async_states(table, opened)
        (await first.get(0)).n = 8
        first.advance(0, "transactions", 12)
        await first.checkpoint_and_forget([0])
        table.data.update({k: v for _, k, v in table.written})
        second = async_states(table, opened)
        return (await second.get(0)).n, second.seen(0, "transactions", 12)

    assert asyncio.run(run()) == (8, True)
    assert opened[-1] == (b"8", {"transactions": 12})
    assert signer.verify(table.data[b"0"], b"0") == envelope({"transactions": 12}, b"8")


def test_an_async_checkpoint_that_does_not_verify_reaches_open_as_none(caplog):
    table, opened = ChangelogTable(), []
    payload = envelope({"transactions": 99}, b"FRDL" + pickle.dumps({"format": 1}))
    table.data[b"0"] = payload + b"FSG1" + signer.key_id + bytes(32)  # a forged signature
    before = rejected("model", "bad_signature")
    with caplog.at_level(logging.ERROR, logger="app.state.checkpointed"):
        state = asyncio.run(async_states(table, opened).get(0))
    assert opened == [(None, {})] and state.n == 0
    assert rejected("model", "bad_signature") == before + 1
    assert "refused the model checkpoint" in caplog.text


# --- the scorer: its model checkpoints and pending features ---------------------------------------------
def test_the_scorer_signs_its_model_checkpoints_and_refuses_pickled_pending_features():
    from app.learning.model_host import LocalHost
    from app.learning.pipeline import model_factory
    from app.records import Transaction
    from app.scoring import Item, Scorer
    from app.state.pending import encode_pending

    async def local_host():
        return LocalHost()

    checkpoints, pending = ChangelogTable(), ChangelogTable()
    pending.data[b"tx-old"] = pickle.dumps(({"V1": 0.5}, 0.25, 100.0, 0))  # written by an earlier version
    pending.data[b"tx-new"] = encode_pending({"V1": 0.5}, 0.25, 100.0, 0)
    checkpoints.data[b"0"] = envelope({"transactions": 10**9}, b"FRDL" + pickle.dumps({"format": 1})) + (
        b"FSG1" + signer.key_id + bytes(32))
    before = rejected("pending features", "format"), rejected("model", "bad_signature")

    def scorer() -> Scorer:
        return Scorer(local_host, checkpoints, pending, model_factory=model_factory(kind="lr"), record=Transaction,
                      signer=signer)

    tx = Transaction(transaction_id="tx-1", event_time=1.7e9, Amount=5.0, Class=1, **{f"V{i}": 0.0 for i in range(1, 29)})

    async def first_owner():
        first = scorer()
        chunks = await first.submit([Item(tx, b"tx-1", partition=0, offset=0)])
        [score async for chunk in first.scored(chunks) for score in chunk]
        state = first.partitions[0]
        await first.close()
        return state

    state = asyncio.run(first_owner())
    assert not state.learner.restored and state.learner.events_learned == 1  # the forged one was not loaded
    assert b"tx-new" in state.pending and b"tx-old" not in state.pending
    assert (rejected("pending features", "format"), rejected("model", "bad_signature")) == (before[0] + 1, before[1] + 1)
    partition, key, value = checkpoints.written[-1]
    assert (partition, key) == (0, b"0") and open_envelope(signer.verify(value, key))[0] == {"transactions": 0}
    checkpoints.data.update({k: v for _, k, v in checkpoints.written})

    async def second_owner():
        second = scorer()
        opened = await second.states.get(0)
        return opened.learner
    learner = asyncio.run(second_owner())
    assert learner.restored and learner.events_learned == 1  # its own signed checkpoint is restored
