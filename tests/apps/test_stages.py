import json

from edge_taaf.apps.stages import MARKER, code_version, run_stage


def test_same_params_skip_changed_params_rerun_downstream(tmp_path):
    calls = []

    def work(tag):
        def _w(folder):
            calls.append(tag)
            (folder / "out.txt").write_text(tag)
            return {"tag": tag}
        return _w

    a = run_stage(tmp_path, "a", {"x": 1}, [], work("a1"), log=lambda m: None)
    b = run_stage(tmp_path, "b", {"y": 2}, [a], work("b1"), log=lambda m: None)
    assert calls == ["a1", "b1"] and not a.cached
    a2 = run_stage(tmp_path, "a", {"x": 1}, [], work("a2"), log=lambda m: None)
    b2 = run_stage(tmp_path, "b", {"y": 2}, [a2], work("b2"), log=lambda m: None)
    assert calls == ["a1", "b1"] and a2.cached and b2.cached and b2.outputs == {"tag": "b1"}
    a3 = run_stage(tmp_path, "a", {"x": 5}, [], work("a3"), log=lambda m: None)   # changed upstream value
    b3 = run_stage(tmp_path, "b", {"y": 2}, [a3], work("b3"), log=lambda m: None)  # same own params
    assert calls == ["a1", "b1", "a3", "b3"] and b3.folder != b.folder


def test_a_crashed_stage_has_no_marker_and_runs_again(tmp_path):
    def boom(folder):
        (folder / "partial.bin").write_bytes(b"half")
        raise RuntimeError("killed")

    try:
        run_stage(tmp_path, "s", {}, [], boom, log=lambda m: None)
    except RuntimeError:
        pass
    folder = next(tmp_path.glob("s-*"))
    assert not (folder / MARKER).exists()
    done = run_stage(tmp_path, "s", {}, [], lambda f: {"ok": True}, log=lambda m: None)
    assert not done.cached and json.loads((folder / MARKER).read_text())["outputs"] == {"ok": True}


def test_code_version_follows_the_sources(tmp_path):
    """A changed, added or renamed source changes the version; other files do not."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "sub" / "b.py").write_text("y = 2\n")
    first = code_version(pkg)
    (pkg / "notes.txt").write_text("not code")
    assert code_version(pkg) == first
    (pkg / "a.py").write_text("x = 2\n")
    second = code_version(pkg)
    assert second != first
    (pkg / "sub" / "b.py").rename(pkg / "sub" / "c.py")
    assert code_version(pkg) not in (first, second)
    assert len(code_version("firmware_sim")) == 16 and code_version("firmware_sim") != code_version("quant")
