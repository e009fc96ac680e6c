"""What a drift detection says in words, for the person an alert pages.

A :class:`~app.drift.monitor.Detection` holds ADWIN's estimate (the mean before and after the cut,
in the monitored scale) and the width of the recent window. :func:`describe` turns it into one
sentence: which quantity moved, which way, from what to what, over how many recent values, on which
partition. Feature means go back to the data's scale first (:func:`~app.drift.transforms.typical`:
after ``log1p_abs``, the typical magnitude ``|x|``); the error stream's mean is a rate, in percent.

>>> from app.drift.monitor import Detection
>>> describe(Detection("score", "drift", 5200, 0.012, 0.083, 1200, "ADWIN(delta=0.002,clock=32)"), partition=3)
"the fraud score's mean rose from 0.012 to 0.083 over the last 1,200 scores on partition 3"
>>> describe(Detection("error", "drift", 9000, 0.0017, 0.021, 640, "ADWIN(delta=0.002,clock=32)"))
'the error rate (wrong decisions) rose from 0.17% to 2.1% over the last 640 labelled scores'
>>> import math
>>> d = Detection("feature:Amount", "drift", 3100, math.log1p(20.0), math.log1p(80.0), 96, "ADWIN on log1p_abs")
>>> describe(d, partition=0, transform="log1p_abs")
'the typical |Amount| rose from 20 to 80 over the last 96 transactions on partition 0'
"""
from __future__ import annotations

from app.drift.monitor import Detection
from app.drift.transforms import typical


def number(value: float) -> str:
    """Three significant digits, thousands separated.

    >>> number(0.012345), number(35.91), number(1234.5)
    ('0.0123', '35.9', '1,234')
    """
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def percent(rate: float) -> str:
    """A rate in percent, two significant digits.

    >>> percent(0.0017), percent(0.25)
    ('0.17%', '25%')
    """
    return f"{100 * rate:.2g}%"


def describe(detection: Detection, partition: int | None = None, transform: str = "", *,
             unit: str | None = None, where: str | None = None) -> str:
    """One sentence on ``detection`` (of a stream whose values went through the transform named
    ``transform``, empty for none), naming ``partition`` when given; ``unit`` names what the
    stream's values are counted in (by default the stream's own: scores, labelled scores,
    transactions) and ``where`` replaces the partition's words.

    >>> describe(Detection("error", "drift", 9000, 0.0017, 0.021, 640, "ADWIN"), unit="examples",
    ...          where="of the central learner")
    'the error rate (wrong decisions) rose from 0.17% to 2.1% over the last 640 examples of the central learner'
    """
    stream, before, after = detection.stream, detection.mean_before, detection.mean_after
    if stream == "score":
        what, default_unit, show = "the fraud score's mean", "scores", number
    elif stream == "error":
        what, default_unit, show = "the error rate (wrong decisions)", "labelled scores", percent
    elif stream.startswith("feature:"):
        name = stream.partition(":")[2]
        back = typical(transform or "identity")
        before, after = back(before), back(after)
        kind = (transform or "identity").partition(":")[0]
        what = {"log1p_abs": f"the typical |{name}|", "log1p": f"the typical {name}"}.get(kind, f"the mean {name}")
        default_unit, show = "transactions", number
    else:
        what, default_unit, show = f"the mean of {stream}", "values", number
    unit = unit or default_unit
    moved = "rose" if after > before else "fell" if after < before else "moved"
    text = f"{what} {moved} from {show(before)} to {show(after)} over the last {detection.width:,} {unit}"
    if where is not None:
        text += f" {where}"
    elif partition is not None:
        text += f" on partition {partition}"
    return text if detection.kind == "drift" else f"warning: {text}"
