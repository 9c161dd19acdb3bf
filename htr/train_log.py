"""What training shows in TensorBoard: loss, learning rate, throughput, gradient norm, validation loss/CER/WER,
sample lines with their reference, prediction and CER, and the resolved config; and the console line of each
validation (:func:`epoch_line`)."""

from __future__ import annotations

import html
import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from htr.data.dataset import LineDataset
from htr.metrics import score_line


class TrainLogger:
    """TensorBoard logging for one run (a no-op on DDP ranks other than 0)."""

    def __init__(
        self,
        out_dir: Path,
        cfg: Any,
        val_ds: LineDataset,
        enabled: bool = True,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.enabled = enabled
        self.clock = clock  # seconds, for the throughput (a test gives its own)
        self.every = max(cfg.train.log_every_steps, 1)
        self._loss_sum, self._count = 0.0, 0
        self._grad_sum, self._grad_count = 0.0, 0
        self._lines, self._since = 0, clock()  # throughput window: lines since that time
        if not enabled:
            return
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(out_dir / "tensorboard"))
        self.writer.add_text("config", "```\n" + OmegaConf.to_yaml(OmegaConf.structured(cfg)) + "\n```", 0)
        # A fixed set of validation lines, spread over the split, shown at every validation with their predictions.
        n = min(cfg.train.num_val_images, len(val_ds))
        self.samples = [val_ds[round(k * (len(val_ds) - 1) / max(n - 1, 1))] for k in range(n)]

    def train_step(self, step: int, loss: float, lr: float, lines: int, grad_norm: float = math.nan) -> None:
        """Accumulate a step; every ``log_every_steps`` write the means of the loss and of the gradient norm
        (before clipping; non-finite ones, whose steps were skipped, left out), the learning rate and the
        training lines per second since the last write (or validation: its time is not training time); under DDP
        ``lines`` is the step's lines over all ranks."""
        if not self.enabled:
            return
        self._loss_sum += loss
        self._count += 1
        self._lines += lines
        if math.isfinite(grad_norm):
            self._grad_sum += grad_norm
            self._grad_count += 1
        if step % self.every == 0:
            now = self.clock()
            self.writer.add_scalar("train/loss", self._loss_sum / self._count, step)
            self.writer.add_scalar("train/lr", lr, step)
            self.writer.add_scalar("train/lines_per_s", self._lines / max(now - self._since, 1e-9), step)
            if self._grad_count:
                self.writer.add_scalar("train/grad_norm", self._grad_sum / self._grad_count, step)
            self._loss_sum, self._count, self._grad_sum, self._grad_count = 0.0, 0, 0.0, 0
            self._lines, self._since = 0, now

    def augmentation_grid(self, images: list[torch.Tensor], step: int = 0) -> None:
        """Write ``images`` (augmented training lines, each (1, H, W)) as one image ``train/augmented_lines``:
        one line per row, padded on the right with background to a common width, rows parted by grey."""
        if not self.enabled or not images:
            return
        from torchvision.utils import make_grid

        width = max(im.shape[-1] for im in images)
        padded = torch.stack([torch.nn.functional.pad(im, (0, width - im.shape[-1])) for im in images])
        grid = make_grid(padded.clamp(0, 1), nrow=1, padding=2, pad_value=0.5)  # (3, rows, width + 4)
        self.writer.add_image("train/augmented_lines", grid, step)
        self.writer.flush()

    def validation(self, epoch: int, step: int, metrics: dict[str, Any]) -> None:
        """Write validation loss/CER/WER and the sample lines with target and prediction."""
        if not self.enabled:
            return
        self.writer.add_scalar("val/loss", metrics["loss"], step)
        self.writer.add_scalar("val/cer", metrics["cer"], step)
        self.writer.add_scalar("val/wer", metrics["wer"], step)
        self.writer.add_scalar("train/epoch", epoch, step)
        for name, rates in (metrics.get("per_source") or {}).items():  # several sources: each one's CER too
            self.writer.add_scalar(f"val_source/{name or 'other'}/cer", rates["cer"], step)
            self.writer.add_scalar(f"val_source/{name or 'other'}/wer", rates["wer"], step)
        if "cer_pooled" in metrics:
            self.writer.add_scalar("val/cer_pooled", metrics["cer_pooled"], step)
        self._sample_lines(step, metrics.get("predictions", {}))
        self.writer.flush()
        self._lines, self._since = 0, self.clock()  # the throughput window restarts after validation

    def _sample_lines(self, step: int, predictions: dict[str, str]) -> None:
        """Each sample line's image, under a tag naming its id, with a text of the same tag and step giving
        its reference, prediction and CER (TensorBoard images carry no caption); and one table of them all."""
        rows = ["| | id | CER | reference | prediction |", "|--:|---|--:|---|---|"]
        for k, item in enumerate(self.samples):
            tag = f"val_lines/{k:02d}/{item['id']}"
            pred = predictions.get(item["id"], "")
            cer = f"{100 * score_line(item['text'], pred).cer:.1f}%"
            self.writer.add_image(tag, item["image"].clamp(0, 1), step)
            caption = f"| id | CER | reference | prediction |\n|---|--:|---|---|\n| {_md(item['id'])} | {cer} | "
            self.writer.add_text(tag, caption + f"{_md(item['text'])} | {_md(pred)} |", step)
            rows.append(f"| {k:02d} | {_md(item['id'])} | {cer} | {_md(item['text'])} | {_md(pred)} |")
        if self.samples:
            self.writer.add_text("val_lines/predictions", "\n".join(rows), step)

    def close(self) -> None:
        """Flush and close the event file."""
        if self.enabled:
            self.writer.close()


def _md(text: str) -> str:
    """``text`` as itself in a cell of TensorBoard's markdown tables: markdown's special characters
    backslash-escaped, HTML's as entities (a transcription holds ``*``, ``_``, ``<`` ...); ∅ for nothing."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|])", r"\\\1", html.escape(text, quote=False)) or "∅"


def epoch_line(
    epoch: int,
    when: str,
    step: int,
    metrics: dict[str, Any],
    lr: float,
    elapsed_s: float,
    skipped: dict[str, int],
    nonfinite: int,
) -> str:
    """The console line of one validation. ``epoch`` counts from 0 and is printed as the progress bar numbers it
    (the epoch that ran, finished or not); ``when``: "end", "mid" or "stopped" (see ``validate_and_keep``);
    ``skipped``: lines left out per split, repeated here because the list printed at the start scrolls away."""
    note = {"end": "", "mid": " (mid-epoch)", "stopped": " (stopped part-way)"}[when]
    line = (
        f"epoch {epoch + 1}{note} step {step}: val loss {metrics['loss']:.3f} CER {metrics['cer']:.4f} "
        f"WER {metrics['wer']:.4f} lr {lr:.2e} ({elapsed_s:.0f} s)"
    )
    parts = [f"{n} {name} lines" for name, n in skipped.items() if n]
    if parts:
        line += f"; skipped {' and '.join(parts)} (listed at the start)"
    if nonfinite:
        line += f"; non-finite steps skipped so far: {nonfinite}"
    per = metrics.get("per_source")  # several sources: "; copiste 0.0812, poilus 0.1900"
    if per:
        line += "; " + ", ".join(f"{name or 'other'} {v['cer']:.4f}" for name, v in sorted(per.items(), key=str))
    return line
