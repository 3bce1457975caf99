"""Browse a study live in optuna-dashboard: ``serve_dashboard(storage_url)``.

The dashboard reads the same Optuna storage the search writes, so it can run beside a search in
progress. It binds to 127.0.0.1 unless told otherwise: the dashboard can also edit a study
(notes, user attributes, deletions), so expose it on other interfaces only on purpose.
"""

from __future__ import annotations


def serve_dashboard(storage_url: str, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve optuna-dashboard for ``storage_url`` at http://host:port/ until Ctrl-C (blocking)."""
    try:
        import optuna_dashboard
    except ImportError:
        raise ValueError("optuna-dashboard is not installed; pip install 'yolo-attention-search[dashboard]'") from None
    print(f"optuna-dashboard on http://{host}:{port}/ (Ctrl-C stops it)", flush=True)
    try:
        optuna_dashboard.run_server(storage_url, host=host, port=port)
    except KeyboardInterrupt:  # bottle stops quietly on Ctrl-C; a second one can land here
        pass
    except OSError as e:  # the port is taken, or the host is not an address of this machine
        raise ValueError(f"cannot serve the dashboard on {host}:{port} ({e.strerror or e}); choose another port") from None
