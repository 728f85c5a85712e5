"""Day or night for a stream with ``schedule.night``: by the local clock, or by its picture's
mean brightness with hysteresis (an IR camera switching over at dusk), held ``hold_s`` before a
switch so a passing headlight or a cloud does not flip it."""

from __future__ import annotations

from monitor.config import NightConfig, in_hours


class DayNight:
    def __init__(self, cfg: NightConfig) -> None:
        self.cfg = cfg
        self.night = False
        self._past_since: float | None = None  # stream time the picture went past the switching level

    def update(self, wall_time: float, stream_time: float, mean_luma: float) -> bool:
        """Whether it is night now, given one sample."""
        c = self.cfg
        if c.hours is not None:
            self.night = in_hours(c.hours, wall_time)
            return self.night
        assert c.dark_below is not None and c.light_above is not None
        past = mean_luma > c.light_above if self.night else mean_luma < c.dark_below
        if not past:
            self._past_since = None
        elif self._past_since is None:
            self._past_since = stream_time
        if self._past_since is not None and stream_time - self._past_since >= c.hold_s:
            self.night, self._past_since = not self.night, None
        return self.night
