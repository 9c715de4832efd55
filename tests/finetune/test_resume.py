"""Long runs are safe: a run killed in stage 2 and resumed ends like an uninterrupted one; Ctrl-C keeps the best."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modeldeck.config import Settings
from modeldeck.errors import JobError
from modeldeck.finetuning import finetune

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]  # minutes on a busy 2-core machine

RECIPE = {"epochs": 3, "lm_epochs": 1, "batch_size": 16, "max_length": 16, "lr": 1e-3, "patience": 10, "seed": 3}


class Killed(Exception):
    """What the process sees of a kill: it stops right after a checkpoint, nothing after runs."""


def _kill_after(stage: int, epoch: int) -> Any:
    def on_epoch(event: Any) -> None:
        if event["stage"] == stage and event["epoch"] == epoch:
            raise Killed

    return on_epoch


def _comparable(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def test_resume_after_a_kill_in_stage_2_ends_with_the_same_metrics(
    tiny_bert: Path, splits: dict[str, Path], settings: Settings
) -> None:
    args: dict[str, Any] = {"data": splits["train"], "valid": splits["valid"], "base": str(tiny_bert)}
    whole = finetune("classify", name="whole", settings=settings, **args, **RECIPE)
    with pytest.raises(Killed):
        finetune("classify", name="killed", settings=settings, on_epoch=_kill_after(2, 2), **args, **RECIPE)
    state = json.loads((Path(settings.home) / "finetune" / "killed" / "state.json").read_text())
    assert (state["stage1_done"], state["stage2_done"]) == (1, 2)
    resumed = finetune("classify", name="killed", settings=settings, resume=True, **args, **RECIPE)

    assert _comparable(list(resumed.history)) == _comparable(list(whole.history))
    assert resumed.best_epoch == whole.best_epoch
    assert resumed.metrics["valid"]["loss"] == pytest.approx(whole.metrics["valid"]["loss"], rel=1e-6)
    assert resumed.metrics["valid"]["confusion"] == whole.metrics["valid"]["confusion"]
    assert resumed.model == "killed@1" and whole.model == "whole@1"


def test_resume_refuses_a_run_started_with_other_settings(
    tiny_bert: Path, splits: dict[str, Path], settings: Settings
) -> None:
    args: dict[str, Any] = {"data": splits["train"], "valid": splits["valid"], "base": str(tiny_bert)}
    recipe = {**RECIPE, "lm_epochs": 0, "epochs": 2}
    with pytest.raises(Killed):
        finetune("classify", name="r", settings=settings, on_epoch=_kill_after(2, 1), **args, **recipe)
    with pytest.raises(JobError, match="other data, base or settings"):
        finetune("classify", name="r", settings=settings, resume=True, **args, **{**recipe, "lr": 5e-4})


def test_ctrl_c_stops_cleanly_and_keeps_the_best_checkpoint(
    tiny_bert: Path, splits: dict[str, Path], settings: Settings
) -> None:
    def interrupt(event: Any) -> None:
        if event["stage"] == 2 and event["epoch"] == 1:
            raise KeyboardInterrupt

    report = finetune(
        "classify",
        name="c",
        data=splits["train"],
        valid=splits["valid"],
        base=str(tiny_bert),
        settings=settings,
        on_epoch=interrupt,
        **{**RECIPE, "lm_epochs": 0},
    )
    assert report.interrupted and report.model is None
    assert [h["epoch"] for h in report.history] == [1]
    assert (report.run_dir / "best.safetensors").is_file()
    assert not list(report.run_dir.rglob("*.bin")) and not list(report.run_dir.rglob("*.pt"))  # no pickle
