"""obs-websocket v5 client against the protocol-faithful fake server."""

from __future__ import annotations

import asyncio
import base64
import hashlib

import pytest

from anchorvoice.errors import BridgeAuthError, BridgeError, BridgeRequestError
from anchorvoice.obs_bridge.obs import ObsClient, ObsConfig, Sub, auth_string
from tests.obs.fake_obs import INPUTS_BIT, FakeObs


def run(coro) -> None:
    asyncio.run(asyncio.wait_for(coro, 30))


def test_auth_string_matches_the_protocol_recipe() -> None:
    secret = base64.b64encode(hashlib.sha256(b"pw" + b"SALT").digest())
    want = base64.b64encode(hashlib.sha256(secret + b"CHAL").digest()).decode()
    assert auth_string("pw", "SALT", "CHAL") == want
    assert auth_string("pw", "SALT", "CHAL") != auth_string("pw", "SALT", "CHAL2")


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
def test_identify_with_password_and_requests_by_id(encoding: str) -> None:
    async def go() -> None:
        obs = FakeObs(password="hunter2")
        for i in range(10):
            obs.add_input(f"in{i}", "text_ft2_source_v2", {"text": f"t{i}"})
        await obs.start()
        client = ObsClient(ObsConfig(url=obs.url, password="hunter2", encoding=encoding))  # type: ignore[arg-type]
        await client.connect()
        assert client.negotiated_rpc == 1
        assert obs.identifies[0]["eventSubscriptions"] == Sub.GENERAL | Sub.INPUTS | Sub.SCENES
        # concurrent requests: each answer is matched to its own request id
        results = await asyncio.gather(*[client.request("GetInputSettings", {"inputName": f"in{i}"})
                                         for i in reversed(range(10))])
        assert [r["inputSettings"]["text"] for r in results] == [f"t{i}" for i in reversed(range(10))]
        with pytest.raises(BridgeRequestError) as info:
            await client.request("NoSuchRequest")
        assert info.value.code == 204
        with pytest.raises(BridgeRequestError, match="code 600") as info:
            await client.request("GetInputSettings", {"inputName": "missing"})
        assert [t for t, _ in obs.log][-2:] == ["NoSuchRequest", "GetInputSettings"]
        await client.close()
        await obs.stop()

    run(go())


def test_wrong_or_missing_password_and_bad_rpc_version() -> None:
    async def go() -> None:
        obs = FakeObs(password="right")
        await obs.start()
        client = ObsClient(ObsConfig(url=obs.url, password="wrong", reconnect_initial_s=0.01))
        with pytest.raises(BridgeAuthError, match="4009"):
            await client.run()  # no retry loop for a wrong password
        assert client.attempts == 1 and obs.close_codes == [4009]
        with pytest.raises(BridgeAuthError, match="requires a password"):
            await ObsClient(ObsConfig(url=obs.url)).connect()
        await obs.stop()
        newer = FakeObs(rpc_version=2)
        await newer.start()
        with pytest.raises(BridgeError, match="4010"):
            await ObsClient(ObsConfig(url=newer.url)).connect()
        assert newer.close_codes == [4010]
        await newer.stop()
        with pytest.raises(BridgeError, match="cannot reach OBS"):
            await ObsClient(ObsConfig(url=newer.url)).connect()

    run(go())


def test_event_subscription_bitmask_and_reidentify() -> None:
    async def go() -> None:
        obs = FakeObs()
        obs.add_input("mic", "pulse_input_capture")
        await obs.start()
        got: list[tuple[str, dict]] = []
        inputs = ObsClient(ObsConfig(url=obs.url, event_subscriptions=INPUTS_BIT),
                           on_event=lambda t, d: got.append((t, d)))
        deaf: list[str] = []
        none = ObsClient(ObsConfig(url=obs.url, event_subscriptions=Sub.NONE), on_event=lambda t, d: deaf.append(t))
        await inputs.connect()
        await none.connect()
        await none.request("SetInputMute", {"inputName": "mic", "inputMuted": True})
        await asyncio.sleep(0.1)
        assert got == [("InputMuteStateChanged", {"inputName": "mic", "inputMuted": True})] and deaf == []
        await none.reidentify(Sub.INPUTS)
        await asyncio.sleep(0.05)
        await inputs.request("SetInputMute", {"inputName": "mic", "inputMuted": False})
        await asyncio.sleep(0.1)
        assert deaf == ["InputMuteStateChanged"] and len(got) == 2
        await inputs.close()
        await none.close()
        await obs.stop()

    run(go())


def test_backoff_doubles_and_is_capped() -> None:
    c = ObsClient(ObsConfig(reconnect_initial_s=0.5, reconnect_max_s=4))
    assert [c.backoff(n) for n in range(1, 7)] == [0.5, 1, 2, 4, 4, 4]


def test_reconnects_after_obs_restart() -> None:
    async def go() -> None:
        obs = FakeObs(password="pw")
        await obs.start()
        connects = []

        async def on_connect() -> None:
            connects.append(obs.port)

        client = ObsClient(ObsConfig(url=obs.url, password="pw", reconnect_initial_s=0.05, reconnect_max_s=0.2),
                           on_connect=on_connect)
        task = asyncio.create_task(client.run())
        await asyncio.wait_for(client.connected.wait(), 5)
        assert (await client.request("GetVersion"))["rpcVersion"] == 1
        await obs.stop()  # OBS quits
        await asyncio.sleep(0.05)
        assert not client.connected.is_set()
        with pytest.raises(BridgeError, match="not connected"):
            await client.request("GetVersion")
        await asyncio.sleep(0.5)  # several failed attempts with backoff
        failed_attempts = client.attempts
        assert failed_attempts >= 2 and "cannot reach OBS" in (client.last_error or "")
        await obs.start()  # OBS is back on the same port
        await asyncio.wait_for(client.connected.wait(), 5)
        assert (await client.request("GetVersion"))["obsWebSocketVersion"] == "5.1.0"
        assert len(connects) == 2 and len(obs.identifies) == 2
        await client.close()
        await task
        await obs.stop()

    run(go())


def test_cancelling_a_request_whose_answer_just_arrived_still_cancels() -> None:
    """Stopping the bridge cancels its task; the cancel must not be lost when OBS answers in the same tick
    (``asyncio.wait_for`` on Python 3.11 returned the answer and dropped the cancel: shutdown hung)."""

    class SilentSocket:
        async def send(self, message: object) -> None:
            pass

    async def go() -> None:
        client = ObsClient(ObsConfig(url="ws://127.0.0.1:1"))
        client._ws = SilentSocket()  # type: ignore[assignment]
        task = asyncio.get_running_loop().create_task(client.request("GetVersion"))
        await asyncio.sleep(0)  # the request is sent and waits for its answer
        (fut,) = client._pending.values()
        fut.set_result({"requestStatus": {"result": True, "code": 100}, "responseData": {}})
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(go())


def test_fake_answers_like_obs_29_with_websocket_5_1() -> None:
    async def go() -> None:
        obs = FakeObs()
        obs.add_input("subs", "text_ft2_source_v2", {"text": "hi"})
        obs.add_input("cam", "v4l2_input", scene="Other")
        await obs.start()
        client = ObsClient(ObsConfig(url=obs.url))
        await client.connect()
        assert client.websocket_version == "5.1.0"
        version = await client.request("GetVersion")
        assert (version["obsVersion"], version["obsWebSocketVersion"]) == ("29.0.2", "5.1.0")
        assert await client.request("GetCurrentProgramScene") == {"currentProgramSceneName": "Scene"}
        assert (await client.request("GetSceneItemId", {"sceneName": "Other", "sourceName": "cam"}))["sceneItemId"] == 1
        assert (await client.request("GetInputSettings", {"inputName": "subs"}))["inputSettings"] == {"text": "hi"}
        defaults = (await client.request("GetInputDefaultSettings", {"inputKind": "text_ft2_source_v2"}))
        assert defaults["defaultInputSettings"]["font"]["size"] == 256
        with pytest.raises(BridgeRequestError, match="does not support audio") as info:
            await client.request("SetInputMute", {"inputName": "subs", "inputMuted": True})
        assert info.value.code == 604
        with pytest.raises(BridgeRequestError) as info:
            await client.request("CreateInput", {"sceneName": "Scene", "inputName": "t",
                                                 "inputKind": "text_gdiplus_v3"})
        assert info.value.code == 605
        created = await client.request("CreateInput", {"sceneName": "Other", "inputName": "t",
                                                       "inputKind": "text_ft2_source_v2"})
        assert created == {"sceneItemId": 2}
        await client.close()
        await obs.stop()
        newer = FakeObs(newer=True)
        await newer.start()
        client = ObsClient(ObsConfig(url=newer.url))
        await client.connect()
        assert set(await client.request("GetCurrentProgramScene")) == {"currentProgramSceneName", "sceneName",
                                                                       "sceneUuid"}
        assert client.websocket_version == "5.5.0"
        await client.close()
        await newer.stop()

    run(go())
