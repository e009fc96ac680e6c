import pytest

from app.learning import snapshots
from app.learning.learner import OnlineLearner
from app.learning.pipeline import model_factory
from app.learning.snapshots import Snapshot, SnapshotError, decode, encode, version_of
from app.state.signing import Signer

SIGNER = Signer("x" * 32)


def snapshot(**changes) -> Snapshot:
    learner = OnlineLearner(model_factory(kind="lr"))
    learner.learn({"V1": 1.0}, 1)
    fields = dict(model_name=learner.name, version=version_of(learner.name, 0, 5), examples_offset=7,
                  positions={"transactions:0": 4, "labels:1": 2}, received=5, sample_rate=0.1,
                  model=learner.to_checkpoint(), learned=3)
    fields.update(changes)
    return Snapshot(**fields)


def test_round_trip_and_the_model_loads():
    original = snapshot()
    back = decode(encode(original, SIGNER), SIGNER)
    assert back == original
    restored = OnlineLearner.from_checkpoint(back.model)
    assert restored.events_learned == 1 and restored.predict_proba({"V1": 1.0}) > 0.5


def test_nothing_is_read_before_the_signature_is_checked(monkeypatch):
    blob = encode(snapshot(), SIGNER)
    monkeypatch.setattr(snapshots.json, "loads", lambda *_: pytest.fail("read before the signature was checked"))
    for bad, reason in [(blob[:-3] + b"abc", "bad_signature"), (blob[:40], "unsigned")]:
        with pytest.raises(SnapshotError) as caught:
            decode(bad, SIGNER)
        assert caught.value.reason == reason


def test_another_key_is_refused():
    with pytest.raises(SnapshotError) as caught:
        decode(encode(snapshot(), Signer("y" * 32)), SIGNER)
    assert caught.value.reason == "other_key"


def test_a_checkpoint_signed_for_a_partition_is_not_a_snapshot():
    signed_checkpoint = SIGNER.sign(snapshot().model, context=b"0")
    with pytest.raises(SnapshotError) as caught:
        decode(signed_checkpoint, SIGNER)
    assert caught.value.reason == "bad_signature"


def test_a_model_altered_after_signing_is_refused():
    blob = bytearray(encode(snapshot(), SIGNER))
    blob[200] ^= 1
    with pytest.raises(SnapshotError) as caught:
        decode(bytes(blob), SIGNER)
    assert caught.value.reason == "bad_signature"


def header(text: bytes) -> bytes:
    return b"FSN1" + len(text).to_bytes(4, "big") + text


@pytest.mark.parametrize("body, reason", [
    (b"XXXX\x00\x00\x00\x02{}", "bad_header"),
    (b"FSN1", "bad_header"),
    (b"FSN1\x00\x00\x00\x02{}", "unreadable"),
    (b"FSN1\x00\x00\x00\x05{nope", "unreadable"),
    (header(b'{"model_name":"m","version":"m-g0@0","examples_offset":"x","positions":{},'
            b'"received":0,"learned":0,"sample_rate":1.0}'), "unreadable"),
    (header(b'{"model_name":"m","version":"m-g0@0","examples_offset":1,"positions":{}}'), "unreadable"),
    (header(b'{"model_name":"m","version":"m-g0@0","examples_offset":1,"positions":{"t:0":1.5},'
            b'"received":0,"learned":0,"sample_rate":1.0}'), "unreadable"),
    (header(b'{"model_name":"m","version":"m-g0@0","examples_offset":1,"positions":{},'
            b'"received":0,"learned":0,"sample_rate":1.0,"errors":"not base64!"}'), "unreadable"),
])
def test_signed_bytes_that_are_not_a_snapshot(body, reason):
    with pytest.raises(SnapshotError) as caught:
        decode(SIGNER.sign(body, context=snapshots.CONTEXT), SIGNER)
    assert caught.value.reason == reason


def test_a_sample_rate_outside_zero_one_is_refused():
    with pytest.raises(SnapshotError):
        decode(encode(snapshot(sample_rate=0.0), SIGNER), SIGNER)


def test_version_and_generation():
    s = snapshot(version=version_of("arf+lr", 4, 12_000))
    assert s.version == "arf+lr-g4@12000" and s.generation == 4


def test_the_error_monitors_window_goes_with_the_model_and_a_reader_without_it_reads_the_rest():
    from app.drift.detectors import error_monitor

    monitor = error_monitor(settle=0)
    for i in range(300):
        monitor.update("error", float(i % 7 == 0), i)
    original = snapshot(errors=monitor.to_checkpoint())
    blob = encode(original, SIGNER)
    back = decode(blob, SIGNER)
    assert back == original and back.model == original.model
    assert error_monitor(settle=0).restore(back.errors).count("error") == 300
    # the window is in the header, not between the header and the model: the model bytes are where they were
    without = encode(snapshot(), SIGNER)
    assert SIGNER.verify(blob, context=snapshots.CONTEXT).endswith(original.model)
    assert decode(without, SIGNER).errors == b"" and b'"errors"' not in without


def test_event_times_go_with_the_snapshot_and_an_older_snapshot_without_them_reads_as_none():
    with_times = Snapshot("lr", "lr-g0@2", 1, positions={"transactions:0": 5}, event_times={"transactions:0": 1.5e9})
    assert decode(encode(with_times, SIGNER), SIGNER).event_times == {"transactions:0": 1.5e9}
    without = Snapshot("lr", "lr-g0@2", 1, positions={"transactions:0": 5})
    assert b"event_times" not in encode(without, SIGNER)  # the header an older reader reads
    assert decode(encode(without, SIGNER), SIGNER).event_times == {}
    bad = Snapshot("lr", "lr-g0@2", 1, event_times={"transactions:0": "soon"})
    with pytest.raises(SnapshotError, match="wrong type"):
        decode(encode(bad, SIGNER), SIGNER)
