"""visage.compat against face_recognition itself, on the oracle photos and on edge cases.

Every expected value is what the installed face_recognition (dlib) returns for the same call.
"""

import threading

import numpy as np
import pytest

from conftest import oracle_images

PARAMS = [pytest.param(p, id=p.name) for p in oracle_images()] or [pytest.param(None, id="no-oracle-photos")]

# Largest difference seen between the two libraries' encodings (printed at the end).
MAX_DIFF = {"encoding": 0.0, "faces": 0}


@pytest.fixture(scope="module")
def loaded(fr, photos):
    return {p.name: fr.load_image_file(str(p)) for p in photos}


def _chips_identical(vc, img, locations, model):
    """visage's aligned chips equal dlib's get_face_chip on dlib's own landmarks."""
    import dlib
    import face_recognition.api as api

    pred = api.pose_predictor_68_point if model == "large" else api.pose_predictor_5_point
    rects = [vc._css_to_rect(loc) for loc in locations]
    ours = vc._get_engine().chips_raw(img, rects, model == "large")
    for r, chip in zip(rects, ours):
        theirs = dlib.get_face_chip(img, pred(img, dlib.rectangle(*r)), 150, 0.25)
        assert np.array_equal(chip, theirs)


def _enc_close(ours, theirs):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert isinstance(a, np.ndarray) and a.dtype == np.float64 and a.shape == (128,)
        d = float(np.abs(a - b).max())
        MAX_DIFF["encoding"] = max(MAX_DIFF["encoding"], d)
        MAX_DIFF["faces"] += 1
        assert d <= 1e-6, d


@pytest.mark.parametrize("path", PARAMS)
def test_load_image_file_equals_pil(fr, vc, photos, path):
    for mode in ("RGB", "L"):
        ours, theirs = vc.load_image_file(str(path), mode), fr.load_image_file(str(path), mode)
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        assert np.array_equal(ours, theirs), mode
    with open(path, "rb") as f:
        assert np.array_equal(vc.load_image_file(f), fr.load_image_file(str(path)))


@pytest.mark.parametrize("path", PARAMS)
@pytest.mark.parametrize("up", [0, 1])
def test_face_locations_identical(fr, vc, loaded, path, up):
    img = loaded[path.name]
    theirs = fr.face_locations(img, number_of_times_to_upsample=up)
    ours = vc.face_locations(img, number_of_times_to_upsample=up)
    assert ours == theirs
    assert all(type(v) is int for loc in ours for v in loc)
    if up == 1 and path.name != "Tom_Hanks_54745.png":
        assert ours, "the oracle photos have faces"


@pytest.mark.parametrize("path", PARAMS)
@pytest.mark.parametrize("model", ["large", "small"])
def test_face_landmarks_identical(fr, vc, loaded, path, model):
    img = loaded[path.name]
    assert vc.face_landmarks(img, model=model) == fr.face_landmarks(img, model=model)
    locs = fr.face_locations(img)
    assert vc.face_landmarks(img, locs, model=model) == fr.face_landmarks(img, locs, model=model)


@pytest.mark.parametrize("path", PARAMS)
def test_face_encodings_within_1e6(fr, vc, loaded, path):
    img = loaded[path.name]
    _enc_close(vc.face_encodings(img), fr.face_encodings(img))
    locs = fr.face_locations(img)
    _enc_close(vc.face_encodings(img, locs), fr.face_encodings(img, locs))
    _enc_close(vc.face_encodings(img, locs, model="large"), fr.face_encodings(img, locs, model="large"))
    _chips_identical(vc, img, locs, "small")
    _chips_identical(vc, img, locs, "large")


def test_compare_faces_and_distance(fr, vc, loaded):
    encs = [e for img in loaded.values() for e in fr.face_encodings(img)]
    assert len(encs) >= 20
    probe = encs[0]
    assert np.array_equal(vc.face_distance(encs, probe), fr.face_distance(encs, probe))
    for tol in (0.6, 0.5, 0.0):
        assert vc.compare_faces(encs, probe, tolerance=tol) == fr.compare_faces(encs, probe, tolerance=tol)
    assert vc.compare_faces(encs, probe) == fr.compare_faces(encs, probe)
    assert vc.face_distance([], probe).shape == fr.face_distance([], probe).shape == (0,)
    assert vc.compare_faces([], probe) == fr.compare_faces([], probe) == []


def test_no_face_gives_empty_lists(fr, vc):
    for img in (np.zeros((120, 160, 3), np.uint8), np.full((64, 64, 3), 200, np.uint8), np.zeros((8, 8, 3), np.uint8)):
        for up in (0, 1, 2):
            assert vc.face_locations(img, up) == fr.face_locations(img, up) == []
        assert vc.face_landmarks(img) == fr.face_landmarks(img) == []
        assert vc.face_encodings(img) == fr.face_encodings(img) == []
        assert vc.face_landmarks(img, [], model="small") == fr.face_landmarks(img, [], model="small") == []


def test_locations_outside_the_image(fr, vc, loaded):
    img = loaded["Tom_Hanks_54745.png"]
    h, w = img.shape[:2]
    boxes = [
        (-40, w + 30, h + 25, -35),  # larger than the image on every side
        (h - 60, w + 50, h + 60, w - 70),  # the face box hanging over the bottom-right corner
        (h + 100, w + 200, h + 180, w + 120),  # entirely outside
        (60, 190, 200, 50),  # inside
    ]
    for model in ("large", "small"):
        assert vc.face_landmarks(img, boxes, model=model) == fr.face_landmarks(img, boxes, model=model)
        _chips_identical(vc, img, boxes, model)
        # The box entirely outside gives an all-black chip (identical to dlib's, checked just
        # above); on that degenerate input the two networks' float rounding differs by up to
        # 2e-6, so it is held to 1e-5. Every chip with face pixels is held to 1e-6.
        _enc_close(vc.face_encodings(img, boxes[:2] + boxes[3:], model=model), fr.face_encodings(img, boxes[:2] + boxes[3:], model=model))
        black = vc.face_encodings(img, [boxes[2]], model=model)[0]
        assert float(np.abs(black - fr.face_encodings(img, [boxes[2]], model=model)[0]).max()) <= 1e-5


def test_faces_cut_by_the_border_are_trimmed_as_face_recognition(fr, vc, loaded):
    # Crops that cut through the faces: the detector's boxes extend past the edges.
    for name in ("sample1.jpg", "t1.jpg"):
        img = loaded[name]
        for loc in fr.face_locations(img)[:3]:
            top, right, bottom, left = loc
            hh, ww = (bottom - top) // 3, (right - left) // 3
            crop = np.ascontiguousarray(img[max(top + hh, 0):bottom + 40, max(left + ww, 0):right + 40])
            theirs = fr.face_locations(crop)
            assert vc.face_locations(crop) == theirs
            assert vc.face_landmarks(crop) == fr.face_landmarks(crop)
            _enc_close(vc.face_encodings(crop), fr.face_encodings(crop))


def test_grey_and_strided_images(fr, vc, loaded, photos):
    grey = fr.load_image_file(str(photos[0].parent / "sample2.jpg"), "L")
    assert grey.ndim == 2
    assert vc.face_locations(grey) == fr.face_locations(grey)
    assert vc.face_landmarks(grey) == fr.face_landmarks(grey)
    img = loaded["sample2.jpg"]
    view = img[::2, ::2]  # not contiguous
    assert vc.face_locations(view) == fr.face_locations(np.ascontiguousarray(view))


def test_cnn_detector_identical(fr, vc, loaded):
    # Small images at upsample 0 keep dlib's CNN (seconds per large photo) affordable.
    imgs = [loaded["Tom_Hanks_54745.png"], np.ascontiguousarray(loaded["sample2.jpg"][::3, ::3]), np.ascontiguousarray(loaded["t1.jpg"][::3, ::3])]
    found = 0
    for img in imgs:
        theirs = fr.face_locations(img, 0, model="cnn")
        assert vc.face_locations(img, 0, model="cnn") == theirs
        found += len(theirs)
    assert found >= 2
    same = [np.ascontiguousarray(loaded["t1.jpg"][::3, ::3]), np.ascontiguousarray(loaded["sample1.jpg"][::3, ::3])]
    if same[0].shape == same[1].shape:
        assert vc.batch_face_locations(same, 0) == fr.batch_face_locations(same, 0)
    assert vc.batch_face_locations([]) == []


def test_bad_arguments(vc, loaded):
    img = loaded["sample2.jpg"]
    with pytest.raises(ValueError):
        vc.face_landmarks(img, model="medium")
    with pytest.raises(TypeError):
        vc.face_locations(img.astype(np.float32))
    with pytest.raises(TypeError):
        vc.face_locations(np.zeros((10, 10, 4), np.uint8))


def test_jitter_is_repeatable_and_near_the_plain_encoding(vc, loaded):
    img = loaded["sample2.jpg"]
    plain = vc.face_encodings(img)[0]
    a, b = vc.face_encodings(img, num_jitters=5)[0], vc.face_encodings(img, num_jitters=5)[0]
    assert np.array_equal(a, b)
    assert not np.array_equal(a, plain)
    assert np.linalg.norm(a - plain) < 0.15


def test_threads_share_the_models(vc, loaded):
    imgs = [loaded[n] for n in ("sample1.jpg", "sample2.jpg", "t1.jpg", "Tom_Hanks_54745.png")]
    serial = [vc.face_encodings(i) for i in imgs]
    out = [None] * (2 * len(imgs))

    def work(k):
        out[k] = vc.face_encodings(imgs[k % len(imgs)])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(out))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, got in enumerate(out):
        want = serial[k % len(imgs)]
        assert len(got) == len(want) and all(np.array_equal(x, y) for x, y in zip(got, want))


def test_zz_report_parity(capsys):
    with capsys.disabled():
        print(f"\nparity: {MAX_DIFF['faces']} encodings compared, max |visage - face_recognition| = {MAX_DIFF['encoding']:.3g}")
