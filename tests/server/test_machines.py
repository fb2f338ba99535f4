"""Stepping h2's state machines by value does exactly what ``process_input`` does."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from h2.connection import ConnectionInputs, ConnectionState, H2ConnectionStateMachine
from h2.stream import H2StreamStateMachine, StreamInputs, StreamState

from hyper2web.server.machines import connection_input, stream_input


def _outcome(step: Any, machine: Any, input_: Any) -> tuple[Any, ...]:
    """What one step leaves: the events (type and fields), the error, and the state."""
    try:
        events = step(machine, input_)
    except Exception as exc:  # noqa: BLE001 - the error is what is compared
        return ("raised", type(exc), str(exc), machine.state)
    if events is not None:  # h2 4.1 returns None from some transitions
        events = [(type(e), sorted(vars(e).items())) for e in events]
    return ("events", events, machine.state,
            machine.client, machine.headers_sent, machine.headers_received,
            machine.trailers_sent, machine.trailers_received, machine.stream_closed_by) \
        if isinstance(machine, H2StreamStateMachine) else ("events", events, machine.state)


def _stream_machine(state: StreamState, client: bool | None) -> H2StreamStateMachine:
    machine = H2StreamStateMachine(7)
    machine.state = state
    machine.client = client
    machine.headers_sent = machine.headers_received = client is not None or None
    return machine


@pytest.mark.parametrize("client", [None, False, True])
def test_every_stream_transition_is_h2s(client: bool | None) -> None:
    for state, input_ in itertools.product(StreamState, StreamInputs):
        ours = _outcome(stream_input, _stream_machine(state, client), input_)
        h2s = _outcome(H2StreamStateMachine.process_input, _stream_machine(state, client),
                       input_)
        assert ours == h2s, (state, input_)


def test_a_request_and_its_response_step_alike() -> None:
    """The inputs a small exchange sends, in order, from a fresh stream."""
    ours, h2s = H2StreamStateMachine(1), H2StreamStateMachine(1)
    for input_ in (StreamInputs.RECV_HEADERS, StreamInputs.RECV_END_STREAM,
                   StreamInputs.SEND_HEADERS, StreamInputs.SEND_DATA,
                   StreamInputs.SEND_END_STREAM, StreamInputs.RECV_WINDOW_UPDATE,
                   StreamInputs.SEND_DATA):
        assert _outcome(stream_input, ours, input_) == _outcome(
            H2StreamStateMachine.process_input, h2s, input_)
    assert ours.state is StreamState.CLOSED


def test_every_connection_transition_is_h2s() -> None:
    for state, input_ in itertools.product(ConnectionState, ConnectionInputs):
        ours, h2s = H2ConnectionStateMachine(), H2ConnectionStateMachine()
        ours.state = h2s.state = state
        assert _outcome(connection_input, ours, input_) == _outcome(
            H2ConnectionStateMachine.process_input, h2s, input_), (state, input_)
