"""Cairn's job wrapper on Ray (standard library only; added to each working_dir package).

Usage: python .cairn_job_wrapper.py -- COMMAND...

Runs COMMAND with CAIRN_OUTPUTS_DIR set to a fresh directory, kills it when its process tree
uses more resident memory than CAIRN_MEMORY_LIMIT_BYTES, then uploads every file under the
outputs directory with `PUT {CAIRN_OUTPUTS_URL}/{relative path}` and the bearer token
CAIRN_OUTPUTS_TOKEN, and exits with the command's exit code. The limit, URL and token are
removed from the command's environment. The executor recognises the `cairn:` lines printed last.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

MEMORY_MARKER = "cairn: exceeded the memory limit of"
UPLOAD_MARKER = "cairn: uploading outputs failed:"
MEMORY_EXIT = 137
UPLOAD_EXIT = 75
POLL_SECONDS = 0.1
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def children_by_parent():
    """Maps each PID to its children's PIDs, from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def process_tree(root):
    """Returns root and its descendants."""
    children = children_by_parent()
    tree, stack = [], [root]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(children.get(pid, []))
    return tree


def resident_bytes(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", "rb") as statm:
                total += int(statm.read().split()[1]) * PAGE_SIZE
        except (OSError, IndexError, ValueError):
            pass
    return total


def kill_all(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def upload(outputs_dir, url, token):
    files = []
    for directory, _, names in os.walk(outputs_dir):
        for name in names:
            path = os.path.join(directory, name)
            if os.path.isfile(path) and not os.path.islink(path):
                files.append(os.path.relpath(path, outputs_dir))
    for relative in sorted(files):
        target = url.rstrip("/") + "/" + urllib.parse.quote(relative)
        error = None
        for attempt in range(3):
            if attempt:
                time.sleep(0.5 * 2**attempt)
            try:
                with open(os.path.join(outputs_dir, relative), "rb") as body:
                    request = urllib.request.Request(target, data=body, method="PUT")
                    if token:
                        request.add_header("Authorization", "Bearer " + token)
                    request.add_header("Content-Type", "application/octet-stream")
                    request.add_header("Content-Length", str(os.fstat(body.fileno()).st_size))
                    with urllib.request.urlopen(request, timeout=300) as response:
                        response.read()
                error = None
                break
            except urllib.error.HTTPError as failure:
                text = failure.read(200).decode(errors="replace").splitlines()
                error = f"the server answered {failure.code}: {text[0] if text else ''}"
                if failure.code < 500:
                    break
            except OSError as failure:
                error = f"request failed: {failure}"
        if error is not None:
            return f"{relative}: {error}"
    return None


def main():
    command = sys.argv[1:]
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        print("cairn: no command given", file=sys.stderr)
        return 2
    limit = int(os.environ.pop("CAIRN_MEMORY_LIMIT_BYTES", "0") or "0")
    url = os.environ.pop("CAIRN_OUTPUTS_URL", "")
    token = os.environ.pop("CAIRN_OUTPUTS_TOKEN", "")
    # A fresh directory per job: jobs with the same package share its unpacked copy.
    outputs_dir = tempfile.mkdtemp(prefix="cairn-outputs-")
    os.environ["CAIRN_OUTPUTS_DIR"] = outputs_dir
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    if command[0] == "python":
        command[0] = sys.executable

    received = []
    child = None

    def forward(signum, _frame):
        received.append(signum)
        if child is not None:
            try:
                child.send_signal(signum)
            except OSError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        child = subprocess.Popen(command)
    except OSError as error:
        print(f"cairn: could not start {command[0]}: {error}", file=sys.stderr, flush=True)
        return 127
    exceeded = False
    while True:
        try:
            code = child.wait(timeout=POLL_SECONDS)
            break
        except subprocess.TimeoutExpired:
            pass
        if limit and not exceeded:
            tree = process_tree(child.pid)
            if resident_bytes(tree) > limit:
                exceeded = True
                kill_all(tree)
    try:
        if exceeded:
            print(f"{MEMORY_MARKER} {limit} bytes", file=sys.stderr, flush=True)
            return MEMORY_EXIT
        if received:
            return 128 + received[0]
        exit_code = code if code >= 0 else 128 - code
        if url:
            failure = upload(outputs_dir, url, token)
            if failure is not None:
                print(f"{UPLOAD_MARKER} {failure}", file=sys.stderr, flush=True)
                return exit_code or UPLOAD_EXIT
        return exit_code
    finally:
        shutil.rmtree(outputs_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
