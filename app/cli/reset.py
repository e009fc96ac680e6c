"""``fraudstream reset``: a partition's model back to the warm start or a new model."""
from __future__ import annotations

import click

from app.cli.checkpoint import PARTITION, stored_checkpoint
from app.cli.safety import FORCE_HELP, ensure_safe
from app.state.changelog import checkpoint_key


@click.command(short_help="A partition's model back to the warm start or a new one.")
@PARTITION
@click.option("--force", is_flag=True, help=FORCE_HELP)
@click.pass_obj
def reset(context, partition: int, force: bool) -> None:
    """Delete a partition's model checkpoint: its next owner starts over.

    A tombstone for the partition's key is written to the model checkpoint table's changelog; the
    next worker to own the partition finds no checkpoint and loads the warm start (the worker's
    WARM_START_PATH) or, without one, builds a new model, and goes on from the app's committed
    offsets. Safely means: no worker of the app runs (its consumer group has no members), so none
    can write the model back with its own checkpoint; otherwise the reset is refused unless --force.
    """
    ensure_safe(context, force)
    signed, offset = stored_checkpoint(context, partition)
    if signed is None:
        click.echo(f"partition {partition} has no model checkpoint in {context.changelog_topic}: nothing to reset")
        return
    context.cluster.send([(context.changelog_topic, partition, checkpoint_key(partition), None)])
    start = (f"the warm start of its WARM_START_PATH (here: {context.warm_start_path})" if context.warm_start_path
             else "a new model (or the warm start of its WARM_START_PATH, if it has one)")
    click.echo(f"deleted the model checkpoint of partition {partition} (was at changelog offset {offset}, "
               f"{len(signed)} bytes): the next worker to own it starts from {start}")
