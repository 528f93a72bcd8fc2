"""Property-based fuzzing of the control API on the wire: whatever arrives, the server keeps answering."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from anchorvoice.engine.server.app import ServerConfig
from anchorvoice.engine.server.methods import METHODS
from tests.server.harness import call, hello, running_server

json_leaf = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20)
json_value = st.recursive(
    json_leaf,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=12,
)
method_name = st.sampled_from([*METHODS, "auth", "subscribe", "unsubscribe"]) | st.text(max_size=12)
param_key = st.sampled_from(["text", "voice", "language", "interrupt", "pitch", "formant", "gain_db", "bypass",
                             "effects", "muted", "events", "token"]) | st.text(max_size=6)
request = st.fixed_dictionaries(
    {},
    optional={
        "id": st.integers(-5, 10**6) | st.text(max_size=10) | json_leaf,
        "method": method_name | json_leaf,
        "params": st.dictionaries(param_key, json_value, max_size=4) | json_value,
    },
)
frame = (
    request.map(lambda r: json.dumps(r))
    | json_value.map(json.dumps)
    | st.text(max_size=60)
    | st.binary(max_size=40)
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.lists(frame, min_size=50, max_size=160))
def test_random_frames_never_break_the_server(frames: list[str | bytes]) -> None:
    async def go() -> None:
        config = ServerConfig(port=0, rate=10_000, burst=10_000)
        async with running_server(config) as h:
            ws = await h.client().__aenter__()
            await hello(ws)
            answered = 0
            for f in frames:
                try:
                    await ws.send(f)
                    reply = await _reply(ws)
                except ConnectionClosed:  # e.g. a wrong "auth" token: the policy is to close
                    ws = await h.client().__aenter__()
                    await hello(ws)
                    continue
                assert ("result" in reply) != ("error" in reply)
                if "error" in reply:
                    assert isinstance(reply["error"]["code"], int) and reply["error"]["message"]
                answered += 1
            await ws.close()
            async with h.client() as fresh:  # still serving afterwards
                await hello(fresh)
                assert (await call(fresh, "ping"))["result"] == "pong"
                assert "result" in await call(fresh, "status", id=2)
            assert answered > 0

    asyncio.run(asyncio.wait_for(go(), 60))


async def _reply(ws: Any) -> dict[str, Any]:
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if "event" not in msg:
            return msg
