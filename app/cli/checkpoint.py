"""``fraudstream checkpoint export|import``: a partition's model to and from a file.

A partition's model lives in the model checkpoint table, whose changelog topic
(``<APP_ID>-<CHECKPOINT_TABLE>-changelog``) holds, in partition ``p`` under the key ``p`` (as text),
the latest checkpoint of source partition ``p``: the stream positions and the model (see
:func:`app.state.checkpointed.envelope`), signed with the app's ``FRAUD_STATE_KEY``
(:mod:`app.state.signing`). ``export`` reads it, checks the signature with this environment's
key and writes a checkpoint file (:mod:`app.cli.checkpoint_file`, which carries a SHA-256 of its
content); ``import`` checks a file's digest, signs its checkpoint with this environment's key and
writes it to the changelog partition of the partition it is imported as, where the next worker
to own that partition restores it. So a model moves between clusters (or apps) that have
different keys: export with the first one's environment, import with the second one's.
"""
from __future__ import annotations

import datetime
from pathlib import Path

import click

from app.cli import checkpoint_file
from app.cli.safety import FORCE_HELP, ensure_safe
from app.state.changelog import checkpoint_key
from app.state.checkpointed import envelope, open_envelope
from app.state.signing import SignatureError, state_signer

MODEL_MAGIC = b"FRDL"  # the model checkpoint's header (app.learning.learner)

PARTITION = click.option("--partition", "-p", type=click.IntRange(min=0), required=True,
                         help="The source partition (of the transactions topic) whose model it is.")


def stored_checkpoint(context, partition: int) -> tuple[bytes | None, int | None]:
    """The signed checkpoint of ``partition`` in the changelog and its offset; (None, None) when it
    has none (never written, or deleted). :class:`click.ClickException` when the changelog topic
    or partition does not exist."""
    topic = context.changelog_topic
    partitions = context.cluster.partitions(topic)
    if not partitions:
        raise click.ClickException(f"the changelog topic {topic} does not exist (no worker of app "
                                   f"{context.app_id} has run on this cluster, or the app id is not the right one)")
    if partition not in partitions:
        raise click.ClickException(f"{topic} has no partition {partition} (it has {len(partitions)})")
    key = checkpoint_key(partition)
    latest = None
    for record in context.cluster.read(topic, [partition]):
        if record.key == key:
            latest = record
    if latest is None or latest.value is None:
        return None, None
    return latest.value, latest.offset


def writable_partition(context, partition: int) -> str:
    """The changelog topic, once it is sure to have ``partition``: created as a worker would create
    it when it does not exist yet (a cluster where the app never ran)."""
    topic = context.changelog_topic
    partitions = context.cluster.partitions(topic)
    if not partitions:
        if partition >= context.topic_partitions:
            raise click.ClickException(f"partition {partition} does not exist: the app has {context.topic_partitions} "
                                       f"partitions (TOPIC_PARTITIONS)")
        context.cluster.create_compacted_topic(topic, context.topic_partitions, context.topic_replicas)
        click.echo(f"created {topic} ({context.topic_partitions} partitions, compacted), as a worker would")
    elif partition not in partitions:
        raise click.ClickException(f"{topic} has no partition {partition} (it has {len(partitions)})")
    return topic


@click.group(short_help="A partition's model to and from a file.")
def checkpoint() -> None:
    """A partition's model to and from a file (to move it to another cluster or app, or keep a copy)."""


@checkpoint.command("export", short_help="A partition's model checkpoint to a file.")
@PARTITION
@click.option("--out", "-o", "out", type=click.Path(dir_okay=False, writable=True, path_type=Path), required=True,
              help="The file to write.")
@click.pass_obj
def export(context, partition: int, out: Path) -> None:
    """Write the latest checkpoint of a partition's model to a file.

    The checkpoint is read from the model checkpoint table's changelog topic and its signature is
    checked with FRAUD_STATE_KEY (a checkpoint this key did not sign is refused); the file carries
    the checkpoint, where it came from and a SHA-256 of its content. Reading the changelog does not
    disturb running workers; the file holds the last checkpoint they wrote (see CHECKPOINT_EVERY_EVENTS),
    not what they learned since.
    """
    signed, offset = stored_checkpoint(context, partition)
    if signed is None:
        raise click.ClickException(f"partition {partition} has no model checkpoint in {context.changelog_topic} "
                                   f"(none written yet, or deleted by a reset)")
    signer = state_signer(context.state_key)
    try:
        value = signer.verify(signed, context=checkpoint_key(partition))
    except SignatureError as exc:
        raise click.ClickException(f"refused: the checkpoint of partition {partition} at offset {offset} does not "
                                   f"verify with this FRAUD_STATE_KEY ({exc})") from exc
    positions, blob = open_envelope(value)
    header = {
        "app_id": context.app_id, "table": context.checkpoint_table, "partition": partition,
        "changelog_offset": offset, "key_id": signer.key_id.hex(), "positions": positions,
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    data = checkpoint_file.dump(header, value)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
    click.echo(f"exported the model of partition {partition} of app {context.app_id} (changelog offset {offset}, "
               f"{len(blob)} bytes of model, positions {positions}) to {out}")


@checkpoint.command("import", short_help="A file's model as a partition's checkpoint.")
@PARTITION
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--keep-positions", is_flag=True,
              help="Keep the stream positions saved with the checkpoint. Only when importing into the app it was "
                   "exported from (restoring a copy): the worker then learns the events after them again. By "
                   "default they are dropped, since offsets of another cluster's topics mean nothing here: the "
                   "worker goes on from the app's committed offsets.")
@click.option("--force", is_flag=True, help=FORCE_HELP)
@click.pass_obj
def import_(context, partition: int, file: Path, keep_positions: bool, force: bool) -> None:
    """Write the model in FILE (from `checkpoint export`) as the checkpoint of a partition.

    The file's SHA-256 is checked, its checkpoint is signed with this FRAUD_STATE_KEY and written to
    the partition's key in the changelog partition of the partition, where the next worker to own
    it restores it. Workers unpickle the model: import only files exported from a cluster you
    trust. Safely means: no worker of the app runs (its consumer group has no members), so none
    can overwrite the import with its own checkpoint; otherwise the import is refused unless
    --force.
    """
    try:
        header, payload = checkpoint_file.read(file.read_bytes())
    except checkpoint_file.CheckpointFileError as exc:
        raise click.ClickException(f"refused {file}: {exc}") from exc
    positions, blob = open_envelope(payload)
    if not blob.startswith(MODEL_MAGIC):
        raise click.ClickException(f"refused {file}: it does not hold a model checkpoint")
    ensure_safe(context, force)
    topic = writable_partition(context, partition)
    key = checkpoint_key(partition)
    value = envelope(positions if keep_positions and isinstance(positions, dict) else {}, blob)
    signer = state_signer(context.state_key)
    context.cluster.send([(topic, partition, key, signer.sign(value, context=key))])
    source = f"partition {header.get('partition')} of app {header.get('app_id')}"
    click.echo(f"imported the model of {source} ({len(blob)} bytes) as the checkpoint of partition {partition} "
               f"in {topic}, signed with key id {signer.key_id.hex()}; positions "
               f"{'kept: ' + str(positions) if keep_positions else 'dropped'}")
