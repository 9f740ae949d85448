"""The gallery from Python and from the CLI: one file, the same answers both ways."""

import json
import sqlite3
import subprocess

import numpy as np
import pytest

import visage
from conftest import ORACLE

TOM = ORACLE / "images" / "Tom_Hanks_54745.png"
S2 = ORACLE / "images" / "sample2.jpg"
GROUP = ORACLE / "images" / "sample1.jpg"


@pytest.fixture(scope="module")
def v(vc):
    return visage.Visage()


def run(cli, *args, check=True):
    r = subprocess.run([cli, "-q", *map(str, args)], capture_output=True, text=True)
    if check and r.returncode not in (0, 1):
        raise AssertionError(f"visage {' '.join(map(str, args))}: exit {r.returncode}\n{r.stderr}")
    return r


def test_round_trip_python_cli_python(v, photos, cli, tmp_path):
    db = tmp_path / "g.db"
    g = v.gallery(db)
    e = g.enroll("tom", TOM)
    assert (e.added, e.already) == (1, 0)
    assert g.enroll("tom", TOM).already == 1, "the same photo twice adds nothing"

    # Python -> CLI: the CLI identifies the person enrolled from Python, at the same distance.
    r = run(cli, "identify", "--gallery", db, "--json", "--top", "2", TOM)
    faces = json.loads(r.stdout)["faces"]
    py = g.identify(TOM, top=2)
    assert [f["name"] for f in faces] == [i.name for i in py] == ["tom"]
    assert faces[0]["distance"] == pytest.approx(py[0].distance, abs=1e-9)
    assert tuple(faces[0]["box"]) == py[0].box
    # The CLI re-enrolling Python's photo is a no-op (the same photo hash).
    r = run(cli, "enroll", "--gallery", db, "tom", TOM)
    assert r.returncode == 0, r.stderr
    assert g.subjects()[0].templates == 1

    # CLI -> Python: someone enrolled from the CLI is identified and verified from Python.
    r = run(cli, "enroll", "--gallery", db, "s2", S2)
    assert r.returncode == 0, r.stderr
    ids = g.identify(S2, top=2)
    assert [i.name for i in ids] == ["s2"] and ids[0].decision == "match"
    assert [c[0] for c in ids[0].candidates] == ["s2", "tom"]
    ver = g.verify("s2", S2)
    assert ver.match and ver.distance == 0.0
    cli_ver = json.loads(run(cli, "verify", "--gallery", db, "--json", "tom", S2).stdout)
    py_ver = g.verify("tom", S2)
    assert cli_ver["match"] is py_ver.match is False
    assert cli_ver["distance"] == pytest.approx(py_ver.distance, abs=1e-9)

    # Faces of people never enrolled are unknown, in both.
    py_group = g.identify(GROUP, top=1)
    cli_group = json.loads(run(cli, "identify", "--gallery", db, "--json", GROUP).stdout)["faces"]
    assert [i.decision for i in py_group] == [f["decision"] for f in cli_group]
    assert [i.name for i in py_group] == [f["name"] for f in cli_group]
    assert [i.distance for i in py_group] == pytest.approx([f["distance"] for f in cli_group], abs=1e-9)
    assert "unknown" in [i.decision for i in py_group]

    # Forget from Python, seen by the CLI.
    n, erased = g.forget("tom")
    assert n == 1 and erased
    listed = [json.loads(l)["name"] for l in run(cli, "subjects", "list", "--gallery", db, "--json").stdout.splitlines()]
    assert listed == ["s2"]
    # Forget from the CLI, seen by Python.
    assert run(cli, "forget", "--gallery", db, "s2").returncode == 0
    assert g.subjects() == []
    assert g.identify(S2)[0].decision == "unknown"


def test_calibrate_agrees_with_the_cli(v, photos, cli, tmp_path):
    db = tmp_path / "c.db"
    g = v.gallery(db)
    for name, path in (("tom", TOM), ("s2", S2)):
        img = v.load_image(path)
        g.enroll(name, img)
        g.enroll(name, np.ascontiguousarray(img[:, ::-1]))  # the mirrored photo: a second template
        g.enroll(name, np.ascontiguousarray(img[2:, 3:]))  # a slightly shifted crop: a third
    assert [s.templates for s in g.subjects()] == [3, 3] or sorted(s.templates for s in g.subjects()) == [3, 3]
    c = g.calibrate(far=0.2)
    assert c is not None and c.genuine == 6 and c.impostor == 9
    cli_c = json.loads(run(cli, "calibrate", "--gallery", db, "--json", "--far", "0.2").stdout)
    assert cli_c["threshold"] == pytest.approx(c.threshold, abs=1e-12)
    assert cli_c["eer"] == pytest.approx(c.eer)
    g.calibrate(far=0.2, store=True)
    assert g.threshold == pytest.approx(c.threshold)
    assert visage.Gallery(db, visage=v).threshold == pytest.approx(c.threshold)


def test_gallery_errors(v, photos, tmp_path):
    db = tmp_path / "e.db"
    g = v.gallery(db)
    with pytest.raises(visage.UnknownPersonError):
        g.verify("nobody", S2)
    with pytest.raises(visage.SeveralFacesError):
        g.enroll("group", GROUP)
    with pytest.raises(visage.NoFaceError):
        g.enroll("blank", np.zeros((80, 80, 3), np.uint8))
    with pytest.raises(visage.BadPhotoError):
        g.enroll("junk", b"not a photo")
    assert g.enroll("group", GROUP, face="largest").added == 1
    assert len(g) == 1 and "group" in g
    with pytest.raises(visage.GalleryError):
        g.enroll("other", GROUP, face="largest")  # the same face under another name
    # A gallery of another model is refused.
    other = tmp_path / "other.db"
    v.gallery(other).enroll("s2", S2)
    con = sqlite3.connect(other)
    con.execute("UPDATE meta SET value = 'some-other-model' WHERE key = 'model'")
    con.commit()
    con.close()
    with pytest.raises(visage.ModelMismatchError):
        visage.Gallery(other, visage=v)
    with pytest.raises(visage.GalleryError):
        visage.Gallery(tmp_path, visage=v)  # a folder
