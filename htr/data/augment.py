"""On-the-fly augmentation of training lines: affine, elastic, morphology, blur, contrast, noise.

Lines are float tensors ``(1, H, W)`` in [0, 1], ink high, background exactly 0 (the padding value). Every
transform keeps that: geometric ones fill with 0, morphology and blur leave far-away background at 0,
contrast is a gain and a gamma on the ink (``0`` stays ``0``), and the noise is mild. The height ``H`` is
the model's input height and never changes; the width may grow a little (never shrink: a line keeps at
least the CTC frames it had), the collate pads it.

All randomness comes from the ``torch.Generator`` passed in: parameters are sampled here and handed to
the functional API of ``torchvision.transforms.v2`` (whose transform classes would draw from the global
RNG). The training dataset seeds a generator per item from ``(seed, epoch, index)`` (:func:`item_seed`),
so an augmented epoch is the same whatever the worker count and after resuming mid-epoch.

Config group ``augment`` (``conf/augment/{none,light,heavy}.yaml``, package ``data.augment``): each
transform has a probability ``p_*`` and magnitudes; ``none`` has every probability 0 and costs nothing
(:func:`build_augmenter` returns None).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# torch and torchvision are imported where used: ``htr.config`` imports this module for AugmentConfig and
# stays free of torch (seconds to import) for the tools that only read configs.

#: Rows whose maximum is above this hold ink (for keeping the ink inside the height after a warp).
INK_THRESHOLD = 0.05
#: Background rows kept above and below the ink when a warped line is fitted back into the height.
FIT_MARGIN = 2


@dataclass
class AugmentConfig:
    """Probabilities and magnitudes of the training-line augmentations (a Hydra structured config).

    Attributes:
        name: the preset's name (``none``, ``light``, ``heavy``); a label only.
        p_affine: probability of the affine warp (stretch, rotation, shear, scale, translation, drawn
            together).
        rotate_deg: rotation angle drawn in [-rotate_deg, rotate_deg] degrees (positive: clockwise as
            displayed, the line's right end goes down), and at most the angle ``rotate_max_end_shift``
            allows.
        rotate_max_end_shift: the rotation is at most the angle that moves the line's ends up or down by this
            fraction of the height (long lines rotate less: the preprocessing deskews them).
        shear_deg: horizontal shear in [-shear_deg, shear_deg] degrees (positive: the tops of the strokes
            move right, as in italics).
        scale_min, scale_max: ink size factor (the tensor keeps its height).
        stretch_min, stretch_max: extra horizontal factor (wider or narrower writing).
        translate_px: shift in [-translate_px, translate_px] pixels, horizontally and vertically.
        p_elastic: probability of the elastic distortion.
        elastic_alpha: largest displacement of its control points, in pixels.
        elastic_sigma: spacing of its control points in pixels (the displacement is smooth at that scale).
        p_morph: probability of a dilation or an erosion (even odds) of the strokes.
        morph_max_kernel: largest side of the (rectangular, at least 1x2) structuring element; below 2, no
            morphology.
        p_blur: probability of a Gaussian blur.
        blur_sigma_max: its sigma is drawn in [min(0.5, blur_sigma_max), blur_sigma_max] pixels.
        p_noise: probability of additive Gaussian pixel noise (clamped to [0, 1]).
        noise_std: its standard deviation; the background's mean becomes about ``0.4 * noise_std``.
        p_contrast: probability of an ink-intensity change ``gain * x ** gamma`` (clamped to [0, 1]).
        contrast_min, contrast_max: range of the gain (below 1: fainter ink; above 1: saturated ink).
        gamma_min, gamma_max: range of the gamma (above 1: thinner anti-aliased edges, below 1: bolder).
    """

    name: str = "none"
    p_affine: float = 0.0
    rotate_deg: float = 0.0
    rotate_max_end_shift: float = 0.1
    shear_deg: float = 0.0
    scale_min: float = 1.0
    scale_max: float = 1.0
    stretch_min: float = 1.0
    stretch_max: float = 1.0
    translate_px: float = 0.0
    p_elastic: float = 0.0
    elastic_alpha: float = 0.0
    elastic_sigma: float = 10.0
    p_morph: float = 0.0
    morph_max_kernel: int = 2
    p_blur: float = 0.0
    blur_sigma_max: float = 0.0
    p_noise: float = 0.0
    noise_std: float = 0.0
    p_contrast: float = 0.0
    contrast_min: float = 1.0
    contrast_max: float = 1.0
    gamma_min: float = 1.0
    gamma_max: float = 1.0

    @property
    def active(self) -> bool:
        """Whether any transform has a non-zero probability."""
        return any(getattr(self, f.name) > 0 for f in fields(self) if f.name.startswith("p_"))


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for one item of one epoch (a stable hash, unlike Python's salted ``hash()``)."""
    digest = hashlib.blake2b(f"{seed}/{epoch}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def build_augmenter(cfg: AugmentConfig | None) -> LineAugmenter | None:
    """The augmenter ``cfg`` describes, or None when it does nothing (``augment=none``)."""
    if cfg is None or not cfg.active:
        return None
    return LineAugmenter(cfg)


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    """A uniform draw in [lo, hi]."""
    import torch

    return lo + (hi - lo) * float(torch.rand((), generator=g))


def _chance(g: torch.Generator, p: float) -> bool:
    """True with probability ``p``; draws nothing when ``p`` is 0 or 1."""
    if p <= 0:
        return False
    if p >= 1:
        return True
    import torch

    return float(torch.rand((), generator=g)) < p


class LineAugmenter:
    """Applies :class:`AugmentConfig`'s transforms, each with its probability, in a fixed order: affine,
    elastic (both on a zero-padded canvas, then fitted back into the height), morphology, blur, contrast,
    noise.

    ``augmenter(image, generator)`` returns a new ``(1, H, W')`` float tensor in [0, 1] with ``W' >= W``,
    or ``image`` itself when no transform was drawn. The individual transforms are public methods taking
    explicit parameters (for tests and for anyone who wants one of them on purpose).
    """

    def __init__(self, cfg: AugmentConfig) -> None:
        self.cfg = cfg

    def __call__(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment one line ``(1, H, W)``; all randomness comes from ``generator``."""
        import torch

        c, g = self.cfg, generator
        out = image
        affine = _chance(g, c.p_affine)
        elastic = _chance(g, c.p_elastic) and c.elastic_alpha > 0
        if affine or elastic:
            out = self.warp(out, self.sample_affine(out.shape[-2], out.shape[-1], g) if affine else None, g, elastic)
        if _chance(g, c.p_morph) and c.morph_max_kernel >= 2:
            k = c.morph_max_kernel
            kh, kw = (int(torch.randint(1, k + 1, (2,), generator=g)[i]) for i in range(2))
            if kh == kw == 1:
                kw = 2
            out = self.morph(out, (kh, kw), dilate=_chance(g, 0.5))
        if _chance(g, c.p_blur) and c.blur_sigma_max > 0:
            out = self.blur(out, _uniform(g, min(0.5, c.blur_sigma_max), c.blur_sigma_max))
        if _chance(g, c.p_contrast):
            out = self.contrast(out, _uniform(g, c.contrast_min, c.contrast_max), _uniform(g, c.gamma_min, c.gamma_max))
        if _chance(g, c.p_noise) and c.noise_std > 0:
            out = self.noise(out, c.noise_std, g)
        return out

    # ----------------------------------------------------------------------------------- geometry

    def sample_affine(self, height: int, width: int, g: torch.Generator) -> dict[str, float]:
        """Draw the affine parameters for a ``height`` x ``width`` line."""
        c = self.cfg
        # The ends of a line of half-width w/2 move by w/2 * sin(angle): cap that at rotate_max_end_shift * H.
        end_cap = math.degrees(math.asin(min(1.0, c.rotate_max_end_shift * height / max(width / 2, 1))))
        max_angle = min(c.rotate_deg, end_cap)
        return {
            "stretch": _uniform(g, c.stretch_min, c.stretch_max),
            "angle": _uniform(g, -max_angle, max_angle),
            "shear": _uniform(g, -c.shear_deg, c.shear_deg),
            "scale": _uniform(g, c.scale_min, c.scale_max),
            "tx": _uniform(g, -c.translate_px, c.translate_px),
            "ty": _uniform(g, -c.translate_px, c.translate_px),
        }

    def warp(
        self, image: torch.Tensor, affine: dict[str, float] | None, g: torch.Generator, elastic: bool
    ) -> torch.Tensor:
        """Stretch + affine (``affine`` from :meth:`sample_affine`, or None) and/or the elastic distortion,
        on a canvas padded with background so no ink leaves it, then :meth:`fit_height`."""
        import torch.nn.functional as tnf
        import torchvision.transforms.v2.functional as tvf

        h, w0 = image.shape[-2:]
        out = image
        a = affine or {"stretch": 1.0, "angle": 0.0, "shear": 0.0, "scale": 1.0, "tx": 0.0, "ty": 0.0}
        if a["stretch"] != 1.0:
            new_w = max(1, round(w0 * a["stretch"]))
            out = tvf.resize(out, [h, new_w], interpolation=tvf.InterpolationMode.BILINEAR, antialias=True)
        w = out.shape[-1]
        # Room for the warped ink: half extents after rotation and scale, the shear's lean, the shift,
        # the elastic displacement, two pixels to spare; and never narrower than the input line.
        sin, cos = abs(math.sin(math.radians(a["angle"]))), math.cos(math.radians(a["angle"]))
        s = a["scale"]
        half_h = s * (w / 2 * sin + h / 2 * cos) + abs(a["ty"])
        half_w = s * (w / 2 * cos + h / 2 * sin) + abs(math.tan(math.radians(a["shear"]))) * half_h + abs(a["tx"])
        extra = (self.cfg.elastic_alpha if elastic else 0.0) + 2
        pad_y = max(0, math.ceil(half_h - h / 2 + extra))
        pad_x = max(0, math.ceil(half_w - w / 2 + extra), math.ceil((w0 - w) / 2))
        out = tnf.pad(out, (pad_x, pad_x, pad_y, pad_y))
        if affine is not None:
            out = self.affine(out, a["angle"], a["shear"], a["scale"], (a["tx"], a["ty"]))
        if elastic:
            out = self.elastic(out, self.cfg.elastic_alpha, self.cfg.elastic_sigma, g)
        return self.fit_height(out, h, pad_y)

    @staticmethod
    def affine(
        image: torch.Tensor, angle: float, shear: float, scale: float, translate: tuple[float, float]
    ) -> torch.Tensor:
        """``torchvision`` affine about the image centre, bilinear, filled with background 0 (same size)."""
        import torchvision.transforms.v2.functional as tvf

        return tvf.affine(
            image, angle=angle, translate=list(translate), scale=scale, shear=[shear, 0.0],
            interpolation=tvf.InterpolationMode.BILINEAR, fill=[0.0],
        )  # fmt: skip

    @staticmethod
    def elastic(image: torch.Tensor, alpha: float, sigma: float, g: torch.Generator) -> torch.Tensor:
        """Elastic distortion: random displacements of at most ``alpha`` pixels on control points ``sigma``
        pixels apart, interpolated bicubically (smooth, and far cheaper than blurring a per-pixel field)."""
        import torch
        import torch.nn.functional as tnf
        import torchvision.transforms.v2.functional as tvf

        h, w = image.shape[-2:]
        gh, gw = math.ceil(h / sigma) + 1, math.ceil(w / sigma) + 1
        coarse = torch.rand((1, 2, gh, gw), generator=g) * 2 - 1
        field = tnf.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True) * alpha  # pixels
        # torchvision adds the displacement to a [-1, 1] grid (align_corners=False): one pixel is 2 / size.
        field[:, 0] *= 2 / w
        field[:, 1] *= 2 / h
        return tvf.elastic(image, field.permute(0, 2, 3, 1), interpolation=tvf.InterpolationMode.BILINEAR, fill=[0.0])

    @staticmethod
    def fit_height(canvas: torch.Tensor, height: int, top: int) -> torch.Tensor:
        """Cut ``height`` rows out of ``canvas``: the rows ``top:top + height`` (where the line was), moved
        as little as needed to hold all the ink plus :data:`FIT_MARGIN`; ink taller than that is squashed
        vertically into the height (the width is kept, so the line keeps its CTC frames)."""
        import torch
        import torchvision.transforms.v2.functional as tvf

        rows = torch.nonzero(canvas.amax(dim=(0, 2)) > INK_THRESHOLD).flatten()
        if rows.numel() == 0:
            return canvas[:, top : top + height].contiguous()
        r0 = max(int(rows[0]) - FIT_MARGIN, 0)
        r1 = min(int(rows[-1]) + FIT_MARGIN, canvas.shape[-2] - 1)
        if r1 - r0 + 1 <= height:
            start = min(max(top, r1 + 1 - height), r0)
            start = min(max(start, 0), canvas.shape[-2] - height)
            return canvas[:, start : start + height].contiguous()
        crop = canvas[:, r0 : r1 + 1]
        out = tvf.resize(crop, [height, crop.shape[-1]], interpolation=tvf.InterpolationMode.BILINEAR, antialias=True)
        return out.clamp_(0.0, 1.0)

    # ------------------------------------------------------------------------------ pixel values

    @staticmethod
    def morph(image: torch.Tensor, kernel: tuple[int, int], dilate: bool) -> torch.Tensor:
        """Grey-level dilation (thicker strokes: max over a ``kernel`` = (kh, kw) window) or erosion
        (thinner: min); the window is centred, even sizes lean to the top left; outside is background."""
        import torch.nn.functional as tnf

        kh, kw = kernel
        pad = (kw // 2, (kw - 1) // 2, kh // 2, (kh - 1) // 2)
        x = image if dilate else -image
        x = tnf.max_pool2d(tnf.pad(x, pad, value=0.0).unsqueeze(0), (kh, kw), stride=1).squeeze(0)
        return x if dilate else -x

    @staticmethod
    def blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
        """Gaussian blur (``torchvision``), kernel of 3 sigma each side."""
        import torchvision.transforms.v2.functional as tvf

        k = 2 * math.ceil(3 * sigma) + 1
        return tvf.gaussian_blur(image, [k, k], [sigma, sigma])

    @staticmethod
    def contrast(image: torch.Tensor, gain: float, gamma: float) -> torch.Tensor:
        """Ink intensity ``gain * x ** gamma`` clamped to [0, 1] (``torchvision``'s adjust_gamma); 0 stays 0."""
        import torchvision.transforms.v2.functional as tvf

        return tvf.adjust_gamma(image, gamma, gain)

    @staticmethod
    def noise(image: torch.Tensor, std: float, g: torch.Generator) -> torch.Tensor:
        """Additive Gaussian noise clamped to [0, 1]. Clamping keeps half the background at exactly 0 and
        leaves its mean at about ``0.4 * std``: mild for the small ``std`` of the presets, so the line does
        not stand out from the batch padding (exactly 0)."""
        import torch

        return (image + std * torch.randn(image.shape, generator=g)).clamp_(0.0, 1.0)
