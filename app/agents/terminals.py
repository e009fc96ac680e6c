"""The terminal-labels agent: ``terminal-labels`` -> the global terminal table.

The scorer sends each label it learns to the terminal-labels topic, keyed by terminal id
(:mod:`app.scoring.windows`); this agent applies each one to its terminal's windows
(:class:`~app.scoring.windows.TerminalLabels`: once, however often it is sent) in the changelog
partition of the label's partition, and deletes the terminals whose windows are all past. Every
worker follows the table's changelog whole (:class:`~app.state.table_view.TableView`), so any
scorer reads any terminal's windows. A batch's changelog records are confirmed before its labels
are acknowledged.
"""
from __future__ import annotations

from app import outputs
from app.scoring.windows import TerminalLabels


def register(app, topic, writer: TerminalLabels, *, batch_size: int, within_s: float):
    """Put the terminal-labels agent on ``app``, reading ``topic`` (raw keys and values)."""

    @app.agent(topic, name="app.agents.terminals.apply_terminal_labels")
    async def apply_terminal_labels(stream):
        """Apply each terminal label to its terminal's windows."""
        async for batch in stream.take_events(batch_size, within=within_s):
            writes, touched = [], set()
            for event in batch:
                message = event.message
                written = writer.apply(message.key, event.value, message.partition)
                if written is not None:
                    writes.append(written)
                touched.add(message.partition)
            for partition in touched:
                writer.expire(partition)  # tombstones of terminals no transaction can read any more
            await outputs.confirmed(writes, "the terminal table's changelog")

    return apply_terminal_labels
