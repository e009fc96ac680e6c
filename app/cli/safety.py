"""When a command may write a partition's model state: only while no worker of the app runs.

A worker keeps each of its partitions' models in memory. It reads the checkpoint table's changelog
only when it gets a partition (at start, or in a rebalance), and writes the partition's checkpoint
every ``CHECKPOINT_EVERY_EVENTS``, when it loses the partition and when it stops. A checkpoint
written by anyone else while a worker owns the partition is therefore never read by that worker and
is overwritten by its next checkpoint. A command that writes state (``checkpoint import``,
``reset``) acts *safely* when the app's consumer group (its ``APP_ID``) has no members: every worker
is stopped (a stopped worker has written its last checkpoint), and the next one to start reads what
the command wrote. Otherwise it refuses, naming the members, unless it is given ``--force``.

>>> from app.cli.cluster import Group
>>> unsafe_reason(Group("fraud-detector", "Empty")) is None
True
>>> print(unsafe_reason(Group("fraud-detector", "Stable", [{"member_id": "m-1", "client_id": "faust-0.15.3",
...                                                       "client_host": "/10.0.0.7"}])))
the consumer group fraud-detector of the app is Stable with 1 member (faust-0.15.3 at /10.0.0.7): a running worker owns the partitions, ignores what is written to the changelog and overwrites it with its next checkpoint; stop every worker of the app first, or pass --force
"""
from __future__ import annotations

import click

from app.cli.cluster import Group

#: Group states in which no consumer of the group is running.
IDLE_STATES = ("Empty", "Dead")

FORCE_HELP = ("Act even if workers of the app are running (the app's consumer group has members). A "
              "running owner of the partition neither reads what is written nor keeps it: its next "
              "checkpoint (at the latest when it stops or loses the partition) overwrites it.")


def unsafe_reason(group: Group) -> str | None:
    """Why writing the app's model state now is not safe (None when it is): see the module's docstring."""
    if group.state in IDLE_STATES and not group.members:
        return None
    count = len(group.members)
    who = ", ".join(f"{m.get('client_id') or '?'} at {m.get('client_host') or '?'}" for m in group.members)
    return (f"the consumer group {group.name} of the app is {group.state} with {count} member{'s' * (count != 1)}"
            f"{f' ({who})' if who else ''}: a running worker owns the partitions, ignores what is written to the "
            f"changelog and overwrites it with its next checkpoint; stop every worker of the app first, or pass --force")


def ensure_safe(context, force: bool) -> None:
    """Return if writing the app's state is safe, or ``force``; else stop the command with the reason.
    A group that cannot be described counts as unsafe."""
    try:
        reason = unsafe_reason(context.cluster.describe_group(context.app_id))
    except Exception as exc:  # noqa: BLE001 - any failure to ask is a reason to refuse
        reason = f"could not describe the consumer group {context.app_id} ({type(exc).__name__}: {exc})"
    if reason is None:
        return
    if not force:
        raise click.ClickException(f"refused: {reason}")
    click.echo(f"warning: --force: {reason}", err=True)
