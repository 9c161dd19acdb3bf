"""What training shows in TensorBoard: loss, learning rate, validation loss/CER/WER, sample lines with their
predictions, and the resolved config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from htr.data.dataset import LineDataset


class TrainLogger:
    """TensorBoard logging for one run (a no-op on DDP ranks other than 0)."""

    def __init__(self, out_dir: Path, cfg: Any, val_ds: LineDataset, enabled: bool = True) -> None:
        self.enabled = enabled
        self.every = max(cfg.train.log_every_steps, 1)
        self._loss_sum, self._lines, self._count = 0.0, 0, 0
        if not enabled:
            return
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(out_dir / "tensorboard"))
        self.writer.add_text("config", "```\n" + OmegaConf.to_yaml(OmegaConf.structured(cfg)) + "\n```", 0)
        # A fixed set of validation lines, spread over the split, shown every epoch with their predictions.
        n = min(cfg.train.num_val_images, len(val_ds))
        self.samples = [val_ds[round(k * (len(val_ds) - 1) / max(n - 1, 1))] for k in range(n)]

    def train_step(self, step: int, loss: float, lr: float, lines: int) -> None:
        """Accumulate a step; every ``log_every_steps`` write the mean loss and the learning rate."""
        if not self.enabled:
            return
        self._loss_sum += loss
        self._count += 1
        self._lines += lines
        if step % self.every == 0:
            self.writer.add_scalar("train/loss", self._loss_sum / self._count, step)
            self.writer.add_scalar("train/lr", lr, step)
            self._loss_sum, self._count = 0.0, 0

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
        preds = metrics.get("predictions", {})
        rows = ["| id | target | prediction |", "|---|---|---|"]
        for k, item in enumerate(self.samples):
            self.writer.add_image(f"val_lines/{k:02d}", item["image"].clamp(0, 1), step)
            pred = preds.get(item["id"], "")
            rows.append(f"| {item['id']} | {_md(item['text'])} | {_md(pred)} |")
        if self.samples:
            self.writer.add_text("val_lines/predictions", "\n".join(rows), step)
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        if self.enabled:
            self.writer.close()


def _md(text: str) -> str:
    return text.replace("|", "\\|") or "∅"
