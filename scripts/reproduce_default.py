#!/usr/bin/env python3
"""Reproduce the shipped default model (htr/pretrained/default.pt and its character LM) from the data: one command.

    python scripts/reproduce_default.py --runs ~/htr-runs/reproduce [--shared ../shared/data] [--dry-run]

The steps of htr/pretrained/MODEL_CARD.md ("How it was made"), each writing under RUNS (keep it outside the work
tree; htr/pretrained is never written):

1. ``stage1``: ``experiment=copiste_v1`` (Copiste train);
2. ``stage2``: ``experiment=copiste_v1_finetune`` from stage 1's best.pt (+ 20% synthetic English lines);
3. ``stage3``: ``experiment=french_finetune`` from stage 2's best.pt (Copiste, Peraire, Poilus);
4. ``interpolate``: WiSE-FT, halfway from stage 3 back to stage 2 (``scripts/interpolate_weights.py --alpha 0.5``);
5. ``stage4``: ``experiment=french_finetune_b64`` from that mix (the three sets again, batch 64; on the GPU it
   was 430 s, here about 3.6 hours at stage 5's pace);
6. ``stage5``: the same again from stage 4's best.pt, a second cosine cycle at half the rate over 2,300 steps
   (it ran on the CPU, one thread: 1.9 hours);
7. ``stage6``: ``experiment=french_finetune_s4`` from stage 5's best.pt: the same weights pooled to twice the
   output frames (``train.init_conv_pools``), batch 16 (on the CPU, one thread: 2 hours);
8. ``stage7``: the same recipe again from stage 6's best.pt (a second cosine cycle, 10,240 steps; on the CPU, one
   thread: 2 hours);
9. ``stage8``: the same recipe again from stage 7's best.pt (a third cycle, 9,660 steps; on the CPU, one thread:
   1.9 hours);
10. ``stage9``: the same recipe again from stage 8's best.pt (a fourth cycle), on the fixed preprocessing (8,075
    steps; on the CPU, one thread: 1.7 hours);
11. ``ship``: ``scripts/ship_model.py`` of stage 9's best.pt into ``RUNS/default.pt`` and ``RUNS/default.pt.onnx``;
12. ``lm-build`` and 13. ``lm-tune``: the character 6-gram of the three train texts, tuned for RUNS/default.pt.

Run the same command again after a stop (Ctrl-C, a machine stop, the next sitting) and it continues: a training
stage whose ``last.pt`` records that the run ended (its state's ``finished``, written by htr.train at the end) is
skipped, one with a ``last.pt`` without it resumes from it (``train.resume``), and one without starts; the other
steps are redone only when their outputs are missing or older than their inputs. Ctrl-C is passed on to the
running command once (the trainer writes last.pt and exits); a second one stops it at once.

Every stage trains on one thread (``train.threads=1``) as the shipped model did. Stage budgets are counted in
steps, not seconds: a resumed run's ``train.max_time_s`` starts again from zero, so a time budget would not
survive sittings. Stage 1 was stopped by its 6,000 s budget after 6,266 steps (20 epochs and part of the 21st),
so it gets ``train.max_steps=6266``; stages 2, 3, 4 and 6 end at their configs' max_steps (6,000, 5,000, 4,423
and 10,836), stage 5 at 2,300 (it was started with 3,300 and shortened to 2,300 at step 496, to end within a
sitting; here its cosine has the 2,300-step horizon from the start). Stage 6 decayed over its 7,200 s budget
(``optim.scheduler=cosine_time``) and made 10,836 steps in it; its config's cosine spans that many steps.
Stage 7 ran the same way over 7,200 s and made 10,240 steps, so it gets ``train.max_steps=10240``; stage 8 over
7,000 s and 9,660 steps, ``train.max_steps=9660``; stage 9 over 6,000 s and 8,075 steps,
``train.max_steps=8075``. Stages 3-8 of the shipped model were trained before session 12's fix of the contrast
step (a polygon's white fill blanked a tenth of the Peraire and Poilus lines); here every stage reads the lines
as fixed, so expect Peraire and Poilus figures better than the card's for stages 3-8.
Stage 4 ran on a GPU from lines packed by ``scripts/pack_preprocessed.py`` (preprocessed at height 64, then
scaled to 48); here it reads the lines through the full pipeline at 48, so its figures can differ slightly.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's htr (the one the commands below run), not an installed copy

from htr.checkpoint import load_checkpoint  # noqa: E402
from htr.cli import positive_int, run  # noqa: E402
from htr.errors import HTRError  # noqa: E402

SETS = ("copiste", "peraire", "poilus")
#: Stage 1's length as the shipped model trained it (its 6,000 s budget ran out at this step).
STAGE1_STEPS = 6266
#: Stage 5: stage 4's recipe again from its best.pt, at half the peak rate and a shorter cosine.
STAGE5 = ("optim.lr=0.0007", "train.max_steps=2300")
#: Stage 7: stage 6's recipe again from its best.pt, as many steps as its 7,200 s gave.
STAGE7 = ("train.max_steps=10240",)
#: Stage 8: the same again from stage 7's best.pt, as many steps as its 7,000 s gave.
STAGE8 = ("train.max_steps=9660",)
#: Stage 9: the same again from stage 8's best.pt, as many steps as its 6,000 s gave.
STAGE9 = ("train.max_steps=8075",)
TIMES = "reproduce_times.json"  # seconds spent per step, summed over sittings


@dataclass(frozen=True)
class Step:
    """One command of the recipe: a training stage (``run_dir`` set) or a command that writes ``outputs``."""

    name: str
    argv: list[str]
    run_dir: Path | None = None
    inputs: tuple[Path, ...] = ()
    outputs: tuple[Path, ...] = ()
    tuned: bool = False  # lm-tune: done when its output (the LM's .json) records the tuned settings


def plan(runs: Path, shared: Path, extra: list[str], tune_lines: int | None = None) -> list[Step]:
    """The thirteen steps with their exact commands (without ``train.resume``, which :func:`decide` adds)."""
    tsvs = [shared / s / "lines.tsv" for s in SETS]
    stage = {"stage1": runs / "stage1-copiste", "stage2": runs / "stage2-synthetic", "stage3": runs / "stage3-french",
             "stage4": runs / "stage4-french-b64", "stage5": runs / "stage5-french-b64-again",
             "stage6": runs / "stage6-french-s4", "stage7": runs / "stage7-french-s4-again",
             "stage8": runs / "stage8-french-s4-third", "stage9": runs / "stage9-french-s4-fourth"}  # fmt: skip
    best = {name: folder / "best.pt" for name, folder in stage.items()}
    mix, shipped, arpa = runs / "interpolated.pt", runs / "default.pt", runs / "default_chars.arpa"
    scripts, meta = REPO / "scripts", Path(f"{arpa}.json")

    def cmd(*args: object) -> list[str]:
        return [sys.executable, *map(str, args)]

    def train(name: str, *overrides: object) -> Step:
        fixed = ("train.threads=1", "train.max_time_s=null", f"hydra.run.dir={stage[name]}")
        return Step(name, cmd("-m", "htr.train", *overrides, *fixed, *extra), run_dir=stage[name])

    copiste = f"data.root={shared / 'copiste'}"
    sources = [f"data.sources.{i}.root={tsv}" for i, tsv in enumerate(tsvs)]
    limit = ["--max-lines", tune_lines] if tune_lines else []
    grid = ["--weights", "0.3,0.5,0.7,0.9", "--penalties", "0,1"]
    interpolate = cmd(
        scripts / "interpolate_weights.py", best["stage2"], best["stage3"], "--alpha", 0.5, "--output", mix
    )
    build = cmd("-m", "htr.lm", "build", *tsvs, "--split", "train", "--unit", "char", "--output", arpa)
    return [
        train("stage1", "experiment=copiste_v1", copiste, f"train.max_steps={STAGE1_STEPS}"),
        train("stage2", "experiment=copiste_v1_finetune", copiste, f"train.init_from={best['stage1']}"),
        train("stage3", "experiment=french_finetune", *sources, f"train.init_from={best['stage2']}"),
        Step("interpolate", interpolate, inputs=(best["stage2"], best["stage3"]), outputs=(mix,)),
        train("stage4", "experiment=french_finetune_b64", *sources, f"train.init_from={mix}"),
        train("stage5", "experiment=french_finetune_b64", *sources, f"train.init_from={best['stage4']}", *STAGE5),
        train("stage6", "experiment=french_finetune_s4", *sources, f"train.init_from={best['stage5']}"),
        train("stage7", "experiment=french_finetune_s4", *sources, f"train.init_from={best['stage6']}", *STAGE7),
        train("stage8", "experiment=french_finetune_s4", *sources, f"train.init_from={best['stage7']}", *STAGE8),
        train("stage9", "experiment=french_finetune_s4", *sources, f"train.init_from={best['stage8']}", *STAGE9),
        Step(
            "ship",
            cmd(scripts / "ship_model.py", best["stage9"], shipped),
            inputs=(best["stage9"],),
            outputs=(shipped, Path(f"{shipped}.onnx")),
        ),
        Step("lm-build", build, inputs=tuple(tsvs), outputs=(arpa, meta)),
        Step(
            "lm-tune",
            cmd("-m", "htr.lm", "tune", shipped, *tsvs, "--lm", arpa, *grid, *limit),
            inputs=(shipped, arpa),
            outputs=(meta,),
            tuned=True,
        ),
    ]


def decide(step: Step) -> tuple[str, str, list[str]]:
    """``("skip" | "resume" | "start", why, command)`` for ``step`` as the files in RUNS stand now."""
    if step.run_dir is None:
        done = _outputs_current(step)
        return ("skip", "its outputs are newer than its inputs", []) if done else ("start", "", step.argv)
    last, best = step.run_dir / "last.pt", step.run_dir / "best.pt"
    if not last.is_file():
        if best.is_file():  # killed between its first best.pt and last.pt: nothing to resume from
            return "start", f"{best} has no last.pt beside it; starting again", [*step.argv, "train.overwrite=true"]
        return "start", "", step.argv
    state = load_checkpoint(last).get("state", {})
    finished = state.get("finished")
    if finished is None:
        return "resume", f"from step {state.get('step', 0)}", [*step.argv, f"train.resume={last}"]
    if finished.get("failed"):
        raise HTRError(f"the {step.name} run failed ({finished['reason']}); see train.log there, then delete the "
                       "folder to train the stage again", step.run_dir)  # fmt: skip
    if not best.is_file():
        raise HTRError(f"the {step.name} run finished without a best.pt, which the next step needs", step.run_dir)
    return "skip", f"finished at step {state.get('step')}: {finished['reason']}", []


def _outputs_current(step: Step) -> bool:
    """Whether every output of ``step`` exists, none is older than an input, and lm-tune's has its settings."""
    if not all(p.is_file() for p in step.outputs):
        return False
    newest_input = max((p.stat().st_mtime for p in step.inputs if p.exists()), default=0.0)
    if min(p.stat().st_mtime for p in step.outputs) < newest_input:
        return False
    if step.tuned:
        try:
            return "tuned_cer" in json.loads(step.outputs[0].read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
    return True


def check_folders(runs: Path, shared: Path) -> None:
    """Refuse a shared data folder without the three sets, and a RUNS inside the htr package (htr/pretrained
    holds the shipped model, which this must never replace)."""
    for s in SETS:
        if not (shared / s / "lines.tsv").is_file():
            raise HTRError(f"the shared data folder has no {s}/lines.tsv; pass --shared FOLDER (the folder that "
                           "holds copiste, peraire and poilus)", shared)  # fmt: skip
    if runs.resolve().is_relative_to((REPO / "htr").resolve()):
        raise HTRError("the runs folder lies inside the htr package; give a folder outside the work tree", runs)
    if runs.exists() and not runs.is_dir():
        raise HTRError("the runs folder is a file", runs)


def print_plan(steps: list[Step]) -> None:
    """What a run would do now: each step's decision and the exact command (later steps as if the earlier
    ones had finished)."""
    for step in steps:
        action, why, argv = decide(step)
        print(f"{step.name}: {action}" + (f" ({why})" if why else ""))
        if argv:
            print(f"  $ {shlex.join(argv)}")


def run_steps(steps: list[Step], runs: Path) -> int:
    """Run each step not yet done, in order; stop at the first that does not succeed (its exit status)."""
    start_all = time.monotonic()
    for step in steps:
        action, why, argv = decide(step)
        print(f"== {step.name}: {action}" + (f" ({why})" if why else ""), flush=True)
        if action == "skip":
            continue
        print(f"$ {shlex.join(argv)}", flush=True)
        started = time.monotonic()
        code = run_child(argv)
        seconds = time.monotonic() - started
        total = _add_time(runs, step.name, seconds)
        print(f"== {step.name}: {_hours(seconds)} this sitting, {_hours(total)} in all", flush=True)
        if code != 0:
            again = "run the same command again to continue" if code in (130, 143) else "see its messages above"
            print(f"htr: {step.name} stopped with exit status {code}; {again}", file=sys.stderr)
            return code
        if step.run_dir is not None and decide(step)[0] != "skip":
            raise HTRError(f"{step.name} exited without marking its last.pt finished", step.run_dir)
    print(f"done in {_hours(time.monotonic() - start_all)}: {runs / 'default.pt'} and {runs / 'default_chars.arpa'}")
    return 0


def run_child(argv: list[str]) -> int:
    """Run ``argv`` in the repository with this checkout's htr; pass SIGINT, SIGTERM and SIGHUP on to it.

    The child gets its own session, so a Ctrl-C reaches it once, through here: the trainer takes a first SIGINT
    as "write last.pt and stop" and a second as "stop now", so the terminal's copy plus a forwarded one would
    cost the last steps. SIGHUP (the terminal closed) is passed on as SIGTERM, which the trainer also saves on.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    child = subprocess.Popen(argv, cwd=REPO, env=env, start_new_session=True)
    forward = {signal.SIGINT: signal.SIGINT, signal.SIGTERM: signal.SIGTERM, signal.SIGHUP: signal.SIGTERM}
    old = {s: signal.signal(s, lambda signum, _frame: child.send_signal(forward[signum])) for s in forward}
    try:
        return child.wait()
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def _add_time(runs: Path, name: str, seconds: float) -> float:
    """Add ``seconds`` to ``name``'s total in RUNS/reproduce_times.json; return the new total."""
    path = runs / TIMES
    try:
        times = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except ValueError:
        times = {}
    times[name] = times.get(name, 0.0) + seconds
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(times, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return times[name]


def _hours(seconds: float) -> str:
    """``'1 h 02 min'`` or ``'42 s'``."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=Path, required=True, help="folder for every run and output (outside the work tree)")
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data",
                   help="the folder holding copiste, peraire and poilus (default: ../shared/data)")  # fmt: skip
    p.add_argument("--dry-run", action="store_true", help="print what would run now, run nothing")
    p.add_argument("--extra", nargs="*", default=[], metavar="KEY=VALUE",
                   help="overrides added to every training command (e.g. train.max_steps=2 for a trial)")  # fmt: skip
    p.add_argument("--tune-lines", type=positive_int, default=None, metavar="N",
                   help="tune the LM on the first N validation lines of each set (a trial)")  # fmt: skip
    args = p.parse_args(argv)
    runs, shared = args.runs.expanduser().absolute(), args.shared.expanduser().absolute()
    check_folders(runs, shared)
    steps = plan(runs, shared, args.extra, args.tune_lines)
    if args.dry_run:
        print_plan(steps)
        return 0
    runs.mkdir(parents=True, exist_ok=True)
    return run_steps(steps, runs)


if __name__ == "__main__":
    run(main)
