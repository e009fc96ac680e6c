"""``fraudstream``: the operator's command line (``python -m app.cli`` does the same).

    fraudstream status --worker http://10.0.0.5:6066 --worker http://10.0.0.6:6066
    fraudstream checkpoint export --partition 0 --out p0.fsckpt
    FRAUD_APP_ID=fraud-eu FRAUD_STATE_KEY=... fraudstream checkpoint import --partition 0 p0.fsckpt
    fraudstream reset --partition 3
    fraudstream dead-letters replay --reason registry-unavailable --dry-run

Every command reads the app's settings from the ``FRAUD_*`` environment, as the workers do
(:mod:`settings`); ``--broker`` and ``--app-id`` override those two. One module per command group:
:mod:`app.cli.status`, :mod:`app.cli.checkpoint`, :mod:`app.cli.reset`, :mod:`app.cli.dead_letters`;
the commands reach Kafka through :class:`app.cli.cluster.Cluster`, and those that write state
(``checkpoint import``, ``reset``) first check that no worker runs (:mod:`app.cli.safety`).
"""
from __future__ import annotations

import click

from app.cli import checkpoint, dead_letters, reset, status


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--broker", metavar="URL", default=None, help="The Kafka broker(s) (default: FRAUD_KAFKA_BROKER).")
@click.option("--app-id", metavar="ID", default=None,
              help="The app id whose state and consumer group to act on (default: FRAUD_APP_ID).")
@click.pass_context
def main(ctx: click.Context, broker: str | None, app_id: str | None) -> None:
    """Operate a fraudstream app: its workers' models, their checkpoints, its dead letters.

    The settings come from the FRAUD_* environment, as for the workers. Commands that write state
    (checkpoint import, reset) act only when it is safe: no worker of the app runs (the app's
    consumer group, named by FRAUD_APP_ID, has no members), since a running worker neither reads
    what they write nor keeps it. They refuse otherwise, saying why, unless given --force.
    """
    if ctx.obj is None:  # the tests give a context of their own
        import settings
        from app.cli.context import Context

        ctx.obj = Context.from_settings(settings, broker=broker, app_id=app_id)


main.add_command(status.status)
main.add_command(checkpoint.checkpoint)
main.add_command(reset.reset)
main.add_command(dead_letters.dead_letters)
