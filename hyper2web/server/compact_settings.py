"""h2's connection settings held without a deque per setting (``CompactSettings``), on the
h2 versions the tuned paths are tested with."""

from __future__ import annotations

from typing import Any

import h2.settings

from .tuning import ENABLED


def new_settings(client: bool, initial_values: dict[h2.settings.SettingCodes, int] | None = None
                 ) -> h2.settings.Settings:
    """Settings in lists where ``ENABLED`` (``CompactSettings``), else h2's own."""
    if ENABLED:
        return CompactSettings(client, initial_values)
    return h2.settings.Settings(client, initial_values)


class _Values(list[Any]):
    """The values of one setting (current first, then pending), as h2's deque offers them."""

    __slots__ = ()

    def popleft(self) -> Any:
        return self.pop(0)


_ONE_VALUE: dict[Any, tuple[Any]] = {}  # (value,) shared by every connection
# What h2's ``Settings.__init__`` made of the same arguments (a connection's settings are
# the same every time): copied, which is a few times cheaper than making them again. Each
# value is a tuple, so the copies share nothing that changes.
_MADE: dict[tuple[Any, ...], dict[str, Any]] = {}


def _one(value: Any) -> tuple[Any]:
    found = _ONE_VALUE.get(value)
    if found is None:
        found = (value,)
        if len(_ONE_VALUE) < 256:  # values a peer chooses must not grow it without end
            _ONE_VALUE[value] = found
    return found


class CompactSettings(h2.settings.Settings):
    """h2's ``Settings`` holding a setting's one value in a tuple shared by every connection,
    and a list only while a new value waits for its acknowledgement.

    A deque costs about 760 bytes even for the one value a setting holds between changes;
    two ``Settings`` of about seven settings each made a third of an idle connection's
    memory. The values are only ever read at ``[0]``, appended and popped from the left.
    """

    def __init__(self, client: bool = True,
                 initial_values: dict[h2.settings.SettingCodes, int] | None = None) -> None:
        key = (client, *initial_values.items()) if initial_values else (client,)
        made = _MADE.get(key)
        if made is not None:  # as h2 made them before: its attributes, a copy of the dict
            self.__dict__.update(made)
            self._settings = dict(made["_settings"])
            return
        super().__init__(client, initial_values)
        self._compact()
        values = getattr(self, "_settings", None)
        if isinstance(values, dict) and len(_MADE) < 16 \
                and all(type(held) is tuple for held in values.values()):
            _MADE[key] = {**vars(self), "_settings": dict(values)}

    def __setitem__(self, key: Any, value: int) -> None:
        values = getattr(self, "_settings", None)
        if isinstance(values, dict) and type(values.get(key)) is tuple:
            values[key] = _Values(values[key])  # h2 appends the new value to it
        super().__setitem__(key, value)
        self._compact()

    def acknowledge(self) -> Any:
        changed = super().acknowledge()
        self._compact()
        return changed

    def _compact(self) -> None:
        values = getattr(self, "_settings", None)
        if isinstance(values, dict):
            for key, held in values.items():
                if type(held) is tuple:
                    continue
                values[key] = _one(held[0]) if len(held) == 1 else _Values(held)
