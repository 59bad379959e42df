# The writer endpoint of the emulated Multi-AZ instance: a TCP proxy on loopback that forwards
# each new connection to whichever PostgreSQL server is the writer now. A failover moves the
# target and drops the open connections, as the DNS flip of a real RDS endpoint does.
import selectors
import socket
import threading


class WriterProxy:
    def __init__(self, port, target_port, log):
        self.port = int(port)
        self._target = int(target_port)
        self._log = log
        self._lock = threading.Lock()
        self._conns = set()
        self._stop = threading.Event()
        self._listener = None
        self._thread = None

    @property
    def target(self):
        with self._lock:
            return self._target

    def start(self):
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(64)
        ls.settimeout(0.5)
        self._listener = ls
        self._thread = threading.Thread(target=self._accept_loop, name="writer-proxy",
                                        daemon=True)
        self._thread.start()

    def move_to(self, target_port):
        """Point new connections at target_port and cut the old ones."""
        with self._lock:
            self._target = int(target_port)
            old = list(self._conns)
        for pair in old:
            self._close_pair(pair)
        self._log("writer endpoint now forwards to port %d" % target_port)

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        if self._listener:
            self._listener.close()
        with self._lock:
            old = list(self._conns)
        for pair in old:
            self._close_pair(pair)

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _close_pair(self, pair):
        for s in pair:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        with self._lock:
            self._conns.discard(pair)

    def _serve(self, client):
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
        except OSError:
            client.close()      # writer down: the client sees the connection closed
            return
        upstream.settimeout(None)
        client.settimeout(None)
        pair = (client, upstream)
        with self._lock:
            self._conns.add(pair)
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ, upstream)
        sel.register(upstream, selectors.EVENT_READ, client)
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.5):
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            sel.close()
            self._close_pair(pair)
