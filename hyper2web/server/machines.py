"""h2's state machines, stepped by the values of their enums.

h2 looks each transition up in a dict keyed by ``(state, input)``; hashing those two enum
members runs ``Enum.__hash__``, a Python function, twice. A small response passes the
stream's machine five times and the connection's three: about a tenth of h2's work on it.
The tables here are built from h2's own at import, indexed by the members' values, so a
step is two list lookups; the step itself is ``process_input``'s, and a transition h2 does
not allow goes to ``process_input``, which raises its error.
"""

from __future__ import annotations

from typing import Any

from h2.connection import ConnectionInputs, ConnectionState, H2ConnectionStateMachine
from h2.exceptions import ProtocolError
from h2.stream import StreamInputs, StreamState
from h2.stream import _transitions as _stream_transitions

Entry = tuple[Any, StreamState]


def _stream_table() -> list[list[Entry | None]]:
    table: list[list[Entry | None]] = [
        [None] * (max(i.value for i in StreamInputs) + 1)
        for _ in range(max(s.value for s in StreamState) + 1)]
    for (state, input_), entry in _stream_transitions.items():
        table[state.value][input_.value] = entry
    return table


_STREAM = _stream_table()
_CLOSED = StreamState.CLOSED
_SERVER_OPEN = ConnectionState.SERVER_OPEN
# The inputs that leave an open server connection open, with nothing to run.
_KEEPS_OPEN = [False] * (max(i.value for i in ConnectionInputs) + 1)
for _input in ConnectionInputs:
    _KEEPS_OPEN[_input.value] = (H2ConnectionStateMachine._transitions.get(
        (_SERVER_OPEN, _input)) == (None, _SERVER_OPEN))


def stream_input(machine: Any, input_: StreamInputs) -> list[Any]:
    """``H2StreamStateMachine.process_input(input_)``: the same transition, events and
    errors."""
    entry = _STREAM[machine.state._value_][input_._value_]
    if entry is None:
        return machine.process_input(input_)  # not allowed: h2 closes the stream and raises
    func, target = entry
    previous = machine.state
    machine.state = target
    if func is None:
        return []
    try:
        return func(machine, previous)
    except ProtocolError:
        machine.state = _CLOSED
        raise
    except AssertionError as exc:  # as h2 turns a broken invariant into a protocol error
        machine.state = _CLOSED
        raise ProtocolError(exc) from exc


def connection_input(machine: Any, input_: ConnectionInputs) -> list[Any]:
    """``H2ConnectionStateMachine.process_input(input_)``, skipped where it would leave an
    open server connection as it is and return no events."""
    if machine.state is _SERVER_OPEN and _KEEPS_OPEN[input_._value_]:
        return []
    return machine.process_input(input_)
