"""`make mlflow-ui`: the MLflow UI, opened in its model-training view.

MLflow 3.x opens an experiment in its GenAI view (Overview → Traces) for a browser that has not
chosen otherwise: the `mlflow.experimentKind` tag is not read while the view switch is shown,
and no server option sets the default. The page's `workflowType=machine_learning` query
parameter opens the runs table, and one click on "Model training" (top left) keeps it for that
browser. This prints the experiment's URL with that parameter, then serves the UI.

`--screenshot PATH` serves the UI on a spare port, loads that URL in headless Chromium (the OS
package) and saves what it shows — the check that the URL lands there (docs/img/).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from mlflow.tracking import MlflowClient

EXPERIMENT = "transfernas"  # conf/base/mlflow.yml
VIEW = "workflowType=machine_learning"


def view_url(tracking_uri: str, base: str, experiment: str = EXPERIMENT) -> str:
    """The experiment's runs in the model-training view (the experiment list if none yet)."""
    found = MlflowClient(tracking_uri=tracking_uri).get_experiment_by_name(experiment)
    page = f"experiments/{found.experiment_id}/runs" if found is not None else "experiments"
    return f"{base}/#/{page}?{VIEW}"


def _serve(tracking_uri: str, host: str, port: int, quiet: bool = False) -> subprocess.Popen:
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    command = [mlflow, "ui", "--backend-store-uri", tracking_uri, "--host", host]
    out = subprocess.DEVNULL if quiet else None  # the screenshot's server: its log is noise
    return subprocess.Popen([*command, "--port", str(port)], stdout=out, stderr=out)


def screenshot(tracking_uri: str, out: Path, experiment: str) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("no chromium on PATH (Debian: apt-get install chromium)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    server = _serve(tracking_uri, "127.0.0.1", port, quiet=True)
    try:
        for _ in range(120):  # the server takes a few seconds to start
            try:
                urllib.request.urlopen(base, timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        url = view_url(tracking_uri, base, experiment)
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                browser,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1400,900",
                "--virtual-time-budget=20000",  # the page's scripts render in this time
                f"--screenshot={out}",
                url,
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        print(f"{url} → {out}")
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--experiment", default=EXPERIMENT)
    parser.add_argument("--screenshot", type=Path, help="save the view as this PNG and exit")
    args = parser.parse_args()
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    if args.screenshot is not None:
        screenshot(tracking_uri, args.screenshot, args.experiment)
        return
    base = f"http://{args.host}:{args.port}"
    print(f"MLflow UI, model-training view: {view_url(tracking_uri, base, args.experiment)}")
    server = _serve(tracking_uri, args.host, args.port)
    try:
        server.wait()
    except KeyboardInterrupt:
        server.terminate()


if __name__ == "__main__":
    main()
