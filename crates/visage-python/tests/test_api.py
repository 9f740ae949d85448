"""visage's own API: faces against dlib's dumped outputs (the oracle JSON), typed errors."""

import json
import threading

import numpy as np
import pytest

import visage
from conftest import ORACLE, oracle_images

PARAMS = [pytest.param(p, id=p.name) for p in oracle_images()] or [pytest.param(None, id="no-oracle-photos")]


@pytest.fixture(scope="session")
def v(vc):
    return visage.Visage()


@pytest.mark.parametrize("path", PARAMS)
def test_analyze_matches_dlib_dump(v, photos, path):
    want = json.loads((ORACLE / "dlib" / (path.stem + ".json")).read_text())["faces"]
    got = v.analyze(path)
    assert [f.box for f in got] == [tuple(w["box_ltrb"]) for w in want]
    assert [f.detection for f in got] == [tuple(w["box_ltrb_raw"]) for w in want]
    for f, w in zip(got, want):
        assert [list(p) for p in f.landmarks] == w["landmarks5"]
        assert f.score == pytest.approx(w["hog_score"], abs=1e-9)
        assert f.embedding.dtype == np.float32 and f.embedding.shape == (128,)
        assert float(np.abs(f.embedding - np.array(w["encoding"])).max()) <= 1e-6
        assert f.css == tuple(w["css_trbl"])
    # The same from an array and from the file's bytes.
    img = v.load_image(path)
    assert [f.box for f in v.analyze(img)] == [f.box for f in got]
    assert [f.box for f in v.analyze(path.read_bytes())] == [f.box for f in got]


def test_analyze_many_and_threads(v, photos):
    single = [v.analyze(p) for p in photos]
    many = v.analyze_many(photos)
    assert [[f.box for f in fs] for fs in many] == [[f.box for f in fs] for fs in single]
    for a, b in zip(many, single):
        for x, y in zip(a, b):
            assert float(np.abs(x.embedding - y.embedding).max()) <= 1e-6
    out = {}

    def work(i):
        out[i] = [f.box for f in v.analyze(photos[i % len(photos)])]

    ts = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert all(out[i] == [f.box for f in single[i % len(photos)]] for i in out)


def test_typed_errors(v, photos, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    with pytest.raises(visage.BadPhotoError):
        v.analyze(bad)
    txt = tmp_path / "notes.png"
    txt.write_text("hello")
    with pytest.raises(visage.BadPhotoError):
        v.face(txt)
    with pytest.raises(visage.BadPhotoError):
        v.analyze(tmp_path / "missing.jpg")
    with pytest.raises(visage.NoFaceError):
        v.face(np.zeros((100, 100, 3), np.uint8))
    several = ORACLE / "images" / "sample1.jpg"
    with pytest.raises(visage.SeveralFacesError):
        v.face(several)
    largest = v.face(several, "largest")
    areas = [(f.box[2] - f.box[0] + 1) * (f.box[3] - f.box[1] + 1) for f in v.analyze(several)]
    assert (largest.box[2] - largest.box[0] + 1) * (largest.box[3] - largest.box[1] + 1) == max(areas)
    assert v.face(several, 1).box == v.analyze(several)[1].box
    with pytest.raises(visage.NoFaceError):
        v.face(several, 99)
    with pytest.raises(visage.ModelsMissingError):
        visage.Visage(models=str(tmp_path / "no-models-here"))
    for cls in (visage.BadPhotoError, visage.NoFaceError, visage.SeveralFacesError, visage.UnknownPersonError, visage.ModelMismatchError):
        assert issubclass(cls, visage.VisageError)


def test_big_photo_refused_before_the_work(photos):
    v = visage.Visage(max_pixels=100_000)
    with pytest.raises(visage.BadPhotoError):
        v.analyze(ORACLE / "images" / "t1.jpg")


def test_compare(v, photos):
    p = ORACLE / "images" / "sample2.jpg"
    assert v.compare(p, p) == 0.0
    assert v.compare(p, ORACLE / "images" / "Tom_Hanks_54745.png") > v.threshold()
    assert v.threshold() == pytest.approx(0.6)
