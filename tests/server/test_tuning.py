"""The tuned h2 pieces write and remember exactly what h2's own would."""

from __future__ import annotations

import h2.config
import h2.connection
import h2.exceptions
import h2.settings
import pytest

from hyper2web.server.compact_settings import CompactSettings
from hyper2web.server.hpack_fields import FieldEncoder
from hyper2web.server.tuning import TunedH2Connection

REQUEST = [(":method", "GET"), (":scheme", "https"), (":authority", "localhost"),
           (":path", "/")]


# As ``H2Protocol`` configures h2: received and sent fields are checked by our own code.
LEAN = {"header_encoding": None, "validate_inbound_headers": False,
        "normalize_inbound_headers": False, "validate_outbound_headers": False,
        "normalize_outbound_headers": False}


def _served(cls: type[h2.connection.H2Connection], lean: bool = False,
            field_encoder: bool = False) -> tuple[bytes, list[object]]:
    """What a server connection of ``cls`` writes for a fixed exchange, and its state."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    client.update_settings({h2.settings.SettingCodes.MAX_FRAME_SIZE: 20000})
    server = cls(h2.config.H2Configuration(client_side=False, **(LEAN if lean else {})))
    if field_encoder:
        server.encoder = FieldEncoder()  # type: ignore[assignment]
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    out = bytearray(server.data_to_send())
    for sid in (1, 3, 5, 7, 9, 11, 13):
        client.send_headers(sid, REQUEST, end_stream=sid != 13)
    server.receive_data(client.data_to_send())
    opened = dict(server.streams)  # each stream's object, held or forgotten at the end
    server.send_headers(1, [(":status", "200"), ("content-length", "5")])
    server.send_data(1, b"hello", end_stream=True)
    server.send_headers(3, ((":status", "204"),), end_stream=True)  # a tuple, as prepared
    # A header block over the frame size: HEADERS + CONTINUATION frames.
    server.send_headers(5, [(":status", "200"), *[(f"x-{n}", "v" * 100) for n in range(300)]])
    server.send_data(5, b"x" * 16384)
    server.send_data(5, memoryview(b"abc"), end_stream=True)
    server.send_headers(7, [(":status", "200")])
    server.send_data(7, b"padded", end_stream=True, pad_length=10)
    # 103 first, then the final response; then trailers.
    server.send_headers(9, [(":status", "103"), ("link", "</a.css>; rel=preload")])
    server.send_headers(9, [(":status", "200")])
    server.send_data(9, b"body")
    server.send_headers(9, [("x-trailer", "1")], end_stream=True)
    # The peer shrinks its HPACK table: the next block starts with a size update.
    client.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: 0})
    server.receive_data(client.data_to_send())
    server.send_headers(11, [(":status", "200"), ("content-type", "text/plain")],
                        end_stream=True)
    # A body larger than the stream's window is h2's to refuse.
    errors = []
    try:
        server.send_data(13, b"x" * 70000)
    except h2.exceptions.ProtocolError as exc:
        errors.append(type(exc))
    # Reset by the peer: sending on it fails the same way.
    client.reset_stream(13)
    server.receive_data(client.data_to_send())
    for send in (lambda: server.send_headers(13, [(":status", "200")]),
                 lambda: server.send_data(13, b"late", end_stream=True)):
        try:
            send()
        except h2.exceptions.ProtocolError as exc:
            errors.append(type(exc))
    server.ping(b"12345678")
    out += server.data_to_send()
    state = [errors, server.outbound_flow_control_window, server.state_machine.state]
    # A closed stream may still be held or already forgotten (h2 forgets it when it next
    # counts open streams, the tuned connection when it ends): how it closed is kept.
    closed = dict(server._closed_streams)
    closed.update((sid, s.closed_by) for sid, s in server.streams.items() if s.closed)
    assert len(opened) == 7
    for sid, stream in sorted(opened.items()):
        machine = stream.state_machine
        state.append((sid, machine.state, machine.headers_sent, machine.trailers_sent,
                      stream.outbound_flow_control_window, stream.request_method))
    state.append(sorted(closed.items()))
    return bytes(out), state


@pytest.mark.parametrize(("lean", "field_encoder"), [(False, False), (True, False),
                                                     (True, True)])
def test_frames_and_state_are_the_same_as_h2s(lean: bool, field_encoder: bool) -> None:
    tuned = _served(TunedH2Connection, lean, field_encoder)
    plain = _served(h2.connection.H2Connection, lean, field_encoder)
    assert tuned == plain
    assert len(tuned[1][0]) == 3  # the three refusals happened


def test_compact_settings_behave_like_h2s() -> None:
    # CompactSettings twice: the second is a copy of what h2 made for the first.
    for cls in (CompactSettings, CompactSettings, h2.settings.Settings):
        settings = cls(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 10})
        settings[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] = 1000
        settings[h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE] = 5000
        assert settings.initial_window_size == 65535  # pending until acknowledged
        changed = settings.acknowledge()
        assert settings.initial_window_size == 1000
        assert settings.max_header_list_size == 5000
        assert settings.max_concurrent_streams == 10
        assert {int(k): (v.original_value, v.new_value) for k, v in changed.items()} == {
            0x4: (65535, 1000), 0x6: (None, 5000)}


def test_compact_settings_share_values_and_never_mutate_them() -> None:
    first, second = CompactSettings(client=False), CompactSettings(client=False)
    code = h2.settings.SettingCodes.INITIAL_WINDOW_SIZE
    assert first._settings[code] is second._settings[code]  # one (65535,) for both
    first[code] = 1000
    first.acknowledge()
    second[code] = 2000
    second.acknowledge()
    assert (first.initial_window_size, second.initial_window_size) == (1000, 2000)
    assert CompactSettings(client=False).initial_window_size == 65535
    made = vars(h2.settings.Settings(client=False))
    assert vars(CompactSettings(client=False)).keys() == made.keys()  # h2's attributes


def test_frame_dispatch_binds_the_same_methods_as_h2s() -> None:
    config = h2.config.H2Configuration(client_side=False)
    tuned, stock = TunedH2Connection(config=config), h2.connection.H2Connection(config=config)
    table = stock._frame_dispatch_table
    assert not isinstance(tuned._frame_dispatch_table, dict)  # no bound methods kept
    for kind, method in table.items():
        assert tuned._frame_dispatch_table[kind].__func__ is getattr(
            type(tuned), method.__name__)
        assert tuned._frame_dispatch_table[kind].__self__ is tuned
    with pytest.raises(KeyError):
        tuned._frame_dispatch_table[int]


@pytest.mark.parametrize("seed", [7541, 1, 2, 3])
def test_block_decoder_decodes_like_hpack(seed: int) -> None:
    """Repeated, fully indexed blocks come from memory; every block decodes the same."""
    import random

    import hpack

    from hyper2web.server.hpack_fields import BlockDecoder

    rng = random.Random(seed)
    encoder = hpack.Encoder()
    plain, remembering = hpack.Decoder(), BlockDecoder()
    pool = [[(":method", "GET"), (":path", f"/{n}"), ("x-n", "v" * rng.randint(0, 300))]
            for n in range(12)]
    hits = 0
    for step in range(3000):
        if step % 500 == 250:  # the peer shrinks then regrows the table: evictions
            encoder.header_table_size = rng.choice([0, 200, 4096])
        headers = rng.choice(pool[:4]) if rng.random() < 0.7 else rng.choice(pool)
        block = encoder.encode(headers)
        before = remembering._blocks and dict(remembering._blocks)
        assert remembering.decode(block, raw=True) == plain.decode(block, raw=True), step
        assert list(remembering.header_table.dynamic_entries) == \
            list(plain.header_table.dynamic_entries), step
        hits += bool(before and (block, True) in before)
    assert hits > 100  # the memory was used, not only filled


def _enabled(prelude: str, env: dict[str, str] | None = None) -> str:
    import os
    import subprocess
    import sys

    code = (prelude + "from hyper2web.server import stream_errors, tuning; "
            "print(tuning.ENABLED, stream_errors.ENABLED)")
    base = {k: v for k, v in os.environ.items() if k != "HYPER2WEB_TUNED"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**base, **(env or {})}, check=True)
    return done.stdout.strip()


def test_the_tuned_paths_are_fenced_by_version_and_switch() -> None:
    assert _enabled("") == "True True"  # the versions this suite runs on
    assert _enabled("", {"HYPER2WEB_TUNED": "0"}) == "False True"
    # An h2 or hpack the suite has not run against gets stock h2, and h2's own errors.
    assert _enabled("import h2; h2.__version__ = '5.0.0'; ") == "False False"
    assert _enabled("import hpack; hpack.__version__ = '4.9.0'; ") == "False True"
