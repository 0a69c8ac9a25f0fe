"""Stand-ins for the Auth, Order and Complaint services (local use only).

    python3 server.py auth|orders|complaints [PORT]

Answers what ngx_http_customer_module calls, successfully and empty:

    auth:       PATCH /api/auth/user/{userId}/status   -> 200
    orders:     GET /api/orders?customerId=...         -> 200, no orders
    complaints: GET /api/complaints?customerId=...     -> 200, no complaints

and GET /health -> 200 on each. Anything else is a JSON 404. Every request
is logged to stdout (method, path, body), so `docker compose logs auth`
shows what the API sent.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

DEFAULT_PORTS = {"auth": 3001, "orders": 8002, "complaints": 8003}


def positive_int(value, default):
    try:
        n = int(value)
    except (TypeError, ValueError):
        return default
    return n if n > 0 else default


class Handler(BaseHTTPRequestHandler):
    # keep-alive: nginx's upstream keepalive reuses connections
    protocol_version = "HTTP/1.1"
    server_version = "customer-peer"
    role = "orders"

    def _answer(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _body(self):
        length = positive_int(self.headers.get("Content-Length"), 0)
        return self.rfile.read(length) if length else b""

    def _handle(self):
        url = urlsplit(self.path)
        body = self._body()
        sys.stdout.write("%s %s %s %s key=%s\n" % (
            self.role, self.command, self.path,
            body.decode("utf-8", "replace"),
            "yes" if self.headers.get("X-Service-API-Key") else "no"))
        sys.stdout.flush()
        parts = [p for p in url.path.split("/") if p]
        args = parse_qs(url.query)

        if self.command in ("GET", "HEAD") and url.path == "/health":
            return self._answer(200, {"success": True, "service": self.role})

        if (self.role == "auth" and self.command == "PATCH"
                and len(parts) == 5 and parts[:3] == ["api", "auth", "user"]
                and parts[4] == "status"):
            try:
                sent = json.loads(body or b"{}")
            except ValueError:
                sent = {}
            return self._answer(200, {
                "success": True,
                "message": "User status updated",
                "data": {"userId": parts[3],
                         "isActive": sent.get("isActive")}})

        if (self.role in ("orders", "complaints")
                and self.command in ("GET", "HEAD")
                and parts == ["api", self.role]):
            page = positive_int(args.get("page", ["1"])[0], 1)
            return self._answer(200, {
                "success": True,
                "data": {self.role: [],
                         "pagination": {"currentPage": page,
                                        "totalPages": 0,
                                        "totalItems": 0}}})

        return self._answer(404, {"success": False,
                                  "message": "Not found"})

    do_GET = do_HEAD = do_PATCH = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, fmt, *args):
        pass  # _handle logs instead


def main():
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role not in DEFAULT_PORTS:
        sys.exit("usage: server.py auth|orders|complaints [PORT]")
    port = int(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_PORTS[role]
    Handler.role = role
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    print("%s stand-in on port %d" % (role, port), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
