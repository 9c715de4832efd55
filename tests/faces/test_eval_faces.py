"""Face-pair evaluation: ROC, AUC, TAR@FAR and best threshold against brute force; the report and plot."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modeldeck.errors import EmptyInputError, InputDecodeError
from modeldeck.evaluation.faces import (
    PairsReport,
    best_threshold,
    evaluate_pairs,
    read_pairs,
    roc_auc,
    roc_curve,
    save_roc_plot,
    tar_at_far,
)

from .gallery_support import FakeEmbedder, person_vector, save_photo


def brute_auc(d: np.ndarray, y: np.ndarray) -> float:
    pos, neg = d[y], d[~y]
    wins = (pos[:, None] < neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def brute_rates(d: np.ndarray, y: np.ndarray, t: float) -> tuple[float, float, float]:
    accept = d <= t
    return float(accept[y].mean()), float(accept[~y].mean()), float((accept == y).mean())


def brute_tar_at_far(d: np.ndarray, y: np.ndarray, far: float) -> float:
    candidates = [-np.inf, *np.unique(d)]
    return max(tar for tar, fa, _ in (brute_rates(d, y, t) for t in candidates) if fa <= far)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_roc_auc_tar_and_best_threshold_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 400))
    y = rng.random(n) < 0.4
    d = np.where(y, rng.normal(0.45, 0.1, n), rng.normal(0.7, 0.12, n))
    d = np.round(d, 2)  # ties, which the curve must treat as one operating point
    curve = roc_curve(d, y)
    assert roc_auc(curve) == pytest.approx(brute_auc(d, y), abs=1e-12)
    for far in (0.0, 1e-3, 0.05, 0.3):
        tar, t = tar_at_far(curve, far)
        assert tar == pytest.approx(brute_tar_at_far(d, y, far), abs=1e-12)
        got_tar, got_far, _ = brute_rates(d, y, t)
        assert got_tar == pytest.approx(tar) and got_far <= far
    thr, acc = best_threshold(curve)
    best_brute = max(brute_rates(d, y, t)[2] for t in [-np.inf, *np.unique(d)])
    assert acc == pytest.approx(best_brute) and brute_rates(d, y, thr)[2] == pytest.approx(best_brute)
    assert curve.far[0] == 0 and curve.tar[-1] == 1 and curve.far[-1] == 1
    assert np.all(np.diff(curve.far) >= 0) and np.all(np.diff(curve.tar) >= 0)


def test_perfect_and_reversed_separation():
    d = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    y = np.array([True, True, True, False, False])
    curve = roc_curve(d, y)
    assert roc_auc(curve) == 1.0 and tar_at_far(curve, 0.0)[0] == 1.0
    assert best_threshold(curve) == (pytest.approx(0.55), 1.0)
    assert roc_auc(roc_curve(d, ~y)) == 0.0
    assert roc_auc(roc_curve(d, np.ones(5, bool))) is None and tar_at_far(roc_curve(d, np.ones(5, bool))) is None


def write_pairs(folder, rows, header="path_a,path_b,same"):
    path = folder / "pairs.csv"
    path.write_text(header + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return path


class CountingEmbedder(FakeEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def embed_one(self, image, *, largest=False):
        self.seen.append(str(image))
        return super().embed_one(image, largest=largest)


def test_evaluate_pairs_end_to_end_with_a_fake_model(tmp_path):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for person in (1, 2, 3):
        for variant in (1, 2):
            save_photo(imgs / f"p{person}_{variant}.png", (person, variant))
    save_photo(imgs / "blank.png")
    rows = [
        ("imgs/p1_1.png", "imgs/p1_2.png", 1),
        ("imgs/p2_1.png", "imgs/p2_2.png", "true"),
        ("imgs/p3_1.png", str(imgs / "p3_2.png"), "1"),  # absolute paths are kept
        ("imgs/p1_1.png", "imgs/p2_1.png", 0),
        ("imgs/p2_2.png", "imgs/p3_1.png", "false"),
        ("imgs/p1_2.png", "imgs/blank.png", 0),  # no face: skipped
        ("imgs/p1_2.png", "imgs/missing.png", 1),  # missing file: skipped
    ]
    csv_path = write_pairs(tmp_path, rows)
    emb = CountingEmbedder()
    plot = tmp_path / "out" / "roc.png"
    report = evaluate_pairs(emb, csv_path, plot=plot, progress=False)
    assert len(emb.seen) == len(set(emb.seen)) == 8  # each distinct image embedded once
    assert report.pairs == 7 and report.evaluated == 5 and report.positives == 3 and report.negatives == 2
    assert report.skipped == {"MD150": 1, "MD104": 1}
    assert report.accuracy == 1.0 and report.roc_auc == 1.0 and report.tar_at_far == 1.0
    assert report.model == "fake-faces@1" and report.threshold == 0.6
    same = [np.linalg.norm(person_vector(p, 1) - person_vector(p, 2)) for p in (1, 2, 3)]
    diff = [np.linalg.norm(person_vector(1, 1) - person_vector(2, 1))]
    assert max(same) < report.best_threshold < min(diff)
    assert PairsReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report
    text = report.render()
    assert "5 evaluated of 7" in text and "ROC AUC        1.0000" in text and "MD150 x1" in text
    assert "cannot resolve a FAR" in text and str(plot) in text

    from PIL import Image

    with Image.open(plot) as png:
        assert png.size == (560, 560) and png.format == "PNG"
        pixels = np.asarray(png.convert("RGB"))
    curve_blue = np.all(pixels == (31, 119, 180), axis=2)
    assert curve_blue.sum() > 200  # the curve was drawn
    # a perfect ROC hugs the left and top edges: blue pixels sit on the left border column region
    assert curve_blue[:, 68:74].sum() > 100

    limited = evaluate_pairs(emb, csv_path, limit=2, progress=False)
    assert limited.pairs == 2 and limited.negatives == 0 and limited.roc_auc is None
    assert "n/a" in limited.render()


def test_the_eval_command_prints_the_report(tmp_path, monkeypatch, capsys):
    import modeldeck
    from modeldeck.cli.main import main

    for person in (1, 2):
        save_photo(tmp_path / f"{person}a.png", (person, 1))
        save_photo(tmp_path / f"{person}b.png", (person, 2))
    csv_path = write_pairs(tmp_path, [("1a.png", "1b.png", 1), ("2a.png", "2b.png", 1), ("1a.png", "2b.png", 0)])
    monkeypatch.setattr(modeldeck, "load", lambda task, **kw: FakeEmbedder())
    plot = tmp_path / "roc.png"
    assert main(["eval", "face-verify", "--pairs", str(csv_path), "--json", "--quiet", "--plot", str(plot)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["evaluated"] == 3 and out["roc_auc"] == 1.0 and out["plot"] == str(plot) and plot.is_file()
    assert main(["eval", "face-verify", "--pairs", str(csv_path), "--quiet", "--limit", "1"]) == 0
    assert "1 evaluated of 1" in capsys.readouterr().out


def test_bad_pair_files_raise_clear_errors(tmp_path):
    with pytest.raises(InputDecodeError, match="no pairs file"):
        read_pairs(tmp_path / "nope.csv")
    with pytest.raises(InputDecodeError, match="lacks the column"):
        read_pairs(write_pairs(tmp_path, [("a", "b")], header="a,b"))
    with pytest.raises(InputDecodeError, match="line 2: same must be"):
        read_pairs(write_pairs(tmp_path, [("a", "b", "maybe")]))
    with pytest.raises(EmptyInputError, match="holds no pairs"):
        read_pairs(write_pairs(tmp_path, []))


def test_plot_of_random_scores_is_written(tmp_path):
    rng = np.random.default_rng(5)
    y = rng.random(300) < 0.5
    curve = roc_curve(rng.random(300), y)
    out = save_roc_plot(curve, tmp_path / "r.png", title="random", threshold=0.5)
    from PIL import Image

    with Image.open(out) as png:
        red = np.all(np.asarray(png.convert("RGB")) == (214, 39, 40), axis=2)
    assert red.sum() > 10  # the model threshold's operating point is marked


@pytest.mark.slow
def test_real_dlib_pairs_agree_with_the_verify_task(verifier, astro, lfw, coffee_photo, tmp_path):
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    photos = {
        "astro.png": astro,
        "astro_flip.png": np.ascontiguousarray(astro[:, ::-1]),
        "astro_crop.png": np.ascontiguousarray(astro[30:300, 100:350]),
        "astro_dark.png": (astro * 0.6).astype(np.uint8),
        "coffee.png": coffee_photo,
    }
    others = []
    for i, face in enumerate(lfw):  # the first few lfw_subset crops in which dlib finds exactly one face
        if len(others) == 2:
            break
        if len(verifier.embed(face).faces) == 1:
            others.append(i)
    photos.update({f"lfw{i}.png": lfw[i] for i in others})
    for name, pixels in photos.items():
        Image.fromarray(pixels).save(folder / name)
    rows = [
        ("photos/astro.png", "photos/astro_flip.png", 1),
        ("photos/astro.png", "photos/astro_crop.png", 1),
        ("photos/astro_dark.png", "photos/astro_flip.png", 1),
        *[("photos/astro.png", f"photos/lfw{i}.png", 0) for i in others],
        (f"photos/lfw{others[0]}.png", f"photos/lfw{others[1]}.png", 0),
        ("photos/astro.png", "photos/coffee.png", 0),  # no face in the coffee photo: skipped
    ]
    csv_path = write_pairs(tmp_path, rows)
    report = evaluate_pairs(verifier, csv_path, plot=tmp_path / "roc.png", progress=False)
    verdicts = [verifier(tmp_path / a, tmp_path / b) for a, b, _ in rows[:-1]]
    expected = np.mean([v.match == bool(same) for v, (_, _, same) in zip(verdicts, rows, strict=False)])
    assert report.accuracy == pytest.approx(expected) and report.evaluated == len(rows) - 1
    assert report.skipped == {"MD150": 1} and report.model == verifier.model_id
    same = max(v.distance for v, r in zip(verdicts, rows, strict=False) if r[2])
    diff = min(v.distance for v, r in zip(verdicts, rows, strict=False) if not r[2])
    assert same < diff  # separable on these photos, so:
    assert report.roc_auc == 1.0 and report.tar_at_far == 1.0 and same < report.best_threshold < diff
    assert (tmp_path / "roc.png").stat().st_size > 1000
