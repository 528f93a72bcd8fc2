"""Every exception anchorvoice raises on purpose.

The tree::

    AnchorVoiceError                 base; ``str(e)`` is a message a user can act on
    ├── ConfigError                  a TOML preset or a parameter is wrong (names file, key, allowed values)
    ├── PluginError                  a plugin is missing, broken or misbehaves
    │   └── PluginNotFoundError      no plugin of that kind and name is registered
    ├── StageError                   a stage failed while processing (wraps the cause)
    ├── AudioInputError              audio file missing, unreadable, not audio, empty, bad shape
    ├── TextInputError               text empty, or nothing speakable in it
    │   └── UnsupportedLanguageError no frontend / base voice covers the language
    ├── VoiceError                   voice library problems
    │   ├── VoiceNotFoundError       unknown voice name
    │   ├── VoiceExistsError         adding a voice whose name is taken
    │   └── ReferenceAudioError      reference clip too short, too long, silent
    ├── CheckpointError              model file cannot be used
    │   ├── UnsafeCheckpointError    the file tries to run code or names a class we do not allow
    │   ├── CorruptCheckpointError   truncated / not a checkpoint / missing or extra keys
    │   └── UnsupportedCheckpointError  a known format version we do not support yet
    ├── DatasetError                 a training set cannot be made or used as asked (names what to fix)
    ├── DeviceError                  audio device not found / cannot be opened / virtual mic setup
    ├── ProtocolError                a control-API message is malformed (carries a code)
    └── BridgeError                  OBS / VTube Studio unreachable, refused a request, or misconfigured
        ├── BridgeAuthError          wrong password / token refused (retrying will not help)
        └── BridgeRequestError       a request failed on the remote side (carries its status code)

Messages say what to do next, e.g. "Unable to find voice 'x' (run `anchorvoice voices list`)".
"""

from __future__ import annotations


class AnchorVoiceError(Exception):
    """Base class of every anchorvoice error."""


class ConfigError(AnchorVoiceError):
    """A configuration file or parameter is invalid."""

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None) -> None:
        where = ""
        if source and key:
            where = f"{source}: [{key}] "
        elif source:
            where = f"{source}: "
        elif key:
            where = f"[{key}] "
        super().__init__(where + message)
        self.source = source
        self.key = key


class PluginError(AnchorVoiceError):
    """A plugin could not be loaded or misbehaved."""


class PluginNotFoundError(PluginError):
    """No plugin of the requested kind and name is registered."""


class StageError(AnchorVoiceError):
    """A pipeline stage raised while processing."""


class AudioInputError(AnchorVoiceError):
    """Audio input cannot be used as given."""


class TextInputError(AnchorVoiceError):
    """Text input cannot be spoken as given."""


class UnsupportedLanguageError(TextInputError):
    """No installed plugin covers the requested language."""


class VoiceError(AnchorVoiceError):
    """Voice library error."""


class VoiceNotFoundError(VoiceError):
    """The named voice does not exist."""


class VoiceExistsError(VoiceError):
    """A voice with that name already exists."""


class ReferenceAudioError(VoiceError):
    """A reference clip is unusable (too short, too long, silent)."""


class CheckpointError(AnchorVoiceError):
    """A model file cannot be used."""


class UnsafeCheckpointError(CheckpointError):
    """A model file tries to execute code or references a disallowed class."""


class CorruptCheckpointError(CheckpointError):
    """A model file is truncated, not a checkpoint, or has wrong keys."""


class UnsupportedCheckpointError(CheckpointError):
    """A model file of a known but unsupported format version."""


class DatasetError(AnchorVoiceError):
    """A training dataset cannot be made, resumed or used as asked."""


class DeviceError(AnchorVoiceError):
    """An audio device or virtual microphone problem."""


class ProtocolError(AnchorVoiceError):
    """A control-API message is malformed; ``code`` is the JSON error code to send."""

    def __init__(self, message: str, code: int = -32600) -> None:
        super().__init__(message)
        self.code = code


class BridgeError(AnchorVoiceError):
    """An OBS or VTube Studio connection or request failed."""


class BridgeAuthError(BridgeError):
    """The remote refused our credentials (password or token)."""


class BridgeRequestError(BridgeError):
    """A request failed remotely; ``code`` is the remote status code (obs-websocket RequestStatus)."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


class TrainingError(AnchorVoiceError):
    """Training refused or stopped: missing base weights, wrong order, NaN loss, a locked voice."""


class TrainingDatasetError(TrainingError):
    """A training dataset folder is missing files, malformed, or too small for one batch."""
