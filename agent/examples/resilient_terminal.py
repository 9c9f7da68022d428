#!/usr/bin/env python3
"""A Tern terminal in Python that keeps going as the agent does: standard library only, on the raw
WebSocket protocol of terminal.py (its Conn).

    TERN_URL=http://localhost:3000 TERN_TOKEN=<terminal token> TERN_DATA_DIR=./tern-py \\
        python3 resilient_terminal.py

- Reconnects: a lost connection, a refused one or Tern's `reconnect` is followed by another try
  after a pause that doubles from 0.5 s up to 30 s, with jitter, for as long as it runs.
- Runs a task once: each (taskId, attempt) it takes is written to a ledger in TERN_DATA_DIR
  (JSON lines, flushed to disk) before it runs, and its result when it ends. A task pushed again,
  after a reconnect or a restart, is acked and answered with the result it already has, not run
  again; one that was running when the terminal died is answered FAILED at the next start.
- Loses no result: a result is kept in the ledger before it is sent, and whatever was not sent is
  sent after the next connect.
- SIGTERM or SIGINT stops it between tasks.
"""
import json, os, random, select, signal, socket, ssl, sys, time

from terminal import RUNNERS, Closed, Conn, log

# One more runner than terminal.py's, advertised with them (Conn reads this same dict).
RUNNERS["sleep"] = lambda payload: time.sleep(payload["seconds"]) or payload["seconds"]


class Ledger:
    """The last line of a key wins: {key, state: running|done|sent, result?}."""

    def __init__(self, directory):
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, "ledger.jsonl")
        self.entries = {}
        if os.path.exists(self.path):
            with open(self.path) as lines:
                for line in lines:
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue  # a line cut short by a crash
                    self.entries[entry["key"]] = entry
        self.file = open(self.path, "a")
        for key, entry in list(self.entries.items()):
            if entry["state"] == "running":  # this terminal died while the task ran: it is not run again
                task_id, attempt = key.rsplit("#", 1)
                self.write(key, "done", stopped(task_id, int(attempt)))

    def write(self, key, state, result=None):
        entry = {"key": key, "state": state, "result": result}
        self.file.write(json.dumps(entry) + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())
        self.entries[key] = entry

    def unsent(self):
        return [entry for entry in self.entries.values() if entry["state"] == "done"]


def stopped(task_id, attempt):
    return {"type": "result", "taskId": task_id, "attempt": attempt, "status": "failed",
            "error": "The terminal stopped while this task ran", "exitCode": 1}


def run(task):
    """The result message of one task; a failure is its result, never the terminal's end."""
    result = {"type": "result", "taskId": task["taskId"], "attempt": task["attempt"]}
    runner = RUNNERS.get(task["type"])
    try:
        if runner is None:
            raise LookupError(f"Runner '{task['type']}' is not available on this terminal")
        result.update(status="success", output=runner(task["payload"]), exitCode=0)
    except Exception as err:
        result.update(status="failed", error=str(err) if isinstance(err, LookupError) else repr(err), exitCode=1)
    return result


def check_alive(conn):
    """Raises Closed when the peer has closed the connection (seen without reading a message)."""
    sock = conn.sock
    if isinstance(sock, ssl.SSLSocket) or conn.buf or not select.select([sock], [], [], 0)[0]:
        return
    try:
        if sock.recv(1, socket.MSG_PEEK) == b"":
            raise Closed("connection closed while the task ran")
    except OSError as err:
        raise Closed(f"connection lost while the task ran: {err}") from err


def send_result(conn, ledger, key, result):
    conn.send(result)
    ledger.write(key, "sent", result)


def on_task(conn, ledger, task):
    key = f"{task['taskId']}#{task['attempt']}"
    conn.send({"type": "ack", "taskId": task["taskId"], "attempt": task["attempt"]})
    entry = ledger.entries.get(key)
    if entry and entry["state"] in ("done", "sent"):
        log(f"task {key} again: answering with the result it already has")
        return send_result(conn, ledger, key, entry["result"])
    ledger.write(key, "running")
    log(f"run {key} ({task['type']})")
    result = run(task)
    ledger.write(key, "done", result)
    check_alive(conn)  # a connection that died while the task ran is not sent into
    send_result(conn, ledger, key, result)


def session(url, token, ledger, stopping):
    conn = Conn(url, token)
    for entry in ledger.unsent():
        log(f"sending the kept result of {entry['key']}")
        send_result(conn, ledger, entry["key"], entry["result"])
    last_beat = time.monotonic()
    while not stopping["now"]:
        if time.monotonic() - last_beat >= 30:
            conn.send({"type": "heartbeat"})
            last_beat = time.monotonic()
        message = conn.receive(timeout=1)
        if message is None:
            continue
        if message["type"] == "task":
            on_task(conn, ledger, message["task"])
        elif message["type"] == "error":
            log(f"Tern: {message.get('message')} ({message.get('errorType')})")
        elif message["type"] == "reconnect":
            raise Closed(f"Tern asks to reconnect: {message.get('reason')}")


def main():
    url, token = os.environ.get("TERN_URL", ""), os.environ.get("TERN_TOKEN", "")
    if not url or not token:
        sys.exit("resilient_terminal.py: set TERN_URL and TERN_TOKEN")
    ledger = Ledger(os.environ.get("TERN_DATA_DIR", "tern-terminal-data"))
    stopping = {"now": False}
    for name in (signal.SIGTERM, signal.SIGINT):
        signal.signal(name, lambda *_: stopping.update(now=True))
    pause = 0.5
    while not stopping["now"]:
        started = time.monotonic()
        try:
            session(url, token, ledger, stopping)
        except (Closed, OSError) as err:
            if time.monotonic() - started > 30:
                pause = 0.5  # it had been connected a while: start again from the shortest pause
            wait = pause * random.uniform(0.5, 1)
            log(f"{str(err).splitlines()[0]}; reconnecting in {wait:.1f} s")
            time.sleep(wait)
            pause = min(pause * 2, 30)
    log("stopped")


if __name__ == "__main__":
    main()
