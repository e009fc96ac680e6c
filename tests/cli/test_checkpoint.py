"""``checkpoint export|import`` and ``reset`` on an in-memory cluster: the files, the signatures,
the positions, and the refusals while workers run."""
from __future__ import annotations

from click.testing import CliRunner

from app.cli import checkpoint_file, main
from app.cli.cluster import Group
from app.state.checkpointed import envelope, open_envelope
from app.state.signing import Signer
from tests.cli.fakes import KEY, FakeCluster, context

CHANGELOG = "fraud-test-model-checkpoints-changelog"
OTHER_KEY = "the state key of another cluster, 32+"
RUNNING = Group("fraud-test", "Stable", [{"member_id": "m-1", "client_id": "faust-0.15.3", "client_host": "/10.1.2.3"}])


def invoke(cluster, args, **overrides):
    return CliRunner().invoke(main, args, obj=context(cluster, **overrides))


def cluster_with_checkpoint(partition=0, key=KEY, positions=None, blob=b"FRDLmodel-bytes") -> FakeCluster:
    cluster = FakeCluster()
    cluster.add_topic(CHANGELOG, partitions=2)
    value = envelope(positions if positions is not None else {"transactions": 41, "labels": 7}, blob)
    cluster.append(CHANGELOG, partition, b"%d" % partition, Signer(key).sign(b"old", context=b"%d" % partition))
    cluster.append(CHANGELOG, partition, b"%d" % partition, Signer(key).sign(value, context=b"%d" % partition))
    return cluster


def test_export_writes_the_latest_verified_checkpoint_with_a_digest(tmp_path):
    out = tmp_path / "p1.fsckpt"
    result = invoke(cluster_with_checkpoint(partition=1), ["checkpoint", "export", "--partition", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    header, payload = checkpoint_file.read(out.read_bytes())
    assert header["partition"] == 1 and header["app_id"] == "fraud-test" and header["changelog_offset"] == 1
    assert header["positions"] == {"transactions": 41, "labels": 7}
    assert open_envelope(payload) == ({"transactions": 41, "labels": 7}, b"FRDLmodel-bytes")
    assert "exported the model of partition 1" in result.output


def test_export_refuses_a_checkpoint_this_key_did_not_sign(tmp_path):
    out = tmp_path / "p0.fsckpt"
    result = invoke(cluster_with_checkpoint(key=OTHER_KEY), ["checkpoint", "export", "-p", "0", "-o", str(out)])
    assert result.exit_code == 1 and "does not verify with this FRAUD_STATE_KEY (other_key" in result.output
    assert not out.exists()


def test_export_without_a_checkpoint_or_a_changelog_says_so(tmp_path):
    out = str(tmp_path / "x")
    cluster = cluster_with_checkpoint(partition=0)
    cluster.append(CHANGELOG, 0, b"0", None)  # a reset
    result = invoke(cluster, ["checkpoint", "export", "-p", "0", "-o", out])
    assert result.exit_code == 1 and "partition 0 has no model checkpoint" in result.output
    result = invoke(FakeCluster(), ["checkpoint", "export", "-p", "0", "-o", out])
    assert result.exit_code == 1 and f"the changelog topic {CHANGELOG} does not exist" in result.output
    result = invoke(cluster, ["checkpoint", "export", "-p", "5", "-o", out])
    assert result.exit_code == 1 and "has no partition 5 (it has 2)" in result.output


def test_partition_is_required_and_not_negative(tmp_path):
    for args in (["checkpoint", "export", "-o", str(tmp_path / "x")], ["reset"], ["reset", "-p", "-1"],
                 ["checkpoint", "import", "-p", "0", str(tmp_path / "missing")]):
        result = invoke(FakeCluster(), args)
        assert result.exit_code == 2, (args, result.output)


def exported(tmp_path, key=KEY, partition=0):
    out = tmp_path / "model.fsckpt"
    result = invoke(cluster_with_checkpoint(key=key, partition=partition), ["checkpoint", "export", "-p", str(partition),
                                                                           "-o", str(out)], state_key=key)
    assert result.exit_code == 0, result.output
    return out


def test_import_signs_with_this_key_for_the_target_partition_and_drops_positions(tmp_path):
    path = exported(tmp_path, key=OTHER_KEY)  # from another cluster, with its own key
    target = FakeCluster()
    target.add_topic(CHANGELOG, partitions=2)
    result = invoke(target, ["checkpoint", "import", "--partition", "1", str(path)])
    assert result.exit_code == 0, result.output
    (topic, partition, key, value), = target.sent
    assert (topic, partition, key) == (CHANGELOG, 1, b"1")
    assert open_envelope(Signer(KEY).verify(value, context=b"1")) == ({}, b"FRDLmodel-bytes")
    assert "positions dropped" in result.output


def test_import_keeps_positions_when_asked(tmp_path):
    target = FakeCluster()
    target.add_topic(CHANGELOG, partitions=2)
    result = invoke(target, ["checkpoint", "import", "-p", "0", "--keep-positions", str(exported(tmp_path))])
    assert result.exit_code == 0, result.output
    value = Signer(KEY).verify(target.sent[0][3], context=b"0")
    assert open_envelope(value)[0] == {"transactions": 41, "labels": 7}


def test_import_creates_the_changelog_of_an_app_that_never_ran(tmp_path):
    path = exported(tmp_path)
    target = FakeCluster()
    result = invoke(target, ["checkpoint", "import", "-p", "1", str(path)])
    assert result.exit_code == 0, result.output
    assert target.created == [CHANGELOG] and target.sent[0][:3] == (CHANGELOG, 1, b"1")
    result = invoke(FakeCluster(), ["checkpoint", "import", "-p", "2", str(path)])  # the app has 2 partitions
    assert result.exit_code == 1 and "partition 2 does not exist" in result.output


def test_import_refuses_while_a_worker_runs_unless_forced(tmp_path):
    path = exported(tmp_path)
    target = FakeCluster(group=RUNNING)
    target.add_topic(CHANGELOG, partitions=2)
    result = invoke(target, ["checkpoint", "import", "-p", "0", str(path)])
    assert result.exit_code == 1 and not target.sent
    assert "refused: the consumer group fraud-test of the app is Stable with 1 member (faust-0.15.3 at /10.1.2.3)" \
        in result.output
    result = invoke(target, ["checkpoint", "import", "-p", "0", "--force", str(path)])
    assert result.exit_code == 0 and len(target.sent) == 1
    assert "warning: --force: the consumer group fraud-test" in result.output


def test_import_refuses_when_the_group_cannot_be_described(tmp_path):
    target = FakeCluster(group=ConnectionError("no broker"))
    result = invoke(target, ["checkpoint", "import", "-p", "0", str(exported(tmp_path))])
    assert result.exit_code == 1 and "could not describe the consumer group fraud-test" in result.output
    assert not target.sent


def test_import_refuses_an_altered_file_or_one_without_a_model(tmp_path):
    path = exported(tmp_path)
    data = bytearray(path.read_bytes())
    data[-40] ^= 0xFF
    altered = tmp_path / "altered"
    altered.write_bytes(bytes(data))
    not_a_model = tmp_path / "not-a-model"
    not_a_model.write_bytes(checkpoint_file.dump({}, envelope({}, b"FRDAdetector")))
    target = FakeCluster()
    target.add_topic(CHANGELOG, partitions=2)
    result = invoke(target, ["checkpoint", "import", "-p", "0", str(altered)])
    assert result.exit_code == 1 and "SHA-256 does not match" in result.output
    result = invoke(target, ["checkpoint", "import", "-p", "0", str(not_a_model)])
    assert result.exit_code == 1 and "does not hold a model checkpoint" in result.output
    assert not target.sent


def test_reset_writes_a_tombstone_for_the_partition_key():
    cluster = cluster_with_checkpoint(partition=1)
    result = invoke(cluster, ["reset", "--partition", "1"], warm_start_path="/models/warm.ckpt")
    assert result.exit_code == 0, result.output
    assert cluster.sent == [(CHANGELOG, 1, b"1", None)]
    assert "starts from the warm start of its WARM_START_PATH (here: /models/warm.ckpt)" in result.output
    result = invoke(cluster, ["reset", "--partition", "1"])
    assert result.exit_code == 0 and "nothing to reset" in result.output and len(cluster.sent) == 1


def test_reset_refuses_while_a_worker_runs_unless_forced():
    cluster = cluster_with_checkpoint(partition=0)
    cluster.group = RUNNING
    result = invoke(cluster, ["reset", "-p", "0"])
    assert result.exit_code == 1 and "refused: the consumer group" in result.output and not cluster.sent
    result = invoke(cluster, ["reset", "-p", "0", "--force"])
    assert result.exit_code == 0 and cluster.sent == [(CHANGELOG, 0, b"0", None)]


def test_help_says_what_safely_means():
    for args in (["checkpoint", "import", "--help"], ["reset", "--help"], ["--help"]):
        result = invoke(FakeCluster(), args)
        assert result.exit_code == 0
        text = " ".join(result.output.split())
        assert "no worker of the app runs" in text and "consumer group" in text and "--force" in text
