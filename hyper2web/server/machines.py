"""h2's state machines, stepped by the values of their enums.

h2 looks each transition up in a dict keyed by ``(state, input)``; hashing those two enum
members runs ``Enum.__hash__``, a Python function, twice. A small response passes the
stream's machine five times and the connection's three: about a tenth of h2's work on it.
The tables here are built from h2's own at import, indexed by the members' values, so a
step is two list lookups; the step itself is ``process_input``'s, and a transition h2 does
not allow goes to ``process_input``, which raises its error. An h2 without those tables
gets ``process_input`` for every step.
"""

from __future__ import annotations

from typing import Any

import h2.stream
from h2.connection import ConnectionInputs, ConnectionState, H2ConnectionStateMachine
from h2.exceptions import ProtocolError
from h2.stream import StreamInputs, StreamState

Entry = tuple[Any, StreamState]


def _stream_table() -> list[list[Entry | None]]:
    """h2's stream transitions by value; empty (every step h2's) if they are not there."""
    transitions = getattr(h2.stream, "_transitions", None)
    if not isinstance(transitions, dict) or any(
            type(member.value) is not int or member.value < 0
            for member in (*StreamState, *StreamInputs)):
        return []
    table: list[list[Entry | None]] = [
        [None] * (max(i.value for i in StreamInputs) + 1)
        for _ in range(max(s.value for s in StreamState) + 1)]
    for (state, input_), entry in transitions.items():
        table[state.value][input_.value] = entry
    return table


def _keeps_open() -> list[bool]:
    """For each connection input by value: does it leave an open server connection as it
    is, with nothing to run? All False (every step h2's) if h2's table is not there."""
    keeps = [False] * (max(i.value for i in ConnectionInputs) + 1)
    transitions = getattr(H2ConnectionStateMachine, "_transitions", None)
    if isinstance(transitions, dict):
        for input_ in ConnectionInputs:
            keeps[input_.value] = transitions.get((_SERVER_OPEN, input_)) \
                == (None, _SERVER_OPEN)
    return keeps


_CLOSED = StreamState.CLOSED
_SERVER_OPEN = ConnectionState.SERVER_OPEN
_STREAM = _stream_table()
_KEEPS_OPEN = _keeps_open()


def stream_input(machine: Any, input_: StreamInputs) -> list[Any]:
    """``H2StreamStateMachine.process_input(input_)``: the same transition, events and
    errors."""
    if not _STREAM:
        return machine.process_input(input_)
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
