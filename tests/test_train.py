"""The training loop: it learns, it resumes exactly, it reports what it skipped, it checkpoints safely."""

from __future__ import annotations

import pytest
import torch

from htr.charset import Charset
from htr.checkpoint import load_checkpoint
from htr.config import ModelConfig, structured
from htr.data.lines import preprocess_file
from htr.inference import load_model, recognize_lines
from htr.model import CRNN
from htr.train import train

from .conftest import REPO, TINY_MODEL, compose_config, write_tsv_dataset

WORDS = ["tom", "ada", "mix", "zoe", "bed", "cup", "hat", "jug"]


def _cfg(tsv, out, extra=()):
    return compose_config(
        [
            "data=copiste",
            f"data.root={tsv}",
            f"train.out_dir={out}",
            "data.cache_dir=null",
            "train.progress=false",
            "train.seed=3",
            *TINY_MODEL,
            *extra,
        ]
    )


def test_overfits_a_few_lines_to_cer_zero(tmp_path):
    # On one thread (set here, so the result does not depend on the tests before) CER 0 took 207 epochs; the
    # budget leaves twice that, and the run stops as soon as it gets there (train.target_cer).
    tsv = write_tsv_dataset(tmp_path / "d", {"train": WORDS, "val": WORDS})
    cfg = _cfg(
        tsv, tmp_path / "run",
        ["data.batch_size=8", "optim.lr=0.01", "optim.scheduler=none", "train.max_epochs=420",
         "train.early_stopping_patience=420", "train.target_cer=0.0", "train.threads=1"],
    )  # fmt: skip
    result = train(cfg)
    assert result["best_cer"] == 0.0
    loaded = load_model(tmp_path / "run" / "best.pt")
    arrays = [preprocess_file(tsv.parent / "lines" / f"train{i:03d}.png", loaded.preprocess) for i in range(8)]
    assert [h.text for h in recognize_lines(loaded, arrays)] == WORDS


@pytest.mark.parametrize("augment", ["none", "light"])
def test_resume_reaches_the_same_weights(tmp_path, augment):
    tsv = write_tsv_dataset(tmp_path / "d", {"train": WORDS * 2, "val": WORDS[:4]})
    common = ["data.batch_size=4", "train.max_epochs=3", f"augment={augment}"]
    full = train(_cfg(tsv, tmp_path / "full", common))
    # Interrupted mid-epoch 2 (step 6 of 4-step epochs), then resumed from last.pt. With augmentation the
    # interrupted run loads its lines in two worker processes: the augmentations are drawn per line, not
    # per process, so the batches (and the weights) are the same.
    workers = ["data.num_workers=2"] if augment != "none" else []
    train(_cfg(tsv, tmp_path / "part", [*common, *workers, "train.max_steps=6", "train.checkpoint_every_steps=1"]))
    part = load_checkpoint(tmp_path / "part" / "last.pt")
    assert part["state"]["step"] == 6
    resumed = train(_cfg(tsv, tmp_path / "part", [*common, f"train.resume={tmp_path / 'part' / 'last.pt'}"]))
    assert resumed["steps"] == full["steps"] == 12
    a = load_checkpoint(tmp_path / "full" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "part" / "last.pt")["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # A grid of augmented training lines is logged at the start, when there is augmentation.
    assert ("train/augmented_lines" in _image_tags(tmp_path / "full" / "tensorboard")) == (augment != "none")


def _image_tags(folder) -> set[str]:
    """The image tags of the TensorBoard event files in ``folder``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    return {tag for f in folder.iterdir() for tag in EventAccumulator(str(f)).Reload().Tags()["images"]}


def test_checkpoint_is_self_describing_and_weights_only(tmp_path):
    tsv = write_tsv_dataset(tmp_path / "d", {"train": WORDS, "val": WORDS[:2]})
    train(_cfg(tsv, tmp_path / "run", ["train.max_steps=2"]))
    ckpt = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert ckpt["charset"] == sorted(set("".join(WORDS)))
    assert ckpt["config"]["model"]["height"] == 32
    assert ckpt["preprocess"]["height"] == 32
    assert {"optimizer", "rng", "state", "htr_version", "format"} <= set(ckpt)
    assert (tmp_path / "run" / "tensorboard").is_dir()


def test_ddp_under_torchrun_on_cpu(tmp_path):
    """Two gloo processes: each takes half the batches; rank 0 validates and writes the checkpoints."""
    import subprocess
    import sys

    from .conftest import REPO

    tsv = write_tsv_dataset(tmp_path / "d", {"train": WORDS * 2, "val": WORDS[:2]})
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "-m", "htr.train", "data=copiste",
           f"data.root={tsv}", f"train.out_dir={tmp_path / 'run'}", f"hydra.run.dir={tmp_path / 'run'}",
           f"data.cache_dir={tmp_path / 'cache'}",
           "train.max_epochs=2", "data.batch_size=4", "train.progress=false", *TINY_MODEL]  # fmt: skip
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr[-3000:]
    state = load_checkpoint(tmp_path / "run" / "last.pt")["state"]
    # 16 lines in batches of 4 = 4 batches per epoch, 2 per rank: 4 steps in 2 epochs.
    assert state["step"] == 4 and state["epoch"] == 2
    assert p.stdout.count("epoch 1 step 2") == 1  # only rank 0 reports


def test_synthetic_lines_mixed_into_training(tmp_path):
    from htr.data.sources import load_train_split

    tsv = write_tsv_dataset(tmp_path / "d", {"train": WORDS, "val": WORDS[:2]})
    cfg = _cfg(tsv, tmp_path / "run", ["data.synthetic_fraction=0.2", f"data.synthetic_mix_root={tmp_path / 'mix'}"])
    samples = load_train_split(cfg.data)
    assert len(samples) == 8 + 2  # 2 / (8 + 2) = 0.2
    assert [s.id for s in samples[:8]] == [f"train{i:03d}" for i in range(8)]
    assert all(s.image.is_file() and s.text for s in samples[8:])


def test_init_from_keeps_trained_weights_and_extends_the_charset(tmp_path):
    """Fine-tuning on text with new characters: old labels keep their rows, new ones are appended."""
    tsv = write_tsv_dataset(tmp_path / "d", {"train": WORDS, "val": WORDS[:2]})
    train(_cfg(tsv, tmp_path / "base", ["train.max_steps=2"]))
    base = load_checkpoint(tmp_path / "base" / "last.pt")
    new_words = ["quiz", "vex", "tom", "Ada"]
    tsv2 = write_tsv_dataset(tmp_path / "d2", {"train": new_words, "val": new_words[:2]})
    # lr 0: the one step leaves the parameters as loaded; the model and preprocessing asked for (hidden 24,
    # height 40) give way to the checkpoint's.
    train(_cfg(tsv2, tmp_path / "ft", [f"train.init_from={tmp_path / 'base' / 'last.pt'}", "train.max_steps=1",
                                        "optim.lr=0", "model.lstm_hidden=24", "model.height=40"]))  # fmt: skip
    ft = load_checkpoint(tmp_path / "ft" / "last.pt")
    assert ft["charset"] == base["charset"] + ["A", "q", "v"]
    assert ft["config"]["model"] == base["config"]["model"]
    assert ft["preprocess"] == base["preprocess"]  # height 32, the checkpoint's, not the 40 asked for
    params = {n for n, _ in CRNN(structured(ModelConfig, base["config"]["model"]), 2).named_parameters()}
    n_old = len(base["charset"]) + 1
    for name in params:
        a, b = base["model"][name], ft["model"][name]
        if name.startswith("linear."):
            assert torch.equal(b[:n_old], a), name
            assert b.shape[0] == n_old + 3
        else:
            assert torch.equal(a, b), name


def test_init_from_a_checkpoint_of_another_architecture_is_one_clear_error(tmp_path):
    from htr.errors import CheckpointError
    from htr.finetune import load_pretrained

    small = CRNN(structured(ModelConfig, {"lstm_hidden": 16}), 5)
    ckpt = {"model": small.state_dict(), "charset": list("abcd")}
    other = CRNN(structured(ModelConfig, {"lstm_hidden": 24}), 5)
    with pytest.raises(CheckpointError, match=r"m\.pt: its weight lstm\.\S+ has shape"):
        load_pretrained(other, ckpt, Charset(list("abcd")), "m.pt")


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "htr" / "conf" / "experiment").glob("*.yaml")))
def test_every_experiment_config_composes_and_type_checks(name):
    from htr.config_check import typed_config

    cfg = typed_config(compose_config([f"experiment={name}", "train.out_dir=/tmp/unused"]))
    assert cfg.train.max_epochs > 0 and cfg.model.height > 0
