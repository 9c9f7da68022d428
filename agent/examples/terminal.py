#!/usr/bin/env python3
"""A Tern terminal in plain Python, standard library only: the raw WebSocket protocol.

    TERN_URL=http://localhost:3000 TERN_TOKEN=<terminal token> python3 terminal.py
    TERN_URL=https://tern.example.com TERN_TOKEN=... TERN_CA=ca.pem python3 terminal.py  # a private CA

The token comes from the environment, not the command line, where every user of the machine can
read it in the process list.

It connects to /ws/terminal/<id> (the id is the token's subject), advertises the runners it
has (`echo`, `sum`), heartbeats every 30 s, and answers each task with ack, then result. Any
other task type is answered FAILED: runner '<type>' is not available on this terminal. When the
connection ends it exits; resilient_terminal.py, built on this one's Conn, reconnects instead and
never runs a task twice.
"""
import base64, hashlib, json, os, select, socket, ssl, struct, sys, time, urllib.parse

RUNNERS = {
    "echo": lambda payload: payload,
    "sum": lambda payload: sum(payload["numbers"]),
}


class Closed(Exception):
    """The connection is gone, or Tern refused or ended it."""


class Conn:
    def __init__(self, url, token):
        u = urllib.parse.urlparse(url)
        secure = u.scheme in ("https", "wss")
        host, port = u.hostname, u.port or (443 if secure else 80)
        terminal = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["sub"]
        self.sock = socket.create_connection((host, port), timeout=10)
        if secure:
            ca = os.environ.get("TERN_CA") or None
            self.sock = ssl.create_default_context(cafile=ca).wrap_socket(self.sock, server_hostname=host)
        key = base64.b64encode(os.urandom(16)).decode()
        path = f"/ws/terminal/{urllib.parse.quote(terminal)}?concurrency=1&capabilities={','.join(RUNNERS)}"
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                           f"Authorization: Bearer {token}\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self._recv()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        if b" 101 " not in head.split(b"\r\n")[0] or accept not in head:
            raise Closed(f"Tern refused the connection:\n{head.decode()}\n{self.buf.decode(errors='replace')}")
        self.sock.settimeout(None)
        self.terminal = terminal
        log(f"connected as {terminal}")

    def _recv(self):
        try:
            chunk = self.sock.recv(65536)
        except OSError as err:
            raise Closed(f"connection lost: {err}") from err
        if not chunk:
            raise Closed("connection closed")
        return chunk

    def _exact(self, n):
        while len(self.buf) < n:
            self.buf += self._recv()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def send(self, message, opcode=0x1):
        data = message if isinstance(message, bytes) else json.dumps(message).encode()
        mask = os.urandom(4)
        n = len(data)
        header = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else
                 struct.pack("!BH", 0x80 | 126, n) if n < 65536 else struct.pack("!BQ", 0x80 | 127, n))
        try:
            self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
        except OSError as err:
            raise Closed(f"connection lost: {err}") from err

    def receive(self, timeout):
        """The next JSON message, or None when `timeout` seconds pass without one."""
        message = b""
        while True:
            pending = self.buf or (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending())
            if not pending and not message and not select.select([self.sock], [], [], timeout)[0]:
                return None
            first, second = self._exact(2)
            n = second & 0x7F
            n = struct.unpack("!H", self._exact(2))[0] if n == 126 else struct.unpack("!Q", self._exact(8))[0] if n == 127 else n
            data = self._exact(n)
            opcode = first & 0x0F
            if opcode == 0x8:
                raise Closed(f"Tern closed the connection: {data[2:].decode(errors='replace')}")
            if opcode == 0x9:
                self.send(data, 0xA)
                continue
            if opcode in (0x0, 0x1, 0x2):
                message += data
                if first & 0x80:
                    return json.loads(message)


def log(text):
    print(f"terminal.py: {text}", file=sys.stderr, flush=True)


def main():
    try:
        serve()
    except Closed as err:
        sys.exit(str(err))


def serve():
    conn = Conn(os.environ.get("TERN_URL", sys.argv[1] if len(sys.argv) > 1 else ""),
                os.environ.get("TERN_TOKEN", sys.argv[2] if len(sys.argv) > 2 else ""))
    seen = set()  # (taskId, attempt): delivery is at-least-once
    last_beat = time.monotonic()
    while True:
        if time.monotonic() - last_beat >= 30:
            conn.send({"type": "heartbeat"})
            last_beat = time.monotonic()
        message = conn.receive(timeout=max(0.1, 30 - (time.monotonic() - last_beat)))
        if message is None:
            continue
        if message["type"] == "task":
            task = message["task"]
            key = (task["taskId"], task["attempt"])
            conn.send({"type": "ack", "taskId": task["taskId"], "attempt": task["attempt"]})
            if key in seen:
                continue
            seen.add(key)
            log(f"task {task['taskId']} ({task['type']})")
            result = {"type": "result", "taskId": task["taskId"], "attempt": task["attempt"]}
            runner = RUNNERS.get(task["type"])
            try:
                if runner is None:
                    raise LookupError(f"Runner '{task['type']}' is not available on this terminal")
                conn.send({"type": "progress", "taskId": task["taskId"], "attempt": task["attempt"],
                           "percent": 50, "log": f"running {task['type']}", "stream": "stdout"})
                result.update(status="success", output=runner(task["payload"]), exitCode=0)
            except Exception as err:  # a task's failure is its result, never the terminal's end
                result.update(status="failed", error=str(err) if isinstance(err, LookupError) else repr(err), exitCode=1)
            conn.send(result)
        elif message["type"] == "cancel":
            log(f"cancel {message['taskId']}: tasks here end at once, nothing to stop")
        elif message["type"] == "error":
            log(f"Tern: {message.get('message')} ({message.get('errorType')})")
        elif message["type"] == "reconnect":
            raise Closed(f"Tern asks to reconnect: {message.get('reason')}")


if __name__ == "__main__":
    main()
