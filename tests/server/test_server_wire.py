"""The control API on the wire: a real server on 127.0.0.1 port 0, real websockets clients."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from anchorvoice.engine.server import protocol as p
from anchorvoice.engine.server.app import ServerConfig
from anchorvoice.errors import DeviceError
from tests.server.harness import TOKEN, call, events, hello, next_event, reply_to, running_server


def run(coro) -> None:
    asyncio.run(asyncio.wait_for(coro, 30))


def test_hello_status_voices_plugins() -> None:
    async def go() -> None:
        async with running_server() as h, h.client() as ws:
            msg = await hello(ws)
            assert msg["hello"]["version"] == p.API_VERSION and msg["hello"]["auth"] is False
            status = (await call(ws, "status"))["result"]
            assert status["voice"] is None and status["live"] is False and status["muted"] is False
            assert status["load_errors"][0]["plugin"] == "broken"
            voices = (await call(ws, "voices.list", id=2))["result"]
            assert [v["name"] for v in voices] == ["alice", "bob"]
            plugins = (await call(ws, "anchorvoice.plugins.list", id=3))["result"]
            assert plugins["plugins"][0]["stages"] == ["base_voice:espeak"]
            assert "ImportError" in plugins["failures"][0]["error"]

    run(go())


def test_token_by_first_message_and_refusals() -> None:
    async def go() -> None:
        async with running_server() as h:
            async with h.client(token=None) as ws:
                assert (await hello(ws))["hello"]["auth"] is True
                err = (await call(ws, "status"))["error"]
                assert err["code"] == p.UNAUTHORIZED and "auth" in err["message"]
                ok = await call(ws, "auth", {"token": TOKEN}, id=2)
                assert ok["result"] == {"authenticated": True}
                assert "result" in await call(ws, "status", id=3)
            async with h.client(token=None) as ws:
                await hello(ws)
                err = (await call(ws, "auth", {"token": "wrong"}))["error"]
                assert err["code"] == p.UNAUTHORIZED
                with pytest.raises(ConnectionClosed) as info:
                    await asyncio.wait_for(ws.recv(), 5)
                assert info.value.rcvd.code == p.CLOSE_POLICY_VIOLATION
            with pytest.raises(InvalidStatus) as bad:
                async with h.client(token="wrong"):
                    pass
            assert bad.value.response.status_code == 401
            with pytest.raises(InvalidStatus) as foreign:
                async with h.client(origin="https://evil.example"):
                    pass
            assert foreign.value.response.status_code == 403
            async with h.client(origin="http://localhost:8080") as ws:  # a local page is fine
                await hello(ws)

    run(go())


def test_bad_requests_get_errors_and_the_connection_keeps_working() -> None:
    async def go() -> None:
        async with running_server() as h, h.client() as ws:
            await hello(ws)
            cases = [
                ("{oops", None, p.PARSE_ERROR),
                ('{"method": "status"}', None, p.INVALID_REQUEST),
                ('{"id": 5, "method": "nope"}', 5, p.METHOD_NOT_FOUND),
                ('{"id": 6, "method": "speak", "params": {"text": 3}}', 6, p.INVALID_PARAMS),
                ('{"id": 7, "method": "params.set", "params": {"pitch": "high"}}', 7, p.INVALID_PARAMS),
                ('{"id": 8, "method": "params.set", "params": {"pitch": 99}}', 8, p.INVALID_PARAMS),
                ('{"id": 9, "method": "params.set", "params": {"pich": 1}}', 9, p.INVALID_PARAMS),
                ('{"id": 10, "method": "voice.set", "params": {"voice": "zed"}}', 10, p.ENGINE_ERROR),
                ('{"id": 11, "method": "speak", "params": {"text": "  "}}', 11, p.INVALID_PARAMS),
                ('{"id": 13, "method": "speak", "params": {"text": "hi", "voice": "zed"}}', 13, p.ENGINE_ERROR),
                ('{"id": 12, "method": "subscribe", "params": {"events": ["nope"]}}', 12, p.INVALID_PARAMS),
            ]
            for frame, rid, code in cases:
                await ws.send(frame)
                reply = json.loads(await ws.recv())
                assert reply["id"] == rid and reply["error"]["code"] == code, (frame, reply)
                assert reply["error"]["message"]
            await ws.send(b'{"id": 1, "method": "status"}')
            assert json.loads(await ws.recv())["error"]["code"] == p.INVALID_REQUEST
            assert "Unable to find voice 'zed'" in (await call(ws, "voice.set", {"voice": "zed"}))["error"]["message"]
            assert (await call(ws, "voice.set", {"voice": "bob"}, id=2))["result"] == {"voice": "bob"}
            assert (await call(ws, "status", id=3))["result"]["voice"] == "bob"

    run(go())


def test_oversized_message_closes_1009_and_others_keep_being_served() -> None:
    async def go() -> None:
        async with running_server(ServerConfig(port=0, max_message_bytes=4096)) as h:
            async with h.client() as other, h.client() as big:
                await hello(other)
                await hello(big)
                await big.send(json.dumps({"id": 1, "method": "speak", "params": {"text": "x" * 10000}}))
                with pytest.raises(ConnectionClosed) as info:
                    await asyncio.wait_for(big.recv(), 5)
                assert info.value.rcvd.code == p.CLOSE_TOO_BIG
                assert "result" in await call(other, "status")

    run(go())


def test_flood_is_rate_limited_but_every_request_is_answered() -> None:
    async def go() -> None:
        async with running_server(ServerConfig(port=0, rate=5, burst=10)) as h:
            async with h.client() as flood, h.client() as calm:
                await hello(flood)
                await hello(calm)
                n = 300
                t0 = time.monotonic()
                for i in range(n):
                    await flood.send(json.dumps({"id": i, "method": "ping"}))
                replies = [json.loads(await asyncio.wait_for(flood.recv(), 5)) for _ in range(n)]
                elapsed = time.monotonic() - t0
                assert [r["id"] for r in replies] == list(range(n))  # none lost, in order
                ok = sum("result" in r for r in replies)
                limited = [r for r in replies if "error" in r]
                # the burst, plus what the rate refilled while the flood lasted
                assert 10 <= ok <= 10 + 5 * elapsed + 1 and ok < n
                assert all(r["error"]["code"] == p.RATE_LIMITED for r in limited)
                assert "result" in await call(calm, "ping")  # the limit is per connection

    run(go())


def test_client_leaving_mid_request_loses_nothing() -> None:
    async def go() -> None:
        async with running_server(live_delay=0.5) as h:
            async with h.client() as ws:
                await hello(ws)
                await ws.send(json.dumps({"id": 1, "method": "live.start"}))
                await asyncio.sleep(0.1)  # the server is inside the slow start now
            async with h.client() as ws2:
                await hello(ws2)
                for i in range(100):  # the slow start finishes although its client is gone
                    status = (await call(ws2, "status", id=100 + i))["result"]
                    if status["live"]:
                        break
                    await asyncio.sleep(0.05)
                assert status["live"] is True and h.lives[0].running
                assert status["latency_ms"] == 180.0 and status["underruns"] == 2
                assert (await call(ws2, "live.start", id=2))["result"] == {"started": False}
                assert (await call(ws2, "live.stop", id=3))["result"] == {"stopped": True}
                assert not h.lives[0].running

    run(go())


def test_speak_events_in_order_audio_reaches_the_sink() -> None:
    async def go() -> None:
        async with running_server() as h, h.client() as ws:
            await hello(ws)
            sub = await call(ws, "subscribe", {"events": ["speaking.started", "speaking.stopped"]})
            assert sub["result"]["events"] == ["speaking.started", "speaking.stopped"]
            texts = ["hello there", "second one", "third"]
            for i, t in enumerate(texts):
                assert (await call(ws, "speak", {"text": t, "voice": "alice"}, id=10 + i))["result"]["id"] == i + 1
            seen = [(m["event"], m["data"]["text"]) for m in await events(ws, 6)]
            assert seen == [e for t in texts for e in (("speaking.started", t), ("speaking.stopped", t))]
            audio = h.sink.audio()
            assert len(audio) == int(0.1 * 16000) * 5 and np.max(np.abs(audio)) == pytest.approx(0.5, abs=1e-3)
            assert h.engine.calls[0] == ("hello there", "alice", "en")

    run(go())


def test_sentences_are_spoken_one_by_one_with_their_own_events() -> None:
    async def go() -> None:
        async with running_server(pace=True) as h, h.client() as ws:
            await hello(ws)
            await call(ws, "subscribe", {"events": ["speaking.started", "speaking.stopped"]})
            text = "Thanks for the raid! Welcome to the stream, everyone. Grab a seat?"
            await call(ws, "speak", {"text": text}, id=2)
            got = [(m["event"], m["data"]["text"], m["data"]["part"]) for m in await events(ws, 6)]
            parts = ["Thanks for the raid!", "Welcome to the stream, everyone.", "Grab a seat?"]
            assert got == [(e, t, k) for k, t in enumerate(parts) for e in ("speaking.started", "speaking.stopped")]
            assert h.engine.calls == [(text, None, "en")]  # one stream; the engine says where sentences end
            assert set(h.engine.presets) == {"tts"}  # checked when asked, then spoken: the tts preset
            # interrupting a multi-sentence request drops its remaining sentences
            await call(ws, "speak", {"text": "word " * 12 + ". " + "other " * 12 + "."}, id=3)
            assert (await next_event(ws, "speaking.started"))["part"] == 0
            await call(ws, "speech.clear", id=4)
            stopped = await next_event(ws, "speaking.stopped")
            assert stopped["interrupted"] is True and stopped["part"] == 0
            await asyncio.sleep(0.3)
            assert (await call(ws, "status", id=5))["result"]["speech"]["interrupted"] == 1
            with pytest.raises(asyncio.TimeoutError):  # the second sentence never starts
                await next_event(ws, "speaking.started", timeout=0.5)

    run(go())


def test_first_audio_plays_while_the_rest_is_still_being_made() -> None:
    """The server streams like `anchorvoice speak`: a chunk is played as soon as the engine yields it."""

    async def go() -> None:
        async with running_server() as h, h.client() as ws:
            h.engine.gate = threading.Event()
            await hello(ws)
            await call(ws, "subscribe", {"events": ["speaking.started", "speaking.stopped"]})
            await call(ws, "speak", {"text": "slow words follow. Then more."}, id=2)
            started = await next_event(ws, "speaking.started")
            assert (started["text"], started["part"], started["parts"]) == ("slow words follow.", 0, 2)
            deadline = time.monotonic() + 5
            while len(h.sink.audio()) < 1600 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert len(h.sink.audio()) == 1600  # the first word is out...
            assert h.engine.chunks_made == 1  # ...while the engine is still on it
            h.engine.gate.set()
            stopped = await next_event(ws, "speaking.stopped")
            assert stopped["text"] == "slow words follow." and stopped["interrupted"] is False
            assert (await next_event(ws, "speaking.started"))["text"] == "Then more."
            await next_event(ws, "speaking.stopped")
            assert len(h.sink.audio()) == 5 * 1600

    run(go())


def test_speak_failure_becomes_an_error_event_and_the_queue_goes_on() -> None:
    async def go() -> None:
        async with running_server() as h, h.client() as ws:
            await hello(ws)
            await call(ws, "subscribe", {"events": ["error", "speaking.stopped"]})
            await call(ws, "speak", {"text": "please fail"}, id=2)
            await call(ws, "speak", {"text": "fine"}, id=3)
            err = await next_event(ws, "error")
            assert err["id"] == 1 and "TextInputError" in err["message"]
            assert (await next_event(ws, "speaking.stopped"))["text"] == "fine"

    run(go())


def test_refused_speak_is_an_error_reply_and_nothing_is_queued() -> None:
    async def go() -> None:
        async with running_server() as h, h.client() as ws:
            await hello(ws)
            await call(ws, "subscribe", {"events": ["error", "speaking.started"]})
            for i, req in enumerate([{"text": "hi", "language": "tlh"}, {"text": "hi", "voice": "zed"},
                                     {"text": " \n "}]):
                reply = await call(ws, "speak", req, id=10 + i)
                assert reply["error"]["code"] in (p.INVALID_PARAMS, p.ENGINE_ERROR), (req, reply)
            tlh = await call(ws, "speak", {"text": "hi", "language": "tlh"}, id=20)
            assert "not 'tlh'" in tlh["error"]["message"]
            assert h.engine.calls == [] and (await call(ws, "status", id=21))["result"]["queue"] == 0
            with pytest.raises(asyncio.TimeoutError):  # no success followed by an error event
                await next_event(ws, "error", timeout=0.3)
            assert "result" in await call(ws, "speak", {"text": "hallo", "language": "de"}, id=22)

    run(go())


def test_checking_a_speak_does_not_wait_for_the_sentence_being_made() -> None:
    async def go() -> None:
        async with running_server() as h, h.client() as ws:
            h.engine.gate = threading.Event()
            await hello(ws)
            await call(ws, "subscribe", {"events": ["speaking.started"]})
            await call(ws, "speak", {"text": "slow words follow."}, id=2)
            await next_event(ws, "speaking.started")  # the synthesis thread now waits inside the engine
            t0 = time.monotonic()
            reply = await call(ws, "speak", {"text": "stop that", "interrupt": True}, id=3)
            assert "result" in reply and time.monotonic() - t0 < 2  # answered (and interrupting) at once
            h.engine.gate.set()

    run(go())


def test_params_set_merges_and_null_drops_a_value() -> None:
    async def go() -> None:
        async with running_server() as h, h.client() as ws:
            await hello(ws)
            await call(ws, "params.set", {"pitch": 3, "effects": {"limiter": {"ceiling_db": -3}}})
            res = (await call(ws, "params.set", {"effects": {"limiter": {"lookahead_ms": 2}, "gate": {"db": -50}}},
                              id=2))["result"]
            assert res["pitch"] == 3.0  # untouched keys keep their values
            assert res["effects"] == {"limiter": {"ceiling_db": -3, "lookahead_ms": 2}, "gate": {"db": -50}}
            res = (await call(ws, "params.set", {"effects": {"limiter": {"ceiling_db": None}, "gate": None}},
                              id=3))["result"]
            assert res["effects"] == {"limiter": {"lookahead_ms": 2}}
            assert (await call(ws, "params.set", {"effects": None}, id=4))["result"]["effects"] == {}
            bad = await call(ws, "params.set", {"pitch": 1, "effects": {"limiter": 5}}, id=5)
            assert bad["error"]["code"] == p.INVALID_PARAMS
            assert (await call(ws, "params.get", id=6))["result"]["pitch"] == 3.0  # the refused set changed nothing

    run(go())


def test_output_that_fails_to_open_is_reported_and_retried() -> None:
    async def go() -> None:
        async with running_server() as h, h.client() as ws:
            await hello(ws)
            fails = ["no such device: plug it in"]
            real_open = h.sink.open

            def flaky_open(sr: int, block: int) -> None:
                if fails:
                    raise DeviceError(fails.pop())
                real_open(sr, block)

            h.sink.open = flaky_open  # type: ignore[method-assign]
            await call(ws, "subscribe", {"events": ["error", "speaking.stopped"]})
            await call(ws, "speak", {"text": "first"}, id=2)
            assert "plug it in" in (await next_event(ws, "error"))["message"]
            await call(ws, "speak", {"text": "second"}, id=3)
            assert (await next_event(ws, "speaking.stopped"))["text"] == "second"
            assert h.sink.opened == (16000, 800) and len(h.sink.audio()) == 1600

    run(go())


def test_interrupt_clear_mute_gain_and_levels() -> None:
    async def go() -> None:
        async with running_server(pace=True) as h, h.client() as ws:
            await hello(ws)
            await call(ws, "subscribe", {"events": ["speaking.started", "speaking.stopped", "levels"]})
            long = " ".join(["word"] * 20)  # 2 s of audio, paced to real time
            await call(ws, "speak", {"text": long}, id=2)
            await call(ws, "speak", {"text": long}, id=3)
            await next_event(ws, "speaking.started")
            lv = await next_event(ws, "levels")
            assert lv["source"] == "tts" and lv["peak_db"] == pytest.approx(-6.0, abs=0.1)
            r = (await call(ws, "speak", {"text": "urgent", "interrupt": True}, id=4))["result"]
            assert r["position"] == 1
            stopped = await next_event(ws, "speaking.stopped")
            assert stopped["interrupted"] is True and stopped["text"] == long
            started = await next_event(ws, "speaking.started")
            assert started["text"] == "urgent"  # the second long one was dropped
            await next_event(ws, "speaking.stopped")
            assert (await call(ws, "mute", {"muted": True}, id=5))["result"] == {"muted": True}
            before = len(h.sink.audio())
            await call(ws, "speak", {"text": "secret"}, id=6)
            await next_event(ws, "speaking.stopped")
            assert np.all(h.sink.audio()[before:] == 0)
            await call(ws, "mute", {"muted": False}, id=7)
            await call(ws, "params.set", {"gain_db": -6.0206}, id=8)
            before = len(h.sink.audio())
            await call(ws, "speak", {"text": "quiet"}, id=9)
            await next_event(ws, "speaking.stopped")
            assert np.max(np.abs(h.sink.audio()[before:])) == pytest.approx(0.25, abs=1e-3)
            await call(ws, "speak", {"text": long}, id=10)
            await next_event(ws, "speaking.started")
            cleared = (await call(ws, "speech.clear", id=11))["result"]
            assert cleared == {"dropped": 0, "interrupted": True}
            assert (await next_event(ws, "speaking.stopped"))["interrupted"] is True

    run(go())


def test_live_params_forwarded_and_events_to_subscribers_only() -> None:
    async def go() -> None:
        async with running_server() as h, h.client() as ws, h.client() as quiet:
            await hello(ws)
            await hello(quiet)
            await call(ws, "subscribe", {"events": ["params.changed", "latency", "levels"]})
            await call(ws, "live.start", id=2)
            new = {"pitch": 4, "formant": -2.5, "bypass": True, "effects": {"reverb": {"mix": 0.2}}}
            res = (await call(ws, "params.set", new, id=3))["result"]
            assert res["pitch"] == 4.0 and res["effects"] == {"reverb": {"mix": 0.2}}
            assert h.lives[0].params["pitch"] == 4.0 and h.lives[0].params["bypass"] is True
            assert (await next_event(ws, "params.changed"))["formant"] == -2.5
            lat = await next_event(ws, "latency")
            assert lat["latency_ms"] == 180.0 and lat["rtf"] == 0.4
            assert (await next_event(ws, "levels"))["source"] == "live"
            await call(ws, "voice.set", {"voice": "alice"}, id=4)
            assert h.lives[0].voice == "alice"
            await call(ws, "mute", {"muted": True}, id=5)
            assert h.lives[0].params["muted"] is True
            unsub = await call(ws, "unsubscribe", id=6)
            assert unsub["result"] == {"events": []}
            # the client that never subscribed got replies only
            assert "result" in await call(quiet, "ping", id=99)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(quiet.recv(), 0.3)

    run(go())


def test_reply_to_helper_rejects_foreign_ids() -> None:
    # guard for the helper the other tests rely on: a reply with another id must not pass
    async def go() -> None:
        async with running_server() as h, h.client() as ws:
            await hello(ws)
            await ws.send(json.dumps({"id": 1, "method": "ping"}))
            with pytest.raises(AssertionError):
                await reply_to(ws, 2)

    run(go())


def test_unknown_start_voice_is_refused_before_serving() -> None:
    from anchorvoice.engine.server.app import ControlServer
    from anchorvoice.engine.server.methods import Controller, ControllerConfig
    from anchorvoice.errors import VoiceNotFoundError
    from tests.server.harness import CaptureSink, FakeEngine

    async def go() -> None:
        ctl = Controller(FakeEngine(), CaptureSink(), ControllerConfig(voice="zed"))
        with pytest.raises(VoiceNotFoundError, match="Unable to find voice 'zed'"):
            await ControlServer(ctl, ServerConfig(port=0), token=TOKEN).start()

    run(go())


def test_each_request_speaks_its_own_voice_and_style_and_reports_the_style() -> None:
    async def go() -> None:
        async with running_server() as h, h.client() as ws:
            await hello(ws)
            await call(ws, "subscribe", {"events": ["speaking.started"]})
            await call(ws, "speak", {"text": "one", "voice": "alice", "style": "excited"}, id=2)
            await call(ws, "speak", {"text": "two", "voice": "bob"}, id=3)
            await call(ws, "speak", {"text": "three", "voice": "alice", "style": "grumpy"}, id=4)
            got = [(m["data"]["text"], m["data"]["voice"], m["data"]["style"]) for m in await events(ws, 3)]
            assert got == [("one", "alice", "excited"), ("two", "bob", "default"), ("three", "alice", "default")]
            assert [c[1] for c in h.engine.calls] == ["alice", "bob", "alice"]  # no request changed another's voice

    run(go())
