"""The training loop: it learns, it resumes exactly, it reports what it skipped, it checkpoints safely."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
import torch

from htr.charset import Charset
from htr.checkpoint import load_checkpoint
from htr.config import Config, ModelConfig, structured
from htr.data.lines import preprocess_file
from htr.inference import load_model, recognize_lines
from htr.model import CRNN
from htr.preprocess.pipeline import preprocess_line
from htr.train import ctc_loss, train

from .conftest import REPO, TINY_MODEL, compose_config, render_text, write_tsv_dataset

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


@pytest.mark.parametrize("threads", [1, 2])
def test_overfits_a_few_lines_to_cer_zero(tmp_path, threads):
    # CER 0 took 207 epochs on one thread and 176 on two; the budget leaves twice the slower, and the run stops
    # as soon as it gets there (train.target_cer). The thread count is set here, so the result does not depend
    # on the tests before.
    tsv = write_tsv_dataset(tmp_path / "d", {"train": WORDS, "val": WORDS})
    cfg = _cfg(
        tsv, tmp_path / "run",
        ["data.batch_size=8", "optim.lr=0.01", "optim.scheduler=none", "train.max_epochs=420",
         "train.early_stopping_patience=420", "train.target_cer=0.0", f"train.threads={threads}"],
    )  # fmt: skip
    result = train(cfg)
    assert result["best_cer"] == 0.0
    loaded = load_model(tmp_path / "run" / "best.pt")
    arrays = [preprocess_file(tsv.parent / "lines" / f"train{i:03d}.png", loaded.preprocess) for i in range(8)]
    assert [h.text for h in recognize_lines(loaded, arrays)] == WORDS


def test_ctc_loss_falls_tenfold_in_40_steps():
    """The cheap check of learning: 40 full-batch Adam steps on four rendered words take the CTC loss from about
    21 to about 2 (10.6x to 12.6x over seeds 0-4 on one thread); a broken gradient, label shift or blank index
    stalls it near the start, so a fall of 4x is the bar. One thread: on two, some seeds sit on a plateau longer."""
    torch.set_num_threads(1)
    cfg: Config = structured(Config, compose_config([*TINY_MODEL, "train.out_dir=/unused"]))
    words = WORDS[:4]
    charset = Charset(sorted(set("".join(words))))
    arrays = [preprocess_line(render_text(w), cfg.data.preprocess) for w in words]
    images = torch.zeros(len(arrays), 1, arrays[0].shape[0], max(a.shape[1] for a in arrays))
    for i, a in enumerate(arrays):
        images[i, 0, :, : a.shape[1]] = torch.from_numpy(a)
    widths = torch.tensor([a.shape[1] for a in arrays])
    targets = torch.tensor([charset.index[c] + 1 for w in words for c in w])
    target_lengths = torch.tensor([len(w) for w in words])
    torch.manual_seed(0)
    model = CRNN(cfg.model, len(charset))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(40):
        log_probs, lengths = model(images, widths)[:2]
        loss = ctc_loss(log_probs, targets, lengths, target_lengths)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 4, losses[::10]


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
    # --standalone: a free port of its own, not the default 29500 another job on the host may hold
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "htr.train",
           "data=copiste", f"data.root={tsv}", f"train.out_dir={tmp_path / 'run'}", f"hydra.run.dir={tmp_path / 'run'}",
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


def test_init_conv_pools_doubles_the_frames_of_a_trained_model_with_its_weights(tmp_path):
    """Fine-tuning with one width pooling halved: the same weights, the new pooling saved, twice the frames."""
    tsv = write_tsv_dataset(tmp_path / "d", {"train": WORDS, "val": WORDS[:2]})
    train(_cfg(tsv, tmp_path / "base", ["train.max_steps=1"]))
    base = load_checkpoint(tmp_path / "base" / "last.pt")
    train(_cfg(tsv, tmp_path / "ft", [f"train.init_from={tmp_path / 'base' / 'last.pt'}", "train.max_steps=1",
                                       "optim.lr=0", "train.init_conv_pools=[[2,1],[2,1],[2,1]]"]))  # fmt: skip
    ft = load_checkpoint(tmp_path / "ft" / "last.pt")
    assert base["config"]["model"]["conv_pools"] == [[2, 2], [2, 1], [2, 1]]
    assert ft["config"]["model"]["conv_pools"] == [[2, 1], [2, 1], [2, 1]]
    assert ft["config"]["model"]["lstm_hidden"] == base["config"]["model"]["lstm_hidden"]
    params = [n for n, _ in CRNN(structured(ModelConfig, base["config"]["model"]), 2).named_parameters()]
    assert all(torch.equal(base["model"][n], ft["model"][n]) for n in params)  # lr 0 (batch norm's stats move)
    images, widths = torch.zeros(1, 1, 32, 64), torch.tensor([64])
    models = [CRNN(structured(ModelConfig, c["config"]["model"]), 5).eval() for c in (base, ft)]
    assert [m(images, widths)[0].shape[0] for m in models] == [32, 64]
    # resumed, the run keeps the new pooling (it travels in last.pt's config)
    train(_cfg(tsv, tmp_path / "ft", [f"train.init_from={tmp_path / 'base' / 'last.pt'}", "train.max_steps=2",
                                       "optim.lr=0", "train.init_conv_pools=[[2,1],[2,1],[2,1]]",
                                       f"train.resume={tmp_path / 'ft' / 'last.pt'}"]))  # fmt: skip
    assert load_checkpoint(tmp_path / "ft" / "last.pt")["config"]["model"]["conv_pools"] == [[2, 1], [2, 1], [2, 1]]


@pytest.mark.parametrize(
    ("pools", "init", "message"),
    [
        ("[[1,2],[2,1],[2,1]]", True, r"leaves 8 rows for the LSTMs, and \S+ was trained with 4 \(height 32"),
        ("[[2,0],[2,1],[2,1]]", True, r"every pooling factor to be at least 1"),
        ("[[2,1],[2,1]]", True, r"one \[height, width\] pair for each of the 3 conv blocks"),
        ("[[2,1],[2,1],[2,1]]", False, r"no train.init_from is set"),
        ("null train.init_height=64", False, r"train.init_height changes .* no train.init_from is set"),
        ("[[2,2],[2,1],[2,1]] train.init_height=48", True, r"at height 48 \(train.init_height\), .* leaves 6 rows"),
        ("[[2,1],[2,1],[2,1]]", "flat", r"init_height need a conv encoder, and \S+last.pt has model.encoder=flat"),
    ],
)
def test_init_conv_pools_that_do_not_fit_are_one_clear_error(tmp_path, pools, init, message):
    from htr.errors import HTRError

    tsv = write_tsv_dataset(tmp_path / "d", {"train": WORDS, "val": WORDS[:2]})
    base = tmp_path / "base" / "last.pt"
    if init:
        train(_cfg(tsv, tmp_path / "base", ["train.max_steps=1", *(["model.encoder=flat"] if init == "flat" else [])]))
    pools, *more = pools.split()  # further overrides may follow the pooling
    extra = [
        f"train.init_conv_pools={pools}",
        *more,
        "train.max_steps=1",
        *([f"train.init_from={base}"] if init else []),
    ]
    with pytest.raises(HTRError, match=message):
        train(_cfg(tsv, tmp_path / "ft", extra))


def test_init_height_reads_taller_lines_with_the_same_weights(tmp_path):
    """A checkpoint fine-tuned at twice its height, the first block pooling twice as much: the same weights, the
    lines preprocessed at the new height, and the same frames per input column as trained."""
    tsv = write_tsv_dataset(tmp_path / "d", {"train": WORDS, "val": WORDS[:2]})
    train(_cfg(tsv, tmp_path / "base", ["train.max_steps=1"]))
    base = load_checkpoint(tmp_path / "base" / "last.pt")
    train(_cfg(tsv, tmp_path / "ft", [f"train.init_from={tmp_path / 'base' / 'last.pt'}", "train.max_steps=1",
                                       "optim.lr=0", "train.init_height=64",
                                       "train.init_conv_pools=[[4,4],[2,1],[2,1]]"]))  # fmt: skip
    ft = load_checkpoint(tmp_path / "ft" / "last.pt")
    assert (ft["config"]["model"]["height"], ft["config"]["data"]["preprocess"]["height"]) == (64, 64)
    assert ft["config"]["model"]["conv_pools"] == [[4, 4], [2, 1], [2, 1]]
    params = [n for n, _ in CRNN(structured(ModelConfig, base["config"]["model"]), 2).named_parameters()]
    assert all(torch.equal(base["model"][n], ft["model"][n]) for n in params)
    model = CRNN(structured(ModelConfig, ft["config"]["model"]), 5).eval()
    # a line 128 columns wide at height 64 was 64 wide at height 32: the same 64 // 2 = 32 frames as trained
    assert model(torch.zeros(1, 1, 64, 128), torch.tensor([128]))[0].shape[0] == 32


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


# --- what TensorBoard shows, and validating every N steps -------------------------------------------------------


def _events(folder) -> Any:
    """All the event files of a run's ``tensorboard/`` folder (a resumed run adds one) in one accumulator."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    return EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0, "images": 0}).Reload()


def _scalars(acc, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in acc.Scalars(tag)]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # TensorBoard's vendored HTML sanitizer
def test_logger_writes_throughput_grad_norm_and_captions(tmp_path):
    from tensorboard.plugin_util import markdown_to_safe_html

    from htr.config import Config
    from htr.train_log import TrainLogger

    cfg = Config()
    cfg.train.log_every_steps, cfg.train.num_val_images = 2, 2
    lines = [{"id": "a|1", "text": "abcd", "image": torch.rand(1, 8, 20)},
             {"id": "b", "text": "x*y <z>", "image": torch.rand(1, 8, 30)}]  # fmt: skip
    now = [0.0]
    log = TrainLogger(tmp_path, cfg, lines, clock=lambda: now[0])
    steps = [(1, 2.0, 2.0, 3.0), (2, 4.0, 1.0, math.nan), (3, 11.0, 1.0, 1.0), (4, 12.0, 3.0, 2.0)]
    for step, t, loss, norm in steps:  # (step, time, loss, gradient norm)
        now[0] = t
        log.train_step(step, loss, 0.1, 4, norm)
        if step == 2:
            now[0] = 10.0  # a validation from t=4 to t=10: not training time
            log.validation(0.5, 2, {"loss": 1.0, "cer": 0.5, "wer": 1.0, "predictions": {"a|1": "abxd", "b": ""}})
    log.close()
    acc = _events(tmp_path / "tensorboard")
    # Lines per second: 8 lines in the 4 s to step 2; then 8 lines in the 2 s from the validation's end to step 4.
    assert _scalars(acc, "train/lines_per_s") == [(2, 2.0), (4, 4.0)]
    assert _scalars(acc, "train/grad_norm") == [(2, 3.0), (4, 1.5)]  # the non-finite norm left out
    assert _scalars(acc, "train/loss") == [(2, 1.5), (4, 2.0)]
    # Each image under a tag naming its line, with a text of the same tag and step: id, CER, reference, prediction.
    assert set(acc.Tags()["images"]) == {"val_lines/00/a|1", "val_lines/01/b"}
    cells = {}
    for k, sid in enumerate(["a|1", "b"]):
        (event,) = acc.Tensors(f"val_lines/{k:02d}/{sid}/text_summary")
        assert event.step == 2
        page = markdown_to_safe_html(event.tensor_proto.string_val[0])  # as TensorBoard renders it
        cells[sid] = re.findall(r"<td>(.*?)</td>", page)
    assert cells == {"a|1": ["a|1", "25.0%", "abcd", "abxd"], "b": ["b", "100.0%", "x*y &lt;z&gt;", "∅"]}
    (table,) = acc.Tensors("val_lines/predictions/text_summary")
    assert len(re.findall("<tr>", markdown_to_safe_html(table.tensor_proto.string_val[0]))) == 3  # header + 2


def test_val_every_steps_validates_mid_epoch_and_resumes_exactly(tmp_path):
    tsv = write_tsv_dataset(tmp_path / "d", {"train": WORDS * 2, "val": WORDS[:4]})  # 4 steps an epoch
    common = ["data.batch_size=4", "train.max_epochs=2", "train.log_every_steps=1", "model.out_dropout=0.2"]
    full = train(_cfg(tsv, tmp_path / "full", [*common, "train.val_every_steps=3"]))
    acc = _events(tmp_path / "full" / "tensorboard")
    # Every 3rd step and at each epoch's end (step 4, 8), the end not twice.
    assert [s for s, _ in _scalars(acc, "val/cer")] == [3, 4, 6, 8]
    assert [s for s, _ in _scalars(acc, "train/epoch")] == [3, 4, 6, 8]
    assert [e for _, e in _scalars(acc, "train/epoch")] == [0.75, 1.0, 1.5, 2.0]
    for tag in ("train/lines_per_s", "train/grad_norm"):
        values = _scalars(acc, tag)
        assert [s for s, _ in values] == list(range(1, 9)) and all(0 < v < math.inf for _, v in values), tag
    # Validating takes nothing from training: the same weights as without the extra validations (dropout on,
    # so the random state must be untouched, and the model must be back in training mode after each one).
    train(_cfg(tsv, tmp_path / "plain", common))
    _assert_same_weights(tmp_path / "full" / "last.pt", tmp_path / "plain" / "last.pt")
    # Stopped at step 5 (validated at 3, 4 and, stopping, 5), then resumed: validations at 6 and 8, the
    # weights of the uninterrupted run.
    part = ["train.val_every_steps=3", "train.checkpoint_every_steps=1"]
    train(_cfg(tsv, tmp_path / "part", [*common, *part, "train.max_steps=5"]))
    resumed = train(_cfg(tsv, tmp_path / "part", [*common, *part, f"train.resume={tmp_path / 'part' / 'last.pt'}"]))
    assert resumed["steps"] == full["steps"] == 8
    _assert_same_weights(tmp_path / "full" / "last.pt", tmp_path / "part" / "last.pt")
    assert [s for s, _ in _scalars(_events(tmp_path / "part" / "tensorboard"), "val/cer")] == [3, 4, 5, 6, 8]


def _assert_same_weights(a, b) -> None:
    wa, wb = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


def test_mid_epoch_improvement_keeps_its_epoch_from_counting_as_bad(tmp_path):
    # lr 0 and no batch norm: the model never changes, so only the first validation (step 1, mid-epoch)
    # improves. Epoch 1 improved (at step 1), epochs 2 and 3 did not: patience 2 stops after epoch 3, not 2.
    tsv = write_tsv_dataset(tmp_path / "d", {"train": WORDS, "val": WORDS[:2]})  # 2 steps an epoch
    result = train(_cfg(tsv, tmp_path / "run", [
        "data.batch_size=4", "optim.lr=0", "model.batchnorm=false", "train.val_every_steps=1",
        "train.early_stopping_patience=2", "optim.scheduler=plateau", "train.max_epochs=10",
    ]))  # fmt: skip
    assert (result["epochs"], result["steps"]) == (3, 6)
    assert result["stop_reason"] == "no CER improvement in 2 epochs (early stopping)"
    assert load_checkpoint(tmp_path / "run" / "best.pt")["state"]["step"] == 1  # best.pt from a mid-epoch check
    last = load_checkpoint(tmp_path / "run" / "last.pt")
    assert last["scheduler"]["last_epoch"] == 3  # the plateau schedule stepped once an epoch, not per validation
    assert last["state"]["bad_epochs"] == 2


def test_negative_val_every_steps_is_refused(tmp_path):
    from htr.errors import HTRError

    tsv = write_tsv_dataset(tmp_path / "d", {"train": WORDS[:2], "val": WORDS[:2]})
    with pytest.raises(HTRError, match=r"train.val_every_steps=-1 must be >= 0"):
        train(_cfg(tsv, tmp_path / "run", ["train.val_every_steps=-1"]))


def _scheduler(extra: list[str]):
    from htr.lr_schedule import make_scheduler

    cfg: Config = structured(Config, compose_config([*TINY_MODEL, "train.out_dir=/unused", *extra]))
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.optim.lr)
    share = {"time": 0.0}
    return share, optimizer, make_scheduler(cfg, optimizer, 1000, share)


def _rates_at(share, optimizer, scheduler, shares):
    rates = []
    for spent in shares:
        share["time"] = spent
        optimizer.step()  # no gradients: a no-op, called first as PyTorch expects
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    return rates


def test_cosine_time_follows_the_share_of_the_time_budget_after_the_step_warmup():
    share, optimizer, scheduler = _scheduler(
        ["optim.lr=0.1", "optim.scheduler=cosine_time", "optim.warmup_steps=4", "train.max_time_s=60"]
    )
    lrs = _rates_at(share, optimizer, scheduler, [0.0] * 3)
    assert lrs == pytest.approx([0.05, 0.075, 0.1])  # steps 1-3 of the 4-step ramp, whatever the clock says
    rates = _rates_at(share, optimizer, scheduler, [0.0, 0.5, 0.75, 1.2])
    assert rates == pytest.approx([0.1, 0.05, 0.1 * (1 + math.cos(0.75 * math.pi)) / 2, 0.0], abs=1e-12)


def test_wsd_time_holds_the_peak_until_its_cooldown_then_decays_as_one_minus_sqrt_to_zero():
    share, optimizer, scheduler = _scheduler(
        ["optim.lr=0.1", "optim.scheduler=wsd_time", "optim.cooldown_share=0.25", "train.max_time_s=60"]
    )
    rates = _rates_at(share, optimizer, scheduler, [0.0, 0.5, 0.75, 0.8125, 0.9375, 1.0, 1.3])
    # The cooldown is the last quarter: at 0.8125 a quarter of it has passed (1 - sqrt(0.25) = 0.5 of the peak).
    assert rates == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.1 * (1 - math.sqrt(0.75)), 0.0, 0.0], abs=1e-12)


def test_wsd_by_steps_decays_over_the_last_share_of_the_steps_after_warmup():
    share, optimizer, scheduler = _scheduler(
        ["optim.lr=0.1", "optim.scheduler=wsd", "optim.cooldown_share=0.5", "optim.warmup_steps=10"]
    )
    rates = _rates_at(share, optimizer, scheduler, [0.9] * 1000)  # the clock's share is not read by "wsd"
    assert rates[8] == pytest.approx(0.1)  # the warm-up's last step (step 9 of 10)
    assert rates[504] == pytest.approx(0.1)  # step 505: (505 - 10) / 990 = 0.5, where the cooldown starts
    # rates[k] is the rate set after step k + 1: at step 753, (753 - 10) / 990 of the run is done.
    assert rates[752] == pytest.approx(0.1 * (1 - math.sqrt((743 / 990 - 0.5) / 0.5)))
    assert rates[752] > rates[753] > rates[998] > 0
    assert max(rates[9:505]) == min(rates[9:505]) == pytest.approx(0.1)


@pytest.mark.parametrize("share", ["0", "1.5", "-0.2"])
def test_a_cooldown_share_outside_zero_to_one_is_one_clear_error(share):
    from htr.errors import HTRError

    with pytest.raises(HTRError, match=rf"optim.cooldown_share={float(share)} must be in \(0, 1\]"):
        _scheduler(["optim.scheduler=wsd", f"optim.cooldown_share={share}"])
    _scheduler(["optim.scheduler=cosine", f"optim.cooldown_share={share}"])  # not read by other schedules: no error


def test_cosine_time_without_a_time_budget_is_one_clear_error():
    from htr.errors import HTRError

    with pytest.raises(HTRError, match=r"cosine_time decays over train.max_time_s, which is not set"):
        _scheduler(["optim.scheduler=cosine_time"])


def test_cosine_time_run_ends_its_budget_with_a_small_learning_rate(tmp_path):
    tsv = write_tsv_dataset(tmp_path / "d", {"train": WORDS, "val": WORDS[:2]})
    result = train(_cfg(tsv, tmp_path / "run", [
        "data.batch_size=2", "optim.lr=0.01", "optim.scheduler=cosine_time", "optim.warmup_steps=0",
        "train.max_time_s=3", "train.max_epochs=100000", "train.early_stopping_patience=100000",
    ]))  # fmt: skip
    assert result["stop_reason"] == "reached train.max_time_s=3.0"
    last = load_checkpoint(tmp_path / "run" / "last.pt")
    # The last step set the rate from a clock reading just under the budget: well past the middle of the cosine.
    assert last["optimizer"]["param_groups"][0]["lr"] < 0.005


def test_cosine_time_resumed_goes_on_with_what_its_budget_had_left(tmp_path, monkeypatch):
    from htr.train_log import TrainLogger

    tsv = write_tsv_dataset(tmp_path / "d", {"train": WORDS, "val": WORDS[:2]})
    common = ["data.batch_size=2", "optim.lr=0.01", "optim.scheduler=cosine_time", "optim.warmup_steps=0",
              "train.max_epochs=100000", "train.early_stopping_patience=100000"]  # fmt: skip
    first = train(_cfg(tsv, tmp_path / "a", [*common, "train.max_time_s=2"]))
    spent = load_checkpoint(tmp_path / "a" / "last.pt")["state"]["budget_spent_s"]
    assert first["stop_reason"] == "reached train.max_time_s=2.0" and spent >= 2.0
    rates: list[float] = []
    real = TrainLogger.train_step
    monkeypatch.setattr(
        TrainLogger, "train_step", lambda self, n, loss, lr, *a: (rates.append(lr), real(self, n, loss, lr, *a))
    )
    again = train(
        _cfg(tsv, tmp_path / "b", [*common, "train.max_time_s=4", f"train.resume={tmp_path / 'a' / 'last.pt'}"])
    )
    assert again["stop_reason"] == "reached train.max_time_s=4.0"
    # Half the 4 s budget was spent before: the decay goes on from there (at most 0.005), not from the peak 0.01.
    assert rates and max(rates) <= 0.01 * (1 + math.cos(math.pi * spent / 4)) / 2 + 1e-9
    assert load_checkpoint(tmp_path / "b" / "last.pt")["state"]["budget_spent_s"] >= 4.0


def test_epoch_line_names_the_epoch_as_run_and_adds_only_what_happened():
    from htr.train_log import epoch_line

    metrics = {"loss": 0.5, "cer": 0.125, "wer": 0.25}
    plain = epoch_line(0, "end", 30, metrics, 1e-3, 12.4, {"train": 0, "val": 0}, 0)
    assert plain == "epoch 1 step 30: val loss 0.500 CER 0.1250 WER 0.2500 lr 1.00e-03 (12 s)"
    per_source = {**metrics, "per_source": {"poilus": {"cer": 0.19}, "copiste": {"cer": 0.0812}}}
    full = epoch_line(2, "stopped", 70, per_source, 1e-3, 99.0, {"train": 12, "val": 1}, 3)
    assert full.startswith("epoch 3 (stopped part-way) step 70: ")
    assert full.endswith(
        "; skipped 12 train lines and 1 val lines (listed at the start); non-finite steps skipped so far: 3"
        "; copiste 0.0812, poilus 0.1900"
    )
    assert "(mid-epoch)" in epoch_line(0, "mid", 5, metrics, 1e-3, 1.0, {"train": 0, "val": 0}, 0)
