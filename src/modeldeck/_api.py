"""``modeldeck.load``: resolve a model through the store and wrap it in its task."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from .config import Settings
from .errors import OptionError, did_you_mean

if TYPE_CHECKING:
    from .tasks.base import Task
    from .types import ModelInfo, OnnxSessionOptions

__all__ = ["Loader", "load", "load_info"]


class Loader(Protocol):
    """How code inside modeldeck gets a loaded task: ``load`` by default; tests inject their own.

    Jobs, galleries and document indexes take ``loader=`` instead of calling ``load`` directly.
    """

    def __call__(
        self,
        name_or_path: str,
        *,
        model: str | None = None,
        settings: Settings | None = None,
        device: str = "cpu",
        batch_size: int | None = None,
    ) -> Task[Any, Any, Any, Any]: ...


def load_info(
    info: ModelInfo,
    task: str | None = None,
    *,
    settings: Settings | None = None,
    device: str = "cpu",
    batch_size: int | None = None,
    onnx_session: OnnxSessionOptions | None = None,
    **options: Any,
) -> Task[Any, Any, Any, Any]:
    """Wrap an already resolved model in the task class registered for ``task``.

    ``onnx_session`` (threads, graph level) applies to a model of runtime ``onnxruntime`` only;
    unset, it is the settings' entry for the model's name (``MODELDECK_ONNX_THREADS``, ...).
    """
    from .tasks import TASKS

    settings = settings or Settings.from_env()
    task_name = task or info.task
    if task_name not in info.tasks:
        raise OptionError(
            f"model {info.name!r} does not serve the task {task_name!r}",
            hint=f"it serves: {', '.join(info.tasks)}",
        )
    return TASKS.get(task_name).from_model(  # type: ignore[no-any-return]
        info,
        device=device,
        batch_size=settings.max_batch_size if batch_size is None else batch_size,
        max_text_chars=settings.max_text_chars,
        max_image_pixels=options.pop("max_image_pixels", settings.max_image_pixels),
        onnx_session=onnx_session or settings.onnx_session(info.name),
        **options,
    )


def load(
    name_or_path: str,
    *,
    model: str | None = None,
    settings: Settings | None = None,
    device: str = "cpu",
    batch_size: int | None = None,
    onnx_session: OnnxSessionOptions | None = None,
    **options: Any,
) -> Task[Any, Any, Any, Any]:
    """Load a model behind its task, ready to call on one input or a list.

    ``load("ner")`` gives the task's default model; ``load("ner", model="./my-bert")`` or
    ``load("ner", model="name@version")`` picks another; ``load("./my-bert")`` infers the task
    from the files. ``options`` become the task's default call options (``normalize=True``).
    ``onnx_session`` sets the threads and graph level of an ONNX Runtime model; unset, the
    settings' entry for ``name_or_path`` applies (``MODELDECK_ONNX_THREADS=embed=1``), as a deck's does.
    """
    from .store import ModelStore
    from .tasks import TASKS

    settings = settings or Settings.from_env()
    store = ModelStore(settings)
    if model is not None:
        task: str | None = name_or_path
        if task not in TASKS:
            raise OptionError(
                f"{name_or_path!r} is not a task, so it cannot be combined with model={model!r}"
                + did_you_mean(name_or_path, TASKS.names()),
                hint=f"valid tasks: {', '.join(TASKS.names())}",
            )
        info = store.resolve(model, task=task)
    else:
        task = name_or_path if name_or_path in TASKS else None
        info = store.resolve(name_or_path, task=task)
    session = onnx_session or settings.onnx_session(name_or_path)
    return load_info(
        info, task, settings=settings, device=device, batch_size=batch_size, onnx_session=session, **options
    )
