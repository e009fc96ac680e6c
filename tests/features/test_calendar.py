import datetime as dt
import random

from app.features.calendar import calendar_features


def test_flags_equal_datetime_in_utc():
    rng = random.Random(5)
    for _ in range(2000):
        t = rng.uniform(-10 * 86400, 2e9)
        d = dt.datetime.fromtimestamp(t, tz=dt.timezone.utc)
        f = calendar_features(t)
        assert f["TX_DURING_WEEKEND"] == (1.0 if d.weekday() >= 5 else 0.0), d
        assert f["TX_DURING_NIGHT"] == (1.0 if d.hour < 6 else 0.0), d


def test_night_bound_is_a_parameter():
    t = dt.datetime(2018, 4, 3, 6, 30, tzinfo=dt.timezone.utc).timestamp()
    assert calendar_features(t)["TX_DURING_NIGHT"] == 0.0
    assert calendar_features(t, night_until_hour=7)["TX_DURING_NIGHT"] == 1.0
