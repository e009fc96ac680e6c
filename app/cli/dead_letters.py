"""``fraudstream dead-letters replay``: send dead letters back to the topic they came from.

A dead letter (:class:`app.records.DeadLetter`, on ``DEAD_LETTERS_TOPIC``) keeps a rejected
message whole: its original topic, partition, offset, key and value, and the reason. Once the
cause is fixed (a registry back, a setting relaxed, a producer corrected upstream), ``replay`` sends
the chosen letters' key and value again, unchanged, to their original topic and partition, where
the workers take them in as new messages (and dead-letter them again if the cause is still there).

>>> letter = {"reason": "registry-unavailable", "topic": "transactions", "value": b"x"}
>>> chosen(letter, reasons=("registry-unavailable",), topics=())
True
>>> chosen(letter, reasons=(), topics=("labels",)), chosen({**letter, "value": None}, (), ())
(False, False)
"""
from __future__ import annotations

from typing import Callable

import click

from app.records import DeadLetter


def chosen(letter: dict, reasons: tuple[str, ...], topics: tuple[str, ...]) -> bool:
    """Whether ``letter`` passes the filters (empty: any) and has a value to send."""
    return (letter.get("value") is not None and (not reasons or letter["reason"] in reasons)
            and (not topics or letter["topic"] in topics))


def decoder(context) -> Callable[[bytes], dict]:
    """Dead-letter bytes (Avro, Confluent framing) -> a dict, through the schema registry."""
    from app.serialization import ConfluentAvroCodec, make_registry_client

    client = make_registry_client(context.registry_url, auth=context.registry_auth)
    return ConfluentAvroCodec(client, context.dead_letters_topic, DeadLetter.avro_schema_to_python()).loads


def describe(letter: dict) -> str:
    key = letter.get("key")
    return (f"{letter['topic']}[{letter['partition']}]@{letter['offset']} reason={letter['reason']} "
            f"key={key.decode(errors='replace') if key is not None else None} value={len(letter['value'])} bytes")


@click.group("dead-letters", short_help="Replay dead letters once their cause is fixed.")
def dead_letters() -> None:
    """Messages the workers could not use, kept on the dead-letters topic."""


@dead_letters.command(short_help="Send chosen dead letters back to their original topic.")
@click.option("--reason", "reasons", multiple=True, metavar="REASON",
              help="Only dead letters with this reason (repeatable), e.g. registry-unavailable, invalid-value.")
@click.option("--topic", "topics", multiple=True, metavar="TOPIC",
              help="Only dead letters from this original topic (repeatable).")
@click.option("--since-offset", type=click.IntRange(min=0), default=0, show_default=True,
              help="Only dead letters at this offset of their dead-letters partition or later.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many (the oldest first).")
@click.option("--dry-run", is_flag=True, help="Print what would be sent and the count; send nothing.")
@click.pass_obj
def replay(context, reasons: tuple[str, ...], topics: tuple[str, ...], since_offset: int, limit: int | None,
           dry_run: bool) -> None:
    """Send chosen dead letters back to their original topic, once the cause is fixed.

    Each chosen letter's original key and value go, unchanged, to the original topic and partition.
    The dead-letters topic is read up to its end at the start of the command. A letter is sent once
    per run: replaying the same letters again sends them again (to go on after a run, give
    --since-offset the offset after the last one it says it read; it applies to every partition of
    the dead-letters topic). Letters without a value (reason "empty") are skipped.
    """
    loads = decoder(context)
    records = context.cluster.read(context.dead_letters_topic, since_offset=since_offset)
    selected, unreadable, examined, last = [], 0, 0, {}
    for record in records:
        if limit is not None and len(selected) >= limit:
            break
        examined += 1
        last[record.partition] = record.offset
        try:
            letter = loads(record.value)
        except Exception as exc:  # noqa: BLE001 - a letter that does not decode is reported, not fatal
            unreadable += 1
            click.echo(f"skipped dead letter at {context.dead_letters_topic}[{record.partition}]@{record.offset}: "
                       f"it does not decode ({exc})", err=True)
            continue
        if chosen(letter, reasons, topics):
            selected.append(letter)
    for letter in selected:
        click.echo(f"{'would send' if dry_run else 'sending'} {describe(letter)}")
    if not dry_run and selected:
        context.cluster.send([(letter["topic"], letter["partition"], letter["key"], letter["value"])
                              for letter in selected])
    upto = ", ".join(f"offset {offset} of partition {partition}" for partition, offset in sorted(last.items()))
    click.echo(f"{'would replay' if dry_run else 'replayed'} {len(selected)} dead letter{'s' * (len(selected) != 1)} "
               f"(of {examined} read from {context.dead_letters_topic}"
               f"{f', {unreadable} unreadable' if unreadable else ''}){f'; read up to {upto}' if upto else ''}")
