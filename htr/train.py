"""Training: ``python -m htr.train [overrides]`` (Hydra) or ``train(cfg)`` from Python.

A plain loop, top to bottom: :func:`train` sets the run up (:mod:`htr.train_setup`: data -> model -> optimizer,
or the state of the run it resumes), then for each epoch runs its steps (:func:`htr.train_step.train_step`, with
a validation every ``train.val_every_steps`` if set), a validation, checkpoints and early stopping
(:func:`validate_and_keep`). CUDA with mixed precision when present, CPU otherwise; several GPUs through
PyTorch DDP under ``torchrun`` (world size from the environment).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import torch.distributed as dist
from omegaconf import DictConfig

from htr.checkpoint import rng_state, save_checkpoint
from htr.config import Config
from htr.config_check import config_hint, run_dir_problem, typed_config
from htr.decode.config import require_lm_path
from htr.errors import HTRError
from htr.lr_schedule import STEPPED_SCHEDULES, TIME_SCHEDULES
from htr.progress import progress
from htr.train_log import epoch_line
from htr.train_setup import Run, setup_run, show_augmentations
from htr.train_step import any_rank, broadcast, ctc_loss, train_step, validate

__all__ = ["NOT_LEARNED_CER", "ctc_loss", "main", "train", "validate", "validate_and_keep"]

#: A run whose best validation CER is at least this has not learned to read (CTC models sit at ~100% at first).
NOT_LEARNED_CER = 0.9


class _StopFlag:
    """Set by SIGINT/SIGTERM: the loop finishes its step, writes ``last.pt`` and returns."""

    def __init__(self) -> None:
        self.set = False
        self.signal: int | None = None  # which one, for the exit status (128 + its number)
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: no signal handling
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.set:  # a second signal: stop now (the checkpoints already written are intact)
            raise KeyboardInterrupt
        self.set, self.signal = True, signum

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def train(cfg: Config | DictConfig) -> dict[str, Any]:
    """Train a model as ``cfg`` says; return the best validation CER, epochs run and checkpoint paths."""
    if not isinstance(cfg, Config):
        cfg = typed_config(cfg)
    require_lm_path(cfg.decode)  # validation decodes greedily, but a run must not keep a decoder that cannot work
    run = setup_run(cfg)
    show_augmentations(run)
    state = run.state
    run.start_time = time.time()
    run.budget_before_s = float(state.get("budget_spent_s", 0.0))  # cosine_time, wsd_time: what a resumed run had spent
    stop_reason, failed = None, False  # failed: stopped by repeated non-finite steps
    with _StopFlag() as stop:
        while state["epoch"] < cfg.train.max_epochs and stop_reason is None:
            epoch = state["epoch"]
            stop_reason, failed, interrupted = _train_epoch(run, stop)
            if interrupted:
                return _interrupted(run, stop)
            epoch_done = stop_reason is None or state["batch_in_epoch"] >= run.steps_per_epoch
            if epoch_done:
                state["epoch"] += 1
                state["batch_in_epoch"] = 0
            if epoch_done or run.validated_at != state["step"]:  # (a mid-epoch validation that stopped the run: done)
                stop_reason = validate_and_keep(run, epoch, "end" if epoch_done else "stopped") or stop_reason
    return _finish(run, stop_reason, failed)


def _train_epoch(run: Run, stop: _StopFlag) -> tuple[str | None, bool, bool]:
    """The steps of the current epoch (its rest, for a run resumed part-way); return why training should stop
    (or None), whether it failed, and whether a signal interrupted it (``last.pt`` then holds the last step)."""
    cfg, state = run.cfg, run.state
    epoch = state["epoch"]
    run.sampler.set_epoch(epoch, state["batch_in_epoch"])
    run.train_ds.set_epoch(epoch)  # augmentations drawn per (seed, epoch, line): resumable, worker-independent
    run.net.train()
    bar = progress(
        run.train_loader, desc=f"epoch {epoch + 1}", disable=not (cfg.train.progress and run.is_main), leave=False
    )
    stop_reason = None
    for batch in bar:
        loss, grad_norm, finite = train_step(run, batch)
        if not finite and state["nonfinite"] > cfg.train.max_nonfinite_steps:
            bar.close()
            return (
                f"{state['nonfinite']} steps had a non-finite loss or gradient (more than "
                f"train.max_nonfinite_steps); lower optim.lr or check the data"
            ), True, False  # fmt: skip
        spent_s = _budget_spent(run)
        if cfg.optim.scheduler in TIME_SCHEDULES:
            run.budget_share["time"] = spent_s / cfg.train.max_time_s
        if run.scheduler is not None and cfg.optim.scheduler in STEPPED_SCHEDULES:
            run.scheduler.step()
        state["step"] += 1
        state["batch_in_epoch"] += 1
        loss_value = float(loss.detach())
        run.logger.train_step(
            state["step"], loss_value, run.optimizer.param_groups[0]["lr"], len(batch["ids"]) * run.world,
            float(grad_norm),
        )  # fmt: skip
        bar.set_postfix(loss=f"{loss_value:.3f}")
        if cfg.train.max_steps and state["step"] >= cfg.train.max_steps:
            stop_reason = f"reached train.max_steps={cfg.train.max_steps}"
        elif cfg.train.max_time_s and spent_s >= cfg.train.max_time_s:
            stop_reason = f"reached train.max_time_s={cfg.train.max_time_s}"
        if any_rank(stop.set, run.device, run.world):
            return stop_reason, False, True
        if (  # an epoch's last step and a stopping run validate in train(), after this loop
            cfg.train.val_every_steps
            and state["step"] % cfg.train.val_every_steps == 0
            and not stop_reason
            and state["batch_in_epoch"] < run.steps_per_epoch
        ):
            with bar.external_write_mode():
                stop_reason = validate_and_keep(run, epoch, "mid")  # writes last.pt
            run.validated_at = state["step"]
            run.net.train()  # validation left the model in eval mode
        elif run.is_main and cfg.train.checkpoint_every_steps and state["step"] % cfg.train.checkpoint_every_steps == 0:
            checkpoint(run, "last.pt")
        if stop_reason:
            break
    bar.close()
    return stop_reason, False, False


def _budget_spent(run: Run) -> float:
    """Seconds of ``train.max_time_s`` spent, by rank 0's clock (every rank then takes the same learning rate and
    stops at the same step). A run resumed with a ``_time`` schedule (cosine_time, wsd_time) goes on with what its
    budget had left, so its decay continues instead of starting again; other runs get a new budget on resume (0
    without one)."""
    cfg, state = run.cfg, run.state
    if not cfg.train.max_time_s:
        return 0.0
    spent = time.time() - run.start_time
    if cfg.optim.scheduler in TIME_SCHEDULES:
        spent += run.budget_before_s
        state["budget_spent_s"] = spent
    return broadcast(spent, run.device, run.world)


def validate_and_keep(run: Run, epoch: int, when: str) -> str | None:
    """Validate, log, keep best.pt and last.pt; return why training should stop, or None. ``when``: "end" of an
    epoch (the plateau schedule steps; early stopping counts the epoch as bad unless a validation in it
    improved), "mid" (train.val_every_steps) or "stopped" (the run stopped part-way)."""
    cfg, state = run.cfg, run.state
    metrics = (
        validate(run.eval_model, run.val_loader, run.device, run.decoder, run.val_sources, run.val_weights)
        if run.is_main
        else {"cer": 0.0}
    )
    cer = broadcast(metrics["cer"], run.device, run.world)
    if run.is_main:
        run.logger.validation(state["epoch"] + state["batch_in_epoch"] / max(run.steps_per_epoch, 1), state["step"],
                              metrics)  # fmt: skip
        skipped = {"train": run.train_report.n_skipped, "val": run.val_report.n_skipped}
        run.say(epoch_line(epoch, when, state["step"], metrics, run.optimizer.param_groups[0]["lr"],
                           time.time() - run.start_time, skipped, state["nonfinite"]))  # fmt: skip
    reason = None
    if run.scheduler is not None and cfg.optim.scheduler == "plateau" and when == "end":
        run.scheduler.step(cer)
    if cfg.train.target_cer is not None and cer <= cfg.train.target_cer:
        reason = f"reached train.target_cer={cfg.train.target_cer}"
    if cer < state["best_cer"]:
        state["best_cer"], state["improved"] = cer, True
        if run.is_main:
            checkpoint(run, "best.pt")
    if when == "end":
        state["bad_epochs"] = 0 if state["improved"] else state["bad_epochs"] + 1
        state["improved"] = False
        if state["bad_epochs"] >= cfg.train.early_stopping_patience:
            reason = f"no CER improvement in {state['bad_epochs']} epochs (early stopping)"
    if run.is_main:
        checkpoint(run, "last.pt")
    return reason


def checkpoint(run: Run, name: str) -> Path:
    """Write the model and the whole training state to ``name`` in the run folder."""
    path = run.out_dir / name
    ema = run.ema
    save_checkpoint(
        path,
        {
            "model": run.eval_model.state_dict(),
            **({"train_model": run.model.state_dict()} if ema is not None else {}),
            **run.bundle.checkpoint_entries(),
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict() if run.scheduler is not None else {},
            "scaler": run.scaler.state_dict(),
            "state": {**run.state, **({"ema_updates": int(ema.n_averaged)} if ema is not None else {})},
            "rng": rng_state(),
        },
    )
    return path


def _interrupted(run: Run, stop: _StopFlag) -> dict[str, Any]:
    """Write last.pt after a SIGINT/SIGTERM and say how to continue."""
    if run.is_main:
        path = checkpoint(run, "last.pt")
        run.say(f"interrupted: wrote {path}; to continue, run the same command with train.resume={path}")
    run.logger.close()
    return {
        "interrupted": True, "signal": stop.signal, "last": str(run.out_dir / "last.pt"),
        "best_cer": run.state["best_cer"],
    }  # fmt: skip


def _finish(run: Run, stop_reason: str | None, failed: bool) -> dict[str, Any]:
    """Close the run: say how it ended and where its best checkpoint is; the result :func:`train` returns."""
    state, out_dir = run.state, run.out_dir
    run.logger.close()
    reason = stop_reason or "reached train.max_epochs"
    state["finished"] = {"reason": reason, "failed": failed}  # last.pt: ended, not interrupted (reproduce_default)
    if run.is_main:
        checkpoint(run, "last.pt")
    for name, report in (("train", run.train_report), ("val", run.val_report)):
        if report.n_skipped:  # listed again at the end: the list printed at the start has long scrolled away
            run.say(report.summary(name))
    best = out_dir / "best.pt"
    where = best if best.is_file() else f"no best.pt in {out_dir} (no validation beat it in this folder)"
    run.say(f"{'stopped' if failed else 'done'}: {reason}; best val CER {state['best_cer']:.4f}; {where}")
    if state["best_cer"] >= NOT_LEARNED_CER:
        run.say(
            f"note: the model has not learned to read yet (best val CER {100 * state['best_cer']:.0f}%); give it "
            "more training (train.max_steps, train.max_epochs, train.max_time_s) or check the data and optim.lr"
        )
    if run.world > 1:
        dist.destroy_process_group()
    return {
        "best_cer": state["best_cer"],
        "epochs": state["epoch"],
        "steps": state["step"],
        "best": str(best) if best.is_file() else None,
        "last": str(out_dir / "last.pt"),
        "stop_reason": stop_reason,
        "failed": failed,
        "nonfinite_steps": state["nonfinite"],
        "skipped": {"train": run.train_report.skipped, "val": run.val_report.skipped},
    }


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    """Run :func:`train`; htr's errors become one ``htr: ...`` line (exit 2), a failed run exits 1."""
    try:
        result = train(cfg)
    except HTRError as e:
        print(f"htr: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        last = Path(cfg.train.out_dir) / "last.pt"
        resume = f"; resume with train.resume={last}" if last.is_file() else ""
        print(f"htr: interrupted; the checkpoints already written are intact{resume}", file=sys.stderr)
        sys.exit(130)
    if result.get("interrupted"):  # saved, but not finished: a batch scheduler must not take it as done
        sys.exit(128 + (result.get("signal") or signal.SIGINT))
    if result.get("failed"):
        print(f"htr: training stopped: {result['stop_reason']}", file=sys.stderr)
        sys.exit(1)


def main() -> None:
    """``python -m htr.train [overrides]``: Hydra's message for a bad override comes with htr's hint."""
    if {"-h", "--help"} & set(sys.argv[1:]):  # every config key explained (htr.config_help), not Hydra's YAML dump
        from htr.config_help import main as config_help

        sys.exit(config_help(sys.argv[1:]))
    problem = run_dir_problem(sys.argv[1:])
    if problem:
        print(f"htr: {problem}", file=sys.stderr)
        sys.exit(2)
    try:
        _hydra_main()
    except SystemExit as e:
        if e.code == 1:  # Hydra's own failure (htr's errors exit 2)
            hint = config_hint(sys.argv[1:])
            if hint:
                print(f"htr: {hint}", file=sys.stderr)
        raise


if __name__ == "__main__":
    main()
