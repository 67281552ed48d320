"""The exceptions modelfleet raises, as one tree.

    ModelfleetError
    ├── InvalidInput                 a person gave something wrong: exit code 2, HTTP 4xx
    │   ├── FleetConfigError         fleet.yaml refused, with every error's file:line:column
    │   ├── NotFound                 no such tenant, model, version, deployment or key
    │   │   └── UnknownSilence       no silence with that id
    │   ├── InvalidBatch             a batch does not match the model's inputs: HTTP 400
    │   └── InvalidSilence           a silence refused: no matchers, matches every alert, ends first
    ├── StoreError                   the store could not be reached or migrated: exit code 1
    ├── ListenError                  the gateway could not listen, or its workers failed: exit code 1
    ├── DeliveryFailed               a notification was not delivered; `retryable`: try again later
    └── ServingError                 a model version could not be loaded or run: HTTP 5xx
        ├── ModelLoadError           an artifact could not be loaded; `reason` says why
        │   └── ArtifactMismatch     the artifact's sha256 is not the one registered
        ├── PredictionError          a model failed while predicting, or returned malformed outputs
        └── NotDeployed              the backend does not serve that version (yet, or any more)

The CLI and the HTTP layer each turn these into exit codes and status codes in one place.
"""

from __future__ import annotations

from dataclasses import dataclass


class ModelfleetError(Exception):
    """Base of every error modelfleet raises on purpose."""


class InvalidInput(ModelfleetError):
    """Something a person supplied is wrong; retrying the same input fails the same way."""


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a fleet file, located at the YAML node that caused it."""

    file: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class FleetConfigError(InvalidInput):
    """A fleet file was refused whole; `issues` holds every problem found."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = sorted(issues, key=lambda i: (i.file, i.line, i.column, i.field))
        super().__init__("\n".join(str(i) for i in self.issues))


class NotFound(InvalidInput):
    """A named tenant, model, version, deployment or key does not exist."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name
        super().__init__(f"{kind} {name!r} not found")


class UnknownSilence(NotFound):
    """No silence has this id."""

    def __init__(self, silence_id: int) -> None:
        self.silence_id = silence_id
        super().__init__("silence", str(silence_id))


class InvalidBatch(InvalidInput):
    """A batch of inputs does not match what the model declares (names, dtypes, shapes, rows)."""


class InvalidSilence(InvalidInput):
    """A silence was refused: it names no matcher, would mute every alert, or ends first."""


class StoreError(ModelfleetError):
    """The store could not be opened, reached or migrated."""


class ListenError(ModelfleetError):
    """The gateway could not listen on its address, or its worker processes failed."""


class DeliveryFailed(ModelfleetError):
    """A notifier could not deliver a notification; `reason` says why, for the person reading it.

    retryable: the receiver may accept the same notification later (HTTP 5xx or 429, SMTP 4xx,
        a timeout, a refused connection); False when sending it again fails the same way
        (HTTP 4xx, SMTP 5xx, a missing secret, an invalid target).
    """

    def __init__(self, reason: str, *, retryable: bool) -> None:
        self.reason = reason
        self.retryable = retryable
        super().__init__(reason)


class ServingError(ModelfleetError):
    """A model version could not be loaded or run; the caller's input was not at fault."""


class ModelLoadError(ServingError):
    """A model artifact could not be loaded; `reason` says why."""

    def __init__(self, artifact: str, reason: str) -> None:
        self.artifact = artifact
        self.reason = reason
        super().__init__(f"cannot load model artifact {artifact}: {reason}")


class ArtifactMismatch(ModelLoadError):
    """An artifact's bytes are not the ones registered: its sha256 differs."""

    def __init__(self, artifact: str, expected_sha256: str, actual_sha256: str) -> None:
        self.expected_sha256 = expected_sha256
        self.actual_sha256 = actual_sha256
        super().__init__(
            artifact,
            f"its sha256 is {actual_sha256} but the version is registered with sha256 "
            f"{expected_sha256}; the file changed after it was registered",
        )


class PredictionError(ServingError):
    """A loaded model raised while predicting, or returned outputs of the wrong shape."""


class NotDeployed(ServingError):
    """A backend was asked about a model version it does not serve."""

    def __init__(self, model: str, version: str) -> None:
        self.model = model
        self.version = version
        super().__init__(f"version {model}/{version} is not deployed on this backend")
