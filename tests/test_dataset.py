import numpy as np
import torch

from htr.charset import Charset
from htr.data.dataset import BucketBatchSampler, build_dataset, collate, ctc_min_frames, padding_fraction
from htr.data.lines import LineStore
from htr.data.samples import Sample
from htr.preprocess.pipeline import PreprocessConfig

from .conftest import render_text


def test_ctc_min_frames_counts_repeats():
    assert ctc_min_frames([]) == 0
    assert ctc_min_frames([1, 2, 3]) == 3
    assert ctc_min_frames([1, 1, 2, 2, 2]) == 5 + 3  # a blank between each repeated pair


def test_charset_blank_zero_and_unknowns_counted():
    cs = Charset.from_texts(["ba", "c"])
    assert cs.labels == ["<blank>", "a", "b", "c"]
    assert cs.encode("abx") == [1, 2]
    assert cs.unknown["x"] == 1
    assert cs.decode([2, 0, 1]) == "ba"


def test_collate_pads_with_background_zero():
    items = [
        {"image": torch.ones(1, 4, 3), "target": torch.tensor([1, 2]), "text": "ab", "id": "a"},
        {"image": torch.ones(1, 4, 5), "target": torch.tensor([3]), "text": "c", "id": "b"},
    ]
    b = collate(items)
    assert b["images"].shape == (2, 1, 4, 5)
    assert b["images"][0, 0, :, 3:].abs().sum() == 0
    assert b["widths"].tolist() == [3, 5]
    assert b["targets"].tolist() == [1, 2, 3]
    assert b["target_lengths"].tolist() == [2, 1]


def test_bucketing_sampler_is_deterministic_complete_and_tight():
    widths = [((i * 37) % 100) + 10 for i in range(200)]
    s = BucketBatchSampler(widths, 8, seed=1)
    s.set_epoch(0)
    a = s.batches()
    s.set_epoch(0)
    assert s.batches() == a
    s.set_epoch(1)
    assert s.batches() != a
    assert sorted(i for b in a for i in b) == list(range(200))
    assert padding_fraction(widths, a) < 0.05
    unbucketed = BucketBatchSampler(widths, 8, seed=1, bucketing=False)
    assert padding_fraction(widths, unbucketed.batches()) > 0.2
    # Resuming mid-epoch skips the batches already done.
    s.set_epoch(1, start_batch=5)
    s2 = BucketBatchSampler(widths, 8, seed=1)
    s2.set_epoch(1)
    assert list(s) == s2.batches()[5:]


def test_ddp_ranks_split_batches():
    widths = list(range(10, 110))
    ranks = []
    for r in range(2):
        s = BucketBatchSampler(widths, 8, seed=0, rank=r, world_size=2)
        ranks.append(s.batches())
    assert len(ranks[0]) == len(ranks[1]) == 6
    assert not {i for b in ranks[0] for i in b} & {i for b in ranks[1] for i in b}


def test_build_dataset_skips_and_reports(tmp_path):
    render_text("hello").save(tmp_path / "ok.png")
    render_text("hi").save(tmp_path / "short.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    samples = [
        Sample("ok", tmp_path / "ok.png", "hello"),
        Sample("empty", tmp_path / "ok.png", "  "),
        Sample("bad", tmp_path / "bad.png", "x"),
        Sample("long", tmp_path / "short.png", "a much longer transcription than fits"),
    ]
    cfg = PreprocessConfig(height=32)
    store = LineStore.build(samples, cfg, cache_dir=tmp_path / "cache")
    assert set(store.errors) == {2}
    cs = Charset.from_texts(["hello", "a much longer transcription than fits", "x"])
    ds, report = build_dataset(samples, store, cs, lambda w, ids: w // 4 >= ctc_min_frames(ids))
    assert [s.id for s in ds.samples] == ["ok"]
    assert report.n_skipped == 3
    assert report.skipped["empty transcription"] == ["empty"]
    assert report.skipped["transcription longer than the line's output frames"] == ["long"]
    assert "bad" in report.summary("train")
    # The cache is reused: same arrays from disk.
    again = LineStore.build(samples, cfg, cache_dir=tmp_path / "cache")
    assert (again[0] == store[0]).all() and again.errors.keys() == store.errors.keys()


def test_collate_pads_to_a_multiple_of_columns_and_keeps_the_true_widths():
    import torch

    from htr.data.dataset import collate

    def item(w: int, text: str) -> dict:
        return {"image": torch.ones(1, 8, w), "target": torch.arange(1, len(text) + 1), "text": text, "id": text}

    batch = [item(10, "a"), item(70, "bc")]
    plain, padded = collate(batch), collate(batch, width_multiple=64)
    assert plain["images"].shape == (2, 1, 8, 70) and padded["images"].shape == (2, 1, 8, 128)
    assert padded["widths"].tolist() == [10, 70]
    assert padded["images"][0, 0, :, :10].eq(1).all() and padded["images"][0, 0, :, 10:].eq(0).all()
    assert padded["images"][1, 0, :, 70:].eq(0).all() and torch.equal(padded["targets"], torch.tensor([1, 1, 2]))
    assert collate(batch, width_multiple=70)["images"].shape[-1] == 70  # already a multiple: no extra column


def test_line_cache_key_changes_with_the_pipeline_version(tmp_path, monkeypatch):
    """Lines cached by an older preprocessing pipeline are never reused once its output changes."""
    import htr.data.lines as lines

    render_text("hello").save(tmp_path / "ok.png")
    samples = [Sample("ok", tmp_path / "ok.png", "hello")]
    cfg = PreprocessConfig(height=32)
    LineStore.build(samples, cfg, cache_dir=tmp_path / "cache")
    monkeypatch.setattr(lines, "PIPELINE_VERSION", lines.PIPELINE_VERSION + 1)
    calls = []
    real_work = lines._work
    monkeypatch.setattr(lines, "_work", lambda job: calls.append(job) or real_work(job))
    LineStore.build(samples, cfg, cache_dir=tmp_path / "cache")
    assert len(calls) == 1  # preprocessed again, not read from the old entry
    assert len(list((tmp_path / "cache").glob("lines-*.npy"))) == 2


def test_line_store_is_the_same_built_by_several_processes(tmp_path):
    samples = []
    for i in range(70):  # enough lines for the process pool
        text = ["hello", "world", "mot", "ligne"][i % 4] * (1 + i % 3)
        render_text(text).save(tmp_path / f"{i}.png")
        samples.append(Sample(str(i), tmp_path / f"{i}.png", text))
    (tmp_path / "bad.png").write_bytes(b"not an image")
    samples.insert(33, Sample("bad", tmp_path / "bad.png", "x"))
    cfg = PreprocessConfig(height=32)
    one = LineStore.build(samples, cfg, workers=1)
    pool = LineStore.build(samples, cfg, workers=2)
    assert one.errors.keys() == pool.errors.keys() == {33}
    assert (one.offsets == pool.offsets).all() and np.array_equal(one.pixels, pool.pixels)
