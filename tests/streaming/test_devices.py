"""Device matching, virtual-cable recognition and the non-Linux virtual mic (no sound server needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from anchorvoice.errors import DeviceError
from anchorvoice.streaming.backends.devices import DeviceInfo, default_device, find_device, recognise_virtual
from anchorvoice.streaming.virtual_mic import VirtualMic


def dev(name: str, ins: int = 0, outs: int = 0, desc: str = "", **kw: object) -> DeviceInfo:
    return DeviceInfo(name=name, host_api="MME", max_input_channels=ins, max_output_channels=outs,
                      default_samplerate=48000.0, description=desc, **kw)  # type: ignore[arg-type]


WINDOWS = [
    dev("Microphone (USB Audio Device)", ins=1, is_default_input=True),
    dev("Microphone (Realtek High Definition Audio)", ins=2),
    dev("Speakers (Realtek High Definition Audio)", outs=2, is_default_output=True),
    dev("CABLE Input (VB-Audio Virtual Cable)", outs=2),
    dev("CABLE Output (VB-Audio Virtual Cable)", ins=2),
    dev("VoiceMeeter Input (VB-Audio VoiceMeeter VAIO)", outs=2),
]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("CABLE Input (VB-Audio Virtual Cable)", "VB-CABLE"),
        ("CABLE Output (VB-Audio Virtual Cable)", "VB-CABLE"),
        ("VoiceMeeter Output (VB-Audio VoiceMeeter VAIO)", "VoiceMeeter"),
        ("BlackHole 2ch", "BlackHole"),
        ("anchorvoice_mic", "anchorvoice"),
        ("Microphone (USB Audio Device)", None),
    ],
)
def test_recognises_virtual_microphones(name: str, kind: str | None) -> None:
    assert recognise_virtual(name) == kind


def test_substring_match_is_case_insensitive_and_direction_aware() -> None:
    assert find_device(WINDOWS, "usb", "input").name == "Microphone (USB Audio Device)"
    assert find_device(WINDOWS, "cable", "output").name.startswith("CABLE Input")
    assert find_device(WINDOWS, "CABLE", "input").name.startswith("CABLE Output")


def test_exact_name_wins_over_substring() -> None:
    devices = [dev("pulse", ins=2, outs=2), dev("pulse_mic_extra", ins=2)]
    assert find_device(devices, "PULSE", "input").name == "pulse"


def test_description_is_searchable() -> None:
    devices = [dev("anchorvoice_mic", ins=1, desc="anchorvoice Virtual Mic")]
    assert find_device(devices, "virtual mic", "input").name == "anchorvoice_mic"


def test_ambiguous_match_lists_candidates() -> None:
    with pytest.raises(DeviceError, match="ambiguous") as exc:
        find_device(WINDOWS, "microphone", "input")
    assert "USB Audio Device" in str(exc.value) and "Realtek" in str(exc.value)


def test_no_match_suggests_close_names_and_the_listing_command() -> None:
    with pytest.raises(DeviceError) as exc:
        find_device(WINDOWS, "Microphone (USB Audio Devise)", "input")
    msg = str(exc.value)
    assert "did you mean 'Microphone (USB Audio Device)'" in msg
    assert "anchorvoice devices" in msg


def test_no_devices_at_all_says_so() -> None:
    with pytest.raises(DeviceError, match="no input devices at all"):
        find_device([dev("Speakers", outs=2)], "mic", "input")
    with pytest.raises(DeviceError, match="empty"):
        find_device(WINDOWS, "  ", "input")


def test_default_device() -> None:
    assert default_device(WINDOWS, "output").name.startswith("Speakers")
    with pytest.raises(DeviceError, match="no input device found"):
        default_device([], "input")


def test_virtual_mic_on_windows_finds_vb_cable() -> None:
    vm = VirtualMic(platform="win32", list_devices=lambda: WINDOWS)
    status = vm.up()
    assert status.present and status.kind == "VB-CABLE"
    assert status.play_device == "CABLE Input (VB-Audio Virtual Cable)"
    assert status.record_device == "CABLE Output (VB-Audio Virtual Cable)"
    assert "nothing to remove" in vm.down().message


def test_virtual_mic_on_macos_without_driver_says_what_to_install() -> None:
    vm = VirtualMic(platform="darwin", list_devices=lambda: [dev("MacBook Pro Microphone", ins=1)])
    assert not vm.status().present
    with pytest.raises(DeviceError, match="BlackHole"):
        vm.up()


def test_virtual_mic_on_macos_with_blackhole() -> None:
    vm = VirtualMic(platform="darwin", list_devices=lambda: [dev("BlackHole 2ch", ins=2, outs=2)])
    status = vm.status()
    assert status.present and status.kind == "BlackHole" and status.play_device == "BlackHole 2ch"


def test_alsa_route_config_includes_what_alsa_would_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    from anchorvoice.streaming.backends import pulse

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    user_conf = tmp_path / "user.conf"
    user_conf.write_text("# the user's own ALSA config\n")
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(user_conf))
    assert pulse.install_alsa_route()
    ours = Path(os.environ["ALSA_CONFIG_PATH"])
    text = ours.read_text()
    assert ours.parent == tmp_path and f"<{user_conf}>" in text  # the user's config still applies
    assert f"pcm.{pulse.ROUTE_PCM}" in text and "type pulse" in text and "handle_underrun false" in text
    assert pulse.install_alsa_route()  # idempotent
    assert ours.read_text() == text

    monkeypatch.setenv("ALSA_CONFIG_PATH", str(tmp_path / "missing.conf"))
    assert not pulse.install_alsa_route()  # nothing to include: keep ALSA as it is
    assert os.environ["ALSA_CONFIG_PATH"] == str(tmp_path / "missing.conf")
