"""`prepare_ultralytics` keeps Ultralytics off the network and out of the home folder.

The end-to-end runs happen in child processes started with a clean, even hostile, environment
(no YOLO_* settings from conftest, an Ultralytics API key, a HOME of their own, no pytest loaded,
which Ultralytics would take as a reason to stay quiet): what they show, `prepare_ultralytics`
did by itself. The same `NetworkGuard` refuses and records connection attempts in them and, as
the `network_guard` fixture, in this process.
"""

from __future__ import annotations

import inspect
import ipaddress
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from PIL import Image

from trainers.offline import prepare_ultralytics


class NetworkGuard:
    """Refuse and record every attempt to reach another host, and every subprocess.

    Connections to loopback addresses and unix sockets go through and are recorded apart, in
    `local`: Ray, torch.distributed and multiprocessing talk to their own processes that way.
    Subprocesses of an installer or downloader (pip, uv, apt, curl, ...) are refused and recorded
    in `installs`; others run (ctypes.util.find_library calls ldconfig and gcc when torch loads).
    """

    INSTALLERS = frozenset({"pip", "pip3", "uv", "apt", "apt-get", "conda", "curl", "wget", "git", "sudo"})

    def __init__(self) -> None:
        self.remote: list[str] = []
        self.local: list[str] = []
        self.installs: list[str] = []
        self._undo: list[tuple[object, str, object]] = []

    def _check(self, what: str, host: object) -> None:
        if isinstance(host, bytes):
            host = host.decode()
        try:
            ip = ipaddress.ip_address(str(host).partition("%")[0])
            local = ip.is_loopback or ip.is_unspecified
        except ValueError:
            local = host in (None, "", "localhost")
        (self.local if local else self.remote).append(f"{what}({host!r})")
        if not local:
            raise socket.gaierror(socket.EAI_NONAME, f"NetworkGuard refused {what}({host!r})")

    def install(self) -> None:
        guard = self
        real = {name: getattr(socket, name) for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex")}

        def resolver(name):
            def resolve(host, *args, **kwargs):
                guard._check(name, host)
                return real[name](host, *args, **kwargs)

            return resolve

        def connector(original):
            def connect(sock, address):
                if sock.family == getattr(socket, "AF_UNIX", None):
                    guard.local.append(f"{original.__name__}(unix {address!r})")
                else:
                    guard._check(original.__name__, address[0])
                return original(sock, address)

            return connect

        real_create_connection = socket.create_connection

        def create_connection(address, *args, **kwargs):
            guard._check("create_connection", address[0])
            return real_create_connection(address, *args, **kwargs)

        real_popen_init = subprocess.Popen.__init__

        def popen_init(popen, *args, **kwargs):
            command = args[0] if args else kwargs.get("args")
            words = command.split() if isinstance(command, str) else [str(w) for w in command]
            if any(w.rpartition("/")[2] in guard.INSTALLERS for w in words):
                guard.installs.append(str(command))
                raise PermissionError(f"NetworkGuard refused subprocess {command!r}")
            real_popen_init(popen, *args, **kwargs)

        patches = [(socket, name, resolver(name)) for name in real]
        patches += [(socket.socket, n, connector(getattr(socket.socket, n))) for n in ("connect", "connect_ex")]
        patches += [(socket, "create_connection", create_connection), (subprocess.Popen, "__init__", popen_init)]
        self._undo = [(owner, name, vars(owner).get(name)) for owner, name, _ in patches]  # None: inherited
        for owner, name, new in patches:
            setattr(owner, name, new)

    def uninstall(self) -> None:
        for owner, name, old in reversed(self._undo):
            if old is None:
                delattr(owner, name)
            else:
                setattr(owner, name, old)
        self._undo = []


@pytest.fixture
def network_guard():
    guard = NetworkGuard()
    guard.install()
    try:
        yield guard
    finally:
        guard.uninstall()


def make_tiny_dataset(
    root: str | os.PathLike[str], n_train: int = 8, n_val: int = 4, imgsz: int = 64, n_classes: int = 2, seed: int = 0
) -> Path:
    """Write a detection dataset of noisy images with one to three coloured rectangles each (class =
    colour) in Ultralytics' layout under `root`; returns the path of its data.yaml."""
    root = Path(root).resolve()
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, size=(n_classes, 3))
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            image = rng.integers(0, 64, size=(imgsz, imgsz, 3), dtype=np.uint8)
            rows = []
            for _ in range(rng.integers(1, 4)):
                cls = int(rng.integers(n_classes))
                w, h = rng.integers(imgsz // 6, imgsz // 2, size=2)
                x, y = rng.integers(0, imgsz - w), rng.integers(0, imgsz - h)
                image[y : y + h, x : x + w] = colours[cls]
                box = ((x + w / 2) / imgsz, (y + h / 2) / imgsz, w / imgsz, h / imgsz)
                rows.append(f"{cls} " + " ".join(f"{v:.6f}" for v in box))
            Image.fromarray(image).save(root / "images" / split / f"{i}.png")
            (root / "labels" / split / f"{i}.txt").write_text("\n".join(rows) + "\n")
    names = {c: f"c{c}" for c in range(n_classes)}
    data = {"path": str(root), "train": "images/train", "val": "images/val", "names": names}
    (root / "data.yaml").write_text(yaml.safe_dump(data))
    return root / "data.yaml"


def _tree(path: Path) -> dict[str, int]:
    """Relative path -> mtime (ns) of everything under `path`."""
    return {str(p.relative_to(path)): p.stat().st_mtime_ns for p in path.rglob("*")} if path.exists() else {}


def _run_child(body: str, params: dict, tmp: Path) -> tuple[dict, Path]:
    """Run `body` under a NetworkGuard in a fresh interpreter with a clean, hostile environment and a
    HOME of its own; it finds `params` and `guard`, and returns `report` as JSON. -> (report, home)."""
    home = tmp / "home"
    home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("YOLO_", "ULTRALYTICS_", "PYTEST_", "XDG_", "MPLCONFIGDIR", "RAY_"))
    }
    env |= {
        "HOME": str(home),
        "YOLO_CONFIG_DIR": str(home / "not-here"),  # prepare_ultralytics must override all three
        "YOLO_OFFLINE": "False",
        "YOLO_AUTOINSTALL": "True",
        "ULTRALYTICS_API_KEY": "ul_" + "0" * 40,  # would switch the Platform callbacks on
    }
    script = "\n".join(
        [
            "import ipaddress, json, socket, subprocess, sys",
            inspect.getsource(NetworkGuard),
            "guard = NetworkGuard()",
            "guard.install()",
            "params = json.loads(sys.argv[1])",
            "report = {}",
            textwrap.dedent(body),
            "guard.uninstall()",
            "print('REPORT ' + json.dumps(report))",
        ]
    )
    out = subprocess.run(
        [sys.executable, "-c", script, json.dumps(params)],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("REPORT ")]
    assert out.returncode == 0 and lines, (
        f"child failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}"
    )
    return json.loads(lines[-1][len("REPORT ") :]), home


_TRAIN = """
    def phase(name):
        report[name] = {"remote": guard.remote, "local": guard.local, "installs": guard.installs}
        guard.remote, guard.local, guard.installs = [], [], []

    from trainers.offline import prepare_ultralytics

    prepare_ultralytics(params["cfg"])
    import torch
    from ultralytics import YOLO
    from ultralytics.utils import SETTINGS, USER_CONFIG_DIR

    YOLO("yolov8n.yaml").train(
        data=params["data"], epochs=1, imgsz=64, batch=4, workers=0, device="cpu", project=params["runs"],
        name="t", plots=False, val=True, amp=False, exist_ok=True,
    )
    phase("train")

    model = YOLO(params["runs"] + "/t/weights/last.pt")
    report["loaded_task"] = model.task
    phase("load")

    sys.path.insert(0, params["mods"])
    import ghost_attention  # a module the loading process will not find, like spaces without the package

    torch.save({"model": ghost_attention.Ghost()}, params["ghost"])
    sys.path.remove(params["mods"])
    del sys.modules["ghost_attention"]
    report["ghost_error"] = None
    try:
        YOLO(params["ghost"])
    except Exception as e:
        report["ghost_error"] = [type(e).__name__, getattr(e, "name", None)]
    phase("ghost")

    report["settings_file"] = str(SETTINGS.file)
    report["user_config_dir"] = str(USER_CONFIG_DIR)
    report["settings"] = dict(SETTINGS)
"""


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory):
    """One real training, checkpoint load and bad-checkpoint load in a clean child process."""
    tmp = tmp_path_factory.mktemp("offline")
    (tmp / "mods").mkdir()
    (tmp / "mods" / "ghost_attention.py").write_text("class Ghost:\n    pass\n")
    real_config = Path.home() / ".config" / "Ultralytics"
    before = _tree(real_config)
    params = {
        "cfg": str(tmp / "cfg"),
        "data": str(make_tiny_dataset(tmp / "data")),
        "runs": str(tmp / "runs"),
        "mods": str(tmp / "mods"),
        "ghost": str(tmp / "ghost.pt"),
    }
    report, home = _run_child(_TRAIN, params, tmp)
    return report, home, tmp, before == _tree(real_config)


@pytest.mark.parametrize("phase", ["train", "load", "ghost"])
def test_no_connection_attempt_and_no_install(offline_run, phase):
    report = offline_run[0]
    assert report[phase]["remote"] == []
    assert report[phase]["installs"] == []


def test_training_ran_and_checkpoint_loads(offline_run):
    report, _, tmp, _ = offline_run
    assert (tmp / "runs" / "t" / "results.csv").is_file()
    assert report["loaded_task"] == "detect"


def test_unimportable_module_in_checkpoint_raises_instead_of_installing(offline_run):
    report = offline_run[0]
    assert report["ghost_error"] == ["ModuleNotFoundError", "ghost_attention"]
    assert report["ghost"]["installs"] == []  # no pip/uv: TryExcept in check_requirements would hide a refusal


def test_ultralytics_files_stay_in_config_dir(offline_run):
    report, home, tmp, real_home_unchanged = offline_run
    config = tmp / "cfg" / "Ultralytics"
    assert report["user_config_dir"] == str(config)
    assert report["settings_file"] == str(config / "settings.json")
    assert [report["settings"][k] for k in ("sync", "raytune", "api_key")] == [False, False, ""]
    assert (config / "Arial.ttf").is_file()
    assert _tree(home) == {}  # the child's HOME, which Ultralytics and matplotlib default to
    assert real_home_unchanged  # and the real ~/.config/Ultralytics


def test_prepare_adopts_an_ultralytics_imported_before(tmp_path):
    """Imported first (hostile environment: settings in HOME, DNS probe), then prepared."""
    body = """
        import ultralytics.utils
        from ultralytics.utils import checks, events

        guard.remote.clear()  # the import's own DNS probe, before prepare_ultralytics could act
        # as if that probe had found the network, which the guard does not let it
        ultralytics.utils.ONLINE = checks.ONLINE = events.ONLINE = events.events.enabled = True
        from trainers.offline import prepare_ultralytics

        prepare_ultralytics(params["cfg"])
        from ultralytics.utils import SETTINGS

        report["settings_file"] = str(SETTINGS.file)
        report["user_config_dir"] = [str(checks.USER_CONFIG_DIR), str(ultralytics.utils.USER_CONFIG_DIR)]
        report["switches"] = [checks.ONLINE, checks.AUTOINSTALL, events.events.enabled, SETTINGS["sync"]]
        report["font"] = str(checks.check_font("Arial.ttf"))
        report["remote"] = guard.remote
    """
    report, _ = _run_child(body, {"cfg": str(tmp_path / "cfg")}, tmp_path)
    config = tmp_path / "cfg" / "Ultralytics"
    assert report["settings_file"] == str(config / "settings.json")
    assert json.loads((config / "settings.json").read_text())["sync"] is False
    assert report["user_config_dir"] == [str(config)] * 2
    assert report["switches"] == [False, False, False, False]
    assert report["font"] == str(config / "Arial.ttf")
    assert report["remote"] == []


def test_network_guard_refuses_remote_and_records_loopback(network_guard):
    with pytest.raises(OSError):
        socket.create_connection(("example.com", 80), timeout=1)
    with pytest.raises(OSError):
        socket.getaddrinfo("pypi.org", 443)
    with pytest.raises(OSError):
        subprocess.run(["pip", "--version"])
    with socket.create_server(("127.0.0.1", 0)) as server, socket.create_connection(server.getsockname()):
        pass
    assert len(network_guard.remote) == 2 and len(network_guard.installs) == 1
    assert any("127.0.0.1" in entry for entry in network_guard.local)


def _dataset_with_download(root: Path, download: str) -> Path:
    (root / "d").mkdir()
    data = {"path": str(root / "d"), "train": "images/train", "val": "images/val", "names": ["a"]}
    data["download"] = download
    (root / "d.yaml").write_text(yaml.safe_dump(data))
    return root / "d.yaml"


@pytest.mark.parametrize(
    "download",
    [
        "https://example.com/d.zip",  # a URL, or a script, as in Ultralytics' own dataset YAMLs
        "from ultralytics.utils.downloads import download\ndownload(['https://example.com/d.zip'])",
    ],
)
def test_downloads_fail_like_offline_without_connecting(network_guard, tmp_path, monkeypatch, download):
    """In this process, already configured by conftest: what the environment cannot stop."""
    monkeypatch.chdir(tmp_path)
    prepare_ultralytics(os.environ["YOLO_CONFIG_DIR"])  # conftest's config dir: leaves the session as it was
    from ultralytics import YOLO
    from ultralytics.data.utils import check_det_dataset

    with pytest.raises(ConnectionError):  # the load check_amp does on GPU; it reports ConnectionError as offline
        YOLO(tmp_path / "yolo26n.pt")
    with pytest.raises(FileNotFoundError):  # a missing checkpoint of our own: no GitHub release lookup
        YOLO(tmp_path / "trial.pt")
    with pytest.raises(ConnectionError):
        check_det_dataset(_dataset_with_download(tmp_path, download))
    assert network_guard.remote == [] and network_guard.installs == []


def test_gpu_amp_check_skips_its_download(network_guard, tmp_path, monkeypatch):
    """check_amp, which the trainer runs on CUDA with amp=True, on a stand-in for a GPU model."""
    import torch
    import ultralytics.utils
    from ultralytics.utils.checks import check_amp

    prepare_ultralytics(os.environ["YOLO_CONFIG_DIR"])
    monkeypatch.setattr(ultralytics.utils, "WEIGHTS_DIR", tmp_path)  # no yolo26n.pt there
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")

    class GpuModel:  # all check_amp reads of the model before it loads yolo26n.pt
        def parameters(self):
            return iter([SimpleNamespace(device=torch.device("cuda", 0))])

    assert check_amp(GpuModel()) is True  # Ultralytics' offline outcome: check skipped, AMP kept
    assert network_guard.remote == [] and network_guard.installs == []


def test_second_call_is_cheap(monkeypatch):
    """The second call with the same folder sets the environment again and does nothing else: no
    settings, fonts, download guards or module registration done again (checked by what runs, not by
    a time limit that a loaded CI machine could miss)."""
    import trainers.offline as offline

    prepare_ultralytics(os.environ["YOLO_CONFIG_DIR"])
    for step in ("_adopt_environment", "_install_fonts", "_refuse_downloads"):
        monkeypatch.setattr(offline, step, lambda *args, step=step: pytest.fail(f"{step} ran again"))
    prepare_ultralytics(os.environ["YOLO_CONFIG_DIR"])
