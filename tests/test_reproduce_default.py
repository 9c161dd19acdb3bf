"""scripts/reproduce_default.py: which stage it skips, resumes or starts (decided on checkpoints that real tiny
trainings wrote), the plan it prints, and that each printed training command composes under Hydra."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_module

from htr.checkpoint import load_checkpoint, save_checkpoint
from htr.errors import HTRError
from htr.train import train
from htr.train_log import TrainLogger

from .conftest import REPO, SHARED, TINY_MODEL, compose_config, write_tsv_dataset

SCRIPT = REPO / "scripts" / "reproduce_default.py"
_spec = importlib.util.spec_from_file_location("reproduce_default", SCRIPT)
repro = sys.modules["reproduce_default"] = importlib.util.module_from_spec(_spec)  # dataclasses look it up
_spec.loader.exec_module(repro)  # type: ignore[union-attr]

WORDS = ["tom", "ada", "mix", "zoe", "bed", "cup", "hat", "jug"]  # 2 steps an epoch at batch 4


@contextlib.contextmanager
def _kept_process_state() -> Iterator[None]:
    """Training sets torch's thread count and seeds; a module-scoped fixture runs outside the per-test guard."""
    threads, rng = torch.get_num_threads(), torch.get_rng_state()
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.set_rng_state(rng)


def tiny_train(tsv: Path, out: Path, extra: list[str], interrupt_at: int | None = None) -> dict[str, Any]:
    """A real :func:`train` of a tiny model writing ``out``; ``interrupt_at``: Ctrl-C after that step."""
    cfg = compose_config(
        ["data=copiste", f"data.root={tsv}", f"train.out_dir={out}", "data.cache_dir=null", "data.batch_size=4",
         "train.progress=false", "train.seed=3", "train.threads=1", *TINY_MODEL, *extra]
    )  # fmt: skip
    real_step = TrainLogger.train_step

    def step(self: TrainLogger, n: int, *args: Any) -> None:
        real_step(self, n, *args)
        if n == interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.MonkeyPatch.context() as mp, _kept_process_state():
        mp.setattr(TrainLogger, "train_step", step)
        return train(cfg)


def fake_shared(root: Path) -> Path:
    """A shared data folder with the three sets' manifests (the plan only needs them to exist)."""
    for name in repro.SETS:
        (root / name).mkdir(parents=True)
        (root / name / "lines.tsv").write_text("id\timage\ttext\tsplit\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def half_done(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(runs, shared, tsv): RUNS with stage 1 finished (2 epochs) and stage 2 interrupted by Ctrl-C at step 3."""
    tmp = tmp_path_factory.mktemp("repro")
    tsv = write_tsv_dataset(tmp / "d", {"train": WORDS, "val": WORDS[:2]})
    runs, shared = tmp / "runs", fake_shared(tmp / "shared")
    stage1, stage2 = (step.run_dir for step in repro.plan(runs, shared, [])[:2])
    assert not tiny_train(tsv, stage1, ["train.max_epochs=2"]).get("interrupted")
    assert tiny_train(tsv, stage2, ["train.max_epochs=10"], interrupt_at=3)["interrupted"]
    return runs, shared, tsv


def dry_run(runs: Path, shared: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The lines ``--dry-run`` prints."""
    assert repro.main(["--runs", str(runs), "--shared", str(shared), "--dry-run"]) == 0
    return capsys.readouterr().out.splitlines()


def test_decisions_on_checkpoints_of_real_runs(half_done: tuple[Path, Path, Path]) -> None:
    runs, shared, _ = half_done
    stage1, stage2, stage3 = repro.plan(runs, shared, [])[:3]
    assert repro.decide(stage1) == ("skip", "finished at step 4: reached train.max_epochs", [])
    assert repro.decide(stage2) == ("resume", "from step 3", [*stage2.argv, f"train.resume={stage2.run_dir}/last.pt"])
    assert repro.decide(stage3) == ("start", "", stage3.argv)


def test_a_finished_run_resumed_is_unfinished_until_it_ends_again(half_done: tuple[Path, Path, Path]) -> None:
    runs, shared, tsv = half_done
    last = runs / "stage1-copiste" / "last.pt"
    again = repro.Step("again", [], run_dir=runs / "again")
    more = ["train.max_epochs=10", f"train.resume={last}"]
    assert tiny_train(tsv, again.run_dir, more, interrupt_at=5)["interrupted"]
    assert repro.decide(again)[:2] == ("resume", "from step 5")


def test_a_failed_run_or_a_finished_one_without_best_pt_is_an_error(half_done: tuple[Path, Path, Path]) -> None:
    runs, _, _ = half_done
    ckpt = load_checkpoint(runs / "stage1-copiste" / "last.pt")
    ckpt["state"]["finished"] = {"reason": "3 steps had a non-finite loss", "failed": True}
    failed = repro.Step("stage1", [], run_dir=runs / "failed")
    save_checkpoint(failed.run_dir / "last.pt", ckpt)
    with pytest.raises(HTRError, match=rf"^{failed.run_dir}: the stage1 run failed \(3 steps had a non-finite"):
        repro.decide(failed)
    (failed.run_dir / "best.pt").write_bytes((runs / "stage1-copiste" / "best.pt").read_bytes())
    ckpt["state"]["finished"]["failed"] = False
    save_checkpoint(failed.run_dir / "last.pt", ckpt)
    assert repro.decide(failed)[0] == "skip"
    (failed.run_dir / "best.pt").unlink()
    with pytest.raises(HTRError, match="finished without a best.pt"):
        repro.decide(failed)


def test_best_pt_without_last_pt_starts_again_over_it(tmp_path: Path, half_done: tuple[Path, Path, Path]) -> None:
    runs, _, _ = half_done
    step = repro.Step("stage1", ["cmd"], run_dir=tmp_path / "s1")
    step.run_dir.mkdir()
    (step.run_dir / "best.pt").write_bytes((runs / "stage1-copiste" / "best.pt").read_bytes())
    assert repro.decide(step)[::2] == ("start", ["cmd", "train.overwrite=true"])


def test_dry_run_of_an_empty_runs_folder_starts_everything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs, shared = tmp_path / "runs", fake_shared(tmp_path / "shared")
    lines = dry_run(runs, shared, capsys)
    names = ["stage1", "stage2", "stage3", "interpolate", "stage4", "stage5", "stage6", "stage7", "stage8", "stage9",
             "ship", "lm-build", "lm-tune"]  # fmt: skip
    assert lines[0::2] == [f"{n}: start" for n in names]
    commands = [shlex.split(line.removeprefix("  $ ")) for line in lines[1::2]]
    assert all(line.startswith("  $ ") for line in lines[1::2]) and len(commands) == 13
    best2, best3 = runs / "stage2-synthetic" / "best.pt", runs / "stage3-french" / "best.pt"
    assert commands[3][2:] == [str(best2), str(best3), "--alpha", "0.5", "--output", str(runs / "interpolated.pt")]
    assert f"train.init_from={runs / 'interpolated.pt'}" in commands[4]
    assert f"train.init_from={runs / 'stage4-french-b64' / 'best.pt'}" in commands[5]
    assert f"train.init_from={runs / 'stage5-french-b64-again' / 'best.pt'}" in commands[6]
    assert f"train.init_from={runs / 'stage6-french-s4' / 'best.pt'}" in commands[7]
    assert f"train.init_from={runs / 'stage7-french-s4-again' / 'best.pt'}" in commands[8]
    assert f"train.init_from={runs / 'stage8-french-s4-third' / 'best.pt'}" in commands[9]
    assert commands[10][-2:] == [str(runs / "stage9-french-s4-fourth" / "best.pt"), str(runs / "default.pt")]
    assert commands[12][4] == str(runs / "default.pt") and "--lm" in commands[12]
    assert not runs.exists()  # a dry run writes nothing


def test_dry_run_after_stage1_finished_and_stage2_interrupted(
    half_done: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    runs, shared, _ = half_done
    lines = dry_run(runs, shared, capsys)
    assert lines[0] == "stage1: skip (finished at step 4: reached train.max_epochs)"
    assert lines[1] == "stage2: resume (from step 3)"
    assert lines[2].endswith(f" train.resume={runs / 'stage2-synthetic' / 'last.pt'}")
    assert lines[3] == "stage3: start"


def _composed(line: str) -> Any:
    """The config a printed ``python -m htr.train ...`` line composes to (Hydra's own keys included)."""
    argv = shlex.split(line.removeprefix("  $ "))
    with initialize_config_module("htr.conf", version_base="1.3"):
        return compose("config", overrides=argv[argv.index("htr.train") + 1 :], return_hydra_config=True)


def test_each_printed_training_command_composes(
    half_done: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    runs, shared, _ = half_done
    lines = [line for line in dry_run(runs, shared, capsys) if " -m htr.train " in line]
    assert len(lines) == 8  # stage 1 is skipped
    stage2, stage3, stage4, stage5, stage6, stage7, stage8, stage9 = (_composed(line) for line in lines)
    folders = ("stage2-synthetic", "stage3-french", "stage4-french-b64", "stage5-french-b64-again", "stage6-french-s4",
               "stage7-french-s4-again", "stage8-french-s4-third", "stage9-french-s4-fourth")  # fmt: skip
    stages = (stage2, stage3, stage4, stage5, stage6, stage7, stage8, stage9)
    for cfg, folder in zip(stages, folders, strict=True):
        assert (cfg.train.threads, cfg.train.max_time_s, cfg.hydra.run.dir) == (1, None, str(runs / folder))
    assert stage2.train.resume == str(runs / "stage2-synthetic" / "last.pt")
    assert (stage2.data.root, stage2.data.synthetic_fraction) == (str(shared / "copiste"), 0.2)
    assert stage3.train.init_from == str(runs / "stage2-synthetic" / "best.pt") and stage3.train.ema_decay == 0.999
    assert [s.root for s in stage3.data.sources] == [str(shared / s / "lines.tsv") for s in repro.SETS]
    assert stage4.data.sources == stage3.data.sources and stage4.train.init_from == str(runs / "interpolated.pt")
    assert (stage4.data.batch_size, stage4.train.max_steps, stage4.optim.lr) == (64, 4423, 0.0014)
    assert (stage5.data.batch_size, stage5.train.max_steps, stage5.optim.lr) == (64, 2300, 0.0007)
    assert stage5.train.init_from == str(runs / "stage4-french-b64" / "best.pt")
    assert stage6.data.sources == stage3.data.sources
    assert stage6.train.init_from == str(runs / "stage5-french-b64-again" / "best.pt")
    assert (stage6.data.batch_size, stage6.train.max_steps, stage6.optim.lr) == (16, 10836, 0.0005)
    assert stage6.train.init_conv_pools == [[2, 2], [2, 2], [2, 1], [1, 1]]
    assert stage7.data.sources == stage3.data.sources
    assert stage7.train.init_from == str(runs / "stage6-french-s4" / "best.pt")
    assert (stage7.data.batch_size, stage7.train.max_steps, stage7.optim.lr) == (16, 10240, 0.0005)
    assert stage7.train.init_conv_pools == stage6.train.init_conv_pools  # already pooled so: no change
    assert stage8.data.sources == stage3.data.sources
    assert stage8.train.init_from == str(runs / "stage7-french-s4-again" / "best.pt")
    assert (stage8.data.batch_size, stage8.train.max_steps, stage8.optim.lr) == (16, 9660, 0.0005)
    assert stage9.data.sources == stage3.data.sources
    assert stage9.train.init_from == str(runs / "stage8-french-s4-third" / "best.pt")
    assert (stage9.data.batch_size, stage9.train.max_steps, stage9.optim.lr) == (16, 8075, 0.0005)
    assert (stage9.train.init_lstm_hidden, stage9.train.init_conv_channels) == (None, None)
    stage1 = _composed(shlex.join(repro.plan(runs, shared, [])[0].argv))
    assert (stage1.train.max_steps, stage1.optim.scheduler, stage1.model.name) == (6266, "plateau", "cpu")
    with pytest.raises(Exception, match="threadz"):  # a key the schema lacks fails here as it would in htr.train
        _composed(shlex.join(repro.plan(runs, shared, ["train.threadz=1"])[0].argv))


def test_folder_errors_are_one_sentence(tmp_path: Path) -> None:
    shared = fake_shared(tmp_path / "shared")
    (shared / "poilus" / "lines.tsv").unlink()
    cmd = [sys.executable, str(SCRIPT), "--runs", str(tmp_path / "runs"), "--shared", str(shared)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"htr: {shared}: the shared data folder has no poilus/lines.tsv; pass --shared FOLDER " \
        "(the folder that holds copiste, peraire and poilus)\n"  # fmt: skip
    (shared / "poilus" / "lines.tsv").write_text("", encoding="utf-8")
    with pytest.raises(HTRError, match="inside the htr package"):
        repro.check_folders(REPO / "htr" / "pretrained" / "runs", shared)


def test_ctrl_c_reaches_the_running_command_once(tmp_path: Path) -> None:
    ready, count = tmp_path / "ready", tmp_path / "count"
    child = (
        "import os, pathlib, signal, time\n"
        "got = []\n"
        "signal.signal(signal.SIGINT, lambda *a: got.append(time.time()))\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        "end = time.time() + 20\n"
        "while time.time() < end and not (got and time.time() > got[0] + 0.5):\n"
        "    time.sleep(0.01)\n"
        f"pathlib.Path({str(count)!r}).write_text(f'{{len(got)}} {{os.getpgid(0)}}')\n"
    )
    driver = (
        f"import sys; sys.path.insert(0, {str(SCRIPT.parent)!r}); import reproduce_default as r\n"
        f"sys.exit(r.run_child([sys.executable, '-c', {child!r}]))\n"
    )
    # The driver in a process group of its own, which then stands for the terminal's foreground group.
    proc = subprocess.Popen([sys.executable, "-c", driver], start_new_session=True)
    end = time.time() + 60
    while not ready.exists() and time.time() < end and proc.poll() is None:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group
    assert proc.wait(timeout=60) == 0
    got, group = count.read_text().split()
    assert got == "1" and int(group) != proc.pid  # once, forwarded: the command runs outside the terminal's group


@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data")
def test_all_steps_run_end_to_end_and_a_second_run_skips_them(tmp_path: Path) -> None:
    shipped = REPO / "htr" / "pretrained" / "default.pt"
    before = shipped.stat().st_mtime_ns
    runs = tmp_path / "runs"
    cmd = [sys.executable, str(SCRIPT), "--runs", str(runs), "--tune-lines", "4", "--extra", "train.max_steps=2",
           "data.max_train_lines=32", "data.max_val_lines=8", "train.progress=false"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    model = load_checkpoint(runs / "default.pt")
    best9 = load_checkpoint(runs / "stage9-french-s4-fourth" / "best.pt")
    assert model["state"]["step"] == best9["state"]["step"] and "interpolated" not in model["state"]  # stage 9's
    assert model["config"]["model"]["conv_pools"] == [[2, 2], [2, 2], [2, 1], [1, 1]]
    assert (runs / "default.pt.onnx").is_file()
    assert load_checkpoint(runs / "interpolated.pt")["state"]["interpolated"]["alpha"] == 0.5
    assert all(t.dtype == torch.float16 for t in model["model"].values() if t.is_floating_point())
    assert "tuned_cer" in json.loads((runs / "default_chars.arpa.json").read_text(encoding="utf-8"))
    assert set(json.loads((runs / "reproduce_times.json").read_text(encoding="utf-8"))) == {
        "stage1", "stage2", "stage3", "interpolate", "stage4", "stage5", "stage6", "stage7", "stage8", "stage9",
        "ship", "lm-build", "lm-tune"
    }  # fmt: skip
    again = subprocess.run([*cmd, "--dry-run"], capture_output=True, text=True, timeout=120)
    assert [line.split(": ")[1].split()[0] for line in again.stdout.splitlines()] == ["skip"] * 13
    assert shipped.stat().st_mtime_ns == before
