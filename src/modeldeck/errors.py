"""The one exception tree of modeldeck: every error has a stable code and says how to fix it.

    ModelDeckError                       MD000
    ├── ConfigError                      MD010  a setting or environment variable is invalid
    │   ├── DocumentIndexMismatchError   MD011  a document index was built with another model or settings
    │   └── GalleryModelMismatchError    MD012  a face gallery was built with another embedding model
    ├── InputError                       MD100  one input is unusable (maps to 4xx / per-item error)
    │   ├── EmptyInputError              MD101
    │   ├── InputTypeError               MD102
    │   ├── InputTooLargeError           MD103
    │   │   └── WorkerBudgetError        MD106  one input ran its worker past a time or memory budget
    │   ├── InputDecodeError             MD104
    │   ├── InvalidTextError             MD105  a text holds lone surrogates (not Unicode a model can read)
    │   ├── OptionError                  MD110  unknown option or invalid option value
    │   ├── TensorInputError             MD120  a named-tensor input does not fit the model's signature
    │   │   ├── TensorNameError          MD121  a missing or unknown input name
    │   │   ├── TensorShapeError         MD122  a shape that is not the signature's
    │   │   ├── TensorDtypeError         MD123  a value that cannot be cast safely (float to int, text to number)
    │   │   └── RaggedTensorError        MD124  nested lists of uneven lengths
    │   ├── NoFaceError                  MD150  an image holds no face where one was needed
    │   └── MultipleFacesError           MD151  an image holds several faces where one was needed
    ├── NotFoundError                    MD200
    │   ├── UnknownNameError             MD201  a registry (task, runtime, source) lookup failed
    │   ├── UnknownModelError            MD202  no such model in the catalog, the store or on disk
    │   ├── ModelNotInstalledError       MD203  known model, artifacts not present locally
    │   ├── DocumentIndexNotFoundError   MD204  no document index at the given folder
    │   └── GalleryNotFoundError         MD205  no face gallery file at the given path
    ├── StoreError                       MD300
    │   ├── OfflineError                 MD301  a network path was needed in offline mode
    │   ├── DownloadError                MD302
    │   ├── ChecksumError                MD303
    │   ├── ManifestError                MD304
    │   ├── UnsafeModelFileError         MD305  a model file needs code to load (a pickle) and was refused
    │   └── ModelFileError               MD306  a model file its runtime cannot read (corrupt, newer framework)
    ├── DependencyError                  MD400  an optional dependency is missing
    ├── InferenceError                   MD500  the model itself failed
    │   └── BatchContractError           MD501  a batch function broke the one-output-per-input rule
    ├── ServiceError                     MD600
    │   ├── OverloadedError              MD601  queue full; carries retry_after seconds
    │   ├── DeadlineExceededError        MD602
    │   ├── ShuttingDownError            MD603
    │   └── ModelLoadError               MD604  a served model failed to load at start-up
    ├── AuthError                        MD800  no API key, or a key the server does not accept (401)
    │   └── ForbiddenError               MD801  the key is valid but not for this route (403)
    └── JobError                         MD700  a dataset job cannot start or go on (output exists, resume mismatch)
        └── TooManyErrorsError           MD701  more rows failed than max_errors allows

A code's hundreds digit is its family: every error's code lies in the hundred of the family it
derives from (config 0xx, input 1xx, not found 2xx, store 3xx, dependency 4xx, inference 5xx,
service 6xx, job 7xx). Codes are stable: a new error takes the next free code of its family.

Only ``serving/`` maps these to HTTP statuses and only ``cli/`` maps them to exit codes. An error
whose fix is one option's setting carries it as ``fix`` (an ``OptionFix``), so the command line can
name its own flag for it instead of the Python spelling.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "AuthError",
    "BatchContractError",
    "ChecksumError",
    "ConfigError",
    "DeadlineExceededError",
    "DependencyError",
    "DocumentIndexMismatchError",
    "DocumentIndexNotFoundError",
    "DownloadError",
    "EmptyInputError",
    "ForbiddenError",
    "GalleryModelMismatchError",
    "GalleryNotFoundError",
    "InferenceError",
    "InputDecodeError",
    "InputError",
    "InputTooLargeError",
    "InputTypeError",
    "InvalidTextError",
    "JobError",
    "ManifestError",
    "ModelDeckError",
    "ModelFileError",
    "ModelLoadError",
    "ModelNotInstalledError",
    "MultipleFacesError",
    "NoFaceError",
    "NotFoundError",
    "OfflineError",
    "OptionError",
    "OverloadedError",
    "RaggedTensorError",
    "ServiceError",
    "ShuttingDownError",
    "StoreError",
    "TensorDtypeError",
    "TensorInputError",
    "TensorNameError",
    "TensorShapeError",
    "TooManyErrorsError",
    "UnknownModelError",
    "UnknownNameError",
    "UnsafeModelFileError",
    "WorkerBudgetError",
]


@dataclass(frozen=True)
class OptionFix:
    """A fix that is one option's setting, so each front end can phrase it its own way.

    ``python`` is how the hint spells it for a Python caller (``largest=True``); the command line
    replaces that phrase with its own flag (``--largest``, ``-o largest=true``).
    """

    option: str
    value: object
    python: str


class ModelDeckError(Exception):
    """Base of every modeldeck error. ``str(err)`` is ``"[MDnnn] message"``."""

    code = "MD000"

    def __init__(self, message: str, *, hint: str | None = None, fix: OptionFix | None = None) -> None:
        self.message = message
        self.hint = hint
        self.fix = fix
        super().__init__(message)

    def __str__(self) -> str:
        text = f"[{self.code}] {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text

    def to_dict(self) -> dict[str, str]:
        """The wire form used in per-item errors: ``{"code", "message"}``."""
        message = self.message if not self.hint else f"{self.message} ({self.hint})"
        return {"code": self.code, "message": message}


class ConfigError(ModelDeckError):
    code = "MD010"


class DocumentIndexMismatchError(ConfigError):
    code = "MD011"


class GalleryModelMismatchError(ConfigError):
    code = "MD012"


class InputError(ModelDeckError):
    code = "MD100"


class EmptyInputError(InputError):
    code = "MD101"


class InputTypeError(InputError):
    code = "MD102"


class InputTooLargeError(InputError):
    code = "MD103"


class WorkerBudgetError(InputTooLargeError):
    code = "MD106"


class InputDecodeError(InputError):
    code = "MD104"


class InvalidTextError(InputError):
    code = "MD105"


class OptionError(InputError):
    code = "MD110"


class TensorInputError(InputError):
    code = "MD120"


class TensorNameError(TensorInputError):
    code = "MD121"


class TensorShapeError(TensorInputError):
    code = "MD122"


class TensorDtypeError(TensorInputError):
    code = "MD123"


class RaggedTensorError(TensorInputError):
    code = "MD124"


class NoFaceError(InputError):
    code = "MD150"


class MultipleFacesError(InputError):
    code = "MD151"


class NotFoundError(ModelDeckError):
    code = "MD200"


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'ner'?)`` for the closest of ``candidates`` to a mistyped ``name``, else ``""``."""
    import difflib  # only on the error path: ``import modeldeck`` stays lean

    pool = list(dict.fromkeys(candidates))
    close = difflib.get_close_matches(name, pool, n=2, cutoff=0.6)
    if not close:  # case slips ("NER", "minilm") are not close by ratio, but are plainly the same name
        close = [c for c in pool if c.lower() == name.lower()][:1]
    if not close:
        return ""
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)"


class UnknownNameError(NotFoundError):
    code = "MD201"

    def __init__(self, kind: str, name: str, valid: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.valid = sorted(valid)
        super().__init__(
            f"unknown {kind} {name!r}{did_you_mean(name, self.valid)}",
            hint=f"valid {kind}s: {', '.join(self.valid) or '(none registered)'}",
        )


class UnknownModelError(NotFoundError):
    code = "MD202"


class ModelNotInstalledError(NotFoundError):
    code = "MD203"


class DocumentIndexNotFoundError(NotFoundError):
    code = "MD204"


class GalleryNotFoundError(NotFoundError):
    code = "MD205"


class StoreError(ModelDeckError):
    code = "MD300"


class OfflineError(StoreError):
    code = "MD301"


class DownloadError(StoreError):
    code = "MD302"


class ChecksumError(StoreError):
    code = "MD303"


class ManifestError(StoreError):
    code = "MD304"


class ModelFileError(StoreError):
    code = "MD306"


class UnsafeModelFileError(StoreError):
    code = "MD305"


class DependencyError(ModelDeckError):
    code = "MD400"

    def __init__(self, package: str, *, extra: str | None = None, purpose: str = "") -> None:
        self.package = package
        install = f'pip install "modeldeck[{extra}]"' if extra else f"pip install {package}"
        what = f" (needed for {purpose})" if purpose else ""
        super().__init__(f"the optional dependency {package!r} is not installed{what}", hint=f"run: {install}")


class InferenceError(ModelDeckError):
    code = "MD500"


class BatchContractError(InferenceError):
    code = "MD501"


class ServiceError(ModelDeckError):
    code = "MD600"


class OverloadedError(ServiceError):
    code = "MD601"

    def __init__(self, message: str, *, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(message, hint=f"retry in {retry_after:.1f}s")


class DeadlineExceededError(ServiceError):
    code = "MD602"


class ShuttingDownError(ServiceError):
    code = "MD603"


class ModelLoadError(ServiceError):
    code = "MD604"


class AuthError(ModelDeckError):
    code = "MD800"


class ForbiddenError(AuthError):
    code = "MD801"


class JobError(ModelDeckError):
    code = "MD700"


class TooManyErrorsError(JobError):
    code = "MD701"
