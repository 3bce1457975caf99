"""The study in optuna-dashboard: ``serve_dashboard(storage_url)``, and the outcome put there.

The dashboard reads the same Optuna storage the search writes, so it can run beside a search in
progress. It binds to 127.0.0.1 unless told otherwise: the dashboard can also edit a study
(notes, user attributes, deletions), so expose it on other interfaces only on purpose.

`publish_outcome` (after a search's final step) makes the dashboard alone answer "what won, by how
much, and where is the model": the verdict and the leaderboard become the study's note
(optuna-dashboard's ``save_note``), and best.yaml, the final weights and report.html its artifacts
(``optuna.artifacts``, kept in ``<study>/artifacts``).

optuna-dashboard (an optional extra) and the report (SciPy, torch) are imported inside the functions that use them:
serving the dashboard needs neither the report nor torch.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import tempfile
import threading
from pathlib import Path
from wsgiref.simple_server import WSGIServer, make_server

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact

from search.final.decision import Decision
from search.study.attributes import StudyView, record_artifact_digests
from search.study.records import task_of_study
from search.study.storage import opening_error

ARTIFACTS = "artifacts"  # folder of the study's artifact store
OUTCOME_FILES = ("best.yaml", "final/weights/best.pt", "best.onnx", "report.html")  # study-relative, when present


def artifact_store(study_dir: str | Path):
    """The study's file-system artifact store (``<study>/artifacts``)."""
    folder = Path(study_dir) / ARTIFACTS
    folder.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(folder))


def publish_outcome(study: optuna.Study, study_dir: str | Path) -> None:
    """The verdict and leaderboard as the study's note, the outcome files as its artifacts under their own
    names (``best.yaml``, ``best.pt``, ``report.html``); a file is uploaded again only when its content
    changed (its digest is kept in the study's ``artifact_digests``). Needs optuna-dashboard."""
    from optuna_dashboard import save_note

    from search.report import leaderboard, sort_trials
    from search.report.outcome import race_table

    folder = Path(study_dir)
    store = artifact_store(folder)
    digests = StudyView(study).artifact_digests
    files = []
    with tempfile.TemporaryDirectory(dir=folder / ARTIFACTS) as staging:
        for name in OUTCOME_FILES:
            path = folder / name
            if not path.is_file():
                continue
            digest = hashlib.sha1(path.read_bytes()).hexdigest()
            if digests.get(name) != digest:  # a link, not a copy, carries the artifact's name (the store copies it)
                staged = Path(staging) / path.name
                try:
                    os.link(path, staged)
                except OSError:  # no hard links on this filesystem
                    shutil.copyfile(path, staged)
                upload_artifact(artifact_store=store, file_path=str(staged), study_or_trial=study)
                digests[name] = digest
            files.append(f"- `{name}`: artifact `{path.name}` (sha1 {digest[:12]})")
    record_artifact_digests(study, digests)
    task = task_of_study(study)
    decision = Decision.of_study(study, task.metric_names)
    said = decision.sentence(task.score, task.score_label) if decision else "no final step has run yet"
    headline = decision.headline(task.score_label) if decision else "Not decided yet: the search's final step has not run"
    raced = ["## Race on fresh seeds (what decided)", "", *race_table(decision.confirmation, task), ""] if (
        decision and decision.confirmation) else []
    screen = (StudyView(study).config or {}).get("screen", "standalone")
    note = [f"## {headline}", "", said, "", *raced, *leaderboard(sort_trials(study.get_trials(deepcopy=False)), task, screen),
            "## Files (this study's artifacts)", "", *files]
    save_note(study, "\n".join(note))


def serve_dashboard(storage_url: str, host: str = "127.0.0.1", port: int = 8080, study_dir: str | Path | None = None) -> None:
    """Serve optuna-dashboard for ``storage_url`` at http://host:port/ until Ctrl-C or SIGTERM (blocking), with
    the artifacts of ``study_dir`` when given (a read-only study's, where it has them). Only reads the study."""
    try:
        import optuna_dashboard
        from optuna_dashboard._storage_url import get_storage
    except ImportError:
        raise ValueError("optuna-dashboard is not installed; pip install 'yolo-attention-search[dashboard]'") from None
    if not 0 < port < 65536:
        raise ValueError(f"--port {port} is not a port; give one in 1..65535")
    try:  # opened here, so a damaged file or a wrong URL is one line (the search's own), not a traceback
        storage = get_storage(storage_url)
        storage.get_all_studies()
    except Exception as e:  # SQLAlchemy's many kinds, as in search.study.storage.open_study
        raise opening_error(storage_url, e) from None
    store = None
    if study_dir is not None and (os.access(study_dir, os.W_OK) or (Path(study_dir) / ARTIFACTS).is_dir()):
        store = artifact_store(study_dir)  # a read-only study without artifacts has none to show

    class Server(WSGIServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET  # --host :: too, as bottle served it

    try:
        server = make_server(host, port, optuna_dashboard.wsgi(storage, artifact_store=store), server_class=Server)
    except OSError as e:  # the port is taken, or the host is not an address of this machine
        raise ValueError(f"cannot serve the dashboard on {host}:{port} ({e.strerror or e}); choose another port") from None
    # Ctrl-C, and SIGTERM as Ctrl-C, stop it between two requests: an exception raised inside a request would be
    # logged and swallowed by wsgiref's handler, and the server would go on. Set here, they also work where the
    # process was started with SIGINT ignored (a background job).
    stop = threading.Event()
    main = threading.current_thread() is threading.main_thread()
    previous = {n: signal.signal(n, lambda *_: stop.set()) for n in (signal.SIGINT, signal.SIGTERM)} if main else {}
    server.timeout = 0.5  # seconds handle_request waits for a request before the loop looks at ``stop`` again
    print(f"optuna-dashboard on http://{host}:{port}/ (Ctrl-C stops it)", flush=True)
    try:
        while not stop.is_set():
            server.handle_request()
    except KeyboardInterrupt:  # outside the main thread, Python's own Ctrl-C
        pass
    finally:
        server.server_close()
        for number, handler in previous.items():
            signal.signal(number, handler)
