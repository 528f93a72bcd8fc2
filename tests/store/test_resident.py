"""The resident-memory budget: least recently used voices unloaded, never one in use, budgets checked at start."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from anchorvoice.audio_io import speech_like_signal
from anchorvoice.engine.engine import Engine, EngineConfig
from anchorvoice.engine.plugins import PluginManager
from anchorvoice.engine.store.resident import MB, Footprint, ResidentCache, StoreConfig, footprint
from anchorvoice.engine.voices import VoiceLibrary
from anchorvoice.errors import ConfigError


class Model:
    """Stands in for a pipeline: 1 MiB of float32 weights."""

    def __init__(self) -> None:
        self.layer = torch.nn.Linear(512, 512, bias=False)
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_footprint_counts_each_tensor_once() -> None:
    m = Model()
    shared = {"a": m, "b": m.layer, "w": m.layer.weight}
    assert footprint(shared) == Footprint(host=512 * 512 * 4)


def test_the_budget_holds_under_random_switching() -> None:
    cache: ResidentCache[Model] = ResidentCache(StoreConfig(max_resident_mb=3), close=Model.close)
    rng = random.Random(0)
    for _ in range(200):
        m = cache.get_or_build(rng.randrange(10), Model)
        assert not m.closed
        assert cache.resident().host <= 3 * MB
    assert cache.evictions > 0 and len(cache.keys()) == 3


def test_least_recently_used_goes_first() -> None:
    cache: ResidentCache[Model] = ResidentCache(StoreConfig(max_resident_mb=2), close=Model.close)
    a, b = cache.get_or_build("a", Model), cache.get_or_build("b", Model)
    cache.get_or_build("a", Model)  # a is now the most recent
    cache.get_or_build("c", Model)
    assert cache.keys() == ["a", "c"] and b.closed and not a.closed


def test_a_voice_in_use_is_not_closed_under_it() -> None:
    cache: ResidentCache[Model] = ResidentCache(StoreConfig(max_resident_mb=1), close=Model.close)
    with cache.lease("a", Model) as a:
        cache.get_or_build("b", Model)  # evicts a from the count...
        assert "a" not in cache.keys() and not a.closed  # ...but the speech using it goes on
    assert a.closed


def _home_with_a_4_mib_voice(tmp_path: Path) -> Path:
    """A user home holding one voice, 'big', whose model is 4 MiB once loaded as float32."""
    home = tmp_path / "home"
    clip = tmp_path / "a.wav"
    sf.write(str(clip), speech_like_signal(22050, 2.0).samples, 22050)
    model = tmp_path / "model.bin"
    model.write_bytes(b"x")
    weights = {"w": torch.zeros(1024, 1024, dtype=torch.float16)}
    VoiceLibrary(home).add("big", [clip], models={"toy": model}, importer=lambda kind, p: (weights, {}))
    return home


def test_a_budget_smaller_than_one_voice_is_refused_at_start(tmp_path: Path) -> None:
    home = _home_with_a_4_mib_voice(tmp_path)
    with pytest.raises(ConfigError, match=r"store.max_resident_mb.*voice 'big'.*4.0 MiB.*at least 4"):
        Engine(EngineConfig(home=home, store=StoreConfig(max_resident_mb=2)), plugins=PluginManager())
    Engine(EngineConfig(home=home, store=StoreConfig(max_resident_mb=4)), plugins=PluginManager()).close()


def test_loading_one_voice_does_not_hold_up_another_that_is_loaded() -> None:
    import threading

    cache: ResidentCache[Model] = ResidentCache(StoreConfig())
    warm = cache.get_or_build("warm", Model)
    release, started = threading.Event(), threading.Event()

    def slow() -> Model:
        started.set()
        release.wait(10)
        return Model()

    t = threading.Thread(target=cache.get_or_build, args=("cold", slow))
    t.start()
    assert started.wait(5)
    got: list[Model] = []
    asker = threading.Thread(target=lambda: got.append(cache.get_or_build("warm", Model)))
    asker.start()
    asker.join(2)
    assert got == [warm]  # answered while "cold" is still loading
    release.set()
    t.join(5)
    assert cache.keys() == ["warm", "cold"]


class _OnGpu(torch.Tensor):
    """A host tensor that reports an accelerator device (no GPU on the test machines)."""

    @property
    def device(self) -> torch.device:  # type: ignore[override]
        return torch.device("cuda", 0)


def test_footprint_reaches_a_runtime_inside_a_stage_and_counts_its_arrays() -> None:
    """A pipeline holds its stages in a dict, a stage its runtime, a runtime the model and the fused decode
    step's numpy weights: all of it is loaded memory (the budget had missed the GPT's runtime)."""

    class Holder:
        def __init__(self, **kw: object) -> None:
            self.__dict__.update(kw)

    model = Model()  # 1 MiB of parameters
    arrays = Holder(qkv=np.zeros((256, 256), np.float32), view=None)  # 256 KiB
    arrays.view = arrays.qkv[:10]  # a view of the same memory: not counted again
    shared = torch.from_numpy(arrays.qkv)  # a tensor on the same memory: not counted again
    runtime = Holder(model=model, step_weights=arrays, shared=shared, me=None)
    runtime.me = runtime  # a cycle ends the walk
    pipeline = Holder(stages={"prosody": Holder(runtime=runtime)})
    assert footprint(pipeline) == Footprint(host=MB + 256 * 256 * 4)


def test_footprint_adds_the_bytes_an_object_hides_once() -> None:
    class Packed:
        def hidden_host_bytes(self) -> int:
            return 4096

    packed = Packed()
    assert footprint({"a": packed, "b": [packed], "w": torch.zeros(256)}) == Footprint(host=4096 + 256 * 4)


def test_footprint_counts_host_and_gpu_apart() -> None:
    host = torch.zeros(256, 256)  # 256 KiB
    gpu = torch.Tensor._make_subclass(_OnGpu, torch.zeros(512, 512))  # 1 MiB "on the GPU"
    meta = torch.zeros(1024, 1024, device="meta")  # no memory anywhere: not counted
    assert footprint({"h": host, "g": gpu, "m": meta}) == Footprint(host=256 * 256 * 4, gpu=MB)


def test_the_gpu_budget_evicts_on_its_own() -> None:
    cache: ResidentCache[Model] = ResidentCache(StoreConfig(max_resident_mb=0, max_gpu_mb=2),
                                                close=Model.close, measure=lambda _m: Footprint(host=64, gpu=MB))
    models = [cache.get_or_build(k, Model) for k in "abc"]
    assert cache.keys() == ["b", "c"] and models[0].closed
    assert cache.resident() == Footprint(host=128, gpu=2 * MB)


def test_a_gpu_budget_smaller_than_one_voice_is_refused_at_start(tmp_path: Path) -> None:
    home = _home_with_a_4_mib_voice(tmp_path)
    with pytest.raises(ConfigError, match=r"store.max_gpu_mb.*voice 'big'.*GPU memory.*4.0 MiB.*at least 4"):
        Engine(EngineConfig(home=home, store=StoreConfig(max_gpu_mb=3)), plugins=PluginManager())
    Engine(EngineConfig(home=home, store=StoreConfig(max_gpu_mb=4)), plugins=PluginManager()).close()
