"""Starts a workspace's JupyterLab on a Ray node (run by Cairn with `python -c`; stdlib only).

Usage: python -c SOURCE JUPYTERLAB_OPTION...

Picks the node's address (the interface that reaches the Ray head) and a free port, keeps
JupyterLab's config, data, runtime and IPython directories in a private temporary directory,
moves the token from CAIRN_JUPYTER_TOKEN into a private file that JupyterLab reads at start and
that is deleted (with its server-info files) once JupyterLab runs, so kernels cannot read it,
prints `cairn-workspace-address HOST:PORT` for Cairn, and runs JupyterLab on the working
directory until it ends, passing SIGTERM and SIGINT on.
"""

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def node_address():
    head = os.environ.get("RAY_ADDRESS", "").rpartition(":")[0].strip("[]")
    for target in (head, "10.255.255.255"):
        if not target or "/" in target:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.connect((target, 9))
                return probe.getsockname()[0]
        except OSError:
            pass
    return "127.0.0.1"


def main():
    host = node_address()
    with socket.socket() as probe:
        probe.bind((host, 0))
        port = probe.getsockname()[1]
    private = tempfile.mkdtemp(prefix="cairn-jupyter-")
    for name, sub in (
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_DATA_DIR", "data"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("IPYTHONDIR", "ipython"),
    ):
        os.environ[name] = os.path.join(private, sub)
    token_file = os.path.join(private, "token")
    handle = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(handle, os.environ.pop("CAIRN_JUPYTER_TOKEN", "").encode())
    os.close(handle)
    os.environ["JUPYTER_TOKEN_FILE"] = token_file
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        f"--ServerApp.ip={host}", f"--ServerApp.port={port}",
        f"--ServerApp.root_dir={os.getcwd()}", *sys.argv[1:],
    ]
    child = subprocess.Popen(command)
    forward = lambda signum, _frame: child.send_signal(signum)
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    print(f"cairn-workspace-address {host}:{port}", flush=True)
    runtime = os.environ["JUPYTER_RUNTIME_DIR"]
    try:
        while child.poll() is None:
            if glob.glob(os.path.join(runtime, "jpserver-*.json")):
                for path in [token_file, *glob.glob(os.path.join(runtime, "jpserver-*"))]:
                    try:
                        os.remove(path)
                    except OSError:
                        pass
                break
            time.sleep(0.2)
        code = child.wait()
    finally:
        shutil.rmtree(private, ignore_errors=True)
    sys.exit(code if code >= 0 else 128 - code)


main()
