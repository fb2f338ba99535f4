"""A large body read straight into its DATA frames (``framed``) leaves exactly as the same
bytes sent through ``try_send_data`` would, or, when the connection changed meanwhile, is
refused whole and goes the ordinary way."""

from __future__ import annotations

import os

import h2.config
import h2.connection
import h2.exceptions
import h2.settings
import pytest

from hyper2web.server import framed, tuning
from hyper2web.server.tuning import TunedH2Connection

pytestmark = pytest.mark.skipif(not tuning.ENABLED, reason="the tuned h2 paths are off")
REQUEST = [(":method", "GET"), (":scheme", "https"), (":authority", "localhost"),
           (":path", "/big.bin")]
BIG = 2**30


def _pair(frame_size: int = 16384) -> tuple[h2.connection.H2Connection, TunedH2Connection]:
    """A client with wide windows and a server answering its stream 1 (head sent)."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: BIG - 1,
                            h2.settings.SettingCodes.MAX_FRAME_SIZE: frame_size})
    client.increment_flow_control_window(BIG - 1 - 65535)
    client.send_headers(1, REQUEST, end_stream=True)
    server = tuning.new_connection(tuning.SERVER_CONFIG)
    assert isinstance(server, TunedH2Connection)
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())  # the ACK of the server's settings
    server.send_headers(1, [(":status", "200")])
    return client, server


def _state(server: TunedH2Connection) -> list[object]:
    stream = server.streams.get(1)
    return [server.outbound_flow_control_window, server.state_machine.state,
            stream and (stream.state_machine.state, stream.outbound_flow_control_window),
            dict(server._closed_streams), sorted(server.streams)]


def _filled(chunk: framed.FramedChunk, data: bytes) -> None:
    at = 0
    for view in chunk.views:
        view[:] = data[at:at + len(view)]
        at += len(view)
    assert at == len(data) == chunk.size


@pytest.mark.parametrize("size", [65536, 100_001, 262144])
@pytest.mark.parametrize("end", [True, False])
@pytest.mark.parametrize("behind_head", [True, False])
@pytest.mark.parametrize("frame_size", [16384, 20000])
def test_framed_chunk_leaves_as_try_send_data_would(size: int, end: bool, behind_head: bool,
                                                    frame_size: int) -> None:
    data = os.urandom(size)
    _, plain = _pair(frame_size)
    _, tuned = _pair(frame_size)
    sent: list[bytes] = []
    for server in (plain, tuned):
        # The head still queued (the chunk is copied after it) or already written.
        written = b"" if behind_head else bytes(server.data_to_send())
        if server is plain:
            assert server.try_send_data(1, data, end)
        else:
            chunk = server.framed_chunk(1, size)
            assert chunk is not None
            _filled(chunk, data)
            assert server.send_framed(1, chunk, end)
        sent.append(written + bytes(server.data_to_send()))
    assert sent[1] == sent[0]
    assert _state(tuned) == _state(plain)


def test_no_framed_chunk_for_small_bodies_or_beyond_the_windows() -> None:
    client, server = _pair()
    assert server.framed_chunk(1, 65535) is None  # small: copied into the send buffer
    assert server.framed_chunk(3, 100_000) is None  # no such stream
    client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 70000})
    server.receive_data(client.data_to_send())
    assert server.framed_chunk(1, 70001) is None
    assert server.framed_chunk(1, 70000) is not None


@pytest.mark.parametrize("change", ["window", "frame size", "reset"])
def test_a_chunk_the_connection_no_longer_allows_is_refused_whole(change: str) -> None:
    client, server = _pair(20000)
    data = os.urandom(100_000)
    chunk = server.framed_chunk(1, len(data))
    assert chunk is not None
    _filled(chunk, data)
    if change == "window":  # the peer lowered its initial window while the file was read
        client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 65535})
    elif change == "frame size":  # ... or its largest frame
        client.update_settings({h2.settings.SettingCodes.MAX_FRAME_SIZE: 16384})
    else:  # ... or reset the stream
        client.reset_stream(1)
    server.receive_data(client.data_to_send())
    server.data_to_send()  # the ACK of those settings
    before = _state(server)
    if change == "reset":  # as ``try_send_data`` (H2Protocol makes it StreamClosed)
        with pytest.raises(h2.exceptions.StreamClosedError):
            server.try_send_data(1, data, True)
        with pytest.raises(h2.exceptions.StreamClosedError):
            server.send_framed(1, chunk, True)
    else:
        assert not server.send_framed(1, chunk, True)
    assert _state(server) == before and server.data_to_send() == b""
    assert chunk.payload(60_000) == data[:60_000]  # what goes the ordinary way


def test_written_framed_buffers_are_kept_and_used_again() -> None:
    framed._spares.clear()
    _, server = _pair()
    server.data_to_send()
    chunk = server.framed_chunk(1, 262144)
    assert chunk is not None
    _filled(chunk, bytes(262144))
    buffer = chunk.buffer
    assert server.send_framed(1, chunk, False)
    out = server.data_to_send()
    assert out is buffer  # the chunk's own buffer is what gets written: no copy
    server.recycle(out)
    assert framed._spares == [buffer]
    assert server.framed_chunk(1, 262144).buffer is buffer  # type: ignore[union-attr]
